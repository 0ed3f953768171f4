import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import dns from 'node:dns/promises';
import net from 'node:net';
import { isPrivateAddress } from '../events/webhook.js';
import type pg from 'pg';
import { ConnectorCode, ConnectorError, isConnectorError } from '../../connectors/kit/errors.js';
import type { CallContext, ConnectorInvoker } from '../../connectors/kit/contract.js';
import {
  authorizationUrl as genericAuthorizationUrl,
  exchangeCode as exchangeGenericCode,
  GenericClient,
  refreshGrant as refreshGenericGrant,
  tokenRequest,
  type GenericAuth,
  type TokenGrant,
} from '../../connectors/generic/index.js';
import * as mercadolibre from '../../connectors/mercadolibre/auth.js';
import * as shopify from '../../connectors/shopify/auth.js';
import { createWebhookSubscription, graphql, revoke as revokeShopify } from '../../connectors/shopify/client.js';
import { connectionId, integrationType, stateOf, type CredentialReference, type IntegrationContext, type IntegrationState, type Provider } from '../../machines/integration/index.js';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { ActorState } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import { unconfiguredProviders, type Config } from '../../runtime/config.js';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { isVaultError, VaultCode } from './errors.js';
import { StateSigner, STATE_TTL_MS, type OAuthState } from './oauth-state.js';
import type { CredentialInfo, CredentialSecret, CredentialVault } from './vault.js';

/** The marketplaces connected over OAuth's authorization code (authorize, then the callback). */
export const OAUTH_PROVIDERS = ['shopify', 'mercadolibre'] as const satisfies readonly Provider[];
/** Every service a connection can be made to: the marketplaces, and `generic` (an API key or OAuth client credentials). */
export const PROVIDERS = [...OAUTH_PROVIDERS, 'generic'] as const satisfies readonly Provider[];

/** The Shopify topics a connection subscribes to when it is made (inventory and products). */
export const SHOPIFY_WEBHOOK_TOPICS = ['INVENTORY_LEVELS_UPDATE', 'PRODUCTS_UPDATE', 'PRODUCTS_DELETE'];

/** Shopify scopes asked for when the caller names none: what inventory sync needs. */
export const DEFAULT_SHOPIFY_SCOPES = ['read_products', 'read_inventory', 'write_inventory', 'read_locations'];

export interface AuthorizeBody {
  /** Operators and services name the tenant; a vendor connects its own store. */
  tenantId?: string;
  /** Shopify: the `*.myshopify.com` shop. */
  shop?: string;
  scopes?: string[];
  /** MercadoLibre: the site (country) whose authorization domain the seller is sent to. */
  siteId?: string;
}

export interface Authorization {
  authorizationUrl: string;
  state: string;
  expiresAt: string;
}

/** A connection as `status` shows it: never a token. */
export interface ConnectionStatus {
  connectionId: string;
  provider: Provider;
  account: string;
  state: IntegrationState;
  tokenExpiresAt: string | null;
  scopes: string[];
  webhookSubscriptions: string[];
  lastWebhook: IntegrationContext['lastWebhook'];
  connectedAt: string | null;
  lastRefreshAt: string | null;
  lastError: IntegrationContext['lastError'];
}

/** `POST /api/integrations/generic/auth`: a REST API and the credentials to call it with (checked once, then stored in the vault). */
export interface CredentialsBody {
  tenantId?: string;
  /** The connection's account name (default: the base URL's host name). */
  name?: string;
  baseUrl?: string;
  /** A request that needs the credentials (default `GET /health` expecting 200). */
  healthCheck?: { path: string; expectStatus: number };
  credentials?: GenericCredentialsBody;
}

/**
 * The four patterns of a generic REST API: an API key; OAuth client credentials; OAuth
 * authorization code (answered with the URL to send the user to, like a marketplace); a client
 * certificate for mutual TLS.
 */
export type GenericCredentialsBody =
  | { apiKey: string; in: 'header' | 'query'; name: string }
  | { tokenUrl: string; clientId: string; clientSecret: string; scopes?: string[] }
  | { authorizeUrl: string; tokenUrl: string; clientId: string; clientSecret: string; scopes?: string[] }
  | { certPem: string; keyPem: string; caPem?: string; passphrase?: string };

/** The vault row of a generic authorization in flight: the client settings, until the callback. */
const pendingRef = (tenantId: string, account: string) => ({ tenantId, service: 'generic', connectionId: `${account}~authorizing` });

/** What a disconnect did at the provider. */
export interface Revocation {
  /** The provider revoked the grant; false when it could not (then `reason` says why). */
  revoked: boolean;
  reason?: string;
}

export type DisconnectedConnection = ConnectionStatus & Revocation;

export interface CallbackResult {
  provider: Provider;
  tenantId: string;
  connection: ConnectionStatus;
}

/** Adds fields to a connection's status (`ConnectionService.extendStatus`). */
export type StatusExtension = (connection: { tenantId: string; provider: Provider; account: string }) => Promise<Record<string, unknown>>;

/** The input of the `integration.refresh` call the connection actor emits. */
interface RefreshInput {
  tenantId: string;
  provider: Provider;
  account: string;
  credential: CredentialReference;
}

interface RefreshOutput {
  credential: CredentialReference;
  tokenExpiresAt: string | null;
  scopes: string[];
}

/** Points where a crash matters during a refresh; tests make the process die right there. */
/** Runs a provider request under the connection's outbound budget (`OutboundDoor.budgeted`). */
export type Budgeted = <T>(connection: { tenantId: string; provider: Provider; account: string }, work: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface ConnectionHooks {
  /** The provider answered with a new grant (the old refresh token is spent); nothing stored yet. */
  afterTokenReceived?(ref: { tenantId: string; provider: Provider; account: string }): void | Promise<void>;
}

const badRequest = (reason: string) => new DomainError(DomainCode.ValidationFailed, `authorization callback refused: ${reason}`, { reason });

/**
 * Marketplace connections: the OAuth flows that make them, their status and their end. Each
 * connection is an `integration` actor (`<tenant>:<provider>:<account>`); its tokens live only
 * in the vault (`services/integrations/vault.ts`), and the actor holds the vault reference.
 * Refreshing is the actor's effect: `invoker()` is the `integration` connector that carries out
 * its `refresh` call (registered with the runtime by `createServices`).
 */
export class ConnectionService {
  readonly #actors: ActorHandle<typeof integrationType>;
  #budgeted: Budgeted = (_c, work) => work(AbortSignal.timeout(this.config.connectorCallTimeoutMs));
  readonly #statusExtensions: StatusExtension[] = [];

  constructor(
    actors: ActorHandle<typeof integrationType>,
    private readonly pool: pg.Pool,
    private readonly vault: CredentialVault,
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly hooks: ConnectionHooks = {},
  ) {
    this.#actors = actors;
  }

  async authorize(principal: Principal, provider: string, body: AuthorizeBody): Promise<Authorization> {
    const p = this.#oauthProvider(provider);
    const tenantId = tenantOf(principal, body.tenantId);
    const signer = this.#signer();
    const now = this.clock.now();
    const nonce = StateSigner.nonce();
    const expiresAt = now + STATE_TTL_MS;
    const redirectUri = this.#redirectUri(p);
    let signed: string;
    let authorizationUrl: string;
    if (p === 'shopify') {
      const shop = body.shop;
      if (typeof shop !== 'string' || !shopify.isShopDomain(shop)) {
        throw new DomainError(DomainCode.ValidationFailed, 'shop must be a *.myshopify.com host', { field: 'shop' });
      }
      const scopes = body.scopes && body.scopes.length > 0 ? body.scopes : DEFAULT_SHOPIFY_SCOPES;
      signed = signer.sign({ nonce, tenantId, provider: p, shop, expiresAt });
      authorizationUrl = shopify.authorizeUrl(this.#shopifyApp(), { shop, scopes, redirectUri, state: signed });
    } else {
      if (body.siteId !== undefined && !Object.hasOwn(mercadolibre.AUTH_DOMAINS, body.siteId)) {
        throw new DomainError(DomainCode.ValidationFailed, `siteId must be one of ${Object.keys(mercadolibre.AUTH_DOMAINS).join(', ')}`, { field: 'siteId' });
      }
      signed = signer.sign({ nonce, tenantId, provider: p, expiresAt });
      authorizationUrl = mercadolibre.authorizationUrl(this.#mlApp(), {
        redirectUri,
        state: signed,
        codeChallenge: mercadolibre.pkceChallenge(signer.pkceVerifier(nonce)),
        ...(body.siteId ? { siteId: body.siteId } : {}),
      });
    }
    await this.pool.query('INSERT INTO integration_oauth_states (nonce, tenant_id, provider, expires_at) VALUES ($1, $2, $3, $4)', [nonce, tenantId, p, new Date(expiresAt)]);
    return { authorizationUrl, state: signed, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Starts an OAuth 2.0 authorization code grant with a generic REST API: keeps the client
   * settings in the vault under a pending reference until the callback, and answers the URL to
   * send the user to (PKCE S256; the verifier is derived from the state's nonce, never stored).
   */
  async authorizeGeneric(principal: Principal, body: CredentialsBody): Promise<Authorization> {
    const cr = body.credentials;
    if (!cr || !('authorizeUrl' in cr)) throw new DomainError(DomainCode.ValidationFailed, 'generic authorization needs authorizeUrl, tokenUrl, clientId and clientSecret', { field: 'credentials' });
    const tenantId = tenantOf(principal, body.tenantId);
    if (!body.baseUrl) throw new DomainError(DomainCode.ValidationFailed, 'generic needs baseUrl and credentials', { field: 'baseUrl' });
    const base = parseBaseUrl(body.baseUrl);
    const authorizeUrl = parseBaseUrl(cr.authorizeUrl, 'authorizeUrl');
    const tokenUrl = parseBaseUrl(cr.tokenUrl, 'tokenUrl');
    // the browser goes to authorizeUrl, but Concord itself calls baseUrl and tokenUrl
    await assertPublicTarget(base, this.config.events.allowPrivateTargets, 'baseUrl');
    await assertPublicTarget(tokenUrl, this.config.events.allowPrivateTargets, 'tokenUrl');
    const account = body.name ?? base.hostname;
    if (!ACCOUNT_NAME.test(account)) throw new DomainError(DomainCode.ValidationFailed, 'name must be 1-100 letters, digits, dots, dashes or underscores', { field: 'name' });
    const signer = this.#signer();
    const now = this.clock.now();
    const nonce = StateSigner.nonce();
    const expiresAt = now + STATE_TTL_MS;
    const scopes = cr.scopes ?? [];
    const auth = { pattern: 'oauth2' as const, authorizeUrl: authorizeUrl.href, tokenUrl: tokenUrl.href };
    await this.vault.put(pendingRef(tenantId, account), { clientId: cr.clientId, clientSecret: cr.clientSecret }, {
      expiresAt: new Date(expiresAt).toISOString(),
      scopes,
      metadata: { baseUrl: base.href.replace(/\/+$/, ''), healthCheck: body.healthCheck ?? null, auth: { ...auth, scopes }, nonce },
    });
    const signed = signer.sign({ nonce, tenantId, provider: 'generic', account, expiresAt });
    const authorizationUrl = genericAuthorizationUrl(
      { ...auth, clientId: cr.clientId, clientSecret: cr.clientSecret },
      { redirectUri: this.#redirectUri('generic'), state: signed, scopes, codeChallenge: createHash('sha256').update(signer.pkceVerifier(nonce)).digest('base64url') },
    );
    await this.pool.query('INSERT INTO integration_oauth_states (nonce, tenant_id, provider, expires_at) VALUES ($1, $2, $3, $4)', [nonce, tenantId, 'generic', new Date(expiresAt)]);
    return { authorizationUrl, state: signed, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * The provider's redirect: checks the signed state (signature, expiry, provider), Shopify's
   * query HMAC, timestamp and shop, uses the state once, exchanges the code, stores the grant in
   * the vault and tells the connection actor. Any refusal is VALIDATION_FAILED (400) and stores nothing.
   */
  async callback(provider: string, query: Record<string, string | undefined>): Promise<CallbackResult> {
    const p = provider === 'generic' ? 'generic' : this.#oauthProvider(provider);
    const now = this.clock.now();
    const checked = this.#signer().verify(query.state ?? '', now);
    if (!checked.ok) throw badRequest(checked.reason);
    const state = checked.state;
    if (state.provider !== p) throw badRequest('state was issued for another provider');
    if (p === 'generic') return this.#genericCallback(state, query, now);
    let code: string;
    if (p === 'shopify') {
      const v = shopify.verifyCallback(query, this.config.providers.shopify.apiSecret!, now);
      if (!v.ok) throw badRequest(v.reason);
      if (v.shop !== state.shop) throw badRequest('shop does not match the state');
      code = v.code;
    } else {
      if (!query.code) throw badRequest('code missing');
      code = query.code;
    }
    // single use, across processes: the first callback to mark the nonce wins
    const used = await this.pool.query(
      'UPDATE integration_oauth_states SET used_at = now() WHERE nonce = $1 AND tenant_id = $2 AND provider = $3 AND used_at IS NULL AND expires_at > $4',
      [state.nonce, state.tenantId, p, new Date(now)],
    );
    if (used.rowCount !== 1) throw badRequest('state already used or unknown');

    const signal = AbortSignal.timeout(this.config.connectorCallTimeoutMs);
    let account: string;
    let secret: CredentialSecret;
    let expiresAt: string | null;
    let scopes: string[];
    let metadata: Record<string, unknown>;
    try {
      if (p === 'shopify') {
        const g = await shopify.exchangeCode(this.#shopifyApp(), { shop: state.shop!, code, signal, now: () => this.clock.now() });
        account = state.shop!;
        secret = secretOf(g);
        expiresAt = g.expiresAt ?? null;
        scopes = g.scopes;
        metadata = { shop: state.shop, refreshTokenExpiresAt: g.refreshTokenExpiresAt ?? null };
      } else {
        const g = await mercadolibre.exchangeCode(this.#mlApp(), { code, redirectUri: this.#redirectUri(p), codeVerifier: this.#signer().pkceVerifier(state.nonce), signal, now: () => this.clock.now() });
        account = String(g.userId);
        secret = secretOf(g);
        expiresAt = g.expiresAt;
        scopes = g.scopes;
        metadata = { userId: g.userId };
      }
    } catch (err) {
      // the provider refused the code (bad, used, expired, wrong verifier): the merchant's problem, not ours
      if (isConnectorError(err) && !err.retryable) throw badRequest('the provider refused the authorization code');
      throw err;
    }
    const ref = { tenantId: state.tenantId, service: p, connectionId: account };
    const info = await this.vault.put(ref, secret, { expiresAt, scopes, metadata });
    // stored first: only now may anything use the new access token
    const webhookSubscriptions = p === 'shopify' ? await this.#subscribeShopify(state.tenantId, account, secret.access_token!) : [];
    const id = connectionId(state.tenantId, p, account);
    const events = `${this.config.nats.prefix}.events`;
    await this.#actors.send(id, { type: 'integration.authorization.started', tenantId: state.tenantId, provider: p, account, stateNonce: state.nonce, events, at: iso(now) }, { messageId: `oauth:${state.nonce}:started`, tenant: state.tenantId });
    const r = await this.#actors.send(
      id,
      { type: 'integration.connected', tenantId: state.tenantId, provider: p, account, credential: { ...ref, version: info.version }, tokenExpiresAt: info.expiresAt, scopes: info.scopes, webhookSubscriptions, events, at: iso(now) },
      { messageId: `oauth:${state.nonce}:connected`, tenant: state.tenantId },
    );
    this.log.info({ tenantId: state.tenantId, provider: p, account }, 'integration connected');
    return { provider: p, tenantId: state.tenantId, connection: statusOf(id, r.value, r.context ?? (await this.#actors.get(id)).context) };
  }

  /**
   * Connects a REST API by API key or OAuth client credentials (the `generic` service): checks
   * the credentials once against the service (a client-credentials token request, then the
   * health check), stores them in the vault and marks the connection actor `connected`. A
   * credential the service refuses is VALIDATION_FAILED (400) and stores nothing. The answer is
   * the connection's status: never a secret.
   */
  async connectWithCredentials(principal: Principal, provider: string, body: CredentialsBody): Promise<ConnectionStatus> {
    const p = this.#provider(provider);
    if (p !== 'generic') throw new DomainError(DomainCode.ValidationFailed, `${p} connects over OAuth: POST its auth route with no credentials`, { field: 'credentials' });
    const tenantId = tenantOf(principal, body.tenantId);
    const cr = body.credentials;
    if (!body.baseUrl || !cr) throw new DomainError(DomainCode.ValidationFailed, `${p} needs baseUrl and credentials`, { field: body.baseUrl ? 'credentials' : 'baseUrl' });
    const base = parseBaseUrl(body.baseUrl);
    await assertPublicTarget(base, this.config.events.allowPrivateTargets, 'baseUrl');
    const account = body.name ?? base.hostname;
    if (!ACCOUNT_NAME.test(account)) throw new DomainError(DomainCode.ValidationFailed, 'name must be 1-100 letters, digits, dots, dashes or underscores', { field: 'name' });
    const healthCheck = body.healthCheck ?? { path: '/health', expectStatus: 200 };
    let auth: GenericAuth;
    let secret: CredentialSecret;
    let scopes: string[] = [];
    const metadata: Record<string, unknown> = { baseUrl: base.href.replace(/\/+$/, ''), healthCheck };
    if ('authorizeUrl' in cr) throw new DomainError(DomainCode.ValidationFailed, 'authorization code credentials start an authorization: POST them to the auth route', { field: 'credentials' });
    if ('apiKey' in cr) {
      auth = { pattern: 'api_key', in: cr.in, name: cr.name };
      secret = { apiKey: cr.apiKey };
      metadata.auth = auth;
    } else if ('certPem' in cr) {
      const cert = checkCertificate(cr, this.clock.now());
      auth = { pattern: 'certificate' };
      secret = { certificatePem: cr.certPem, privateKeyPem: cr.keyPem, ...(cr.caPem ? { caPem: cr.caPem } : {}), ...(cr.passphrase ? { passphrase: cr.passphrase } : {}) };
      // what compliance needs (expiry, subject) is public; the key never leaves the vault
      metadata.auth = auth;
      metadata.certificate = cert;
    } else {
      await assertPublicTarget(parseBaseUrl(cr.tokenUrl, 'tokenUrl'), this.config.events.allowPrivateTargets, 'tokenUrl');
      auth = { pattern: 'client_credentials', tokenUrl: cr.tokenUrl };
      secret = { clientId: cr.clientId, clientSecret: cr.clientSecret };
      scopes = cr.scopes ?? [];
      metadata.auth = { ...auth, scopes };
    }
    const client = new GenericClient({ baseUrl: metadata.baseUrl as string, auth, healthCheck, name: account });
    const signal = AbortSignal.timeout(this.config.connectorCallTimeoutMs);
    const refused = (reason: string) => new DomainError(DomainCode.ValidationFailed, 'the service refused the credentials', { reason });
    try {
      if (auth.pattern === 'client_credentials') {
        const g = await tokenRequest({}, { tokenUrl: auth.tokenUrl, clientId: secret.clientId!, clientSecret: secret.clientSecret!, params: { grant_type: 'client_credentials', ...(scopes.length ? { scope: scopes.join(' ') } : {}) }, signal });
        if (g.scopes.length > 0) scopes = g.scopes;
      }
      // an API key and a certificate are checked by the health check; client credentials by the token request, and the health check when one is named
      if (auth.pattern === 'api_key' || auth.pattern === 'certificate' || body.healthCheck) {
        const creds =
          auth.pattern === 'api_key'
            ? { apiKey: secret.apiKey! }
            : auth.pattern === 'certificate'
              ? { certificatePem: secret.certificatePem!, privateKeyPem: secret.privateKeyPem!, caPem: secret.caPem, passphrase: secret.passphrase }
              : { clientId: secret.clientId!, clientSecret: secret.clientSecret!, scopes };
        const h = await client.health(creds as never, { signal });
        if (!h.ok) throw refused(`the health check answered ${h.status}, expected ${healthCheck.expectStatus}`);
      }
    } catch (err) {
      if (err instanceof DomainError) throw err;
      if (isConnectorError(err) && !err.retryable) throw refused(`the service answered ${err.code}`);
      throw new DomainError(DomainCode.ValidationFailed, 'the service could not be reached to check the credentials', { reason: isConnectorError(err) ? err.code : 'UNKNOWN' });
    }
    const ref = { tenantId, service: p, connectionId: account };
    const info = await this.vault.put(ref, secret, { expiresAt: null, scopes, metadata });
    const id = connectionId(tenantId, p, account);
    const now = this.clock.now();
    const r = await this.#actors.send(
      id,
      { type: 'integration.connected', tenantId, provider: p, account, credential: { ...ref, version: info.version }, tokenExpiresAt: null, scopes, webhookSubscriptions: [], events: `${this.config.nats.prefix}.events`, at: iso(now) },
      { tenant: tenantId },
    );
    this.log.info({ tenantId, provider: p, account, pattern: auth.pattern }, 'integration connected');
    return statusOf(id, r.value, r.context ?? (await this.#actors.get(id)).context);
  }

  /** The caller's connections to `provider`; NOT_FOUND when there are none (or they belong to another tenant). */
  async status(principal: Principal, provider: string, tenantId?: string): Promise<{ provider: Provider; tenantId: string; connections: ConnectionStatus[] }> {
    const p = this.#provider(provider);
    const tenant = tenantOf(principal, tenantId);
    const states = await this.#connectionsOf(tenant, p);
    if (states.length === 0) throw notFound(`${p} connection of tenant`, tenant);
    const connections = await Promise.all(
      states.map(async (s) => {
        const base = statusOf(s.ref.id, s.value, s.context);
        const ref = { tenantId: tenant, provider: p, account: s.context.account ?? '' };
        const extra = await Promise.all(this.#statusExtensions.map((x) => x(ref)));
        return Object.assign(base, ...extra) as ConnectionStatus;
      }),
    );
    return { provider: p, tenantId: tenant, connections };
  }

  /**
   * Adds figures to each connection's status (the outbound door's budget and breaker, the
   * sync's figures): each extension answers fields merged into the connection's status.
   */
  /**
   * The outbound budget for the requests this service makes itself (webhook subscriptions when a
   * Shopify connection is made, the revocation when it ends): without it they would reach the
   * provider beside the bucket that paces every other call of the connection.
   */
  useBudget(budgeted: Budgeted): void {
    this.#budgeted = budgeted;
  }

  extendStatus(extension: StatusExtension): void {
    this.#statusExtensions.push(extension);
  }

  /**
   * Ends the caller's connections to `provider`: revokes the grant at the provider where it can
   * be revoked (Shopify: `DELETE /admin/api_permissions/current.json`), then forgets the vault
   * row whatever the revoke answered, and marks the connection disconnected. A revoke that fails
   * is logged and answered as `revoked: false` with its reason; MercadoLibre has no revoke
   * endpoint (`revoked: false` and why).
   */
  async disconnect(principal: Principal, provider: string, tenantId?: string): Promise<{ provider: Provider; tenantId: string; connections: DisconnectedConnection[] }> {
    const p = this.#provider(provider, { configured: false });
    const tenant = tenantOf(principal, tenantId);
    const states = (await this.#connectionsOf(tenant, p)).filter((s) => stateOf(s.value) !== 'disconnected');
    if (states.length === 0) throw notFound(`${p} connection of tenant`, tenant);
    const out: DisconnectedConnection[] = [];
    for (const s of states) {
      const c = s.context;
      const ref = { tenantId: tenant, service: p, connectionId: c.account! };
      const revocation = await this.#revoke(p, ref);
      await this.vault.delete(ref);
      const r = await this.#actors.send(s.ref.id, { type: 'integration.disconnect', by: principal.sub, at: iso(this.clock.now()) }, { tenant });
      out.push({ ...statusOf(s.ref.id, r.value, r.context ?? c), ...revocation });
    }
    this.log.info({ tenantId: tenant, provider: p, connections: out.length, revoked: out.filter((x) => x.revoked).length }, 'integration disconnected');
    return { provider: p, tenantId: tenant, connections: out };
  }

  /** Revokes one connection's grant at the provider; never throws (the credentials are forgotten either way). */
  async #revoke(p: Provider, ref: { tenantId: string; service: string; connectionId: string }): Promise<Revocation> {
    if (p === 'generic') return { revoked: false, reason: 'API keys and client credentials are revoked at the service itself: the credentials are forgotten' };
    if (p === 'mercadolibre') return { revoked: false, reason: 'MercadoLibre has no token revocation endpoint: the credentials are forgotten; the seller can remove the app in their MercadoLibre account' };
    let accessToken: string | undefined;
    try {
      accessToken = (await this.vault.get(ref)).secret.access_token;
    } catch (err) {
      if (!(err instanceof DomainError && err.code === DomainCode.NotFound)) this.log.warn({ ...ref, code: err instanceof DomainError ? err.code : 'UNKNOWN' }, 'reading credentials to revoke failed');
    }
    if (!accessToken) return { revoked: false, reason: 'no stored access token to revoke' };
    const settings = { shop: ref.connectionId, apiVersion: this.config.providers.shopify.apiVersion, shopUrlTemplate: this.config.providers.shopify.shopUrlTemplate };
    try {
      await this.#budgeted({ tenantId: ref.tenantId, provider: 'shopify', account: ref.connectionId }, (signal) => revokeShopify(settings, { accessToken }, { signal }));
      return { revoked: true };
    } catch (err) {
      const code = isConnectorError(err) ? err.code : 'UNKNOWN';
      const retryable = isConnectorError(err) && err.retryable;
      this.log.warn({ ...ref, code, retryable }, 'revoking the Shopify grant failed; forgetting the credentials anyway');
      return { revoked: false, reason: `Shopify did not revoke the grant (${code}${retryable ? ', retryable' : ''}): the credentials are forgotten; the merchant can uninstall the app` };
    }
  }

  async #genericCallback(state: OAuthState, query: Record<string, string | undefined>, now: number): Promise<CallbackResult> {
    if (query.error) throw badRequest(`the service refused the authorization (${query.error.slice(0, 100)})`);
    if (!query.code) throw badRequest('code missing');
    const account = state.account;
    if (!account) throw badRequest('state names no account');
    const used = await this.pool.query(
      'UPDATE integration_oauth_states SET used_at = now() WHERE nonce = $1 AND tenant_id = $2 AND provider = $3 AND used_at IS NULL AND expires_at > $4',
      [state.nonce, state.tenantId, 'generic', new Date(now)],
    );
    if (used.rowCount !== 1) throw badRequest('state already used or unknown');
    const pending = await this.vault.get(pendingRef(state.tenantId, account)).catch(() => null);
    // a newer authorization of the same account replaced these settings: this one is void
    if (!pending || pending.metadata.nonce !== state.nonce) throw badRequest('this authorization was superseded by a newer one');
    const meta = pending.metadata as { baseUrl: string; healthCheck: { path: string; expectStatus: number } | null; auth: { pattern: 'oauth2'; authorizeUrl: string; tokenUrl: string; scopes: string[] } };
    const auth = { pattern: 'oauth2' as const, authorizeUrl: meta.auth.authorizeUrl, tokenUrl: meta.auth.tokenUrl, clientId: pending.secret.clientId!, clientSecret: pending.secret.clientSecret! };
    let g: TokenGrant;
    try {
      g = await exchangeGenericCode({}, auth, { code: query.code, redirectUri: this.#redirectUri('generic'), codeVerifier: this.#signer().pkceVerifier(state.nonce), signal: AbortSignal.timeout(this.config.connectorCallTimeoutMs) });
    } catch (err) {
      if (isConnectorError(err) && !err.retryable) throw badRequest('the service refused the authorization code');
      throw err;
    }
    const scopes = g.scopes.length > 0 ? g.scopes : meta.auth.scopes;
    const metadata = { baseUrl: meta.baseUrl, healthCheck: meta.healthCheck ?? { path: '/health', expectStatus: 200 }, auth: { pattern: 'oauth2', authorizeUrl: meta.auth.authorizeUrl, tokenUrl: meta.auth.tokenUrl, scopes } };
    const ref = { tenantId: state.tenantId, service: 'generic', connectionId: account };
    const info = await this.vault.put(ref, { clientId: auth.clientId, clientSecret: auth.clientSecret, ...secretOf(g) }, { expiresAt: g.expiresAt ?? null, scopes, metadata });
    await this.vault.delete(pendingRef(state.tenantId, account));
    const id = connectionId(state.tenantId, 'generic', account);
    const events = `${this.config.nats.prefix}.events`;
    await this.#actors.send(id, { type: 'integration.authorization.started', tenantId: state.tenantId, provider: 'generic', account, stateNonce: state.nonce, events, at: iso(now) }, { messageId: `oauth:${state.nonce}:started`, tenant: state.tenantId });
    const r = await this.#actors.send(
      id,
      { type: 'integration.connected', tenantId: state.tenantId, provider: 'generic', account, credential: { ...ref, version: info.version }, tokenExpiresAt: info.expiresAt, scopes: info.scopes, webhookSubscriptions: [], events, at: iso(now) },
      { messageId: `oauth:${state.nonce}:connected`, tenant: state.tenantId },
    );
    this.log.info({ tenantId: state.tenantId, provider: 'generic', account, pattern: 'oauth2' }, 'integration connected');
    return { provider: 'generic', tenantId: state.tenantId, connection: statusOf(id, r.value, r.context ?? (await this.#actors.get(id)).context) };
  }

  /** Forgets authorizations that expired more than a day ago (used or not); answers how many. */
  async pruneStates(): Promise<number> {
    const r = await this.pool.query(`DELETE FROM integration_oauth_states WHERE expires_at < $1`, [new Date(this.clock.now() - 86_400_000)]);
    return r.rowCount ?? 0;
  }

  /** One connection's actor state (for the webhook intake): null when there is none. */
  async connection(tenantId: string, provider: Provider, account: string): Promise<ActorState<IntegrationContext> | null> {
    return this.#actors.current(connectionId(tenantId, provider, account), { tenant: tenantId });
  }

  /** Asks a connection to refresh now (a 401 seen by a caller): one refresh however many ask. */
  async requestRefresh(tenantId: string, provider: Provider, account: string, reason = 'requested', seenVersion?: number): Promise<void> {
    await this.#actors.send(
      connectionId(tenantId, provider, account),
      { type: 'integration.refresh.start', reason, ...(seenVersion !== undefined ? { seenVersion } : {}), at: iso(this.clock.now()) },
      { tenant: tenantId },
    );
  }

  /** The top-level state of a connection's actor, or null when there is none. */
  async stateOf(tenantId: string, provider: Provider, account: string): Promise<IntegrationState | null> {
    const s = await this.connection(tenantId, provider, account);
    return s ? stateOf(s.value) : null;
  }

  /**
   * Marks a connected connection `reauthorization_required` (a call was answered that only a
   * person can fix it: a revoked grant); publishes IntegrationReauthorizationRequired. A
   * connection in any other state is left alone (a refresh running decides for itself).
   */
  async markReauthorizationRequired(tenantId: string, provider: Provider, account: string, error: { code: string; message: string }): Promise<void> {
    if ((await this.stateOf(tenantId, provider, account)) !== 'connected') return;
    await this.#actors.send(connectionId(tenantId, provider, account), { type: 'integration.reauthorization.required', error, at: iso(this.clock.now()) }, { tenant: tenantId });
  }

  /**
   * The `integration` connector: its `refresh` operation is the connection actor's refresh
   * effect. It persists the rotated grant in the vault (compare-and-set on the version the actor
   * knew) before answering, and only the answer (a new credential reference) reaches the actor,
   * so nothing can use the new access token before it is stored. A retry of a call whose grant
   * was already stored finds a newer vault version and answers that, without spending the
   * refresh token again.
   */
  invoker(): ConnectorInvoker {
    return async (operation, input, ctx) => {
      if (operation !== 'refresh') throw new ConnectorError(ConnectorCode.Validation, `connector 'integration' has no operation '${operation}'`);
      return this.#refresh(input as RefreshInput, ctx);
    };
  }

  async #refresh(input: RefreshInput, ctx: CallContext): Promise<RefreshOutput> {
    const p = input.provider;
    const ref = { tenantId: input.tenantId, service: p, connectionId: input.account };
    const stored = await this.vault.get(ref).catch((err: unknown) => {
      if (err instanceof DomainError && err.code === DomainCode.NotFound) throw new ConnectorError(ConnectorCode.ReauthorizationRequired, 'no stored credentials for this connection');
      throw err;
    });
    // an API key, a certificate or client credentials have nothing to refresh (client-credentials tokens are minted per use)
    if (stored.version > input.credential.version) return outputOf(stored);
    const genericAuth = (stored.metadata as { auth?: { pattern?: string; authorizeUrl?: string; tokenUrl?: string } }).auth;
    if (p === 'generic' && genericAuth?.pattern !== 'oauth2') return outputOf(stored);
    const refreshToken = stored.secret.refresh_token;
    if (!refreshToken) throw new ConnectorError(ConnectorCode.ReauthorizationRequired, `${p}: the stored grant has no refresh token`);
    const now = () => this.clock.now();
    const store = async (secret: CredentialSecret, expiresAt: string | null, scopes: string[]): Promise<CredentialInfo> => {
      await this.hooks.afterTokenReceived?.({ tenantId: input.tenantId, provider: p, account: input.account });
      return this.vault.put(ref, secret, { expiresAt, scopes, metadata: stored.metadata, expectedVersion: stored.version });
    };
    try {
      if (p === 'generic') {
        const g = await refreshGenericGrant({}, { pattern: 'oauth2', authorizeUrl: genericAuth!.authorizeUrl!, tokenUrl: genericAuth!.tokenUrl!, clientId: stored.secret.clientId!, clientSecret: stored.secret.clientSecret! }, { refreshToken, signal: ctx.signal });
        // the client settings stay with the grant; a service that does not rotate keeps the old refresh token
        return outputOf(await store({ clientId: stored.secret.clientId!, clientSecret: stored.secret.clientSecret!, ...secretOf({ accessToken: g.accessToken, refreshToken: g.refreshToken ?? refreshToken }) }, g.expiresAt ?? null, g.scopes.length > 0 ? g.scopes : stored.scopes));
      }
      if (p === 'shopify') {
        const g = await shopify.refreshGrant(this.#shopifyApp(), { shop: input.account, refreshToken, signal: ctx.signal, now });
        return outputOf(await store(secretOf(g), g.expiresAt ?? null, g.scopes.length > 0 ? g.scopes : stored.scopes));
      }
      let info: CredentialInfo | undefined;
      await mercadolibre.refreshGrant(this.#mlApp(), {
        refreshToken,
        signal: ctx.signal,
        now,
        persist: async (g) => {
          info = await store(secretOf(g), g.expiresAt, g.scopes.length > 0 ? g.scopes : stored.scopes);
        },
      });
      return outputOf(info!);
    } catch (err) {
      // another writer stored a newer grant (a reconnect): that one stands
      const cause = err instanceof Error ? err.cause : undefined;
      if (isVaultError(err, VaultCode.VersionConflict) || isVaultError(cause, VaultCode.VersionConflict)) {
        const info = await this.vault.describe(ref);
        if (info) return outputOf(info);
      }
      throw err;
    }
  }

  /**
   * Subscribes the shop to `SHOPIFY_WEBHOOK_TOPICS` at `<PUBLIC_BASE_URL>/api/integrations/shopify/webhook`
   * (skipping those already there: a reconnect), answering the topics subscribed. A failure is
   * logged and leaves that topic out: the connection stands, and status shows what is missing.
   * (MercadoLibre's notification topics are set in the app's settings, not per seller.)
   */
  async #subscribeShopify(tenantId: string, shop: string, accessToken: string): Promise<string[]> {
    const settings = { shop, apiVersion: this.config.providers.shopify.apiVersion, shopUrlTemplate: this.config.providers.shopify.shopUrlTemplate };
    const callbackUrl = `${this.config.providers.publicBaseUrl}/api/integrations/shopify/webhook`;
    const connection = { tenantId, provider: 'shopify' as const, account: shop };
    const subscribed = new Set<string>();
    try {
      const r = await this.#budgeted(connection, (signal) =>
        graphql<{ webhookSubscriptions: { nodes: Array<{ topic: string }> } }>(
          settings,
          { accessToken },
          'query Subs($uri: String) { webhookSubscriptions(first: 100, uri: $uri) { nodes { topic } } }',
          { uri: callbackUrl },
          signal,
        ),
      );
      for (const n of r.data.webhookSubscriptions.nodes) subscribed.add(n.topic);
    } catch (err) {
      this.log.warn({ shop, code: isConnectorError(err) ? err.code : 'UNKNOWN' }, 'listing Shopify webhook subscriptions failed');
    }
    for (const topic of SHOPIFY_WEBHOOK_TOPICS) {
      if (subscribed.has(topic)) continue;
      try {
        await this.#budgeted(connection, (signal) => createWebhookSubscription(settings, { accessToken }, { topic, callbackUrl }, { signal }));
        subscribed.add(topic);
      } catch (err) {
        this.log.warn({ shop, topic, code: isConnectorError(err) ? err.code : 'UNKNOWN' }, 'subscribing to a Shopify webhook topic failed');
      }
    }
    return SHOPIFY_WEBHOOK_TOPICS.filter((t) => subscribed.has(t));
  }

  async #connectionsOf(tenantId: string, provider: Provider): Promise<Array<ActorState<IntegrationContext>>> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM actors WHERE type = 'integration' AND tenant = $1 AND attrs->>'provider' = $2 ORDER BY id`,
      [tenantId, provider],
    );
    const states = await Promise.all(rows.map((r) => this.#actors.current(r.id, { tenant: tenantId })));
    return states.filter((s): s is ActorState<IntegrationContext> => s !== null);
  }

  #oauthProvider(provider: string): (typeof OAUTH_PROVIDERS)[number] {
    if (!(OAUTH_PROVIDERS as readonly string[]).includes(provider)) throw notFound('OAuth integration service', provider);
    return this.#provider(provider) as (typeof OAUTH_PROVIDERS)[number];
  }

  #provider(provider: string, o: { configured?: boolean } = {}): Provider {
    if (!(PROVIDERS as readonly string[]).includes(provider)) throw notFound('integration service', provider);
    const p = provider as Provider;
    if (o.configured !== false) {
      const missing = unconfiguredProviders(this.config.providers).find((u) => u.provider === p);
      if (missing) {
        throw new DomainError(DomainCode.ProviderNotConfigured, `${p} is not configured: set ${missing.missing.join(' and ')}`, { provider: p, missing: missing.missing });
      }
    }
    return p;
  }

  #signer(): StateSigner {
    const key = this.vault.ring.primary;
    if (!key) throw new DomainError(DomainCode.ProviderNotConfigured, 'no credentials key is configured: set CREDENTIALS_KEYS', { missing: ['CREDENTIALS_KEYS'] });
    return new StateSigner(key);
  }

  #redirectUri(p: Provider): string {
    return `${this.config.providers.publicBaseUrl}/api/integrations/${p}/callback`;
  }

  #shopifyApp(): shopify.ShopifyAppSettings {
    const s = this.config.providers.shopify;
    return { apiKey: s.apiKey!, apiSecret: s.apiSecret!, shopUrlTemplate: s.shopUrlTemplate };
  }

  #mlApp(): mercadolibre.MercadoLibreAppSettings {
    const m = this.config.providers.mercadolibre;
    return { clientId: m.clientId!, clientSecret: m.clientSecret!, apiBaseUrl: m.apiBaseUrl, ...(m.authBaseUrl ? { authBaseUrl: m.authBaseUrl } : {}) };
  }
}

const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * A vendor-supplied URL is a request the server will send: by the outbound rule of webhooks
 * (`WEBHOOK_ALLOW_PRIVATE_TARGETS`), it may not resolve to a private, loopback or link-local
 * address unless that is allowed, so a tenant cannot make Concord probe its own network.
 */
export async function assertPublicTarget(u: URL, allowPrivate: boolean, field: string): Promise<void> {
  if (allowPrivate) return;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = net.isIP(host) ? [host] : (await dns.lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw new DomainError(DomainCode.ValidationFailed, `${field} names a host that does not resolve (${host})`, { field });
  }
  const refused = addresses.find((a) => isPrivateAddress(a));
  if (refused !== undefined) {
    throw new DomainError(DomainCode.ValidationFailed, `${field} resolves to a private or loopback address (${refused}); set WEBHOOK_ALLOW_PRIVATE_TARGETS=true to allow it`, { field });
  }
}

export function parseBaseUrl(raw: string, field = 'baseUrl'): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DomainError(DomainCode.ValidationFailed, `${field} must be an absolute http(s) URL`, { field });
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password) throw new DomainError(DomainCode.ValidationFailed, `${field} must be an absolute http(s) URL without credentials`, { field });
  return u;
}

/** A vendor acts for itself; an operator or a service names the tenant. */
function tenantOf(principal: Principal, named: string | undefined): string {
  if (isPlatform(principal)) {
    if (!named) throw new DomainError(DomainCode.ValidationFailed, 'tenantId is required for operators', { field: 'tenantId' });
    return named;
  }
  if (principal.role !== 'vendor' || !principal.tenantId) throw new DomainError(DomainCode.Forbidden, 'only a vendor connects its own store');
  if (named !== undefined && named !== principal.tenantId) throw new DomainError(DomainCode.Forbidden, 'a vendor connects only its own store');
  return principal.tenantId;
}

function secretOf(g: { accessToken: string; refreshToken?: string | undefined }): CredentialSecret {
  return { access_token: g.accessToken, ...(g.refreshToken ? { refresh_token: g.refreshToken } : {}) };
}

function outputOf(info: CredentialInfo): RefreshOutput {
  return { credential: { tenantId: info.tenantId, service: info.service, connectionId: info.connectionId, version: info.version }, tokenExpiresAt: info.expiresAt, scopes: info.scopes };
}

function statusOf(id: string, value: unknown, c: IntegrationContext): ConnectionStatus {
  return {
    connectionId: id,
    provider: c.provider!,
    account: c.account!,
    state: stateOf(value),
    tokenExpiresAt: c.tokenExpiresAt,
    scopes: c.scopes,
    webhookSubscriptions: c.webhookSubscriptions,
    lastWebhook: c.lastWebhook,
    connectedAt: c.connectedAt,
    lastRefreshAt: c.lastRefreshAt,
    lastError: c.lastError,
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * A client certificate and its key, checked before anything is stored: both parse, the key is
 * the certificate's, the certificate is valid now. Answers its public facts (for status and
 * compliance: expiry, subject, issuer, fingerprint); a refusal is VALIDATION_FAILED naming the field.
 */
function checkCertificate(cr: { certPem: string; keyPem: string; caPem?: string; passphrase?: string }, now: number): { subject: string; issuer: string; notBefore: string; notAfter: string; fingerprint256: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(cr.certPem);
  } catch {
    throw new DomainError(DomainCode.ValidationFailed, 'certPem is not a PEM certificate', { field: 'certPem' });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: cr.keyPem, ...(cr.passphrase ? { passphrase: cr.passphrase } : {}) });
  } catch {
    throw new DomainError(DomainCode.ValidationFailed, 'keyPem is not a PEM private key (or the passphrase does not open it)', { field: 'keyPem' });
  }
  if (!cert.checkPrivateKey(key)) throw new DomainError(DomainCode.ValidationFailed, "keyPem is not the certificate's private key", { field: 'keyPem' });
  if (cr.caPem !== undefined) {
    try {
      new X509Certificate(cr.caPem);
    } catch {
      throw new DomainError(DomainCode.ValidationFailed, 'caPem is not a PEM certificate', { field: 'caPem' });
    }
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  // a certificate minted a moment ago may start a little ahead of our clock: five minutes of skew pass
  if (notAfter.getTime() <= now || notBefore.getTime() > now + 5 * 60_000) throw new DomainError(DomainCode.ValidationFailed, `the certificate is not valid now (valid ${notBefore.toISOString()} to ${notAfter.toISOString()})`, { field: 'certPem' });
  return { subject: cert.subject, issuer: cert.issuer, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString(), fingerprint256: cert.fingerprint256 };
}
