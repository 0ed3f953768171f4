import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../../http/app.js';
import { createServices, type Services } from '../../../services/index.js';
import { signToken, type TokenClaims } from '../../../http/auth/jwt.js';
import type { ActorTypeDefinition } from '../../../runtime/registry.js';
import type { Database } from '../../../runtime/db.js';
import type { Runtime } from '../../../runtime/runtime.js';
import type { ConnectorInvoker } from '../../../runtime/in-process.js';
import { verify } from '../../../services/events/signing.js';
import { freshDatabase } from '../../helpers/db.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';
import { seeded } from '../../../simulator/random.js';

export const SECRET = 'test-secret-0123456789-0123456789-abcdef';
export const BASE = '/api/v1/vendor-partner-coordination';

export interface Api {
  database: Database;
  runtime: Runtime;
  services: Services;
  app: ReturnType<typeof createApp>;
  token(role: TokenClaims['role'], tenantId?: string): string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  call(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** A runtime (system clock, real timers and delivery worker) over a fresh database, and the app over it. */
export async function api(o: { env?: Record<string, string>; types?: ActorTypeDefinition[]; events?: boolean; timers?: boolean; connectors?: Map<string, ConnectorInvoker>; database?: Database } = {}): Promise<Api> {
  const database = o.database ?? (await freshDatabase());
  const runtime = await testRuntime(database, {
    types: o.types ?? [],
    connectors: o.connectors,
    env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', EVENT_DELIVERY_POLL_MS: '20', ...o.env },
    run: { timers: o.timers ?? true, relay: true },
  });
  const services = createServices({ runtime, log: testLog, run: { events: o.events ?? true, sagaIntake: false } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log: testLog, jwtSecret: SECRET });
  const token: Api['token'] = (role, tenantId) =>
    signToken({ sub: `${role}-user${tenantId ? `@${tenantId}` : ''}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 86_400 }, SECRET);
  const call: Api['call'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const res = await app.request(path.startsWith('/') && !path.startsWith(BASE) && !path.startsWith('/api') ? `${BASE}${path}` : path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    database,
    runtime,
    services,
    app,
    token,
    call,
    async close() {
      await services.stop();
      await runtime.stop();
      if (!o.database) await database.close();
    },
  };
}

export interface Received {
  target: string;
  webhookId: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the parsed webhook body
  body: any;
  at: number;
}

export type Behaviour = (req: { target: string; webhookId: string; duplicate: boolean }) => { status: number; headers?: Record<string, string>; delayMs?: number; record: boolean };

/**
 * A real local HTTP receiver at `/hooks/<target>`: verifies Standard Webhooks signatures with
 * each target's secret and dedupes on `webhook-id`, as a careful receiver does. `behaviour`
 * decides each answer (fail, throttle, hang, or accept).
 */
export async function receiver(behaviour: Behaviour = () => ({ status: 200, record: true })) {
  const secrets = new Map<string, string>();
  const seen = new Set<string>();
  const accepted: Received[] = [];
  const stats = { requests: 0, duplicates: 0, badSignatures: 0 };
  const state = { behaviour };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stats.requests++;
      const raw = Buffer.concat(chunks).toString('utf8');
      const target = decodeURIComponent((req.url ?? '').replace(/^\/hooks\//, ''));
      const webhookId = String(req.headers['webhook-id'] ?? '');
      const secret = secrets.get(target);
      const ok =
        secret !== undefined &&
        verify(secret, { id: webhookId, timestamp: String(req.headers['webhook-timestamp'] ?? ''), signature: String(req.headers['webhook-signature'] ?? '') }, raw, Math.floor(Date.now() / 1000));
      if (!ok) {
        stats.badSignatures++;
        res.writeHead(401).end();
        return;
      }
      const duplicate = seen.has(webhookId);
      const b = state.behaviour({ target, webhookId, duplicate });
      if (b.record) {
        if (duplicate) stats.duplicates++;
        else {
          seen.add(webhookId);
          accepted.push({ target, webhookId, body: JSON.parse(raw), at: Date.now() });
        }
      }
      const answer = () => {
        if (!res.destroyed) res.writeHead(b.status, b.headers ?? {}).end();
      };
      if (b.delayMs) setTimeout(answer, b.delayMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (target: string) => `http://127.0.0.1:${port}/hooks/${encodeURIComponent(target)}`,
    port,
    secrets,
    accepted,
    stats,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A small deterministic PRNG (mulberry32) so a failing run can be replayed. */
export const prng = seeded;
