import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { decide, settle, type Comparison } from '../../machines/integration/conflict.js';
import { PAGE_MAX_ATTEMPTS, syncMachine, type SyncEvent } from '../../machines/integration/sync.js';

const at = '2026-12-07T10:00:00.000Z';
const base: Omit<Comparison, 'strategy'> = { ours: { stock: 15, changedAt: '2026-12-07T09:00:00Z' }, channel: { stock: 7, changedAt: '2026-12-07T09:30:00Z' }, baseline: 10, direction: 'both' };

describe('the conflict decision (pure)', () => {
  it('one side moved: it is copied to the other when the direction allows', () => {
    expect(decide({ ...base, channel: { stock: 10, changedAt: null }, strategy: 'manual' })).toMatchObject({ action: 'write_channel', stock: 15, conflict: false });
    expect(decide({ ...base, ours: { stock: 10, changedAt: null }, strategy: 'manual' })).toMatchObject({ action: 'write_ours', stock: 7, conflict: false });
    expect(decide({ ...base, ours: { stock: 10, changedAt: null }, direction: 'outbound', strategy: 'manual' })).toMatchObject({ action: 'none' });
    expect(decide({ ...base, ours: { stock: 7, changedAt: null }, strategy: 'manual' })).toMatchObject({ action: 'none' });
  });

  it('both moved: each of the four strategies', () => {
    expect(decide({ ...base, strategy: 'egdc_wins' })).toMatchObject({ action: 'write_channel', stock: 15, conflict: true });
    expect(decide({ ...base, strategy: 'marketplace_wins' })).toMatchObject({ action: 'write_ours', stock: 7, conflict: true });
    expect(decide({ ...base, strategy: 'most_recent' })).toMatchObject({ action: 'write_ours', stock: 7 });
    expect(decide({ ...base, ours: { stock: 15, changedAt: '2026-12-07T09:45:00Z' }, strategy: 'most_recent' })).toMatchObject({ action: 'write_channel', stock: 15 });
    expect(settle({ ours: base.ours, channel: { stock: 7, changedAt: null }, strategy: 'most_recent' }, 'x')).toMatchObject({ action: 'write_channel' });
    expect(decide({ ...base, strategy: 'manual' })).toMatchObject({ action: 'open_conflict', conflict: true });
  });

  it('never synced: the direction leads, both ways the strategy', () => {
    expect(decide({ ...base, baseline: null, direction: 'outbound', strategy: 'manual' })).toMatchObject({ action: 'write_channel', conflict: false });
    expect(decide({ ...base, baseline: null, direction: 'inbound', strategy: 'manual' })).toMatchObject({ action: 'write_ours', conflict: false });
    expect(decide({ ...base, baseline: null, strategy: 'manual' })).toMatchObject({ action: 'open_conflict' });
  });
});

function run(events: SyncEvent[]) {
  const emitted: Array<{ type: string; [k: string]: unknown }> = [];
  const actor = createActor(syncMachine, { input: { id: 't:shopify:s.myshopify.com', tenant: 't' } });
  actor.on('*', (e) => void emitted.push(e as never));
  actor.start();
  for (const e of events) actor.send(e);
  // the persisted snapshot survives jsonb
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
  actor.stop();
  return { persisted, emitted };
}

const who = { tenantId: 't', provider: 'shopify' as const, account: 's.myshopify.com', at };

describe('the inventory-sync machine', () => {
  it('runs pages until the last, counting; announces each change of ours; a second start is refused while running', () => {
    const { persisted, emitted } = run([
      { type: 'sync.start', syncId: 's1', mode: 'full', direction: 'both', ...who },
      { type: 'sync.start', syncId: 's2', mode: 'full', direction: 'both', ...who },
      { type: 'inventory.page.done', output: { total: 100, synced: 60, unchanged: 40, cursor: { after: 'c1' }, done: false, updates: [{ sku: 'A', stock: 3, previousStock: 5, changedAt: at, via: 'sync' }] }, at },
      { type: 'inventory.page.done', output: { total: 20, unchanged: 19, failed: 1, cursor: null, done: true }, at },
    ]);
    expect(persisted.value.run).toBe('idle');
    expect(persisted.context.runs).toHaveLength(1);
    expect(persisted.context.runs[0]).toMatchObject({ syncId: 's1', status: 'completed', total: 120, synced: 60, unchanged: 59, failed: 1, pages: 2 });
    const calls = emitted.filter((e) => e.type === 'concord.call');
    expect(calls.map((c) => (c.input as { page: number; cursor: unknown }).page)).toEqual([0, 1]);
    expect((calls[1]!.input as { cursor: unknown }).cursor).toEqual({ after: 'c1' });
    expect(emitted.filter((e) => e.type === 'concord.publish')).toEqual([expect.objectContaining({ subject: 'concord.events.InventoryUpdated', data: expect.objectContaining({ sku: 'A', stock: 3, tenantId: 't' }) })]);
  });

  it('a retryable page failure waits and asks again; past the attempts, or terminal, the run fails', () => {
    const fail = (retryable: boolean): SyncEvent => ({ type: 'inventory.page.failed', error: { code: retryable ? 'CIRCUIT_OPEN' : 'FORBIDDEN', message: 'x', retryable }, at });
    const backing = run([{ type: 'sync.start', syncId: 's1', mode: 'full', direction: 'both', ...who }, fail(true)]);
    expect(backing.persisted.value.run).toEqual({ running: 'backingOff' });
    const terminal = run([{ type: 'sync.start', syncId: 's1', mode: 'full', direction: 'both', ...who }, fail(false)]);
    expect(terminal.persisted.context.runs[0]).toMatchObject({ status: 'failed', lastError: { code: 'FORBIDDEN' } });
    expect(PAGE_MAX_ATTEMPTS).toBeGreaterThan(1);
  });
});
