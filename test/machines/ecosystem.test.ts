import { describe, expect, it } from 'vitest';
import { ecosystemMachine, ecosystemStateOf, nextHealth, project, type CheckSettings, type EcosystemContext, type EcosystemEvent } from '../../machines/ecosystem/index.js';
import { step, type TimerRow } from '../../runtime/step.js';
import { nextDueAfter } from '../../services/ecosystem/monitor.js';
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

/** An operator's "check now" (the health monitor runs the periodic checks, not this actor). */
const check = (o: Out, t: string): Out => run(o.snapshot, { type: 'ecosystem.check', at: t }, o.timers);
/** Whether the machine refuses the event where it is (nothing changes: the runtime answers so). */
const refuses = (o: Out, event: EcosystemEvent): boolean => 'rejected' in step({ machine: ecosystemMachine, snapshot: o.snapshot, input: null, timers: o.timers, deliver: { kind: 'event', event }, now: Date.parse(event.at) });

const ctx = (s: PersistedSnapshot) => s.context as unknown as EcosystemContext;
const changes = (o: Out) => o.effects.filter((e) => (e as { subject?: string }).subject === 'test.events.IntegrationHealthChanged');

describe('ecosystem (registered integration) machine', () => {
  it('registers with its first check and sets no timer (the health monitor schedules the checks); a check now goes through the ecosystem connector', () => {
    const r = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, events: 'test.events', firstCheck: { ok: true, status: 200, latencyMs: 12 }, at: T0 });
    expect(ecosystemStateOf(r.snapshot.value)).toBe('active');
    expect(ctx(r.snapshot).health).toMatchObject({ status: 'healthy', latencyMs: 12, lastCheckAt: T0, consecutiveFailures: 0, checks: 1 });
    expect(changes(r)).toHaveLength(1);
    expect(r.timers).toHaveLength(0);
    expect(project(r.snapshot)).toEqual({ status: 'ACTIVE', tenant: 'v1', attrs: { name: 'databricks-prod', tier: 'enterprise', health: 'healthy' } });
    const checking = check(r, at(5));
    expect(checking.effects).toEqual([{ type: 'concord.call', connector: 'ecosystem', operation: 'health', input: { id: ID, tenantId: 'v1', name: 'databricks-prod' } }]);
    expect(refuses(checking, { type: 'ecosystem.check', at: at(6) })).toBe(true); // one check at a time: the running one's answer is awaited
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
      o = check(o, e.at);
      o = run(o.snapshot, e, o.timers);
      statuses.push(ctx(o.snapshot).health.status);
      published += changes(o).length;
      expect(o.timers).toHaveLength(0);
    }
    expect(statuses).toEqual(['degraded', 'degraded', 'unhealthy', 'unhealthy', 'degraded', 'healthy']);
    expect(published).toBe(4);
    expect(ctx(o.snapshot).health).toMatchObject({ consecutiveFailures: 0, lastOkAt: at(180), since: at(180), checks: 7 });
  });

  it("takes the health monitor's observed health: the record as computed, published when the status changed; ignored while inactive", () => {
    const r = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, events: 'test.events', firstCheck: { ok: true, status: 200, latencyMs: 5 }, at: T0 });
    // the monitor counted two failures without telling the actor (degraded: no change after the first), then the third
    let h = ctx(r.snapshot).health;
    for (const s of [30, 60, 90]) h = nextHealth(h, settings, { ok: false, latencyMs: null, error: { code: 'NETWORK', message: 'ECONNREFUSED' } }, at(s));
    expect(h).toMatchObject({ status: 'unhealthy', consecutiveFailures: 3, since: at(90) });
    const o = run(r.snapshot, { type: 'ecosystem.health.observed', health: h, at: at(90) }, r.timers);
    expect(ctx(o.snapshot).health).toEqual(h);
    expect(changes(o)).toHaveLength(1);
    expect((changes(o)[0] as { data: unknown }).data).toMatchObject({ status: 'unhealthy', consecutiveFailures: 3 });
    expect(project(o.snapshot).attrs.health).toBe('unhealthy');
    expect(o.timers).toHaveLength(0);
    const same = run(o.snapshot, { type: 'ecosystem.health.observed', health: { ...h, consecutiveFailures: 4, lastCheckAt: at(120) }, at: at(120) }, o.timers);
    expect(changes(same)).toHaveLength(0);
    expect(ctx(same.snapshot).health.consecutiveFailures).toBe(4);
    const off = run(same.snapshot, { type: 'ecosystem.deactivate', at: at(130) }, same.timers);
    expect(refuses(off, { type: 'ecosystem.health.observed', health: { ...h, status: 'healthy' }, at: at(140) })).toBe(true);
  });

  it('a new tier is recorded; deactivate, activate (checks at once), delete and register again set no timer', () => {
    const r = run(null, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, at: T0 });
    expect(ctx(r.snapshot).health.status).toBe('unknown');
    const c = run(r.snapshot, { type: 'ecosystem.configure', settings: { ...settings, tier: 'community', intervalMs: 300_000 }, at: at(10) }, r.timers);
    expect(ctx(c.snapshot)).toMatchObject({ tier: 'community', intervalMs: 300_000 });
    expect(c.timers).toHaveLength(0);
    const d = run(c.snapshot, { type: 'ecosystem.deactivate', at: at(20) }, c.timers);
    expect(ecosystemStateOf(d.snapshot.value)).toBe('inactive');
    const a = run(d.snapshot, { type: 'ecosystem.activate', at: at(30) }, d.timers);
    expect(a.effects).toHaveLength(1);
    const x = run(a.snapshot, { type: 'ecosystem.delete', at: at(40) }, a.timers);
    expect(ecosystemStateOf(x.snapshot.value)).toBe('deleted');
    const again = run(x.snapshot, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings, at: at(50) }, x.timers);
    expect(ecosystemStateOf(again.snapshot.value)).toBe('active');
    // registered again while active (an earlier delete never reached it): starts over with the new settings
    const over = run(again.snapshot, { type: 'ecosystem.register', tenantId: 'v1', name: 'databricks-prod', settings: { ...settings, intervalMs: 60_000 }, firstCheck: { ok: true, status: 200, latencyMs: 3 }, at: at(60) }, again.timers);
    expect(ctx(over.snapshot)).toMatchObject({ intervalMs: 60_000, health: { status: 'healthy', checks: 1 } });
    expect(over.timers).toHaveLength(0);
  });
});

describe('health monitor due times', () => {
  it('spreads the checks over the interval by a hash of the id, the same in any process and after a restart', () => {
    const interval = 60_000;
    const now = Date.parse(T0) + 12_345;
    const offsets = Array.from({ length: 1_000 }, (_, i) => nextDueAfter(`bench-${i % 50}:int-${i}`, interval, now) - now);
    for (const o of offsets) {
      expect(o).toBeGreaterThan(0);
      expect(o).toBeLessThanOrEqual(interval);
    }
    // spread: every tenth of the interval holds about a tenth of the checks
    const deciles = Array.from({ length: 10 }, (_, d) => offsets.filter((o) => o > (d * interval) / 10 && o <= ((d + 1) * interval) / 10).length);
    for (const n of deciles) {
      expect(n).toBeGreaterThan(60);
      expect(n).toBeLessThan(140);
    }
    // deterministic, and one interval apart from one due time to the next
    const due = nextDueAfter('v1:databricks-prod', interval, now);
    expect(nextDueAfter('v1:databricks-prod', interval, now)).toBe(due);
    expect(nextDueAfter('v1:databricks-prod', interval, due)).toBe(due + interval);
    expect(nextDueAfter('v1:databricks-prod', interval, due - 1)).toBe(due);
  });
});
