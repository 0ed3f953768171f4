/**
 * The generic REST connector's calls: any request under the base URL, cursor-paged lists, get,
 * update with `If-Match` compare-and-set (412 -> CONFLICT), and the configured health check.
 * Credentials are added per the authentication pattern (./auth.ts).
 */
import type { CallContext, CredentialsByPattern } from '../kit/contract.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import { ClientCredentialsCache, type Authenticated, type GenericAuth, type GenericCredentials } from './auth.js';
import { classifyGeneric, classifyGenericAnswer } from './errors.js';
import { send, type Sent } from './transport.js';

export interface GenericSettings<A extends GenericAuth = GenericAuth> {
  /** `https://api.example.com/v1` (paths are appended). */
  baseUrl: string;
  auth: A;
  /** What `health` checks (default `{ path: '/health', expectStatus: 200 }`). */
  healthCheck?: { path: string; expectStatus: number };
  /** How lists page (defaults: `limit`, `cursor`, items in `data`, next cursor in `next_cursor`). */
  pagination?: { limitParam?: string; cursorParam?: string; itemsField?: string; cursorField?: string };
  /** The CA that signed the server's certificate, when it is private (PEM). */
  caPem?: string;
  /** Names the connector in messages (default `generic`). */
  name?: string;
}

export interface RequestInput {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Under the base URL: `/products/42`. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer<T = unknown> {
  status: number;
  etag: string | undefined;
  body: T;
}

/** A configured REST API: binds settings, the token cache and the calls. */
export class GenericClient<A extends GenericAuth> {
  readonly #tokens: ClientCredentialsCache;
  constructor(
    readonly settings: GenericSettings<A>,
    o: { now?: () => number } = {},
  ) {
    this.#tokens = new ClientCredentialsCache(o.now);
  }

  get #name(): string {
    return this.settings.name ?? 'generic';
  }

  async #authenticate(creds: GenericCredentials<A>, signal: AbortSignal): Promise<Authenticated> {
    const a = this.settings.auth as GenericAuth;
    switch (a.pattern) {
      case 'api_key': {
        const { apiKey } = creds as CredentialsByPattern['api_key'];
        return a.in === 'header' ? { headers: { [a.name]: apiKey }, query: {} } : { headers: {}, query: { [a.name]: apiKey } };
      }
      case 'client_credentials': {
        const token = await this.#tokens.token({ ca: this.settings.caPem }, a, creds as CredentialsByPattern['client_credentials'], signal);
        return { headers: { authorization: `Bearer ${token}` }, query: {} };
      }
      case 'oauth2':
        return { headers: { authorization: `Bearer ${(creds as CredentialsByPattern['oauth2']).accessToken}` }, query: {} };
      case 'certificate': {
        const c = creds as CredentialsByPattern['certificate'];
        return { headers: {}, query: {}, tls: { cert: c.certificatePem, key: c.privateKeyPem, ...(c.passphrase ? { passphrase: c.passphrase } : {}), ...(c.caPem ? { ca: c.caPem } : {}) } };
      }
    }
  }

  async #once(creds: GenericCredentials<A>, input: RequestInput, signal: AbortSignal): Promise<Sent> {
    const auth = await this.#authenticate(creds, signal);
    const url = new URL(`${this.settings.baseUrl.replace(/\/+$/, '')}${input.path.startsWith('/') ? '' : '/'}${input.path}`);
    for (const [k, v] of Object.entries({ ...input.query, ...auth.query })) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = input.body === undefined ? undefined : JSON.stringify(input.body);
    return send(
      { ca: this.settings.caPem },
      {
        method: input.method ?? 'GET',
        url,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...input.headers, ...auth.headers },
        ...(body === undefined ? {} : { body }),
        signal,
        ...(auth.tls ? { tls: auth.tls } : {}),
      },
    );
  }

  /** Any request under the base URL; a non-2xx answer throws a classified ConnectorError. */
  async request<T = unknown>(creds: GenericCredentials<A>, input: RequestInput, ctx: Pick<CallContext, 'signal'>): Promise<Answer<T>> {
    const auth = this.settings.auth as GenericAuth;
    try {
      let res = await this.#once(creds, input, ctx.signal);
      if (res.status === 401 && auth.pattern === 'client_credentials') {
        // a cached token the server no longer takes (expired early, revoked): one fresh token, once
        this.#tokens.forget((creds as CredentialsByPattern['client_credentials']).clientId);
        res = await this.#once(creds, input, ctx.signal);
      }
      if (res.status < 200 || res.status >= 300) {
        throw classifyGenericAnswer(res.status, res.headers, res.json(), { context: this.#name, canRefresh: auth.pattern === 'oauth2' && (creds as CredentialsByPattern['oauth2']).refreshToken !== undefined });
      }
      const etag = res.headers.etag;
      return { status: res.status, etag: Array.isArray(etag) ? etag[0] : etag, body: res.json() as T };
    } catch (err) {
      throw err instanceof ConnectorError ? err : classifyGeneric(err);
    }
  }

  /** One page of a collection: `{ items, nextCursor }` (null at the end). */
  async list<T = Record<string, unknown>>(creds: GenericCredentials<A>, input: { resource: string; limit?: number; cursor?: string | null; query?: Record<string, string> }, ctx: Pick<CallContext, 'signal'>): Promise<{ items: T[]; nextCursor: string | null }> {
    const p = this.settings.pagination ?? {};
    const r = await this.request<Record<string, unknown>>(
      creds,
      { path: `/${input.resource}`, query: { ...input.query, [p.limitParam ?? 'limit']: input.limit, ...(input.cursor ? { [p.cursorParam ?? 'cursor']: input.cursor } : {}) } },
      ctx,
    );
    const items = r.body?.[p.itemsField ?? 'data'];
    if (!Array.isArray(items)) throw new ConnectorError(ConnectorCode.Unknown, `${this.#name}: list answer without '${p.itemsField ?? 'data'}'`, { status: r.status, retryable: false });
    const next = r.body[p.cursorField ?? 'next_cursor'];
    return { items: items as T[], nextCursor: typeof next === 'string' && next !== '' ? next : null };
  }

  async get<T = Record<string, unknown>>(creds: GenericCredentials<A>, input: { resource: string; id: string }, ctx: Pick<CallContext, 'signal'>): Promise<Answer<T>> {
    return this.request<T>(creds, { path: `/${input.resource}/${encodeURIComponent(input.id)}` }, ctx);
  }

  /** Replaces (PUT) or merges (PATCH) a record; with `ifMatch`, only if its ETag still matches (412 -> CONFLICT). */
  async update<T = Record<string, unknown>>(
    creds: GenericCredentials<A>,
    input: { resource: string; id: string; body: Record<string, unknown>; ifMatch?: string; merge?: boolean },
    ctx: Pick<CallContext, 'signal'>,
  ): Promise<Answer<T>> {
    return this.request<T>(
      creds,
      { method: input.merge ? 'PATCH' : 'PUT', path: `/${input.resource}/${encodeURIComponent(input.id)}`, body: input.body, ...(input.ifMatch ? { headers: { 'if-match': input.ifMatch } } : {}) },
      ctx,
    );
  }

  /** The configured health check: `ok` when the status is the expected one; a failure to connect throws. */
  async health(creds: GenericCredentials<A>, ctx: Pick<CallContext, 'signal'>): Promise<{ ok: boolean; status: number; latencyMs: number }> {
    const check = this.settings.healthCheck ?? { path: '/health', expectStatus: 200 };
    const started = performance.now();
    try {
      const res = await this.#once(creds, { path: check.path }, ctx.signal);
      return { ok: res.status === check.expectStatus, status: res.status, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      throw classifyGeneric(err);
    }
  }
}
