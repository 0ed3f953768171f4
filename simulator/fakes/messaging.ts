/**
 * What the messaging fakes (SendGrid, Mailgun, Slack, Teams, Twilio, Salesforce) share: a Hono
 * app on a real port that can go down and come back, induced faults, a per-credential request
 * limit answered in the provider's own 429 shape, and a record of every request received.
 */
import { Hono, type Context } from 'hono';
import { Faults, Listener, RateRecorder, type FakeServer, type FaultSpec } from './common.js';

/** One request the fake received, as received. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Raw body text. */
  body: string;
  status: number;
  at: number;
}

export interface MessagingState {
  received: Received[];
}

export interface MessagingControl {
  readonly faults: Faults;
  readonly rate: RateRecorder;
  fail(spec: FaultSpec & { status: number; body?: unknown; retryAfterSeconds?: number }): void;
  hang(spec?: FaultSpec): void;
  clearFaults(): void;
  /** Refuse this credential from now on (a revoked key or token). */
  revoke(credential: string): void;
  /** At most `limit` requests per credential in `windowMs` (then the provider's 429). */
  setRateLimit(limit: { limit: number; windowMs: number } | undefined): void;
  down(): Promise<void>;
  up(): Promise<void>;
}

export type MessagingFake<S extends MessagingState = MessagingState> = FakeServer<S, MessagingControl>;

export interface Limiter {
  revoked: Set<string>;
  /** Milliseconds until the window frees a slot, or 0 when the request may go. */
  check(credential: string): number;
}

/** Builds the shared parts; `define` adds the provider's routes. */
export async function startMessagingFake<S extends MessagingState>(
  o: { port?: number; host?: string; faultBody: (status: number) => unknown },
  state: S,
  define: (app: Hono, limiter: Limiter) => void,
): Promise<MessagingFake<S>> {
  const faults = new Faults();
  const rate = new RateRecorder();
  const revoked = new Set<string>();
  let rateLimit: { limit: number; windowMs: number } | undefined;
  const limiter: Limiter = {
    revoked,
    check(credential) {
      rate.record(credential);
      if (!rateLimit) return 0;
      const now = Date.now();
      const recent = rate.times(credential).filter((t) => t > now - rateLimit!.windowMs);
      if (recent.length <= rateLimit.limit) return 0;
      return Math.max(1, recent[recent.length - 1 - rateLimit.limit]! + rateLimit.windowMs - now);
    },
  };
  const app = new Hono();
  app.use('*', async (c, next) => {
    const body = await c.req.raw.clone().text();
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => (headers[k] = v));
    const entry: Received = { method: c.req.method, path: new URL(c.req.url).pathname, headers, body, status: 0, at: Date.now() };
    state.received.push(entry);
    await next();
    entry.status = c.res.status;
  });
  app.use('*', faults.middleware(o.faultBody));
  define(app, limiter);
  const listener = await Listener.start(app, { port: o.port, host: o.host });
  listener.onDown = () => faults.releaseHanging();
  return {
    get url() {
      return listener.url;
    },
    get port() {
      return listener.port;
    },
    state,
    control: {
      faults,
      rate,
      fail: (spec) => faults.fail(spec),
      hang: (spec) => faults.hang(spec),
      clearFaults: () => faults.clear(),
      revoke: (credential) => revoked.add(credential),
      setRateLimit: (limit) => (rateLimit = limit),
      down: () => listener.down(),
      up: () => listener.up(),
    },
    async close() {
      faults.releaseHanging();
      await listener.down();
    },
  };
}

/** The credential of an HTTP Basic header: `[user, password]`, or undefined. */
export function basicAuth(c: Context): [string, string] | undefined {
  const m = /^Basic (.+)$/i.exec(c.req.header('authorization') ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : [decoded.slice(0, i), decoded.slice(i + 1)];
}

export const bearer = (c: Context): string | undefined => /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];

export const json = (c: Context, status: number, body: unknown, headers: Record<string, string> = {}) => {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.body(JSON.stringify(body), status as 200, { 'content-type': 'application/json; charset=utf-8' });
};

export const text = (c: Context, status: number, body: string, headers: Record<string, string> = {}) => {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.body(body, status as 200, { 'content-type': 'text/plain; charset=utf-8' });
};
