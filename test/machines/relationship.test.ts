import { describe, expect, it } from 'vitest';
import { createActor, type SnapshotFrom } from 'xstate';
import { project, relationshipMachine, statusOf, type RelationshipContext, type RelationshipEvent } from '../../machines/relationship.js';
import { step, type TimerRow } from '../../runtime/step.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';

const T0 = '2026-03-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();
const create: RelationshipEvent = { type: 'relationship.create', vendorId: 'v1', partnerId: 'p1', relationshipType: 'RESELLER', at: T0, by: 'op' };

/** One transition through the runtime's own step (null clock, timers as rows), JSON round-tripped as jsonb would. */
function run(snapshot: PersistedSnapshot | null, event: RelationshipEvent, timers: TimerRow[] = [], now = Date.parse(event.at)) {
  const out = step({ machine: relationshipMachine, snapshot, input: { id: 'r1', tenant: null }, timers, deliver: { kind: 'event', event }, now });
  if ('rejected' in out) return out;
  return { ...out, snapshot: JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot };
}

function ok(r: ReturnType<typeof run>) {
  if ('rejected' in r) throw new Error(`rejected in ${JSON.stringify(r.value)}`);
  return r;
}

describe('relationship machine', () => {
  it('starts PENDING on create, records the agreement and who created it, and announces it', () => {
    const r = ok(run(null, { ...create, agreementDetails: { commissionRate: 0.15 } }));
    const c = r.snapshot.context as unknown as RelationshipContext;
    expect(statusOf(r.snapshot.value)).toBe('PENDING');
    expect(c).toMatchObject({ vendorId: 'v1', partnerId: 'p1', startDate: T0, createdBy: 'op', agreementDetails: { commissionRate: 0.15 } });
    expect(r.effects).toEqual([expect.objectContaining({ type: 'concord.publish', subject: 'concord.events.relationship.created' })]);
    expect(r.timers).toEqual([]);
    expect(project(r.snapshot)).toEqual({ status: 'PENDING', tenant: 'v1', attrs: { vendorId: 'v1', partnerId: 'p1', relationshipType: 'RESELLER' } });
  });

  it('enforces the lifecycle: activate from PENDING/SUSPENDED, suspend from ACTIVE, terminate from all but TERMINATED', () => {
    let s = ok(run(null, create)).snapshot;
    expect('rejected' in run(s, { type: 'relationship.suspend', at: at(1), by: 'op' })).toBe(true);
    s = ok(run(s, { type: 'relationship.activate', at: at(1), by: 'op' })).snapshot;
    expect(statusOf(s.value)).toBe('ACTIVE');
    expect('rejected' in run(s, { type: 'relationship.activate', at: at(2), by: 'op' })).toBe(true);
    s = ok(run(s, { type: 'relationship.suspend', at: at(2), by: 'op', reason: 'late payments' })).snapshot;
    expect(statusOf(s.value)).toBe('SUSPENDED');
    expect((s.context as unknown as RelationshipContext).statusReason).toBe('late payments');
    s = ok(run(s, { type: 'relationship.activate', at: at(3), by: 'op' })).snapshot;
    s = ok(run(s, { type: 'relationship.terminate', at: at(4), by: 'op' })).snapshot;
    expect(statusOf(s.value)).toBe('TERMINATED');
    const rejected = run(s, { type: 'relationship.terminate', at: at(5), by: 'op' });
    expect(rejected).toMatchObject({ rejected: true, accepts: [] });
    expect('rejected' in run(s, { type: 'relationship.update', metadata: {}, at: at(5), by: 'op' })).toBe(true);
  });

  it('schedules a durable timer for endDate, reschedules it when endDate changes, and terminates itself when it fires', () => {
    const first = ok(run(null, { ...create, endDate: at(60) }));
    expect(first.snapshot.value).toEqual({ pending: 'ending' });
    expect(first.timers).toHaveLength(1);
    expect(first.timers[0]!.dueAt).toBe(Date.parse(at(60)));
    const moved = ok(run(first.snapshot, { type: 'relationship.update', endDate: at(120), at: at(10), by: 'op' }, first.timers));
    expect(moved.timers).toHaveLength(1);
    expect(moved.timers[0]!.dueAt).toBe(Date.parse(at(120)));
    const activated = ok(run(moved.snapshot, { type: 'relationship.activate', at: at(20), by: 'op' }, moved.timers));
    expect(activated.timers[0]!.dueAt).toBe(Date.parse(at(120)));
    const fired = step({ machine: relationshipMachine, snapshot: activated.snapshot, input: null, timers: activated.timers, deliver: { kind: 'timer', key: activated.timers[0]!.key }, now: Date.parse(at(120)) });
    if ('rejected' in fired) throw new Error('timer rejected');
    expect(statusOf(fired.snapshot.value)).toBe('TERMINATED');
    expect(fired.snapshot.context).toMatchObject({ terminatedAt: at(120), statusReason: 'endDate reached' });
    expect(fired.timers).toEqual([]);
    const cleared = ok(run(activated.snapshot, { type: 'relationship.update', endDate: null, at: at(30), by: 'op' }, activated.timers));
    expect(cleared.timers).toEqual([]);
    expect(cleared.snapshot.value).toEqual({ active: 'open' });
  });

  it('is deterministic: the same events replay to the same snapshot', () => {
    const events: RelationshipEvent[] = [create, { type: 'relationship.activate', at: at(1), by: 'a' }, { type: 'relationship.suspend', at: at(2), by: 'b' }];
    const live = createActor(relationshipMachine, { input: { id: 'r1', tenant: null } }).start();
    for (const e of events) live.send(e);
    let s: PersistedSnapshot | null = null;
    for (const e of events) s = ok(run(s, e)).snapshot;
    const persisted = JSON.parse(JSON.stringify(live.getPersistedSnapshot())) as SnapshotFrom<typeof relationshipMachine>;
    expect(persisted.value).toEqual(s!.value);
    expect(persisted.context).toEqual(s!.context);
    live.stop();
  });

  it('publishes under the events root its create named, including the endDate timer; a snapshot without one uses concord.events', () => {
    const created = ok(run(null, { ...create, events: 'acme.events', endDate: at(60) }));
    expect((created.snapshot.context as unknown as RelationshipContext).events).toBe('acme.events');
    expect(created.effects).toEqual([expect.objectContaining({ subject: 'acme.events.relationship.created' })]);
    const activated = ok(run(created.snapshot, { type: 'relationship.activate', at: at(1), by: 'op' }, created.timers));
    expect(activated.effects).toEqual([expect.objectContaining({ subject: 'acme.events.relationship.activated' })]);
    const fired = step({ machine: relationshipMachine, snapshot: activated.snapshot, input: null, timers: activated.timers, deliver: { kind: 'timer', key: activated.timers[0]!.key }, now: Date.parse(at(60)) });
    if ('rejected' in fired) throw new Error('timer rejected');
    expect(fired.effects).toEqual([expect.objectContaining({ subject: 'acme.events.relationship.terminated' })]);

    // a relationship persisted before the root was recorded (no `events` in its context)
    const old = ok(run(null, create)).snapshot;
    expect(old.context).not.toHaveProperty('events');
    expect(ok(run(old, { type: 'relationship.activate', at: at(1), by: 'op' })).effects).toEqual([expect.objectContaining({ subject: 'concord.events.relationship.activated' })]);
  });
});
