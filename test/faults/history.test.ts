import { describe, expect, it } from 'vitest';
import { checkHistory, type History, type Operation } from './lib/history.js';

/** Two sources (p, q) sending 1..n to each of two targets; every operation acknowledged. */
function sent(n = 4): Operation[] {
  const ops: Operation[] = [];
  for (const source of ['p', 'q']) for (const target of ['a', 'b']) for (let seq = 1; seq <= n; seq++) ops.push({ id: `${source}-${target}-${seq}`, target, source, seq, acked: true });
  return ops;
}

/** Each target applied what it was sent, p's and q's interleaved, in order. */
function clean(ops: Operation[]): Map<string, string[]> {
  const applied = new Map<string, string[]>();
  for (const op of ops) applied.set(op.target, [...(applied.get(op.target) ?? []), op.id]);
  return applied;
}

const history = (over: Partial<History> = {}): History => {
  const operations = sent();
  return { operations, applied: clean(operations), unfinished: [], ...over };
};

describe('the history checker', () => {
  it('passes a clean history', () => {
    const v = checkHistory(history());
    expect(v).toMatchObject({ operations: 16, acked: 16, applied: 16, lost: 0, duplicated: 0, reordered: 0, stuck: 0, ok: true });
  });

  it('counts an acknowledged operation never applied as lost, an unacknowledged one not', () => {
    const operations = sent();
    const applied = clean(operations);
    applied.set('a', applied.get('a')!.filter((id) => id !== 'p-a-2' && id !== 'q-a-3'));
    operations.find((o) => o.id === 'q-a-3')!.acked = false;
    const v = checkHistory({ operations, applied, unfinished: [] });
    expect(v).toMatchObject({ lost: 1, duplicated: 0, reordered: 0, ok: false });
    expect(v.examples.lost).toEqual(['a: p-a-2 acknowledged, never applied']);
  });

  it('counts an operation applied twice, and one applied that was never sent, as duplicated', () => {
    const h = history();
    h.applied.get('b')!.push('p-b-4');
    h.applied.get('a')!.push('z-a-9');
    expect(checkHistory(h)).toMatchObject({ lost: 0, duplicated: 2, reordered: 0, ok: false });
  });

  it('counts a source\'s operations applied out of the order sent as reordered, per target', () => {
    const h = history();
    // p's 2 and 3 swapped on a; q's order on b kept while interleaved differently with p's
    h.applied.set('a', ['p-a-1', 'p-a-3', 'p-a-2', 'p-a-4', 'q-a-1', 'q-a-2', 'q-a-3', 'q-a-4']);
    h.applied.set('b', ['q-b-1', 'p-b-1', 'q-b-2', 'p-b-2', 'p-b-3', 'q-b-3', 'q-b-4', 'p-b-4']);
    const v = checkHistory(h);
    expect(v).toMatchObject({ lost: 0, duplicated: 0, reordered: 1, ok: false });
    expect(v.examples.reordered[0]).toContain('p-a-2 (seq 2) after p-a-3 (seq 3)');
  });

  it('counts an outside effect taken more than once as duplicated', () => {
    const v = checkHistory(history({ effects: new Map([['w-1/PAYMENT_PROCESSING/1', 2], ['w-1/INVENTORY_RESERVATION/1', 1]]) }));
    expect(v).toMatchObject({ duplicated: 1, ok: false });
    expect(v.examples.duplicated).toEqual(['effect w-1/PAYMENT_PROCESSING/1 taken 2 times']);
  });

  it('counts what is unfinished after the drain as stuck', () => {
    expect(checkHistory(history({ unfinished: ['saga w-1: PAYMENT_PROCESSING', 'outbox row 17'] }))).toMatchObject({ stuck: 2, ok: false });
  });

  it('does not count a redelivery of an operation applied once as a duplicate when the target applied it once', () => {
    const h = history();
    h.operations.push({ ...h.operations[0]! }); // the client retried: same id sent twice
    expect(checkHistory(h)).toMatchObject({ operations: 16, duplicated: 0, ok: true });
  });
});
