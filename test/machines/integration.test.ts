import { describe, expect, it } from 'vitest';
import { integrationMachine, project, REFRESH_MARGIN_MS, stateOf, type IntegrationContext, type IntegrationEvent } from '../../machines/integration/index.js';
import { step, type TimerRow } from '../../runtime/step.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';

const T0 = '2026-03-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();
const ID = 'v1:mercadolibre:146322322';
const credential = { tenantId: 'v1', service: 'mercadolibre', connectionId: '146322322', version: 1 };
const connected: IntegrationEvent = {
  type: 'integration.connected',
  tenantId: 'v1',
  provider: 'mercadolibre',
  account: '146322322',
  credential,
  tokenExpiresAt: at(360),
  scopes: ['read', 'write'],
  events: 'test.events',
  at: T0,
};

/** One transition through the runtime's own step, JSON round-tripped as jsonb would. */
function run(snapshot: PersistedSnapshot | null, event: IntegrationEvent, timers: TimerRow[] = [], now = Date.parse('at' in event ? event.at : event.receivedAt)) {
  const out = step({ machine: integrationMachine, snapshot, input: { id: ID, tenant: 'v1' }, timers, deliver: { kind: 'event', event }, now });
  if ('rejected' in out) return out;
  return { ...out, snapshot: JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot };
}

function ok(r: ReturnType<typeof run>) {
  if ('rejected' in r) throw new Error(`rejected in ${JSON.stringify(r.value)}`);
  return r;
}

const ctx = (s: PersistedSnapshot) => s.context as unknown as IntegrationContext;

describe('integration (connection) machine', () => {
  it('connects with a credential reference and expiry, never a token, and sets the refresh timer a margin before expiry', () => {
    const started = ok(run(null, { type: 'integration.authorization.started', tenantId: 'v1', provider: 'mercadolibre', account: '146322322', stateNonce: 'n-1', at: T0 }));
    expect(stateOf(started.snapshot.value)).toBe('connecting');
    expect(ctx(started.snapshot).stateNonce).toBe('n-1');
    const r = ok(run(started.snapshot, connected));
    expect(stateOf(r.snapshot.value)).toBe('connected');
    expect(ctx(r.snapshot)).toMatchObject({ credential, tokenExpiresAt: at(360), scopes: ['read', 'write'], stateNonce: null });
    expect(r.timers).toHaveLength(1);
    expect(r.timers[0]!.dueAt).toBe(Date.parse(at(360)) - REFRESH_MARGIN_MS);
    expect(project(r.snapshot)).toEqual({ status: 'CONNECTED', tenant: 'v1', attrs: { provider: 'mercadolibre', account: '146322322' } });
    expect(JSON.stringify(r.snapshot)).not.toMatch(/APP_USR|TG-|token"/);
  });

  it('a call refused for good (the outbound door saw REAUTHORIZATION_REQUIRED) marks a connected connection and announces it once', () => {
    const c = ok(run(null, connected));
    const r = ok(run(c.snapshot, { type: 'integration.reauthorization.required', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'invalid_client' }, at: at(10) }));
    expect(stateOf(r.snapshot.value)).toBe('reauthorization_required');
    expect(ctx(r.snapshot).lastError).toEqual({ code: 'REAUTHORIZATION_REQUIRED', message: 'invalid_client' });
    expect(r.effects).toEqual([expect.objectContaining({ type: 'concord.publish', subject: 'test.events.IntegrationReauthorizationRequired' })]);
    // already there: recorded, not announced again
    const again = ok(run(r.snapshot, { type: 'integration.reauthorization.required', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'again' }, at: at(11) }));
    expect(again.effects).toEqual([]);
    expect(stateOf(again.snapshot.value)).toBe('reauthorization_required');
  });

  it('refreshes once: the timer (or a refresh.start) emits one refresh call, further starts are absorbed, done reconnects', () => {
    const c = ok(run(null, connected));
    const fired = step({ machine: integrationMachine, snapshot: c.snapshot, input: null, timers: c.timers, deliver: { kind: 'timer', key: c.timers[0]!.key }, now: c.timers[0]!.dueAt });
    if ('rejected' in fired) throw new Error('timer rejected');
    const expired = JSON.parse(JSON.stringify(fired.snapshot)) as PersistedSnapshot;
    expect(stateOf(expired.value)).toBe('token_expired');
    expect(fired.effects).toEqual([{ type: 'concord.call', connector: 'integration', operation: 'refresh', input: { tenantId: 'v1', provider: 'mercadolibre', account: '146322322', credential } }]);
    const again = ok(run(expired, { type: 'integration.refresh.start', at: at(356) }));
    expect(again.effects).toEqual([]);
    expect(stateOf(again.snapshot.value)).toBe('token_expired');
    const next = { ...credential, version: 2 };
    const done = ok(run(again.snapshot, { type: 'integration.refresh.done', output: { credential: next, tokenExpiresAt: at(716), scopes: ['read'] }, at: at(356) }));
    expect(stateOf(done.snapshot.value)).toBe('connected');
    expect(ctx(done.snapshot)).toMatchObject({ credential: next, tokenExpiresAt: at(716), lastRefreshAt: at(356) });
    expect(done.timers[0]!.dueAt).toBe(Date.parse(at(716)) - REFRESH_MARGIN_MS);
  });

  it('invalid_grant -> reauthorization_required with an IntegrationReauthorizationRequired event under the events root', () => {
    const c = ok(run(null, connected));
    const e = ok(run(c.snapshot, { type: 'integration.refresh.start', reason: '401', at: at(1) }));
    expect(e.effects).toHaveLength(1);
    const failed = ok(run(e.snapshot, { type: 'integration.refresh.failed', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'invalid_grant', retryable: false }, at: at(2) }));
    expect(stateOf(failed.snapshot.value)).toBe('reauthorization_required');
    expect(failed.effects).toEqual([
      expect.objectContaining({ type: 'concord.publish', subject: 'test.events.IntegrationReauthorizationRequired', data: expect.objectContaining({ connectionId: ID, reason: 'REAUTHORIZATION_REQUIRED' }) }),
    ]);
    expect(failed.timers).toEqual([]);
  });

  it('a refresh asked for with a credential older than the one held is already done: no second refresh', () => {
    const c = ok(run(null, connected));
    const e = ok(run(c.snapshot, { type: 'integration.refresh.start', reason: '401', seenVersion: 1, at: at(1) }));
    const done = ok(run(e.snapshot, { type: 'integration.refresh.done', output: { credential: { ...credential, version: 2 }, tokenExpiresAt: at(361), scopes: ['read'] }, at: at(2) }));
    // a caller refused with version 1 asks after the refresh to version 2 landed: nothing to do
    const late = ok(run(done.snapshot, { type: 'integration.refresh.start', reason: '401', seenVersion: 1, at: at(3) }));
    expect(stateOf(late.snapshot.value)).toBe('connected');
    expect(late.effects).toEqual([]);
    // refused with the current version: a refresh is due again
    const again = ok(run(done.snapshot, { type: 'integration.refresh.start', reason: '401', seenVersion: 2, at: at(3) }));
    expect(again.effects).toEqual([expect.objectContaining({ type: 'concord.call', operation: 'refresh' })]);
  });

  it('a retryable refresh failure backs off on a durable timer and calls again', () => {
    const c = ok(run(null, connected));
    const e = ok(run(c.snapshot, { type: 'integration.refresh.start', at: at(1) }));
    const failed = ok(run(e.snapshot, { type: 'integration.refresh.failed', error: { code: 'UNAVAILABLE', message: '503', retryable: true }, at: at(2) }));
    expect(failed.snapshot.value).toEqual({ token_expired: 'backingOff' });
    expect(failed.timers).toHaveLength(1);
    const fired = step({ machine: integrationMachine, snapshot: failed.snapshot, input: null, timers: failed.timers, deliver: { kind: 'timer', key: failed.timers[0]!.key }, now: failed.timers[0]!.dueAt });
    if ('rejected' in fired) throw new Error('timer rejected');
    expect(fired.effects).toEqual([expect.objectContaining({ type: 'concord.call', operation: 'refresh' })]);
  });

  it('pause and resume; webhooks recorded in every state but disconnected; disconnect forgets the credential reference', () => {
    let s = ok(run(null, connected)).snapshot;
    s = ok(run(s, { type: 'integration.webhook.received', webhookId: 'w1', topic: 'items', receivedAt: at(1) })).snapshot;
    expect(ctx(s).lastWebhook).toEqual({ webhookId: 'w1', topic: 'items', receivedAt: at(1) });
    const paused = ok(run(s, { type: 'integration.pause', at: at(2) }));
    expect(stateOf(paused.snapshot.value)).toBe('paused');
    expect(paused.timers).toEqual([]);
    s = ok(run(paused.snapshot, { type: 'integration.webhook.received', webhookId: 'w2', topic: 'items', receivedAt: at(3) })).snapshot;
    const resumed = ok(run(s, { type: 'integration.resume', at: at(4) }));
    expect(stateOf(resumed.snapshot.value)).toBe('connected');
    expect(resumed.timers).toHaveLength(1);
    const gone = ok(run(resumed.snapshot, { type: 'integration.disconnect', at: at(5) }, resumed.timers));
    expect(stateOf(gone.snapshot.value)).toBe('disconnected');
    expect(ctx(gone.snapshot)).toMatchObject({ credential: null, tokenExpiresAt: null });
    expect(gone.timers).toEqual([]);
    expect(run(gone.snapshot, { type: 'integration.webhook.received', webhookId: 'w3', topic: 'items', receivedAt: at(6) })).toMatchObject({ rejected: true });
    // a refresh answer that arrives after the disconnect changes nothing (and is not dead-lettered)
    const late = ok(run(gone.snapshot, { type: 'integration.refresh.done', output: { credential: { ...credential, version: 9 }, tokenExpiresAt: at(999), scopes: [] }, at: at(6) }));
    expect(ctx(late.snapshot)).toMatchObject({ credential: null, tokenExpiresAt: null });
    expect(late.timers).toEqual([]);
    // reconnecting from disconnected is a new authorization
    expect(stateOf(ok(run(gone.snapshot, { ...connected, at: at(7) })).snapshot.value)).toBe('connected');
  });
});
