import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
let id: string;

beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
  const end = new Date(h.clock.now() + 86_400_000).toISOString();
  const r = await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'vendor-ops', partnerId: 'partner-ops', relationshipType: 'REFERRAL', endDate: end } });
  id = r.body.id;
  await h.call('POST', `${BASE}/relationships/${id}/activate`, { token: op });
  await h.call('POST', `${BASE}/relationships/${id}/suspend`, { token: op });
});
afterAll(async () => h.close());

describe('operator routes', () => {
  it('shows an actor: state value, context, status, version, pending timers, accepted events', async () => {
    const r = await h.call('GET', `/api/v1/actors/relationship/${id}`, { token: op });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      type: 'relationship',
      id,
      tenant: 'vendor-ops',
      version: 3,
      value: { suspended: 'ending' },
      status: 'SUSPENDED',
      context: { vendorId: 'vendor-ops', partnerId: 'partner-ops' },
      accepts: ['relationship.activate', 'relationship.terminate', 'relationship.update'],
    });
    expect(r.body.timers).toEqual([expect.objectContaining({ event: 'xstate.after.untilEnd.relationship.suspended.ending' })]);
  });

  it('pages through the journal', async () => {
    const first = await h.call('GET', `/api/v1/actors/relationship/${id}/history?limit=2`, { token: op });
    expect(first.body.data.map((e: { event: { type: string } }) => e.event.type)).toEqual(['relationship.create', 'relationship.activate']);
    expect(first.body.pagination.nextAfterVersion).toBe(2);
    const rest = await h.call('GET', `/api/v1/actors/relationship/${id}/history?afterVersion=2`, { token: op });
    expect(rest.body.data).toEqual([expect.objectContaining({ version: 3, value: { suspended: 'ending' }, event: expect.objectContaining({ type: 'relationship.suspend', by: 'operator-user' }) })]);
    expect(rest.body.pagination.nextAfterVersion).toBeNull();
  });

  it('draws the statechart with the current state marked', async () => {
    const r = await h.call('GET', `/api/v1/actors/relationship/${id}/chart`, { token: op });
    expect(r.status).toBe(200);
    const states = r.body.chart.states as Array<{ key: string; current: boolean; transitions: Array<{ event: string; target: string }>; states: Array<{ key: string; current: boolean }> }>;
    expect(states.map((s) => s.key)).toEqual(['draft', 'pending', 'active', 'suspended', 'terminated']);
    const suspended = states.find((s) => s.key === 'suspended')!;
    expect(suspended.current).toBe(true);
    expect(suspended.states.find((s) => s.key === 'ending')!.current).toBe(true);
    expect(states.filter((s) => s.current).map((s) => s.key)).toEqual(['suspended']);
    expect(suspended.transitions.map((t) => `${t.event}->${t.target}`)).toContain('relationship.activate->relationship.active');
  });

  it('searches by type, status and tenant', async () => {
    const r = await h.call('GET', `/api/v1/actors?type=relationship&status=SUSPENDED&tenant=vendor-ops`, { token: op });
    expect(r.body.data.map((a: { id: string }) => a.id)).toEqual([id]);
    expect((await h.call('GET', `/api/v1/actors?type=relationship&status=ACTIVE&tenant=vendor-ops`, { token: op })).body.data).toEqual([]);
  });

  it('is for operators only (404 for vendors and partners, 403 for services), and 404 for unknown ids and undeployed types', async () => {
    for (const [token, status] of [[h.token('vendor', 'vendor-ops'), 404], [h.token('partner', 'partner-ops'), 404], [h.token('service'), 403]] as const) {
      for (const path of [`/api/v1/actors/relationship/${id}`, `/api/v1/actors/relationship/${id}/history`, `/api/v1/actors/relationship/${id}/chart`, '/api/v1/actors?type=relationship']) {
        const r = await h.call('GET', path, { token });
        expect(r.status, path).toBe(status);
      }
    }
    expect((await h.call('GET', '/api/v1/actors/relationship/nope', { token: op })).status).toBe(404);
    expect((await h.call('GET', '/api/v1/actors/relationship/nope/history', { token: op })).status).toBe(404);
    expect((await h.call('GET', `/api/v1/actors/saga/${id}`, { token: op })).status).toBe(404);
  });
});
