import type pg from 'pg';
import { GenericClient, type Answer, type GenericAuth, type RequestInput } from '../../connectors/generic/index.js';
import type { CallContext, ConnectorInvoker } from '../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';
import type { CheckOutput } from '../../machines/ecosystem/index.js';
import type { Clock } from '../../runtime/clock.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { CredentialSecret, CredentialVault } from '../integrations/vault.js';
import type { RegistryAuthPattern } from './catalog.js';
import type { UsageMeter } from './usage.js';

/** The vault service name of registry credentials: rows `(tenant, 'ecosystem', name)`. */
export const VAULT_SERVICE = 'ecosystem';

/** What a call needs of a registry row (never a secret). */
export interface Reachable {
  id: string;
  tenantId: string;
  name: string;
  platform: string;
  authPattern: RegistryAuthPattern;
  /** The non-secret half of the authentication: `{ in, name }`, `{ tokenUrl, scopes }`, or the certificate's description. */
  auth: Record<string, unknown>;
  config: { baseUrl: string; healthCheck: { path: string; expectStatus: number } };
  version: number;
  credentialsVersion: number;
}

type AnyCredentials = Record<string, unknown>;

/** The generic connector's settings and credentials for an integration (the four patterns). */
export function clientOf(r: Pick<Reachable, 'name' | 'authPattern' | 'auth' | 'config'>, secret: CredentialSecret, now?: () => number): { client: GenericClient<GenericAuth>; credentials: AnyCredentials } {
  let auth: GenericAuth;
  let credentials: AnyCredentials;
  let caPem: string | undefined;
  switch (r.authPattern) {
    case 'api_key':
      auth = { pattern: 'api_key', in: r.auth.in as 'header' | 'query', name: String(r.auth.name) };
      credentials = { apiKey: secret.apiKey };
      break;
    case 'oauth2':
    case 'service_account':
      // a service account of a REST API is OAuth 2.0 client credentials (RFC 6749 §4.4)
      auth = { pattern: 'client_credentials', tokenUrl: String(r.auth.tokenUrl) };
      credentials = { clientId: secret.clientId, clientSecret: secret.clientSecret, scopes: (r.auth.scopes as string[] | undefined) ?? [] };
      break;
    case 'certificate':
      auth = { pattern: 'certificate' };
      credentials = { certificatePem: secret.certificatePem, privateKeyPem: secret.privateKeyPem, ...(secret.caPem ? { caPem: secret.caPem } : {}) };
      caPem = secret.caPem;
      break;
  }
  const client = new GenericClient<GenericAuth>({ baseUrl: r.config.baseUrl, auth, healthCheck: r.config.healthCheck, name: r.name, ...(caPem ? { caPem } : {}) }, now ? { now } : {});
  return { client, credentials };
}

/** A health check's answer when the service refused our credentials (registration refuses them). */
export const refusesCredentials = (status: number) => status === 401 || status === 403;

const ROW = `SELECT id, tenant_id, name, platform, auth_pattern, auth, config, version, credentials_version FROM ecosystem_integrations WHERE id = $1`;
const CACHE_MAX = 20_000;
/** How long a bound integration (row, credentials, client) is reused before it is read again. */
export const BOUND_TTL_MS = 30_000;

/**
 * Calls through registered integrations: the health check and any request, each counted by the
 * usage meter, checks also for availability (both flushed from memory, never written per call). `invoker()` is the `ecosystem`
 * connector the runtime runs for the registry actors' `health` effects.
 */
export class IntegrationCalls {
  /** One client per integration version: keeps a client-credentials token between calls. */
  readonly #clients = new Map<string, { until: number; reachable: Reachable; client: GenericClient<GenericAuth>; credentials: AnyCredentials }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly vault: CredentialVault,
    private readonly meter: UsageMeter,
    private readonly clock: Clock,
    private readonly callTimeoutMs: number,
  ) {}

  async reachable(id: string): Promise<Reachable | null> {
    const { rows } = await this.pool.query(ROW, [id]);
    const r = rows[0];
    if (!r) return null;
    return { id: r.id, tenantId: r.tenant_id, name: r.name, platform: r.platform, authPattern: r.auth_pattern, auth: r.auth, config: r.config, version: r.version, credentialsVersion: Number(r.credentials_version) };
  }

  /**
   * The integration bound to its client and credentials, kept for BOUND_TTL_MS so a check costs no
   * read (row and vault); then the row is read again (one key lookup) and the vault only when the
   * row's or credentials' version changed. An update or delete in this process forgets it at once,
   * one in another process is seen within the TTL (and a retired credential fails the check meanwhile).
   */
  async #bound(id: string): Promise<{ reachable: Reachable; client: GenericClient<GenericAuth>; credentials: AnyCredentials } | null> {
    const now = this.clock.now();
    const hit = this.#clients.get(id);
    if (hit && hit.until > now) return hit;
    const r = await this.reachable(id);
    if (!r) {
      this.#clients.delete(id);
      return null;
    }
    // the same row and credentials version: the client and credentials held are still right (no vault read)
    if (hit && hit.reachable.version === r.version && hit.reachable.credentialsVersion === r.credentialsVersion) {
      const kept = { ...hit, until: now + BOUND_TTL_MS, reachable: r };
      this.#clients.set(id, kept);
      return kept;
    }
    const { secret } = await this.vault.get({ tenantId: r.tenantId, service: VAULT_SERVICE, connectionId: r.name });
    // the client (and its client-credentials token) is kept while the row and credentials are the same version
    const client = hit && hit.reachable.version === r.version && hit.reachable.credentialsVersion === r.credentialsVersion ? hit.client : clientOf(r, secret, () => this.clock.now()).client;
    const bound = { until: now + BOUND_TTL_MS, reachable: r, client, credentials: clientOf(r, secret).credentials };
    this.#clients.delete(id);
    if (this.#clients.size >= CACHE_MAX) this.#clients.delete(this.#clients.keys().next().value!);
    this.#clients.set(id, bound);
    return bound;
  }

  /**
   * One health check of a stored integration: its configured request, answered as
   * `{ ok, status, latencyMs }`; a failure to reach it throws the classified ConnectorError.
   * Counted as a call (usage) and as a check (availability) either way.
   */
  async check(id: string, signal: AbortSignal): Promise<CheckOutput> {
    const b = await this.#bound(id);
    if (!b) throw new ConnectorError(ConnectorCode.NotFound, `integration ${id} is not registered`);
    return this.checkWith(b.reachable, b.client, b.credentials, signal);
  }

  /** A health check with a client not (yet) stored: the registration's first check, or a check of new credentials. */
  async checkWith(r: Pick<Reachable, 'id' | 'tenantId' | 'platform'>, client: GenericClient<GenericAuth>, credentials: AnyCredentials, signal: AbortSignal): Promise<CheckOutput> {
    const started = performance.now();
    const at = this.clock.now();
    try {
      const h = await client.health(credentials as never, { signal });
      this.meter.record({ integrationId: r.id, tenantId: r.tenantId, provider: r.platform, at, ok: h.ok, latencyMs: h.latencyMs });
      this.meter.recordCheck(r.id, at, h.ok, h.latencyMs);
      return { ok: h.ok, status: h.status, latencyMs: h.latencyMs };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      this.meter.record({ integrationId: r.id, tenantId: r.tenantId, provider: r.platform, at, ok: false, latencyMs });
      this.meter.recordCheck(r.id, at, false, latencyMs);
      throw err;
    }
  }

  /** Any request through a registered integration (metered); a non-2xx answer throws the classified ConnectorError. */
  async request<T = unknown>(id: string, input: RequestInput, signal: AbortSignal): Promise<Answer<T>> {
    const b = await this.#bound(id);
    if (!b) throw new ConnectorError(ConnectorCode.NotFound, `integration ${id} is not registered`);
    const { reachable: r, client, credentials } = b;
    const at = this.clock.now();
    const started = performance.now();
    let ok = false;
    try {
      const a = await client.request<T>(credentials as never, input, { signal });
      ok = true;
      return a;
    } finally {
      this.meter.record({ integrationId: r.id, tenantId: r.tenantId, provider: r.platform, at, ok, latencyMs: performance.now() - started });
    }
  }

  /** Forgets the cached client of an integration (deleted, or its credentials replaced). */
  forget(id: string): void {
    this.#clients.delete(id);
  }

  /**
   * The `ecosystem` connector: `health` (`{ id }`: the registry actor's check) and `request`
   * (`{ id, ...RequestInput }`: a call through the integration, for machines that emit one).
   */
  invoker(): ConnectorInvoker {
    return async (operation, input, ctx: CallContext) => {
      const id = (input as { id?: unknown } | null)?.id;
      if (typeof id !== 'string') throw new ConnectorError(ConnectorCode.Validation, `ecosystem.${operation}: input needs the integration id`);
      if (operation === 'request') {
        const { id: _id, ...req } = input as RequestInput & { id: string };
        return this.request(id, req, ctx.signal);
      }
      if (operation !== 'health') throw new ConnectorError(ConnectorCode.Validation, `connector 'ecosystem' has no operation '${operation}'`);
      try {
        return await this.check(id, AbortSignal.any([ctx.signal, AbortSignal.timeout(this.callTimeoutMs)]));
      } catch (err) {
        if (err instanceof DomainError && err.code === DomainCode.NotFound) throw new ConnectorError(ConnectorCode.ReauthorizationRequired, 'no stored credentials for this integration');
        throw err;
      }
    };
  }
}
