/**
 * What every fake provider shares: a listener that can go down and come back on the same port,
 * a clock tests can move, a recorder of request times, and induced faults (5xx, hangs).
 */
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';

/** Anything with a fetch handler (a Hono app of any environment). */
export interface FetchApp {
  fetch: (request: Request, env: never) => Response | Promise<Response>;
}

/** Every fake answers with this shape. */
export interface FakeServer<State, Control> {
  /** `http://127.0.0.1:PORT` (or `https://...` in TLS mode), without a trailing slash. */
  readonly url: string;
  readonly port: number;
  /** The fake's live data, for assertions (mutate through `control`, not directly). */
  readonly state: State;
  readonly control: Control;
  close(): Promise<void>;
}

/**
 * The fake's notion of now. Real time plus an offset by default; `manual` stands still except
 * through `advance`, so token expiry and throttle restore can be driven without waiting.
 */
export class FakeClock {
  #offset = 0;
  readonly #frozenAt: number | undefined;
  constructor(mode: 'real' | 'manual' = 'real', start = Date.now()) {
    this.#frozenAt = mode === 'manual' ? start : undefined;
  }
  now(): number {
    return (this.#frozenAt ?? Date.now()) + this.#offset;
  }
  iso(): string {
    return new Date(this.now()).toISOString();
  }
  advance(ms: number): void {
    this.#offset += ms;
  }
}

/** A breach of a token-bucket shape found in recorded request times. */
export interface RateViolation {
  /** Requests in the offending window. */
  count: number;
  /** What the bucket allowed in that window (burst + rate * duration). */
  allowed: number;
  from: number;
  to: number;
}

/**
 * Wall-clock times (ms) of every API call, per key (a shop, a client id). Wall clock, not the
 * fake clock: the limits it checks are what real callers did in real time.
 */
export class RateRecorder {
  readonly #calls = new Map<string, number[]>();

  record(key: string, at = Date.now()): void {
    let list = this.#calls.get(key);
    if (!list) this.#calls.set(key, (list = []));
    list.push(at);
  }

  times(key: string): readonly number[] {
    return this.#calls.get(key) ?? [];
  }

  count(key: string): number {
    return this.times(key).length;
  }

  keys(): string[] {
    return [...this.#calls.keys()];
  }

  /** The most requests seen in any window of `windowMs` (sliding, inclusive of both ends). */
  maxInWindow(key: string, windowMs: number): number {
    const t = this.times(key);
    let best = 0;
    for (let i = 0, j = 0; j < t.length; j++) {
      while (t[j]! - t[i]! > windowMs) i++;
      best = Math.max(best, j - i + 1);
    }
    return best;
  }

  /**
   * The worst window that a token bucket of `burst` refilled at `perSecond` would not have
   * allowed, or null when every window conforms: for all i <= j,
   * `j - i + 1 <= burst + perSecond * (t[j] - t[i]) / 1000 + tolerance`. Checked in one pass by
   * keeping the minimum of `i - rate * t[i]` seen so far.
   */
  bucketViolation(key: string, limit: { perSecond: number; burst: number; tolerance?: number }): RateViolation | null {
    const t = this.times(key);
    const rate = limit.perSecond / 1000;
    const slack = limit.tolerance ?? 0;
    let minIdx = 0;
    let worst: RateViolation | null = null;
    let worstExcess = 0;
    for (let j = 0; j < t.length; j++) {
      if (j - rate * t[j]! < minIdx - rate * t[minIdx]!) minIdx = j;
      // the window that starts at the best i for this j
      const count = j - minIdx + 1;
      const allowed = limit.burst + rate * (t[j]! - t[minIdx]!);
      const excess = count - allowed - slack;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = { count, allowed, from: t[minIdx]!, to: t[j]! };
      }
    }
    return worst;
  }

  clear(key?: string): void {
    if (key === undefined) this.#calls.clear();
    else this.#calls.delete(key);
  }
}

/** An induced failure: the next `count` matching requests, or every one for `forMs`. */
export interface FaultSpec {
  count?: number;
  forMs?: number;
  /** Only requests whose path contains this string (default: every request). */
  path?: string;
}

interface ActiveFault extends FaultSpec {
  kind: 'fail' | 'hang';
  status?: number;
  body?: unknown;
  retryAfter?: number;
  until?: number;
}

/**
 * Induced faults, checked before any route. `fail` answers a status; `hang` never answers (the
 * socket stays open until the client gives up or the fake closes).
 */
export class Faults {
  #active: ActiveFault[] = [];
  readonly #hanging = new Set<() => void>();
  /** Requests that hit a fault, by kind: tests assert "the fake saw only the probe". */
  readonly hits = { fail: 0, hang: 0 };

  fail(spec: FaultSpec & { status: number; body?: unknown; retryAfterSeconds?: number }): void {
    this.#add({ ...spec, kind: 'fail', retryAfter: spec.retryAfterSeconds });
  }

  hang(spec: FaultSpec = {}): void {
    this.#add({ ...spec, kind: 'hang' });
  }

  clear(): void {
    this.#active = [];
    this.releaseHanging();
  }

  /** Lets every hung request end (with a 503), as on close. */
  releaseHanging(): void {
    for (const release of this.#hanging) release();
    this.#hanging.clear();
  }

  #add(f: ActiveFault): void {
    if (f.count === undefined && f.forMs === undefined) f.count = Number.POSITIVE_INFINITY;
    if (f.forMs !== undefined) f.until = Date.now() + f.forMs;
    this.#active.push(f);
  }

  #take(path: string): ActiveFault | undefined {
    const now = Date.now();
    this.#active = this.#active.filter((f) => (f.count === undefined || f.count > 0) && (f.until === undefined || f.until > now));
    const f = this.#active.find((x) => x.path === undefined || path.includes(x.path));
    if (f && f.count !== undefined) f.count--;
    return f;
  }

  /** Hono middleware; `body(status)` gives the provider's error body for a failed request. */
  middleware(body: (status: number) => unknown): MiddlewareHandler {
    return async (c, next) => {
      const f = this.#take(new URL(c.req.url).pathname);
      if (!f) return next();
      if (f.kind === 'hang') {
        this.hits.hang++;
        return new Promise<Response>((resolve) => {
          this.#hanging.add(() => resolve(new Response('fake closed', { status: 503 })));
        });
      }
      this.hits.fail++;
      const status = f.status ?? 500;
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      if (f.retryAfter !== undefined) headers['retry-after'] = String(f.retryAfter);
      return new Response(JSON.stringify(f.body ?? body(status)), { status, headers });
    };
  }
}

export interface ListenOptions {
  port?: number;
  host?: string;
  /** HTTPS (and mutual TLS when `requestCert` is set) instead of plain HTTP. */
  tls?: HttpsServerOptions;
}

/**
 * A Hono app on a real port that can be taken down (connections refused) and brought back on
 * the same port, as a provider outage looks to a client.
 */
export class Listener {
  #server: Server | undefined;
  #port: number;
  readonly host: string;
  readonly #app: FetchApp;
  readonly #tls: HttpsServerOptions | undefined;
  /** Called on down/close so hung requests end with their sockets. */
  onDown: () => void = () => undefined;

  private constructor(app: FetchApp, o: ListenOptions) {
    this.#app = app;
    this.#port = o.port ?? 0;
    this.host = o.host ?? '127.0.0.1';
    this.#tls = o.tls;
  }

  static async start(app: FetchApp, o: ListenOptions = {}): Promise<Listener> {
    const l = new Listener(app, o);
    await l.up();
    return l;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `${this.#tls ? 'https' : 'http'}://${this.host}:${this.#port}`;
  }

  get isUp(): boolean {
    return this.#server !== undefined;
  }

  async up(): Promise<void> {
    if (this.#server) return;
    const base = { fetch: this.#app.fetch as (request: Request) => Response | Promise<Response>, port: this.#port, hostname: this.host };
    await new Promise<void>((resolve, reject) => {
      const server = (
        this.#tls ? serve({ ...base, createServer: createHttpsServer, serverOptions: this.#tls }, () => resolve()) : serve(base, () => resolve())
      ) as Server;
      server.once('error', reject);
      this.#server = server;
    });
    this.#port = (this.#server!.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.onDown();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

/** A `Retry-After` of whole seconds, never below 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Reads a form-urlencoded or JSON body into a string map (what OAuth token endpoints accept). */
export async function readParams(req: Request): Promise<Record<string, string>> {
  const type = req.headers.get('content-type') ?? '';
  const text = await req.text();
  if (type.includes('application/json')) {
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}
