/**
 * A configurable REST API for the generic connector and the partner registry: API keys (header
 * or query), OAuth 2.0 client credentials (`POST /oauth/token`, Basic or form client
 * authentication, expiring tokens), mutual TLS, a health endpoint with controllable status and
 * latency, and a small resource store with cursor pages and ETag compare-and-set.
 *
 * @example
 * const api = await startGenericFake({ auth: { apiKey: { keys: ['k1'], header: 'x-api-key', query: 'api_key' } } });
 * await fetch(`${api.url}/v1/products`, { headers: { 'x-api-key': 'k1' } });
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { FakeClock, Faults, Listener, RateRecorder, readParams, type FakeServer, type FaultSpec } from './common.js';

export interface GenericFakeOptions {
  port?: number;
  host?: string;
  clock?: 'real' | 'manual';
  auth?: {
    /** Accepted keys, in `header` (default `x-api-key`) and/or the `query` parameter when named. */
    apiKey?: { keys: string[]; header?: string; query?: string };
    clientCredentials?: { clients: Array<{ id: string; secret: string; scopes?: string[] }>; tokenTtlSeconds?: number };
    /**
     * OAuth 2.0 authorization code (RFC 6749 §4.1) with PKCE (RFC 7636, S256 or plain) and
     * rotating refresh tokens: `GET /oauth/authorize` consents at once and redirects to the
     * registered redirect URI with `code` and `state`; `POST /oauth/token` takes
     * `authorization_code` (single use, 10 minutes) and `refresh_token` (the old one dies).
     */
    authorizationCode?: { clients: Array<{ id: string; secret: string; redirectUris: string[]; scopes?: string[] }>; tokenTtlSeconds?: number };
    /** Accept a verified client certificate as the caller's identity (needs `tls.ca`). */
    mtls?: boolean;
  };
  /**
   * HTTPS. With `ca`, a client certificate signed by it is required: the TLS handshake fails
   * without one (`rejectUnauthorized`, the default), or the request answers 401 when
   * `rejectUnauthorized: false`.
   */
  tls?: { key: string; cert: string; ca?: string; rejectUnauthorized?: boolean };
  /** A limit per caller the fake enforces itself (429 with `Retry-After`). */
  rateLimit?: { limit: number; windowMs: number };
}

export interface GenericRecord {
  id: string;
  version: number;
  updatedAt: string;
  [field: string]: unknown;
}

export interface GenericState {
  resources: Map<string, Map<string, GenericRecord>>;
  tokens: Map<string, { clientId: string; scope: string; expiresAt: number; revoked: boolean }>;
  /** Authorization codes handed out and not yet exchanged. */
  codes: Map<string, { clientId: string; redirectUri: string; scope: string; challenge?: string; method?: string; expiresAt: number }>;
  /** Live refresh tokens (a refresh rotates: the used one is deleted). */
  refreshTokens: Map<string, { clientId: string; scope: string }>;
  /** Token requests answered, by grant type. */
  grants: Record<string, number>;
  calls: Array<{ method: string; path: string; status: number; caller: string | undefined; at: number }>;
}

export interface GenericControl {
  readonly clock: FakeClock;
  /** Times of calls per caller (`key:<key>`, `client:<id>`, `cert:<CN>`). */
  readonly rate: RateRecorder;
  readonly faults: Faults;
  advance(ms: number): void;
  expireTokens(): void;
  revokeKey(key: string): void;
  revokeClient(clientId: string): void;
  /** What `GET /health` answers, and after how long. */
  setHealth(h: { status?: number; latencyMs?: number; body?: unknown }): void;
  seed(resource: string, records: Array<Record<string, unknown> & { id?: string }>): GenericRecord[];
  records(resource: string): GenericRecord[];
  fail(spec: FaultSpec & { status: number; retryAfterSeconds?: number }): void;
  hang(spec?: FaultSpec): void;
  clearFaults(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  setRateLimit(limit: GenericFakeOptions['rateLimit']): void;
}

export type GenericFake = FakeServer<GenericState, GenericControl>;

const problem = (c: Context, status: number, title: string, detail?: string, headers: Record<string, string> = {}) => {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  c.header('content-type', 'application/problem+json');
  return c.body(JSON.stringify({ type: 'about:blank', title, status, detail }), status as 400);
};

type Env = { Bindings: HttpBindings; Variables: { caller: string } };

export async function startGenericFake(options: GenericFakeOptions = {}): Promise<GenericFake> {
  const clock = new FakeClock(options.clock);
  const rate = new RateRecorder();
  const faults = new Faults();
  const auth = options.auth ?? {};
  const keys = new Set(auth.apiKey?.keys ?? []);
  const keyHeader = (auth.apiKey?.header ?? 'x-api-key').toLowerCase();
  const clients = new Map((auth.clientCredentials?.clients ?? []).map((c) => [c.id, c]));
  const codeClients = new Map((auth.authorizationCode?.clients ?? []).map((c) => [c.id, c]));
  const codeTokenTtl = (auth.authorizationCode?.tokenTtlSeconds ?? 3600) * 1000;
  const revokedClients = new Set<string>();
  const tokenTtl = (auth.clientCredentials?.tokenTtlSeconds ?? 3600) * 1000;
  let rateLimit = options.rateLimit;
  const windows = new Map<string, number[]>();
  let health = { status: 200, latencyMs: 0, body: undefined as unknown };
  const state: GenericState = { resources: new Map(), tokens: new Map(), calls: [], codes: new Map(), refreshTokens: new Map(), grants: {} };
  const resource = (name: string) => {
    let r = state.resources.get(name);
    if (!r) state.resources.set(name, (r = new Map()));
    return r;
  };
  const anyAuth = keys.size > 0 || clients.size > 0 || codeClients.size > 0 || auth.mtls === true;

  const app = new Hono<Env>();
  app.use('*', faults.middleware((status) => ({ type: 'about:blank', title: 'Induced failure', status })));

  app.get('/health', async (c) => {
    if (health.latencyMs > 0) await new Promise((r) => setTimeout(r, health.latencyMs));
    const body = health.body ?? { status: health.status < 400 ? 'ok' : 'down', time: clock.iso() };
    return c.json(body, health.status as 200);
  });

  app.get('/oauth/authorize', (c) => {
    if (codeClients.size === 0) return problem(c, 404, 'Not Found');
    const q = new URL(c.req.url).searchParams;
    const client = codeClients.get(q.get('client_id') ?? '');
    const redirectUri = q.get('redirect_uri') ?? '';
    // never redirect to a URI the client did not register (RFC 6749 §4.1.2.1): answer the error here
    if (!client || !client.redirectUris.includes(redirectUri)) return problem(c, 400, 'Bad Request', 'unknown client or redirect_uri');
    const back = new URL(redirectUri);
    const st = q.get('state');
    if (st !== null) back.searchParams.set('state', st);
    const scope = (q.get('scope') ?? '').split(' ').filter(Boolean);
    if (q.get('response_type') !== 'code') back.searchParams.set('error', 'unsupported_response_type');
    else if (client.scopes && scope.some((x) => !client.scopes!.includes(x))) back.searchParams.set('error', 'invalid_scope');
    else {
      const code = randomBytes(18).toString('base64url');
      const challenge = q.get('code_challenge') ?? undefined;
      state.codes.set(code, { clientId: client.id, redirectUri, scope: scope.join(' '), ...(challenge ? { challenge, method: q.get('code_challenge_method') ?? 'plain' } : {}), expiresAt: clock.now() + 600_000 });
      back.searchParams.set('code', code);
    }
    return c.redirect(back.toString(), 302);
  });

  app.post('/oauth/token', async (c) => {
    if (clients.size === 0 && codeClients.size === 0) return problem(c, 404, 'Not Found');
    const p = await readParams(c.req.raw);
    let id = p.client_id;
    let secret = p.client_secret;
    const basic = /^Basic (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (basic) {
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    c.header('cache-control', 'no-store');
    state.grants[p.grant_type ?? ''] = (state.grants[p.grant_type ?? ''] ?? 0) + 1;
    if (p.grant_type === 'authorization_code' || p.grant_type === 'refresh_token') {
      const cc = id ? codeClients.get(id) : undefined;
      if (!cc || cc.secret !== secret || revokedClients.has(cc.id)) return c.json({ error: 'invalid_client', error_description: 'Client authentication failed' }, 401);
      let scope: string;
      if (p.grant_type === 'authorization_code') {
        const code = state.codes.get(p.code ?? '');
        state.codes.delete(p.code ?? ''); // single use, even when refused
        if (!code || code.clientId !== cc.id || code.expiresAt <= clock.now() || code.redirectUri !== p.redirect_uri) return c.json({ error: 'invalid_grant', error_description: 'bad, used or expired code' }, 400);
        if (code.challenge) {
          const v = p.code_verifier ?? '';
          const derived = code.method === 'S256' ? createHash('sha256').update(v).digest('base64url') : v;
          if (derived !== code.challenge) return c.json({ error: 'invalid_grant', error_description: 'PKCE verification failed' }, 400);
        }
        scope = code.scope;
      } else {
        const rt = state.refreshTokens.get(p.refresh_token ?? '');
        if (!rt || rt.clientId !== cc.id) return c.json({ error: 'invalid_grant', error_description: 'bad or used refresh token' }, 400);
        state.refreshTokens.delete(p.refresh_token!); // rotation: the old one dies
        scope = rt.scope;
      }
      const token = randomBytes(24).toString('base64url');
      const refresh = randomBytes(24).toString('base64url');
      state.tokens.set(token, { clientId: cc.id, scope, expiresAt: clock.now() + codeTokenTtl, revoked: false });
      state.refreshTokens.set(refresh, { clientId: cc.id, scope });
      return c.json({ access_token: token, token_type: 'Bearer', expires_in: Math.round(codeTokenTtl / 1000), refresh_token: refresh, ...(scope ? { scope } : {}) });
    }
    const client = id ? clients.get(id) : undefined;
    if (!client || client.secret !== secret || revokedClients.has(client.id)) {
      if (basic) c.header('www-authenticate', 'Basic realm="fake"');
      return c.json({ error: 'invalid_client', error_description: 'Client authentication failed' }, 401);
    }
    if (p.grant_type !== 'client_credentials') return c.json({ error: 'unsupported_grant_type', error_description: 'client_credentials, authorization_code or refresh_token' }, 400);
    const requested = (p.scope ?? '').split(' ').filter(Boolean);
    const allowed = client.scopes ?? requested;
    if (requested.some((s) => !allowed.includes(s))) return c.json({ error: 'invalid_scope', error_description: 'scope not allowed for this client' }, 400);
    const scope = (requested.length > 0 ? requested : allowed).join(' ');
    const token = randomBytes(24).toString('base64url');
    state.tokens.set(token, { clientId: client.id, scope, expiresAt: clock.now() + tokenTtl, revoked: false });
    return c.json({ access_token: token, token_type: 'Bearer', expires_in: Math.round(tokenTtl / 1000), ...(scope ? { scope } : {}) });
  });

  const peer = (c: Context<Env>): { cn: string; fingerprint256: string } | undefined => {
    const socket = c.env.incoming?.socket as TLSSocket | undefined;
    if (!socket || typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
    const raw = socket.getPeerCertificate(false)?.raw;
    if (!raw) return undefined;
    const x = new X509Certificate(raw);
    return { cn: /CN=([^\n,]+)/.exec(x.subject)?.[1] ?? x.subject, fingerprint256: x.fingerprint256 };
  };

  const api = new Hono<Env>();
  api.use('*', async (c, next) => {
    const now = Date.now();
    const url = new URL(c.req.url);
    let caller: string | undefined;
    let why = 'missing credentials';
    const headerKey = c.req.header(keyHeader);
    const queryKey = auth.apiKey?.query ? url.searchParams.get(auth.apiKey.query) : null;
    const bearer = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const cert = auth.mtls ? peer(c) : undefined;
    if (headerKey !== undefined || queryKey !== null) {
      const k = headerKey ?? queryKey!;
      if (keys.has(k)) caller = `key:${createHash('sha256').update(k).digest('hex').slice(0, 12)}`;
      else why = 'invalid API key';
    } else if (bearer) {
      const t = state.tokens.get(bearer);
      if (t && !t.revoked && t.expiresAt > clock.now()) caller = `client:${t.clientId}`;
      else why = t && t.expiresAt <= clock.now() ? 'token expired' : 'invalid token';
    } else if (cert) {
      caller = `cert:${cert.cn}`;
    } else if (!anyAuth) caller = 'anonymous';
    if (caller) rate.record(caller, now);
    const log = (status: number) => state.calls.push({ method: c.req.method, path: url.pathname, status, caller, at: now });
    if (!caller) {
      log(401);
      return problem(c, 401, 'Unauthorized', why, { 'www-authenticate': bearer ? 'Bearer error="invalid_token"' : 'Bearer' });
    }
    if (rateLimit) {
      const w = windows.get(caller) ?? [];
      while (w.length > 0 && w[0]! <= now - rateLimit.windowMs) w.shift();
      windows.set(caller, w);
      if (w.length >= rateLimit.limit) {
        log(429);
        return problem(c, 429, 'Too Many Requests', undefined, { 'retry-after': String(Math.max(1, Math.ceil((w[0]! + rateLimit.windowMs - now) / 1000))) });
      }
      w.push(now);
    }
    c.set('caller', caller);
    await next();
    log(c.res.status);
  });

  api.get('/whoami', (c) => {
    const caller = c.get('caller');
    const cert = peer(c);
    return c.json({ caller, method: caller.split(':')[0], certificate: cert ?? null });
  });

  api.get('/:resource', (c) => {
    const q = new URL(c.req.url).searchParams;
    const limit = Math.min(Number(q.get('limit') ?? 50), 500);
    const list = [...resource(c.req.param('resource')).values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const after = q.get('cursor') ? Buffer.from(q.get('cursor')!, 'base64url').toString() : undefined;
    const since = q.get('updated_since');
    const rest = list.filter((r) => (after === undefined || r.id > after) && (!since || r.updatedAt > since));
    const page = rest.slice(0, limit);
    const more = rest.length > page.length;
    return c.json({ data: page, next_cursor: more ? Buffer.from(page.at(-1)!.id).toString('base64url') : null });
  });

  api.post('/:resource', async (c) => {
    const body = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    if (!body || typeof body !== 'object') return problem(c, 400, 'Bad Request', 'body must be a JSON object');
    const id = typeof body.id === 'string' ? body.id : randomBytes(8).toString('hex');
    const store = resource(c.req.param('resource'));
    if (store.has(id)) return problem(c, 409, 'Conflict', `${id} exists`);
    const rec: GenericRecord = { ...body, id, version: 1, updatedAt: clock.iso() };
    store.set(id, rec);
    c.header('etag', `"${rec.version}"`);
    return c.json(rec, 201);
  });

  api.get('/:resource/:id', (c) => {
    const rec = resource(c.req.param('resource')).get(c.req.param('id'));
    if (!rec) return problem(c, 404, 'Not Found');
    c.header('etag', `"${rec.version}"`);
    return c.json(rec);
  });

  const write = (merge: boolean) => async (c: Context<Env>) => {
    const store = resource(c.req.param('resource')!);
    const rec = store.get(c.req.param('id')!);
    if (!rec) return problem(c, 404, 'Not Found');
    const ifMatch = c.req.header('if-match');
    if (ifMatch && ifMatch !== `"${rec.version}"` && ifMatch !== '*') return problem(c, 412, 'Precondition Failed', `current version is ${rec.version}`);
    const body = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    if (!body || typeof body !== 'object') return problem(c, 400, 'Bad Request', 'body must be a JSON object');
    const next: GenericRecord = { ...(merge ? rec : {}), ...body, id: rec.id, version: rec.version + 1, updatedAt: clock.iso() };
    store.set(rec.id, next);
    c.header('etag', `"${next.version}"`);
    return c.json(next);
  };
  api.put('/:resource/:id', write(false));
  api.patch('/:resource/:id', write(true));
  api.delete('/:resource/:id', (c) => (resource(c.req.param('resource')).delete(c.req.param('id')) ? c.body(null, 204) : problem(c, 404, 'Not Found')));

  app.route('/v1', api);
  app.all('*', (c) => problem(c, 404, 'Not Found'));

  const tls = options.tls
    ? { key: options.tls.key, cert: options.tls.cert, ...(options.tls.ca ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: options.tls.rejectUnauthorized ?? true } : {}) }
    : undefined;
  const listener = await Listener.start(app, { port: options.port, host: options.host, tls });
  listener.onDown = () => faults.releaseHanging();

  const control: GenericControl = {
    clock,
    rate,
    faults,
    advance: (ms) => clock.advance(ms),
    expireTokens() {
      for (const t of state.tokens.values()) t.expiresAt = clock.now() - 1;
    },
    revokeKey: (k) => void keys.delete(k),
    revokeClient(id) {
      revokedClients.add(id);
      for (const t of state.tokens.values()) if (t.clientId === id) t.revoked = true;
    },
    setHealth(h) {
      health = { status: h.status ?? health.status, latencyMs: h.latencyMs ?? health.latencyMs, body: 'body' in h ? h.body : health.body };
    },
    seed(name, records) {
      const store = resource(name);
      return records.map((r) => {
        const rec: GenericRecord = { ...r, id: r.id ?? randomBytes(8).toString('hex'), version: 1, updatedAt: clock.iso() };
        store.set(rec.id, rec);
        return rec;
      });
    },
    records: (name) => [...resource(name).values()],
    fail: (spec) => faults.fail(spec),
    hang: (spec) => faults.hang(spec),
    clearFaults: () => faults.clear(),
    down: () => listener.down(),
    up: () => listener.up(),
    setRateLimit(limit) {
      rateLimit = limit;
      windows.clear();
    },
  };

  return {
    get url() {
      return listener.url;
    },
    get port() {
      return listener.port;
    },
    state,
    control,
    async close() {
      faults.clear();
      await listener.down();
    },
  };
}
