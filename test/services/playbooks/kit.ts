import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { executionType, scheduleType } from '../../../machines/playbook/index.js';
import type { Clock } from '../../../runtime/clock.js';
import type { Database } from '../../../runtime/db.js';
import type { Runtime } from '../../../runtime/runtime.js';
import type { Principal } from '../../../services/common/principal.js';
import { createServices, type Services } from '../../../services/index.js';
import { createExpressions, StepError, type StepRunner } from '../../../services/playbooks/steps/index.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

/**
 * What the playbook engine's tests run against: a local HTTP server that counts every call (by
 * path and idempotency key) and behaves as its path says, and a step runner that really calls it.
 *
 * Paths: `/ok/<name>` answers 200; `/fail<N>/<name>` answers 500 to the first N calls of an
 * idempotency key; `/flaky<N>/<name>` to the first N calls of the path whatever the key; `/bad/<name>` answers 400 (not retryable); `/slow<ms>/<name>` answers after
 * that long; `/hang/<name>` answers only when released (or never); `/hangonce/<name>` hangs on its first call only.
 */
export interface Call {
  path: string;
  key: string;
  attempt: string;
  startedAt: number;
  endedAt: number | null;
  aborted: boolean;
}

export interface CountingServer {
  url: string;
  calls: Call[];
  count(path: string): number;
  keys(path: string): string[];
  releaseHung(): void;
  close(): Promise<void>;
}

export async function countingServer(): Promise<CountingServer> {
  const calls: Call[] = [];
  const hung: Array<() => void> = [];
  const perKey = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      const key = String(req.headers['idempotency-key'] ?? '');
      const call: Call = { path, key, attempt: String(req.headers['x-attempt'] ?? ''), startedAt: Date.now(), endedAt: null, aborted: false };
      calls.push(call);
      const seen = (perKey.get(`${path}\n${key}`) ?? 0) + 1;
      perKey.set(`${path}\n${key}`, seen);
      res.on('close', () => {
        if (!res.writableFinished) call.aborted = true;
      });
      const answer = (status: number, data: unknown) => {
        call.endedAt = Date.now();
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(data));
      };
      const [, how] = path.split('/');
      const m = /^(ok|fail|flaky|bad|slow|hangonce|hang)(\d*)$/.exec(how ?? '');
      const n = Number(m?.[2] || 0);
      switch (m?.[1]) {
        case 'fail':
          return seen <= n ? answer(500, { error: 'down' }) : answer(200, { path, seen, body: body ? JSON.parse(body) : null });
        case 'flaky':
          return calls.filter((c) => c.path === path).length <= n ? answer(500, { error: 'down' }) : answer(200, { path, seen });
        case 'bad':
          return answer(400, { error: 'bad request' });
        case 'slow':
          return void setTimeout(() => answer(200, { path, seen }), n);
        case 'hangonce':
          if (calls.filter((c) => c.path === path).length > 1) return answer(200, { path, seen });
          return void hung.push(() => answer(200, { path, seen }));
        case 'hang':
          return void hung.push(() => answer(200, { path, seen }));
        default:
          return answer(200, { path, seen, body: body ? JSON.parse(body) : null });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    count: (path) => calls.filter((c) => c.path === path).length,
    keys: (path) => calls.filter((c) => c.path === path).map((c) => c.key),
    releaseHung: () => hung.splice(0).forEach((f) => f()),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A `webhook` step that POSTs to the counting server: `{ path, body? }`; a non-2xx answer is a StepError. */
export function httpRunner(baseUrl: string): StepRunner {
  return async (spec, scope, ctx) => {
    const s = spec as { path: string; body?: unknown };
    const res = await fetch(`${baseUrl}${s.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': ctx.idempotencyKey, 'x-attempt': String(ctx.attempt) },
      body: JSON.stringify({ body: s.body ?? null, item: scope.item ?? null }),
      signal: ctx.signal,
    });
    ctx.log(`POST ${s.path} -> ${res.status}`);
    if (!res.ok) throw new StepError(`HTTP_${res.status}`, `${s.path} answered ${res.status}`, res.status >= 500);
    return res.json();
  };
}

const expressions = createExpressions();

/** Runners that do real work: HTTP calls to the counting server, CEL, Liquid. */
export function testRunners(baseUrl: string): Record<string, StepRunner> {
  return {
    webhook: httpRunner(baseUrl),
    evaluate: async (spec, scope) => expressions.evaluateCel(String(spec), scope),
    template: async (spec, scope, ctx) => expressions.renderTemplate(String((spec as { source: string }).source), scope, ctx.signal),
  };
}

export const KEY_ENV = { CREDENTIALS_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };

export interface PlaybookSystem {
  runtime: Runtime;
  services: Services;
  close(): Promise<void>;
}

/** A runtime with the playbook actor types and the services over it, started. */
export async function playbookSystem(database: Database, o: { baseUrl: string; clock?: Clock; runTimers?: boolean; env?: Record<string, string>; realRunners?: boolean; runners?: Record<string, StepRunner>; inline?: boolean }): Promise<PlaybookSystem> {
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await testRuntime(database, {
    types: [executionType, scheduleType],
    connectors,
    ...(o.clock ? { clock: o.clock } : {}),
    run: { timers: o.runTimers ?? true, relay: true },
    env: { ...KEY_ENV, ...o.env },
  });
  const services = createServices({ runtime, log: testLog, connectors, ...(o.clock ? { clock: o.clock } : {}), run: { events: false, sagaIntake: false, housekeeping: false }, playbooks: { ...(o.realRunners ? {} : { runners: { ...testRunners(o.baseUrl), ...o.runners } }), ...(o.inline === false ? { inline: false } : {}) } });
  await runtime.start();
  await services.start();
  return {
    runtime,
    services,
    async close() {
      await services.stop();
      await runtime.stop();
    },
  };
}

export const operator: Principal = { sub: 'op', role: 'operator', tenantId: null };
export const TERMINAL = ['succeeded', 'failed', 'cancelled'];
