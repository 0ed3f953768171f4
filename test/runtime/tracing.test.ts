import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { waitFor } from '../helpers/db.js';
import { dropPrefix, natsForTests, testPrefix } from '../helpers/nats.js';
import { testLog } from '../helpers/runtime.js';
import { FAST, order, sagaHarness, type SagaHarness } from '../services/saga/harness.js';

/**
 * Traces of one saga, received by a local OTLP/HTTP collector (JSON, as the exporter sends it):
 * the HTTP request, each transition, its commit, the relay's publish of each command and the
 * transition each service answer causes are one trace, each span the child of the one before.
 */
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number>;
}

/** A minimal OTLP/HTTP trace receiver: decodes `POST /v1/traces` (JSON) into spans. */
async function collector(): Promise<{ url: string; spans: Span[]; paths: string[]; close(): Promise<void> }> {
  const spans: Span[] = [];
  const paths: string[] = [];
  const hex = (v: unknown) => (typeof v === 'string' && !/^[0-9a-f]*$/.test(v) ? Buffer.from(v, 'base64').toString('hex') : String(v ?? ''));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
      for (const rs of doc.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            const attributes: Record<string, string | number> = {};
            for (const a of s.attributes as Array<{ key: string; value: { stringValue?: string; intValue?: number | string } }>) {
              attributes[a.key] = a.value.stringValue ?? Number(a.value.intValue);
            }
            spans.push({ traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: String(s.name), kind: Number(s.kind), attributes });
          }
        }
      }
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, paths, close: () => new Promise((r) => server.close(() => r())) };
}

interface Entry {
  version: number;
  kind: 'event' | 'timer';
  event: { type: string };
  traceId: string | null;
}

const SECRET = 'trace-secret-0123456789-0123456789-abcdef';
const SERVER = 2;
const PRODUCER = 4;

async function tracedSaga(h: SagaHarness, c: Awaited<ReturnType<typeof collector>>) {
  const app = createApp({ services: h.services, log: testLog, jwtSecret: SECRET });
  const token = signToken({ sub: 'op', role: 'operator', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
  const res = await app.request('/api/v1/workflows/order/start', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(order()),
  });
  expect(res.status).toBeLessThan(300);
  const { workflowId } = (await res.json()) as { workflowId: string };
  await h.settle(workflowId, ['COMPLETED'], 30_000);
  const history = await app.request(`/api/v1/actors/saga/${workflowId}/history`, { headers: { authorization: `Bearer ${token}` } });
  const journal = ((await history.json()) as { data: Entry[] }).data;
  // the last transition's spans are ended before its answer: flush them out
  const last = journal.at(-1)!.version;
  await waitFor('the spans of the whole saga', async () => {
    await h.runtime.tracing.flush();
    return c.spans.some((s) => s.name === 'commit saga' && s.attributes['concord.actor.id'] === workflowId && s.attributes['concord.actor.version'] === last);
  });
  return { workflowId, journal };
}

function checkTrace(spans: Span[], workflowId: string, journal: Entry[]) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const root = spans.find((s) => s.kind === SERVER && s.name === 'POST /api/v1/workflows/order/start')!;
  expect(root).toBeDefined();
  expect(root.parentSpanId).toBe('');
  expect(root.attributes['http.response.status_code']).toBe(201);
  const mine = spans.filter((s) => s.attributes['concord.actor.id'] === workflowId);
  const transitions = mine.filter((s) => s.name === 'transition saga').sort((a, b) => Number(a.attributes['concord.actor.version']) - Number(b.attributes['concord.actor.version']));

  // one trace from the request to the last transition, and the journal names it
  expect(new Set(mine.map((s) => s.traceId))).toEqual(new Set([root.traceId]));
  expect(journal.map((j) => j.traceId)).toEqual(journal.map(() => root.traceId));
  // every span about the saga says which actor and which version
  for (const s of mine) {
    expect(s.attributes['concord.actor.type']).toBe('saga');
    expect(typeof s.attributes['concord.actor.version']).toBe('number');
  }
  expect(transitions.map((t) => t.attributes['concord.actor.version'])).toEqual(journal.map((j) => j.version));

  // parents: the first transition is the request's child; each later one is the child of the
  // relay's publish of the command it answers, whose parent is the transition that sent it
  expect(byId.get(transitions[0]!.parentSpanId)).toBe(root);
  for (const [i, t] of transitions.entries()) {
    if (i === 0) continue;
    if (journal[i]!.kind === 'timer') {
      // a timer's firing is the child of the transition that set it
      const setter = byId.get(t.parentSpanId)!;
      expect(setter.name).toBe('transition saga');
      expect(Number(setter.attributes['concord.actor.version'])).toBeLessThan(Number(t.attributes['concord.actor.version']));
      continue;
    }
    const publish = byId.get(t.parentSpanId)!;
    expect(publish).toMatchObject({ kind: PRODUCER, attributes: expect.objectContaining({ 'concord.actor.id': workflowId }) });
    expect(publish.name).toMatch(/^publish \w*svc\./);
    const sender = byId.get(publish.parentSpanId)!;
    expect(sender.name).toBe('transition saga');
    expect(sender.attributes['concord.actor.version']).toBe(publish.attributes['concord.actor.version']);
    expect(Number(sender.attributes['concord.actor.version'])).toBeLessThan(Number(t.attributes['concord.actor.version']));
  }
  // each transition's commit is its child, at the same version
  for (const t of transitions) {
    const commits = mine.filter((s) => s.name === 'commit saga' && s.parentSpanId === t.spanId);
    expect(commits).toHaveLength(1);
    expect(commits[0]!.attributes['concord.actor.version']).toBe(t.attributes['concord.actor.version']);
  }
  // the saga's four commands went out through the relay, each in a span of its own
  expect(mine.filter((s) => s.kind === PRODUCER && /^publish \w*svc\./.test(s.name)).length).toBeGreaterThanOrEqual(4);
}

describe('traces of one saga (embedded transport)', () => {
  let c: Awaited<ReturnType<typeof collector>>;
  let h: SagaHarness;
  beforeAll(async () => {
    c = await collector();
    h = await sagaHarness({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: c.url, OTEL_SERVICE_NAME: 'concord-test' } });
  });
  afterAll(async () => {
    await h?.close();
    await c?.close();
  });

  it('share one trace id, parent properly, carry the actor on every span, and are linked from the journal', async () => {
    const { workflowId, journal } = await tracedSaga(h, c);
    checkTrace(c.spans, workflowId, journal);
    expect(c.paths[0]).toBe('POST /v1/traces application/json');
  });
});

describe('traces of one saga whose step times out and is retried (durable timers)', () => {
  let c: Awaited<ReturnType<typeof collector>>;
  let h: SagaHarness;
  beforeAll(async () => {
    c = await collector();
    h = await sagaHarness({ env: { ...FAST, OTEL_EXPORTER_OTLP_ENDPOINT: c.url } });
    h.sim.configure({ silentAttempts: { PAYMENT_PROCESSING: 1 } });
  });
  afterAll(async () => {
    await h?.close();
    await c?.close();
  });

  it('keep the timer-fired transitions in the saga\'s trace, each the child of the transition that set its timer', async () => {
    const { workflowId, journal } = await tracedSaga(h, c);
    expect(journal.filter((j) => j.kind === 'timer').length).toBeGreaterThanOrEqual(2); // the step timeout, then the backoff
    checkTrace(c.spans, workflowId, journal);
  });
});

const nats = await natsForTests();

describe.skipIf(!nats)('traces of one saga over NATS JetStream (traceparent in NATS headers)', () => {
  const prefix = testPrefix();
  let c: Awaited<ReturnType<typeof collector>>;
  let h: SagaHarness;
  beforeAll(async () => {
    c = await collector();
    h = await sagaHarness({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: c.url }, nats: { url: nats!.url, prefix } });
  });
  afterAll(async () => {
    await h?.close();
    await c?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('share one trace id and parent properly across the relay, JetStream and the service router', async () => {
    const { workflowId, journal } = await tracedSaga(h, c);
    checkTrace(c.spans, workflowId, journal);
  });
});

describe('tracing off', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await sagaHarness();
  });
  afterAll(async () => h?.close());

  it('writes no trace id and no traceparent header', async () => {
    expect(h.runtime.tracing.enabled).toBe(false);
    const { workflowId } = await h.sagas.start('ORDER_FULFILLMENT', (await import('../../services/saga/order.js')).orderData(order()));
    await h.settle(workflowId, ['COMPLETED']);
    const { rows } = await h.database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id = $1 AND trace_id IS NOT NULL`, [workflowId]);
    expect(rows[0].n).toBe(0);
    expect(h.sim.applied.filter((a) => a.workflowId === workflowId)).toHaveLength(4);
  });
});
