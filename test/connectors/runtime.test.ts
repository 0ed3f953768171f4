import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, emit, setup } from 'xstate';
import { classify, classifyResponse } from '../../connectors/kit/classify.js';
import { defineConnector, invokerOf, type ConnectorInvoker } from '../../connectors/kit/contract.js';
import type { ConnectorFailure } from '../../connectors/kit/errors.js';
import type { Database } from '../../runtime/db.js';
import type { ActorTypeDefinition } from '../../runtime/registry.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

/**
 * A failure thrown by a connector reaches the actor, through the real runtime (outbox, relay,
 * in-process invoker, reply row), as the one classification says: code, retryable, and how long
 * the provider asked us to wait.
 */

type Answer = { type: string; error: ConnectorFailure | null; output: unknown };
type ProbeEvent = { type: 'probe.call'; connector: string; op: string; input?: unknown } | { type: string; error?: ConnectorFailure; output?: unknown };

const probeMachine = setup({ types: { context: {} as { answers: Answer[] }, events: {} as ProbeEvent } }).createMachine({
  id: 'probe',
  context: { answers: [] },
  on: {
    'probe.call': {
      actions: emit(({ event }) => {
        const e = event as Extract<ProbeEvent, { type: 'probe.call' }>;
        return { type: 'concord.call' as const, connector: e.connector, operation: e.op, input: e.input ?? {} } as never;
      }),
    },
    '*': {
      actions: assign({
        answers: ({ context, event }) => [...context.answers, { type: event.type, error: (event as { error?: ConnectorFailure }).error ?? null, output: (event as { output?: unknown }).output ?? null }],
      }),
    },
  },
});
const probeType: ActorTypeDefinition = { type: 'probe', machine: probeMachine, version: 1, project: () => ({ status: 'ACTIVE' }) };

/** The fake provider: `/orders/<id>` answers as the id says. */
const seen: Array<{ apiKey: string | undefined; idempotencyKey: string | undefined }> = [];
const server = http.createServer((req, res) => {
  seen.push({ apiKey: req.headers['x-api-key'] as string | undefined, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
  const id = req.url!.split('/').pop();
  if (id === 'throttled') return res.writeHead(429, { 'retry-after': '7' }).end('{"errors":"Exceeded 2 calls per second"}');
  if (id === 'gone') return res.writeHead(404).end('{"errors":"Not Found"}');
  if (id === 'revoked') return res.writeHead(401).end('{"errors":"Invalid API key"}');
  if (id === 'down') return res.writeHead(502).end();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ order: { id: Number(id), total_price: '12.50', currency: 'BRL' } }));
});

type ProviderOrder = { id: number; total_price: string; currency: string };
let base = '';

const order = { fromProvider: (o: ProviderOrder) => ({ externalId: String(o.id), totalMinor: Math.round(Number(o.total_price) * 100), currency: o.currency }) };

/** A provider module of the contract's shape (client, mapping and classify inline for the test). */
const shop = defineConnector({
  id: 'shop',
  auth: 'api_key',
  calls: {
    getOrder: async (creds, input: { id: string }, ctx) => {
      const res = await fetch(`${base}/orders/${input.id}`, { headers: { 'x-api-key': creds.apiKey, 'idempotency-key': ctx.idempotencyKey }, signal: ctx.signal });
      if (!res.ok) throw classifyResponse(res, { context: 'shop getOrder' });
      return order.fromProvider(((await res.json()) as { order: ProviderOrder }).order);
    },
  },
  mapping: { order },
  classify: (err) => classify(err, { context: 'shop' }),
});

let closedPort = 0;
/** A connector registered as a bare invoker, that lets fetch's own error out unclassified. */
const raw: ConnectorInvoker = async (operation) => {
  if (operation === 'refused') return fetch(`http://127.0.0.1:${closedPort}/`);
  throw Object.assign(new Error('sdk said no'), { code: 'DECLINED', retryable: false }); // duck typing: not trusted
};

let db: Database;
let rt: Runtime;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  db = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>([
    ['shop', invokerOf(shop, async () => ({ apiKey: 'k-123' }))],
    ['raw', raw],
  ]);
  rt = await testRuntime(db, { types: [probeType], connectors });
  await rt.start();
});
afterAll(async () => {
  await rt?.stop();
  await db?.close();
  server.close();
});

async function call(id: string, connector: string, op: string, input?: unknown): Promise<Answer> {
  const ref = { type: 'probe', id };
  await rt.host.send(ref, { type: 'probe.call', connector, op, input });
  return waitFor(`${connector}.${op} answered`, async () => ((await rt.host.get(ref)).context as { answers: Answer[] }).answers[0]);
}

describe('a connector failure reaches the actor as the one classification says', () => {
  it('success: the mapped record, with the credentials and the call idempotency key sent', async () => {
    const a = await call('ok', 'shop', 'getOrder', { id: '42' });
    expect(a).toEqual({ type: 'shop.getOrder.done', error: null, output: { externalId: '42', totalMinor: 1250, currency: 'BRL' } });
    expect(seen.at(-1)!.apiKey).toBe('k-123');
    expect(seen.at(-1)!.idempotencyKey).toMatch(/^probe\/ok@/);
  });

  it('429 with Retry-After: retryable RATE_LIMITED, and the wait the provider asked for', async () => {
    const a = await call('throttled', 'shop', 'getOrder', { id: 'throttled' });
    expect(a.type).toBe('shop.getOrder.failed');
    expect(a.error).toEqual({ code: 'RATE_LIMITED', message: 'shop getOrder: HTTP 429', retryable: true, retryAfterMs: 7_000, status: 429 });
  });

  it('404, 401 and 502: NOT_FOUND and REAUTHORIZATION_REQUIRED are terminal, UNAVAILABLE is not', async () => {
    expect((await call('gone', 'shop', 'getOrder', { id: 'gone' })).error).toMatchObject({ code: 'NOT_FOUND', retryable: false, status: 404 });
    expect((await call('revoked', 'shop', 'getOrder', { id: 'revoked' })).error).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false, status: 401 });
    expect((await call('down', 'shop', 'getOrder', { id: 'down' })).error).toMatchObject({ code: 'UNAVAILABLE', retryable: true, status: 502 });
  });

  it('an operation the connector does not have: terminal VALIDATION', async () => {
    expect((await call('noop', 'shop', 'cancelOrder')).error).toMatchObject({ code: 'VALIDATION', retryable: false, message: "connector 'shop' has no operation 'cancelOrder'" });
  });

  it('a bare invoker: the runtime classifies what it throws (a refused connection is NETWORK; a duck-typed flag is not trusted)', async () => {
    expect((await call('refused', 'raw', 'refused')).error).toMatchObject({ code: 'NETWORK', retryable: true });
    expect((await call('duck', 'raw', 'duck')).error).toEqual({ code: 'UNKNOWN', message: 'sdk said no', retryable: true });
  });
});
