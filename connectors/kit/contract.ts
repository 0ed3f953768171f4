import { classify } from './classify.js';
import { ConnectorCode, ConnectorError } from './errors.js';

/**
 * The connector contract: what a provider module (`connectors/<provider>/index.ts`) exports,
 * built with `defineConnector`. A provider folder has the same files everywhere:
 *
 * ```
 * connectors/<provider>/
 *   client.ts    the API calls: (credentials, input, ctx) => Promise<output>, honouring ctx.signal
 *   auth.ts      the authentication pattern's details (token refresh, request signing)
 *   webhooks.ts  verify(request, secret, now) and parse(request): pure, over raw bytes and headers
 *   mapping.ts   provider records <-> ours
 *   errors.ts    classify(err): the provider's failures to ConnectorError (falls back to the kit's)
 *   index.ts     export default defineConnector({ id, auth, calls, webhooks, mapping, classify })
 * ```
 */

/** How a provider authenticates us. */
export type AuthPattern = 'api_key' | 'oauth2' | 'client_credentials' | 'service_account' | 'certificate';

/** The credentials each pattern hands to a call (stored encrypted; decrypted just before the call). */
export interface CredentialsByPattern {
  api_key: { apiKey: string };
  oauth2: { accessToken: string; refreshToken?: string; expiresAt?: string; scopes?: string[] };
  /** OAuth 2.0 client credentials (a service account of a REST API): the connector fetches and caches the access token. */
  client_credentials: { clientId: string; clientSecret: string; scopes?: string[] };
  service_account: { clientEmail: string; privateKey: string; scopes?: string[] };
  /** Mutual TLS: the client certificate and key, and the CA that signed the server's certificate when it is private. */
  certificate: { certificatePem: string; privateKeyPem: string; passphrase?: string; caPem?: string };
}
export type CredentialsOf<A extends AuthPattern> = CredentialsByPattern[A];

/** What the runtime hands every call. */
export interface CallContext {
  /** Aborted when the runtime gives up on the call (its deadline, or shutdown): stop at once. */
  signal: AbortSignal;
  /** Stable across the retries of one call: send it where the provider dedupes (Idempotency-Key). */
  idempotencyKey: string;
}

/** One API call of a provider: typed input and output, credentials first. */
export type ConnectorCall<C, I, O> = (credentials: C, input: I, ctx: CallContext) => Promise<O>;

/** A webhook request as received: the raw body (signatures are over bytes) and lowercased headers. */
export interface WebhookRequest {
  body: Uint8Array;
  headers: Readonly<Record<string, string | undefined>>;
  /** The query parameters of the callback URL (MercadoLibre's unsigned notifications carry a shared `secret` there). */
  query?: Readonly<Record<string, string | undefined>>;
}

export type WebhookVerification = { ok: true } | { ok: false; reason: string };

/** Pure functions over a received webhook; no I/O, the time is passed in. */
export interface ConnectorWebhooks<E> {
  /** Checks the signature (and its freshness against `now`, epoch ms). */
  verify(request: WebhookRequest, secret: string, now: number): WebhookVerification;
  /** The provider's events in the request, as typed records (call after `verify`). */
  parse(request: WebhookRequest): E[];
}

/** Between one provider record and ours. */
export interface RecordMapping<P, O> {
  fromProvider(record: P): O;
  toProvider?(record: O): P;
}

/** Any mapping, whatever its record types (`toProvider` returns the provider's record, so `RecordMapping<never, unknown>` would refuse every one that has it). */
type AnyMapping = { fromProvider(record: never): unknown; toProvider?(record: never): unknown };

/** A provider module. `Calls` keeps each call's own input and output types. */
export interface Connector<
  A extends AuthPattern = AuthPattern,
  Calls extends Record<string, ConnectorCall<CredentialsOf<A>, never, unknown>> = Record<string, ConnectorCall<CredentialsOf<A>, never, unknown>>,
  E = unknown,
  M extends Record<string, AnyMapping> = Record<string, AnyMapping>,
> {
  /** Lowercase, the name calls are addressed by (`callConnector('<id>', '<operation>', input)`). */
  readonly id: string;
  readonly auth: A;
  readonly calls: Calls;
  readonly webhooks?: ConnectorWebhooks<E>;
  readonly mapping: M;
  /**
   * The provider's failures to a ConnectorError: read its error bodies and codes, then fall back
   * to the kit's `classify` (./classify.ts) for HTTP statuses, network errors and the rest.
   */
  classify(err: unknown): ConnectorError;
}

/** Any provider's calls, whatever its credentials (for the helpers below). */
type AnyCalls = Record<string, (credentials: never, input: never, ctx: CallContext) => Promise<unknown>>;

/** The input type of a provider's call: `InputOf<typeof shopify, 'getOrder'>`. */
export type InputOf<C extends { calls: AnyCalls }, Op extends keyof C['calls']> = Parameters<C['calls'][Op]>[1];
/** The output type of a provider's call. */
export type OutputOf<C extends { calls: AnyCalls }, Op extends keyof C['calls']> = Awaited<ReturnType<C['calls'][Op]>>;

const ID = /^[a-z][a-z0-9_-]{0,62}$/;

/**
 * Checks and freezes a provider module. Types only otherwise: it exists so that a provider's
 * calls keep their own input and output types while the runtime sees the common shape.
 *
 * @example
 * export default defineConnector({
 *   id: 'shopify', auth: 'oauth2',
 *   calls: { getOrder: (creds, input: { id: string }, ctx) => client.getOrder(creds, input.id, ctx) },
 *   mapping: { order: { fromProvider: toOrder } },
 *   classify: classifyShopify,
 * });
 */
export function defineConnector<
  A extends AuthPattern,
  Calls extends Record<string, ConnectorCall<CredentialsOf<A>, never, unknown>>,
  E = unknown,
  M extends Record<string, AnyMapping> = Record<string, never>,
>(def: Connector<A, Calls, E, M>): Connector<A, Calls, E, M> {
  if (!ID.test(def.id)) throw new TypeError(`connector id '${def.id}' must be lowercase letters, digits, '-' or '_'`);
  if (Object.keys(def.calls).length === 0) throw new TypeError(`connector '${def.id}' has no calls`);
  return Object.freeze({ ...def });
}

/** A connector operation as the runtime's effect workers call it; the outcome returns to the actor as an event. */
export type ConnectorInvoker = (operation: string, input: unknown, ctx: CallContext) => Promise<unknown>;

/**
 * Binds a provider module to the credentials of the account it acts for, as the invoker the
 * runtime registers under the connector's id. Every failure leaves through the connector's own
 * `classify`, so the runtime gets a `ConnectorError`.
 */
export function invokerOf<A extends AuthPattern>(
  connector: Connector<A>,
  credentials: (ctx: CallContext) => Promise<CredentialsOf<A>>,
): ConnectorInvoker {
  return async (operation, input, ctx) => {
    const call = Object.hasOwn(connector.calls, operation) ? connector.calls[operation] : undefined;
    if (!call) throw new ConnectorError(ConnectorCode.Validation, `connector '${connector.id}' has no operation '${operation}'`);
    try {
      return await call(await credentials(ctx), input as never, ctx);
    } catch (err) {
      let failure: ConnectorError;
      try {
        failure = connector.classify(err);
      } catch {
        failure = classify(err); // a provider classify that itself throws falls back to the kit's
      }
      throw failure;
    }
  };
}
