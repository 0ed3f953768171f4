import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign, verify } from '../../services/events/signing.js';
import { isPrivateAddress, parseRetryAfter, postWebhook } from '../../services/events/webhook.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../helpers/nats.js';
import { api, receiver, type Api } from '../services/events/support.js';

let t: Api;
let rx: Awaited<ReturnType<typeof receiver>>;
let op: string;

beforeAll(async () => {
  t = await api({ env: { EVENT_MAX_PAYLOAD_BYTES: '2048', EVENT_RETRY_BACKOFF_MS: '20', EVENT_MAX_ATTEMPTS: '4' } });
  op = t.token('operator');
  rx = await receiver();
});
afterAll(async () => {
  await t?.close();
  await rx?.close();
});

const event = (over: Record<string, unknown> = {}) => ({
  eventName: 'customer.updated',
  sourceIntegrationId: 'integration-a',
  targetIntegrationIds: ['integration-b', 'integration-c'],
  payload: { customerId: 'cust-123', changes: { email: 'new@example.com' } },
  eventCategory: 'data_sync',
  priority: 'high',
  ...over,
});

const register = async (target: string, body: Record<string, unknown> = {}) => {
  const r = await t.call('PUT', `/integrations/${target}/endpoint`, { token: op, body: { url: rx.url(target), ...body } });
  expect(r.status).toBeLessThan(300);
  rx.secrets.set(target, r.body.secret);
  return r.body;
};

describe('Standard Webhooks signing', () => {
  it('matches the reference test vector and verifies (and rejects tampering and stale timestamps)', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    expect(sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const headers = { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: '1614265330', signature: 'v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    expect(verify(secret, headers, body, 1614265330 + 10)).toBe(true);
    expect(verify(secret, headers, body.replace('2', '3'), 1614265330)).toBe(false);
    expect(verify(secret, headers, body, 1614265330 + 3600)).toBe(false);
  });
});

describe('webhook POST', () => {
  it('times out a receiver that does not answer, even when garbage is collected during the attempt', async () => {
    // the worker passes its shutdown signal, so the timeout is composed with it (AbortSignal.any)
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.writeHead(200).end(), 3_000).unref());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      const attempt = postWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`, {}, '{}', { timeoutMs: 100, allowPrivate: true, now: () => Date.now(), signal: new AbortController().signal });
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 10));
        gc();
      }
      expect(await attempt).toMatchObject({ kind: 'retry', error: 'timed out after 100 ms' });
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('SSRF guard', () => {
  it('classifies private, loopback, link-local and mapped addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '::1', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', '0.0.0.0']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111']) expect(isPrivateAddress(a), a).toBe(false);
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
  });

  it('refuses the address actually connected to (a name that resolves to loopback) and every redirect hop', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/redirect') res.writeHead(307, { location: `http://127.0.0.2:${(server.address() as AddressInfo).port}/final` }).end();
      else res.writeHead(200).end();
    });
    await new Promise<void>((r) => server.listen(0, r)); // every local address, 127.0.0.2 included
    const port = (server.address() as AddressInfo).port;
    try {
      const o = { timeoutMs: 2_000, allowPrivate: false, now: () => Date.now() };
      const byName = await postWebhook(`http://localhost:${port}/x`, {}, '{}', o);
      expect(byName.kind).toBe('dead');
      expect(byName.error).toContain('private or loopback');
      expect((await postWebhook(`http://127.0.0.1:${port}/x`, {}, '{}', o)).kind).toBe('dead');
      // only 127.0.0.2 counts as private here, so the first hop is allowed and the redirect is not
      const refused = (a: string) => a === '127.0.0.2';
      expect(await postWebhook(`http://127.0.0.1:${port}/x`, {}, '{}', { ...o, refused })).toMatchObject({ kind: 'delivered' });
      const hop = await postWebhook(`http://127.0.0.1:${port}/redirect`, {}, '{}', { ...o, refused });
      expect(hop).toMatchObject({ kind: 'dead' });
      expect(hop.error).toContain('127.0.0.2');
      expect((await postWebhook(`http://127.0.0.1:${port}/redirect`, {}, '{}', { ...o, allowPrivate: true })).kind).toBe('delivered');
    } finally {
      server.close();
    }
  });

  it('dead-letters deliveries to a private endpoint unless WEBHOOK_ALLOW_PRIVATE_TARGETS=true', async () => {
    const strict = await api({ database: await freshDatabase(), env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'false' } });
    try {
      const sop = strict.token('operator');
      await strict.call('PUT', '/integrations/internal/endpoint', { token: sop, body: { url: rx.url('internal') } });
      const r = await strict.call('POST', '/events', { token: sop, body: event({ targetIntegrationIds: ['internal'] }) });
      const d = await waitFor('dead', async () => {
        const e = (await strict.call('GET', `/events/${r.body.id}`, { token: sop })).body;
        return e.deliveries[0].status === 'dead' ? e.deliveries[0] : null;
      });
      expect(d.attempts).toBe(1);
      expect(d.lastError).toContain('WEBHOOK_ALLOW_PRIVATE_TARGETS');
    } finally {
      await strict.close();
      await strict.database.close();
    }
  });
});

describe('cross-integration event routes', () => {
  it("accepts the spec's example with 202, delivers it signed to each target, and shows the deliveries", async () => {
    await register('integration-b');
    await register('integration-c');
    const r = await t.call('POST', '/events', { token: op, body: event() });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/api/v1/vendor-partner-coordination/events/${r.body.id}`);
    expect(r.body).toMatchObject({ status: 'pending', priority: 'high', eventCategory: 'data_sync', processedAt: null });
    expect(r.body.deliveries.map((d: { targetIntegrationId: string; status: string }) => [d.targetIntegrationId, d.status])).toEqual([
      ['integration-b', 'pending'],
      ['integration-c', 'pending'],
    ]);
    const done = await waitFor('processed', async () => {
      const e = (await t.call('GET', `/events/${r.body.id}`, { token: op })).body;
      return e.status === 'processed' ? e : null;
    });
    expect(done.processedAt).toBeTruthy();
    for (const d of done.deliveries) expect(d).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200, channels: ['messaging', 'webhook'] });
    const got = rx.accepted.filter((a) => a.body.data.id === r.body.id);
    expect(got.map((g) => g.webhookId).sort()).toEqual([`msg_${r.body.id}_integration-b`, `msg_${r.body.id}_integration-c`]);
    expect(got[0]!.body).toMatchObject({ type: 'customer.updated', data: { sourceIntegrationId: 'integration-a', payload: { customerId: 'cust-123' } } });
    expect(rx.stats.badSignatures).toBe(0);
  });

  it('is for operator and service tokens only (vendor and partner: 403); unknown ids are 404', async () => {
    for (const role of ['vendor', 'partner'] as const) {
      const tok = t.token(role, 'x-1');
      expect((await t.call('POST', '/events', { token: tok, body: event() })).status).toBe(403);
      expect((await t.call('PUT', '/integrations/integration-b/endpoint', { token: tok, body: { url: 'https://example.com' } })).status).toBe(403);
      expect((await t.call('GET', '/integrations/integration-b/endpoint', { token: tok })).status).toBe(403);
      expect((await t.call('GET', '/events', { token: tok })).status).toBe(403);
    }
    expect((await t.call('POST', '/events', { token: t.token('service'), body: event({ targetIntegrationIds: ['integration-z'] }) })).status).toBe(202);
    expect((await t.call('GET', '/events/nope', { token: op })).status).toBe(404);
    expect((await t.call('POST', '/events/nope/republish', { token: op, body: {} })).status).toBe(404);
  });

  it('validates: required fields, enums, the source as its own target, and the payload size limit (413)', async () => {
    expect((await t.call('POST', '/events', { token: op, body: { ...event(), eventName: undefined } })).status).toBe(400);
    expect((await t.call('POST', '/events', { token: op, body: event({ priority: 'urgent' }) })).status).toBe(400);
    expect((await t.call('POST', '/events', { token: op, body: event({ targetIntegrationIds: [] }) })).status).toBe(400);
    const self = await t.call('POST', '/events', { token: op, body: event({ targetIntegrationIds: ['integration-a'] }) });
    expect(self.status).toBe(400);
    expect(self.body.detail).toContain('own target');
    const big = await t.call('POST', '/events', { token: op, body: event({ payload: { blob: 'x'.repeat(3000) } }) });
    expect(big.status).toBe(413);
    expect(big.body.limit).toBe(2048);
    expect((await t.call('PUT', '/integrations/q/endpoint', { token: op, body: { url: 'ftp://example.com' } })).status).toBe(400);
  });

  it('registers an endpoint with a whsec_ secret, keeps it on update, rotates on request; filters skip unwanted events', async () => {
    const first = await t.call('PUT', '/integrations/integration-f/endpoint', { token: op, body: { url: rx.url('integration-f'), eventCategories: ['billing'] } });
    expect(first.status).toBe(201);
    expect(first.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    const again = await t.call('PUT', '/integrations/integration-f/endpoint', { token: op, body: { url: rx.url('integration-f'), eventCategories: ['billing'] } });
    expect(again.status).toBe(200);
    expect(again.body.secret).toBe(first.body.secret);
    const rotated = await t.call('PUT', '/integrations/integration-f/endpoint', { token: op, body: { url: rx.url('integration-f'), eventCategories: ['billing'], rotateSecret: true } });
    expect(rotated.body.secret).not.toBe(first.body.secret);
    rx.secrets.set('integration-f', rotated.body.secret);
    expect((await t.call('GET', '/integrations/integration-f/endpoint', { token: op })).body).toMatchObject({ eventCategories: ['billing'], secret: rotated.body.secret });

    const skipped = await t.call('POST', '/events', { token: op, body: event({ targetIntegrationIds: ['integration-f', 'integration-b'] }) });
    expect(skipped.body.filteredTargetIds).toEqual(['integration-f']);
    expect(skipped.body.deliveries.map((d: { targetIntegrationId: string }) => d.targetIntegrationId)).toEqual(['integration-b']);
    const wanted = await t.call('POST', '/events', { token: op, body: event({ eventCategory: 'billing', targetIntegrationIds: ['integration-f'] }) });
    expect(wanted.body.deliveries).toHaveLength(1);
    await waitFor('billing event received', () => rx.accepted.some((a) => a.target === 'integration-f' && a.body.data.id === wanted.body.id));
  });

  it('retries 429s no sooner than Retry-After, dead-letters other 4xx at once, and republishes (all, or onlyFailed) with a new webhook-id for delivered rows', async () => {
    await register('integration-r');
    await register('integration-g');
    let throttled = 0;
    rx.state.behaviour = ({ target }) => {
      if (target === 'integration-g') return { status: 410, record: false };
      if (target === 'integration-r' && throttled++ === 0) return { status: 429, headers: { 'retry-after': '1' }, record: false };
      return { status: 200, record: true };
    };
    const r = await t.call('POST', '/events', { token: op, body: event({ targetIntegrationIds: ['integration-r', 'integration-g'] }) });
    const sent = Date.now();
    const settled = await waitFor('both settled', async () => {
      const e = (await t.call('GET', `/events/${r.body.id}`, { token: op })).body;
      return e.status !== 'pending' ? e : null;
    });
    const [rd, gd] = settled.deliveries;
    expect(rd).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(Date.parse(rd.deliveredAt) - sent).toBeGreaterThanOrEqual(900);
    expect(gd).toMatchObject({ status: 'dead', attempts: 1, lastStatusCode: 410 });
    expect(settled).toMatchObject({ status: 'failed', errorMessage: '1 of 2 deliveries dead-lettered' });
    expect((await t.call('GET', `/events?status=failed&targetIntegrationId=integration-g`, { token: op })).body.data.map((e: { id: string }) => e.id)).toContain(r.body.id);

    rx.state.behaviour = () => ({ status: 200, record: true });
    const only = await t.call('POST', `/events/${r.body.id}/republish`, { token: op, body: { onlyFailed: true } });
    expect(only.status).toBe(202);
    expect(only.body.deliveries.map((d: { status: string }) => d.status)).toEqual(['delivered', 'pending']);
    await waitFor('republished', async () => (await t.call('GET', `/events/${r.body.id}`, { token: op })).body.status === 'processed');
    const all = await t.call('POST', `/events/${r.body.id}/republish`, { token: op });
    expect(all.body.deliveries.map((d: { webhookId: string }) => d.webhookId)).toEqual([`msg_${r.body.id}_integration-r_r1`, `msg_${r.body.id}_integration-g_r1`]);
    await waitFor('both receive the deliberate resend', () => rx.accepted.filter((a) => a.body.data.id === r.body.id).length === 4);
  });

  it('lists with filters (source, target, status, category, priority, time range) and cursor pagination; Idempotency-Key makes POST retry-safe', async () => {
    const key = { 'idempotency-key': 'evt-idem-1' };
    const a = await t.call('POST', '/events', { token: op, body: event({ sourceIntegrationId: 'lister', priority: 'low' }), headers: key });
    const b = await t.call('POST', '/events', { token: op, body: event({ sourceIntegrationId: 'lister', priority: 'low' }), headers: key });
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    for (let i = 0; i < 4; i++) await t.call('POST', '/events', { token: op, body: event({ sourceIntegrationId: 'lister', eventCategory: i % 2 ? 'billing' : 'data_sync', priority: 'critical' }) });
    const all = (await t.call('GET', '/events?sourceIntegrationId=lister', { token: op })).body.data;
    expect(all).toHaveLength(5);
    expect((await t.call('GET', '/events?sourceIntegrationId=lister&priority=critical&eventCategory=billing', { token: op })).body.data).toHaveLength(2);
    expect((await t.call('GET', '/events?sourceIntegrationId=lister&targetIntegrationId=integration-c', { token: op })).body.data).toHaveLength(5);
    const from = encodeURIComponent(all[1].createdAt);
    expect((await t.call('GET', `/events?sourceIntegrationId=lister&from=${from}`, { token: op })).body.data.map((e: { id: string }) => e.id)).toEqual(all.slice(0, 2).map((e: { id: string }) => e.id));
    const p1 = (await t.call('GET', '/events?sourceIntegrationId=lister&limit=3', { token: op })).body;
    const p2 = (await t.call('GET', `/events?sourceIntegrationId=lister&limit=3&cursor=${p1.pagination.nextCursor}`, { token: op })).body;
    expect([...p1.data, ...p2.data].map((e: { id: string }) => e.id)).toEqual(all.map((e: { id: string }) => e.id));
    expect(p2.pagination.nextCursor).toBeNull();
  });
});

describe('priority', () => {
  it("delivers a critical event before other sources' queued lower-priority ones, never out of order within its own source", async () => {
    const p = await api({ database: await freshDatabase(), events: false, env: { EVENT_DELIVERY_BATCH: '1' } });
    const prx = await receiver();
    try {
      const pop = p.token('operator');
      for (const target of ['hub']) {
        const r = await p.call('PUT', `/integrations/${target}/endpoint`, { token: pop, body: { url: prx.url(target) } });
        prx.secrets.set(target, r.body.secret);
      }
      const post = (source: string, priority: string, n: number) =>
        p.call('POST', '/events', { token: pop, body: { eventName: 'tick', sourceIntegrationId: source, targetIntegrationIds: ['hub'], payload: { n }, eventCategory: 'ops', priority } });
      for (let n = 0; n < 5; n++) await post('low-source', 'low', n);
      await post('crit-source', 'medium', 0);
      await post('crit-source', 'critical', 1); // pulls its older sibling ahead, but not past it
      await p.services.eventDelivery.start();
      await waitFor('all delivered', () => prx.accepted.length === 7);
      expect(prx.accepted.map((a) => `${a.body.data.sourceIntegrationId}:${a.body.data.payload.n}`)).toEqual([
        'crit-source:0',
        'crit-source:1',
        'low-source:0',
        'low-source:1',
        'low-source:2',
        'low-source:3',
        'low-source:4',
      ]);
    } finally {
      await p.close();
      await p.database.close();
      await prx.close();
    }
  });
});

describe('NATS channel', () => {
  it('publishes each delivery to concord.deliver.<target> (JetStream, deduplicated on the webhook-id)', async () => {
    const nats = await natsForTests();
    if (!nats) return;
    const prefix = testPrefix();
    const n = await api({ database: await freshDatabase(), env: natsEnv(nats.url, prefix) });
    const nc = await connect({ servers: nats.url });
    try {
      const nop = n.token('operator');
      const r = await n.call('POST', '/events', { token: nop, body: event({ targetIntegrationIds: ['integration-n'] }) });
      await waitFor('delivered', async () => (await n.call('GET', `/events/${r.body.id}`, { token: nop })).body.status === 'processed');
      const jsm = await jetstreamManager(nc);
      const stream = `${prefix.toUpperCase()}_DELIVER`;
      const msg = await jsm.streams.getMessage(stream, { last_by_subj: `${prefix}.deliver.integration-n` });
      expect(msg!.header.get('Nats-Msg-Id')).toBe(`msg_${r.body.id}_integration-n`);
      expect(msg!.json<{ data: { id: string } }>().data.id).toBe(r.body.id);
      const d = (await n.call('GET', `/events/${r.body.id}`, { token: nop })).body.deliveries[0];
      expect(d.channels).toEqual(['messaging']);
    } finally {
      await nc.close();
      await n.close();
      await n.database.close();
      await dropPrefix(nats.url, prefix);
    }
  });
});
