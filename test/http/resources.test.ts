import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
let owner: string;
let p456: string;
let p789: string;
let stranger: string;

beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
  owner = h.token('vendor', 'vendor-123');
  p456 = h.token('partner', 'partner-456');
  p789 = h.token('partner', 'partner-789');
  stranger = h.token('vendor', 'vendor-999');
});
afterAll(async () => h.close());

/** The spec's example body (createSharedResource), verbatim. */
const specResource = {
  resourceId: 'api-endpoint-789',
  resourceType: 'API_ENDPOINT',
  name: 'Customer Data API',
  description: 'API endpoint for customer data access',
  accessControl: {
    allowedPartners: ['partner-456', 'partner-789'],
    accessLevel: 'read',
  },
};

const newResource = async (token = owner) => (await h.call('POST', `${BASE}/resources`, { token, body: specResource })).body;
const grant = (resourceId: string, body: object, token = owner, headers: Record<string, string> = {}) =>
  h.call('POST', `${BASE}/resources/${resourceId}/grants`, { token, body, headers });
const access = (resourceId: string, q: string, token = op) => h.call('GET', `${BASE}/resources/${resourceId}/access?${q}`, { token });

describe('shared resources', () => {
  it('creates the spec example owned by the caller, and refuses an owner named by a vendor', async () => {
    const r = await h.call('POST', `${BASE}/resources`, { token: owner, body: specResource });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ...specResource, ownerId: 'vendor-123', ownerType: 'vendor', isActive: true, accessGrants: [] });
    const named = await h.call('POST', `${BASE}/resources`, { token: owner, body: { ...specResource, ownerId: 'vendor-999', ownerType: 'vendor' } });
    expect(named.status).toBe(400);
    for (const extra of [{ id: 'x' }, { isActive: false }, { createdAt: 'x' }, { resourceType: 'FTP_SERVER' }]) {
      expect((await h.call('POST', `${BASE}/resources`, { token: owner, body: { ...specResource, ...extra } })).status, JSON.stringify(extra)).toBe(400);
    }
  });

  it('lets an operator create a resource for a named owner (and requires it)', async () => {
    expect((await h.call('POST', `${BASE}/resources`, { token: op, body: specResource })).status).toBe(400);
    const r = await h.call('POST', `${BASE}/resources`, { token: op, body: { ...specResource, ownerId: 'partner-456', ownerType: 'partner' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ownerId: 'partner-456', ownerType: 'partner' });
  });

  it('accepts the spec grant example (resourceId in the body, a date for expiresAt) and honours the expiry', async () => {
    const res = await newResource();
    const r = await grant(res.id, { resourceId: res.id, grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read', expiresAt: '2025-12-31' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ grantedToId: 'partner-456', accessLevel: 'read', grantedBy: 'vendor-user@vendor-123', expiresAt: '2025-12-31T00:00:00.000Z' });
    // the example's date is already past on this clock: the grant exists but gives nothing
    expect((await access(res.id, 'partyId=partner-456&partyType=partner&level=read')).body).toMatchObject({ allowed: false });
    expect((await grant(res.id, { resourceId: 'another', grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' })).status).toBe(400);
  });

  it('honours expiresAt to the second', async () => {
    const res = await newResource();
    const expiresAt = new Date(h.clock.now() + 10_000).toISOString();
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'write', expiresAt });
    expect((await access(res.id, 'level=write', p456)).body).toMatchObject({ allowed: true, effectiveLevel: 'write', expiresAt });
    h.clock.advance(9_000);
    expect((await access(res.id, 'level=read', p456)).body.allowed).toBe(true);
    h.clock.advance(1_000);
    expect((await access(res.id, 'level=read', p456)).body).toMatchObject({ allowed: false, effectiveLevel: null });
  });

  it('orders levels read < write < admin, and only the owner or an admin grantee may grant', async () => {
    const res = await newResource();
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'admin' });
    await grant(res.id, { grantedToId: 'partner-789', grantedToType: 'partner', accessLevel: 'write' });
    expect((await access(res.id, 'level=admin', p456)).body.allowed).toBe(true);
    expect((await access(res.id, 'level=write', p789)).body.allowed).toBe(true);
    expect((await access(res.id, 'level=admin', p789)).body).toMatchObject({ allowed: false, effectiveLevel: 'write' });
    // a write grantee may not grant
    const denied = await grant(res.id, { grantedToId: 'partner-111', grantedToType: 'partner', accessLevel: 'read' }, p789);
    expect(denied.status).toBe(403);
    // an admin grantee may, up to admin
    const byAdmin = await grant(res.id, { grantedToId: 'partner-111', grantedToType: 'partner', accessLevel: 'read' }, p456);
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.grantedBy).toBe('partner-user@partner-456');
    // the owner may not be granted to
    expect((await grant(res.id, { grantedToId: 'vendor-123', grantedToType: 'vendor', accessLevel: 'read' })).status).toBe(400);
  });

  it('refuses a grant above the granter\'s level once its admin grant expires down to a lesser one', async () => {
    const res = await newResource();
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'admin', expiresAt: new Date(h.clock.now() + 1000).toISOString() });
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'write' });
    h.clock.advance(1000);
    expect((await grant(res.id, { grantedToId: 'partner-2', grantedToType: 'partner', accessLevel: 'write' }, p456)).status).toBe(403);
  });

  it('deactivates a resource: its grants stop working and new grants are refused', async () => {
    const res = await newResource();
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' });
    expect((await access(res.id, '', p456)).body.allowed).toBe(true);
    expect((await h.call('POST', `${BASE}/resources/${res.id}/deactivate`, { token: p456 })).status).toBe(403);
    const d = await h.call('POST', `${BASE}/resources/${res.id}/deactivate`, { token: owner });
    expect(d.status).toBe(200);
    expect(d.body.isActive).toBe(false);
    expect((await access(res.id, '', p456)).body).toMatchObject({ allowed: false, reason: 'resource is inactive' });
    expect((await grant(res.id, { grantedToId: 'partner-789', grantedToType: 'partner', accessLevel: 'read' })).status).toBe(409);
    expect((await h.call('POST', `${BASE}/resources/${res.id}/deactivate`, { token: owner })).status).toBe(409);
  });

  it('revokes a grant (the owner, or the grantee giving it up); a revoked grant gives nothing', async () => {
    const res = await newResource();
    const g1 = (await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' })).body;
    const g2 = (await grant(res.id, { grantedToId: 'partner-789', grantedToType: 'partner', accessLevel: 'read' })).body;
    expect((await h.call('DELETE', `${BASE}/grants/${g2.id}`, { token: p456 })).status).toBe(404); // another grantee's grant
    const r = await h.call('DELETE', `${BASE}/grants/${g1.id}`, { token: owner });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ isActive: false, revokedBy: 'vendor-user@vendor-123' });
    expect((await access(res.id, 'partyId=partner-456&partyType=partner')).body.allowed).toBe(false);
    expect((await access(res.id, '', p456)).status).toBe(404); // no longer a party to it
    expect((await h.call('DELETE', `${BASE}/grants/${g1.id}`, { token: owner })).status).toBe(409);
    expect((await h.call('DELETE', `${BASE}/grants/${g2.id}`, { token: p789 })).status).toBe(200);
    expect((await h.call('DELETE', `${BASE}/grants/nope`, { token: op })).status).toBe(404);
  });

  it('shows a party what it owns or was granted; grantees see only their own grants', async () => {
    const res = await newResource(h.token('vendor', 'vendor-list'));
    await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' }, h.token('vendor', 'vendor-list'));
    await grant(res.id, { grantedToId: 'partner-789', grantedToType: 'partner', accessLevel: 'read' }, h.token('vendor', 'vendor-list'));
    const asOwner = await h.call('GET', `${BASE}/resources/${res.id}`, { token: h.token('vendor', 'vendor-list') });
    expect(asOwner.body.accessGrants).toHaveLength(2);
    const asGrantee = await h.call('GET', `${BASE}/resources/${res.id}`, { token: p456 });
    expect(asGrantee.body.accessGrants.map((g: { grantedToId: string }) => g.grantedToId)).toEqual(['partner-456']);
    const list = await h.call('GET', `${BASE}/resources?limit=200`, { token: h.token('vendor', 'vendor-list') });
    expect(list.body.data.map((r: { id: string }) => r.id)).toEqual([res.id]);
    const paged = await h.call('GET', `${BASE}/resources?limit=1`, { token: op });
    expect(paged.body.data).toHaveLength(1);
    expect(paged.body.pagination.nextCursor).toEqual(expect.any(String));
    expect((await h.call('GET', `${BASE}/resources?resourceType=WEBHOOK`, { token: op })).body.data).toEqual([]);
  });

  it('answers another tenant with 404 on every resource route', async () => {
    const res = await newResource();
    const g = (await grant(res.id, { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' })).body;
    const tries = await Promise.all([
      h.call('GET', `${BASE}/resources/${res.id}`, { token: stranger }),
      h.call('POST', `${BASE}/resources/${res.id}/grants`, { token: stranger, body: { grantedToId: 'vendor-999', grantedToType: 'vendor', accessLevel: 'admin' } }),
      h.call('POST', `${BASE}/resources/${res.id}/deactivate`, { token: stranger }),
      h.call('GET', `${BASE}/resources/${res.id}/access`, { token: stranger }),
      h.call('DELETE', `${BASE}/grants/${g.id}`, { token: stranger }),
      h.call('GET', `${BASE}/resources/missing`, { token: owner }),
    ]);
    for (const r of tries) expect(r.status).toBe(404);
    expect((await h.call('GET', `${BASE}/resources?limit=200`, { token: stranger })).body.data).toEqual([]);
    expect((await access(res.id, '', p456)).body.allowed).toBe(true);
  });

  it('makes a grant idempotent with its key, in the same transaction', async () => {
    const res = await newResource();
    const body = { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read' };
    const [a, b] = await Promise.all([grant(res.id, body, owner, { 'idempotency-key': 'g-1' }), grant(res.id, body, owner, { 'idempotency-key': 'g-1' })]);
    expect(a.body.id).toBe(b.body.id);
    const n = await h.database.pool.query('SELECT count(*)::int AS n FROM resource_access_grants WHERE resource_id = $1', [res.id]);
    expect(n.rows[0].n).toBe(1);
    expect((await grant(res.id, { ...body, accessLevel: 'write' }, owner, { 'idempotency-key': 'g-1' })).status).toBe(422);
  });

  it('reads and lists a resource only for a live grant now: expired, revoked over an older expired grant, or on a deactivated resource is 404', async () => {
    // a partner of its own for each case, so that no other test's grant lets it see anything
    const pa = h.token('partner', 'partner-expired');
    const pb = h.token('partner', 'partner-revoked');
    const pc = h.token('partner', 'partner-deactivated');
    const listed = async (token: string) => ((await h.call('GET', `${BASE}/resources?limit=200`, { token })).body.data as Array<{ id: string }>).map((r) => r.id);
    const expired = await newResource();
    await grant(expired.id, { grantedToId: 'partner-expired', grantedToType: 'partner', accessLevel: 'read', expiresAt: new Date(h.clock.now() + 1000).toISOString() });
    const revoked = await newResource();
    await grant(revoked.id, { grantedToId: 'partner-revoked', grantedToType: 'partner', accessLevel: 'read', expiresAt: new Date(h.clock.now() + 1000).toISOString() });
    const later = (await grant(revoked.id, { grantedToId: 'partner-revoked', grantedToType: 'partner', accessLevel: 'write' })).body;
    const deactivated = await newResource();
    await grant(deactivated.id, { grantedToId: 'partner-deactivated', grantedToType: 'partner', accessLevel: 'read' });
    // while the grants are live, each partner reads and lists its resource
    for (const [token, res] of [[pa, expired], [pb, revoked], [pc, deactivated]] as const) {
      expect((await h.call('GET', `${BASE}/resources/${res.id}`, { token })).status).toBe(200);
      expect(await listed(token)).toEqual([res.id]);
    }
    h.clock.advance(1000); // the read grants with an expiry have expired
    expect((await h.call('DELETE', `${BASE}/grants/${later.id}`, { token: owner })).status).toBe(200);
    expect((await h.call('POST', `${BASE}/resources/${deactivated.id}/deactivate`, { token: owner })).status).toBe(200);
    for (const [token, res] of [[pa, expired], [pb, revoked], [pc, deactivated]] as const) {
      expect((await h.call('GET', `${BASE}/resources/${res.id}`, { token })).status).toBe(404);
      expect(await listed(token)).toEqual([]);
    }
    // the owner and operators still read all three
    for (const res of [expired, revoked, deactivated]) {
      expect((await h.call('GET', `${BASE}/resources/${res.id}`, { token: owner })).status).toBe(200);
      expect((await h.call('GET', `${BASE}/resources/${res.id}`, { token: op })).status).toBe(200);
    }
  });
});
