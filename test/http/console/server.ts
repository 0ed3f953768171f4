import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { signToken, type TokenClaims } from '../../../http/auth/jwt.js';
import { createApp } from '../../../http/app.js';
import { relationshipType } from '../../../machines/relationship.js';
import { workflowType } from '../../../machines/workflow/index.js';
import type { Database } from '../../../runtime/db.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { createServices, type Services } from '../../../services/index.js';
import { freshDatabase } from '../../helpers/db.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

export const SECRET = 'console-secret-0123456789-0123456789-abc';
export const API = '/api/v1/vendor-partner-coordination';

export interface ConsoleServer {
  url: string;
  database: Database;
  runtime: Runtime;
  services: Services;
  token(role: TokenClaims['role'], tenantId?: string): string;
  /** A JSON call to the API with a bearer token. */
  api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

/** Concord over a fresh database on a free loopback port: the runtime (timers, relay), the services, the HTTP edge. */
export async function startConsoleServer(): Promise<ConsoleServer> {
  const database = await freshDatabase();
  const runtime = await testRuntime(database, { types: [relationshipType, workflowType] });
  const services = createServices({ runtime, log: testLog, run: { sagaIntake: false } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log: testLog, jwtSecret: SECRET });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    database,
    runtime,
    services,
    token: (role, tenantId) => signToken({ sub: `${role}-tester`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET),
    async api(method, path, token, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async close() {
      services.watch.stop();
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.stop();
      await runtime.stop();
      await database.close();
    },
  };
}
