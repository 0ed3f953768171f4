import { ManualClock } from '../../runtime/clock.js';
import type { Database } from '../../runtime/db.js';
import type { ActorTypeDefinition } from '../../runtime/registry.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createApp } from '../../http/app.js';
import { createServices } from '../../services/index.js';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { relationshipType } from '../../machines/relationship.js';
import { freshDatabase } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';

export const SECRET = 'test-secret-0123456789-0123456789-abcdef';
export const BASE = '/api/v1/vendor-partner-coordination';

export interface Harness {
  database: Database;
  runtime: Runtime;
  clock: ManualClock;
  app: ReturnType<typeof createApp>;
  token(role: TokenClaims['role'], tenantId?: string, extra?: Partial<TokenClaims>): string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field with toMatchObject
  call(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** A runtime over a fresh database, the app over it, and token minting against a manual clock. */
export async function harness(opts: { timers?: boolean; bodyLimitBytes?: number; types?: ActorTypeDefinition[]; env?: Record<string, string> } = {}): Promise<Harness> {
  const database = await freshDatabase();
  const clock = new ManualClock(Date.parse('2026-03-01T00:00:00Z'));
  const runtime = await testRuntime(database, { clock, types: opts.types ?? [relationshipType], run: { timers: opts.timers ?? false, relay: false }, env: opts.env });
  const services = createServices({ runtime, log: testLog, clock, run: { sagaIntake: false } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log: testLog, jwtSecret: SECRET, bodyLimitBytes: opts.bodyLimitBytes });
  const token: Harness['token'] = (role, tenantId, extra = {}) =>
    signToken({ sub: `${role}-user${tenantId ? `@${tenantId}` : ''}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(clock.now() / 1000) + 30 * 86_400, ...extra }, SECRET);
  const call: Harness['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON (e.g. /metrics) */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    database,
    runtime,
    clock,
    app,
    token,
    call,
    async close() {
      await services.stop();
      await runtime.stop();
      await database.close();
    },
  };
}
