import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.js';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
let vendor: string;
let partner: string;
let stranger: string;

beforeAll(async () => {
  h = await harness({ timers: true });
  op = h.token('operator');
  vendor = h.token('vendor', 'vendor-123');
  partner = h.token('partner', 'partner-456');
  stranger = h.token('vendor', 'vendor-999');
});
afterAll(async () => h.close());

/** The spec's own example (coordinationService.createRelationship), verbatim. */
const specExample = {
  vendorId: 'vendor-123',
  partnerId: 'partner-456',
  relationshipType: 'INTEGRATION',
  agreementDetails: {
    commissionRate: 0.15,
    revenueSharePercentage: 15,
    slaRequirements: {
      uptime: 99.9,
      responseTime: 200,
    },
  },
};

const create = async (body: object = specExample, token = op, headers: Record<string, string> = {}) => h.call('POST', `${BASE}/relationships`, { token, body, headers });

describe('relationships', () => {
  it('accepts the spec example verbatim and creates it PENDING, with a Location', async () => {
    const r = await create(specExample, vendor);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ...specExample, status: 'PENDING', endDate: null, version: 1, allowedActions: ['activate', 'terminate', 'update'] });
    expect(r.headers.get('location')).toBe(`${BASE}/relationships/${r.body.id}`);
    const g = await h.call('GET', `${BASE}/relationships/${r.body.id}`, { token: partner });
    expect(g.status).toBe(200);
    expect(g.body).toEqual(r.body);
  });

  it('runs the lifecycle and answers an illegal transition with 409, the current status and the allowed actions', async () => {
    const { body: rel } = await create();
    const path = `${BASE}/relationships/${rel.id}`;
    expect((await h.call('POST', `${path}/activate`, { token: vendor })).body).toMatchObject({ status: 'ACTIVE', version: 2 });
    const again = await h.call('POST', `${path}/activate`, { token: partner });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toBe('application/problem+json');
    expect(again.body).toMatchObject({ code: 'EVENT_REJECTED', status: 409, currentStatus: 'ACTIVE', allowedActions: ['suspend', 'terminate', 'update'], action: 'activate' });
    const suspended = await h.call('POST', `${path}/suspend`, { token: partner, body: { reason: 'late payments' } });
    expect(suspended.body).toMatchObject({ status: 'SUSPENDED', statusReason: 'late payments' });
    expect((await h.call('POST', `${path}/activate`, { token: op })).body.status).toBe('ACTIVE');
    expect((await h.call('POST', `${path}/terminate`, { token: op })).body).toMatchObject({ status: 'TERMINATED', allowedActions: [] });
    const after = await h.call('POST', `${path}/terminate`, { token: op });
    expect(after.status).toBe(409);
    expect(after.body).toMatchObject({ currentStatus: 'TERMINATED', allowedActions: [] });
    expect((await h.call('PUT', path, { token: op, body: { metadata: { a: 1 } } })).status).toBe(409);
  });

  it('updates agreementDetails, configuration, metadata and endDate, and nothing else', async () => {
    const { body: rel } = await create();
    const path = `${BASE}/relationships/${rel.id}`;
    const u = await h.call('PUT', path, { token: vendor, body: { configuration: { webhooks: true }, metadata: { tier: 'gold' } } });
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({ configuration: { webhooks: true }, metadata: { tier: 'gold' }, agreementDetails: specExample.agreementDetails, version: 2 });
    for (const bad of [{ status: 'ACTIVE' }, { vendorId: 'x' }, { id: 'x' }, { version: 3 }, {}, { metadata: 'not an object' }]) {
      const r = await h.call('PUT', path, { token: vendor, body: bad });
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('refuses unknown and server-owned fields on create, and a status other than PENDING', async () => {
    for (const extra of [{ id: 'x' }, { version: 1 }, { tenantId: 'x' }, { status: 'ACTIVE' }, { createdAt: '2026-01-01T00:00:00Z' }, { colour: 'red' }]) {
      const r = await create({ ...specExample, ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.body.issues.length).toBeGreaterThan(0);
    }
    expect((await create({ ...specExample, status: 'PENDING' })).status).toBe(201);
    expect((await create({ ...specExample, relationshipType: 'FRIENDSHIP' })).status).toBe(400);
    expect((await create({ ...specExample, vendorId: 42 })).status).toBe(400);
    expect((await create({ ...specExample, endDate: '2020-01-01T00:00:00Z' })).status).toBe(400);
  });

  it('lets a vendor create only relationships it is party to (403 otherwise)', async () => {
    const r = await create({ ...specExample, vendorId: 'vendor-777' }, vendor);
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('FORBIDDEN');
  });

  it('lists with filters and keyset pagination, showing a party only its own relationships', async () => {
    for (let i = 0; i < 5; i++) await create({ vendorId: 'vendor-L', partnerId: `partner-L${i % 2}`, relationshipType: i % 2 ? 'RESELLER' : 'REFERRAL' });
    const all = await h.call('GET', `${BASE}/relationships?vendorId=vendor-L&limit=2`, { token: op });
    expect(all.body.data).toHaveLength(2);
    const seen = [...all.body.data];
    let cursor = all.body.pagination.nextCursor;
    while (cursor) {
      const next = await h.call('GET', `${BASE}/relationships?vendorId=vendor-L&limit=2&cursor=${cursor}`, { token: op });
      seen.push(...next.body.data);
      cursor = next.body.pagination.nextCursor;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen.map((r) => r.id)).size).toBe(5);
    const resellers = await h.call('GET', `${BASE}/relationships?vendorId=vendor-L&relationshipType=RESELLER&partnerId=partner-L1`, { token: op });
    expect(resellers.body.data).toHaveLength(2);
    expect((await h.call('GET', `${BASE}/relationships?status=TERMINATED`, { token: op })).body.data.every((r: { status: string }) => r.status === 'TERMINATED')).toBe(true);
    const mine = await h.call('GET', `${BASE}/relationships?limit=200`, { token: h.token('partner', 'partner-L0') });
    expect(mine.body.data.map((r: { partnerId: string }) => r.partnerId)).toEqual(['partner-L0', 'partner-L0', 'partner-L0']);
    const snoop = await h.call('GET', `${BASE}/relationships?vendorId=vendor-L`, { token: stranger });
    expect(snoop.body.data).toEqual([]);
    expect((await h.call('GET', `${BASE}/relationships?status=OPEN`, { token: op })).status).toBe(400);
    expect((await h.call('GET', `${BASE}/relationships?limit=0`, { token: op })).status).toBe(400);
    expect((await h.call('GET', `${BASE}/relationships?cursor=garbage`, { token: op })).status).toBe(400);
  });

  it('answers another tenant with 404 on every relationship route, and changes nothing', async () => {
    const { body: rel } = await create();
    const path = `${BASE}/relationships/${rel.id}`;
    const attempts = [
      h.call('GET', path, { token: stranger }),
      h.call('PUT', path, { token: stranger, body: { metadata: { owned: true } } }),
      h.call('POST', `${path}/activate`, { token: stranger }),
      h.call('POST', `${path}/suspend`, { token: stranger }),
      h.call('POST', `${path}/terminate`, { token: stranger }),
      h.call('GET', path, { token: h.token('partner', 'partner-000') }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('ACTOR_NOT_FOUND');
    }
    const unknown = await h.call('GET', `${BASE}/relationships/does-not-exist`, { token: op });
    expect(unknown.status).toBe(404);
    expect((await h.call('POST', `${BASE}/relationships/does-not-exist/activate`, { token: op })).status).toBe(404);
    expect((await h.call('GET', path, { token: op })).body.version).toBe(1);
  });

  it('replays the first answer for a retried Idempotency-Key, and refuses the key with another body (422)', async () => {
    const key = { 'idempotency-key': 'create-once-1' };
    const first = await create(specExample, op, key);
    const second = await create(specExample, op, key);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const other = await create({ ...specExample, relationshipType: 'RESELLER' }, op, key);
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // another caller's key space is its own
    expect((await create(specExample, vendor, key)).body.id).not.toBe(first.body.id);

    const path = `${BASE}/relationships/${first.body.id}`;
    const a1 = await h.call('POST', `${path}/activate`, { token: op, headers: { 'idempotency-key': 'act-1' } });
    const a2 = await h.call('POST', `${path}/activate`, { token: op, headers: { 'idempotency-key': 'act-1' } });
    expect(a1.status).toBe(200);
    expect(a2.status).toBe(200);
    expect(a2.body).toEqual(a1.body);
    const journal = await h.database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id = $1`, [first.body.id]);
    expect(journal.rows[0].n).toBe(2);
  });

  it('finds a create whose answer was lost (crash after commit) through the actor inbox, not a second actor', async () => {
    const key = { 'idempotency-key': 'lost-answer' };
    const first = await create(specExample, op, key);
    await h.database.pool.query(`DELETE FROM idempotency_keys WHERE key = 'lost-answer'`); // as if the process died before storing it
    const retry = await create(specExample, op, key);
    expect(retry.status).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    expect(retry.body.version).toBe(1);
    const n = await h.database.pool.query(`SELECT count(*)::int AS n FROM actors WHERE id = $1`, [first.body.id]);
    expect(n.rows[0].n).toBe(1);
  });

  it('terminates by itself when endDate passes (durable timer), and records it', async () => {
    const end = new Date(h.clock.now() + 60 * 60_000).toISOString();
    const { body: rel } = await create({ ...specExample, endDate: end });
    await h.call('POST', `${BASE}/relationships/${rel.id}/activate`, { token: op });
    const timers = await h.call('GET', `/api/v1/actors/relationship/${rel.id}`, { token: op });
    expect(timers.body.timers).toEqual([expect.objectContaining({ dueAt: end })]);
    h.clock.advance(60 * 60_000 + 1);
    const done = await waitFor('auto-termination', async () => {
      const r = await h.call('GET', `${BASE}/relationships/${rel.id}`, { token: op });
      return r.body.status === 'TERMINATED' ? r.body : null;
    });
    expect(done).toMatchObject({ terminatedAt: end, statusReason: 'endDate reached', allowedActions: [] });
    const audit = await h.call('GET', `${BASE}/audit?objectType=relationship&objectId=${rel.id}`, { token: op });
    expect(audit.body.data[0]).toMatchObject({
      action: 'relationship.timer',
      who: { sub: 'system', role: 'system' },
      before: { status: 'ACTIVE', version: 2 },
      after: { status: 'TERMINATED', version: 3 },
    });
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(['relationship.timer', 'relationship.activate', 'relationship.create']);
  });

  it('records who changed what, when, with before and after, readable by operators only', async () => {
    const { body: rel } = await create(specExample, vendor);
    await h.call('POST', `${BASE}/relationships/${rel.id}/activate`, { token: partner, headers: { 'x-request-id': 'req-audit-1' } });
    const audit = await h.call('GET', `${BASE}/audit?objectType=relationship&objectId=${rel.id}`, { token: op });
    expect(audit.status).toBe(200);
    expect(audit.body.data).toHaveLength(2);
    const [activation, creation] = audit.body.data;
    expect(creation).toMatchObject({ action: 'relationship.create', who: { role: 'vendor', tenantId: 'vendor-123' }, before: null, after: { status: 'PENDING' } });
    expect(activation).toMatchObject({
      action: 'relationship.activate',
      who: { sub: 'partner-user@partner-456', role: 'partner', tenantId: 'partner-456' },
      before: { status: 'PENDING', version: 1 },
      after: { status: 'ACTIVE', version: 2 },
      requestId: 'req-audit-1',
    });
    expect((await h.call('GET', `${BASE}/audit`, { token: vendor })).status).toBe(403);
  });

  it('never records a stale before: a change made elsewhere (another process) is detected by version', async () => {
    const { body: rel } = await create();
    await h.runtime.host.send({ type: 'relationship', id: rel.id }, { type: 'relationship.activate', at: new Date(h.clock.now()).toISOString(), by: 'elsewhere' });
    h.clock.advance(1_000);
    const r = await h.call('POST', `${BASE}/relationships/${rel.id}/suspend`, { token: op });
    expect(r.body).toMatchObject({ status: 'SUSPENDED', version: 3 });
    const audit = await h.call('GET', `${BASE}/audit?objectType=relationship&objectId=${rel.id}&action=relationship.suspend`, { token: op });
    expect(audit.body.data[0]).toMatchObject({ before: { version: 2, status: 'ACTIVE' }, after: { version: 3, status: 'SUSPENDED' } });
    // the change made elsewhere had no request to record it: the journal completes the trail
    h.clock.advance(31_000);
    const all = await h.call('GET', `${BASE}/audit?objectType=relationship&objectId=${rel.id}`, { token: op });
    expect(all.body.data.map((e: { action: string }) => e.action)).toEqual(['relationship.suspend', 'relationship.activate', 'relationship.create']);
    expect(all.body.data[1]).toMatchObject({ who: { sub: 'elsewhere' }, before: { version: 1, status: 'PENDING' }, after: { version: 2, status: 'ACTIVE' } });
  });
});
