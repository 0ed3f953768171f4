import { ConnectorCode, ConnectorError } from '../../../connectors/kit/errors.js';
import { invokerOf, type CallContext, type ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { createGenericConnector, type GenericAuth } from '../../../connectors/generic/index.js';
import { createMercadoLibreConnector } from '../../../connectors/mercadolibre/index.js';
import { createShopifyConnector, type QueryCost } from '../../../connectors/shopify/index.js';
import type { Config } from '../../../runtime/config.js';
import { DomainCode, DomainError } from '../../common/errors.js';
import type { CredentialVault, StoredCredential } from '../vault.js';
import type { ConnectionRef } from './types.js';

/** A connection's connector, bound to its stored credentials (one vault version). */
export interface BoundConnector {
  invoke: ConnectorInvoker;
  /** The vault version the credentials came from (a refresh must produce a newer one). */
  version: number;
  /** The operations the provider's connector has. */
  operations: ReadonlySet<string>;
  /** The Shopify cost reported by the answer of the call that ran last on this binding. */
  lastCost: QueryCost | undefined;
}

const CACHE_MS = 2_000;

/**
 * Builds each connection's connector (Shopify per shop, MercadoLibre per seller, generic per
 * base URL) over its credentials from the vault. Decrypted credentials are kept in memory for
 * ten seconds at most (never logged, never returned), and dropped on a 401 so the next attempt
 * reads the refreshed grant.
 */
export class ProviderConnectors {
  readonly #cache = new Map<string, { bound: BoundConnector; at: number }>();

  constructor(
    private readonly vault: CredentialVault,
    private readonly config: Config,
  ) {}

  /** The stored credentials' metadata and version, never the secret. */
  describe(ref: { tenantId: string; service: string; connectionId: string }) {
    return this.vault.describe(ref);
  }

  /** Drops a connection's cached credentials (a 401: the next call reads the vault again). */
  forget(c: ConnectionRef): void {
    this.#cache.delete(keyOf(c));
  }

  async bind(c: ConnectionRef): Promise<BoundConnector> {
    const k = keyOf(c);
    const hit = this.#cache.get(k);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.bound;
    let stored: StoredCredential;
    try {
      stored = await this.vault.get({ tenantId: c.tenantId, service: c.provider, connectionId: c.account });
    } catch (err) {
      if (err instanceof DomainError && err.code === DomainCode.NotFound) {
        throw new ConnectorError(ConnectorCode.ReauthorizationRequired, `${c.provider}: no stored credentials for this connection`);
      }
      throw err;
    }
    const bound = this.#build(c, stored);
    this.#cache.set(k, { bound, at: Date.now() });
    return bound;
  }

  #build(c: ConnectionRef, stored: StoredCredential): BoundConnector {
    const s = stored.secret;
    if (c.provider === 'shopify') {
      const bound: BoundConnector = { invoke: null as never, version: stored.version, operations: new Set(), lastCost: undefined };
      const connector = createShopifyConnector({
        shop: c.account,
        apiVersion: this.config.providers.shopify.apiVersion,
        shopUrlTemplate: this.config.providers.shopify.shopUrlTemplate,
        onCost: (cost) => {
          bound.lastCost = cost;
        },
      });
      bound.invoke = invokerOf(connector, async () => ({ accessToken: required(s, 'access_token', c) }));
      bound.operations = new Set(Object.keys(connector.calls));
      return bound;
    }
    if (c.provider === 'mercadolibre') {
      const m = this.config.providers.mercadolibre;
      const sellerId = Number(c.account);
      if (!Number.isSafeInteger(sellerId)) throw new ConnectorError(ConnectorCode.Validation, `mercadolibre: account '${c.account}' is not a seller id`);
      const connector = createMercadoLibreConnector({ sellerId, apiBaseUrl: m.apiBaseUrl, applicationId: m.clientId ?? '' });
      return { invoke: invokerOf(connector, async () => ({ accessToken: required(s, 'access_token', c) })), version: stored.version, operations: new Set(Object.keys(connector.calls)), lastCost: undefined };
    }
    const meta = stored.metadata as { baseUrl?: string; auth?: GenericAuth & { scopes?: string[] }; healthCheck?: { path: string; expectStatus: number } };
    if (!meta.baseUrl || !meta.auth) throw new ConnectorError(ConnectorCode.ReauthorizationRequired, 'generic: the stored connection has no base URL or auth settings');
    const connector = createGenericConnector({ baseUrl: meta.baseUrl, auth: meta.auth, ...(meta.healthCheck ? { healthCheck: meta.healthCheck } : {}), name: c.account });
    const creds = meta.auth.pattern === 'api_key' ? { apiKey: required(s, 'apiKey', c) } : { clientId: required(s, 'clientId', c), clientSecret: required(s, 'clientSecret', c), scopes: meta.auth.scopes ?? stored.scopes };
    return { invoke: invokerOf(connector as never, async (_ctx: CallContext) => creds as never), version: stored.version, operations: new Set(Object.keys(connector.calls)), lastCost: undefined };
  }
}

const keyOf = (c: ConnectionRef): string => `${c.tenantId}\u0000${c.provider}\u0000${c.account}`;

function required(s: Readonly<Record<string, string>>, field: string, c: ConnectionRef): string {
  const v = s[field];
  if (!v) throw new ConnectorError(ConnectorCode.ReauthorizationRequired, `${c.provider}: the stored credentials have no ${field}`);
  return v;
}
