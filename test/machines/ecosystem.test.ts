import { describe, expect, it } from 'vitest';
import { ecosystemMachine, ecosystemStateOf, project, type CheckSettings, type EcosystemContext, type EcosystemEvent } from '../../machines/ecosystem/index.js';
import { step, type TimerRow } from '../../runtime/step.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';

const T0 = '2026-03-01T00:00:00.000Z';
const at = (s: number) => new Date(Date.parse(T0) + s * 1000).toISOString();
const ID = 'v1:databricks-prod';
const settings: CheckSettings = { tier: 'enterprise', intervalMs: 30_000, degradedLatencyMs: 500, unhealthyAfter: 3 };

type Out = { snapshot: PersistedSnapshot; timers: TimerRow[]; effects: unknown[] };

/** One transition through the runtime's own step, JSON round-tripped as jsonb would. */
function run(snapshot: PersistedSnapshot | null, event: EcosystemEvent, timers: TimerRow[] = []): Out {
  const out = step({ machine: ecosystemMachine, snapshot, input: { id: ID, tenant: 'v1' }, timers, deliver: { kind: 'event', event }, now: Date.parse(event.at) });
  if ('rejected' in out) throw new Error(`rejected ${event.type} in ${JSON.stringify(out.value)}`);
  return { snapshot: JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot, timers: out.timers, effects: out.effects };
}

function fire(o: Out): Out {
  const t = o.timers[0]!;
  const out = step({ machine: ecosystemMachine, snapshot: o.snapshot, input: null, timers: o.timers, deliver: { kind: 'timer', key: t.key }, now: t.dueAt });
  if ('rejected' in out) throw new Error('timer rejected');
  return { snapshot: JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot, timers: out.timers, effects: out.effects };
}

const ctx = (s: PersistedSnapshot) => s.context as unknown as EcosystemContext;
const changes = (o: Out) => o.effects.filter((e) => (e as { subject?: string }).subject === 'test.events.IntegrationHealthChanged');

describe('ecosystem (registered integration) machine', () => {
  it('registers with its first check, then checks on a durable timer at the tier interval through the ecosystem connector', () => {
    const r = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, events: 'test.events', firstCheck: { ok: true, status: 200, latencyMs: 12 }, at: T0 });
    expect(ecosystemStateOf(r.snapshot.value)).toBe('active');
    expect(ctx(r.snapshot).health).toMatchObject({ status: 'healthy', latencyMs: 12, lastCheckAt: T0, consecutiveFailures: 0, checks: 1 });
    expect(changes(r)).toHaveLength(1);
    expect(r.timers).toHaveLength(1);
    expect(r.timers[0]!.dueAt).toBe(Date.parse(T0) + 30_000);
    expect(project(r.snapshot)).toEqual({ status: 'ACTIVE', tenant: 'v1', attrs: { name: 'databricks-prod', tier: 'enterprise', health: 'healthy' } });
    const fired = fire(r);
    expect(fired.effects).toEqual([{ type: 'concord.call', connector: 'ecosystem', operation: 'health', input: { id: ID, tenantId: 'v1', name: 'databricks-prod' } }]);
    expect(fired.timers).toHaveLength(0); // one check at a time: the next timer is set by its answer
  });

  it('degrades on a failure, turns unhealthy at unhealthyAfter failures in a row, recovers; each change of status is published once', () => {
    let o = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, events: 'test.events', firstCheck: { ok: true, status: 200, latencyMs: 5 }, at: T0 });
    const statuses: string[] = [];
    let published = 0;
    const outcomes: EcosystemEvent[] = [
      { type: 'ecosystem.health.failed', error: { code: 'NETWORK', message: 'ECONNREFUSED' }, at: at(30) },
      { type: 'ecosystem.health.done', output: { ok: false, status: 503, latencyMs: 3 }, at: at(60) },
      { type: 'ecosystem.health.failed', error: { code: 'NETWORK', message: 'ECONNREFUSED' }, at: at(90) },
      { type: 'ecosystem.health.failed', error: { code: 'NETWORK', message: 'ECONNREFUSED' }, at: at(120) },
      { type: 'ecosystem.health.done', output: { ok: true, status: 200, latencyMs: 900 }, at: at(150) },
      { type: 'ecosystem.health.done', output: { ok: true, status: 200, latencyMs: 8 }, at: at(180) },
    ];
    for (const e of outcomes) {
      o = fire(o);
      o = run(o.snapshot, e, o.timers);
      statuses.push(ctx(o.snapshot).health.status);
      published += changes(o).length;
      expect(o.timers).toHaveLength(1);
    }
    expect(statuses).toEqual(['degraded', 'degraded', 'unhealthy', 'unhealthy', 'degraded', 'healthy']);
    expect(published).toBe(4);
    expect(ctx(o.snapshot).health).toMatchObject({ consecutiveFailures: 0, lastOkAt: at(180), since: at(180), checks: 7 });
  });

  it('a new tier restarts the wait at its interval; deactivate stops the checks, activate checks at once; delete then register again', () => {
    const r = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, at: T0 });
    expect(ctx(r.snapshot).health.status).toBe('unknown');
    const c = run(r.snapshot, { type: 'ecosystem.configure', settings: { ...settings, tier: 'community', intervalMs: 300_000 }, at: at(10) }, r.timers);
    expect(c.timers[0]!.dueAt).toBe(Date.parse(at(10)) + 300_000);
    const d = run(c.snapshot, { type: 'ecosystem.deactivate', at: at(20) }, c.timers);
    expect(ecosystemStateOf(d.snapshot.value)).toBe('inactive');
    expect(d.timers).toHaveLength(0);
    const a = run(d.snapshot, { type: 'ecosystem.activate', at: at(30) }, d.timers);
    expect(a.effects).toHaveLength(1);
    const x = run(a.snapshot, { type: 'ecosystem.delete', at: at(40) }, a.timers);
    expect(ecosystemStateOf(x.snapshot.value)).toBe('deleted');
    expect(x.timers).toHaveLength(0);
    const again = run(x.snapshot, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, at: at(50) }, x.timers);
    expect(ecosystemStateOf(again.snapshot.value)).toBe('active');
    // registered again while active (an earlier delete never reached it): starts over with the new settings and one timer
    const over = run(again.snapshot, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings: { ...settings, intervalMs: 60_000 }, firstCheck: { ok: true, status: 200, latencyMs: 3 }, at: at(60) }, again.timers);
    expect(ctx(over.snapshot)).toMatchObject({ intervalMs: 60_000, health: { status: 'healthy', checks: 1 } });
    expect(over.timers).toHaveLength(1);
    expect(over.timers[0]!.dueAt).toBe(Date.parse(at(60)) + 60_000);
  });
});
