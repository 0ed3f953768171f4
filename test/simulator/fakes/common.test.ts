import { describe, expect, it } from 'vitest';
import { RateRecorder } from '../../../simulator/fakes/common.js';
import { execute, parse, pickOperation, requestedCost, rootFields } from '../../../simulator/fakes/graphql.js';

describe('RateRecorder', () => {
  it('finds the worst window a token bucket would not allow', () => {
    const r = new RateRecorder();
    // 40 at once, then 4 per second for 10 s: exactly a 4/s bucket of 40
    for (let i = 0; i < 40; i++) r.record('s', 0);
    for (let i = 1; i <= 40; i++) r.record('s', i * 250);
    expect(r.bucketViolation('s', { perSecond: 4, burst: 40 })).toBeNull();
    expect(r.maxInWindow('s', 1000)).toBe(44);
    // one more inside the last window breaks it
    r.record('s', 10_000);
    expect(r.bucketViolation('s', { perSecond: 4, burst: 40 })).toMatchObject({ count: 81, from: 0, to: 10_000 });
    expect(r.bucketViolation('s', { perSecond: 4, burst: 40, tolerance: 1 })).toBeNull();
  });
});

describe('graphql', () => {
  it('projects aliases, fragments and arguments, and counts cost', () => {
    const doc = parse(`
      query Q($n: Int = 2) { a: items(first: $n) { nodes { ...F } } }
      fragment F on Item { id label: name @include(if: true) hidden: name @skip(if: true) }`);
    const op = pickOperation(doc, 'Q');
    const vars = {};
    const fields = rootFields(op, doc, vars);
    const items = [1, 2, 3].map((id) => ({ __typename: 'Item', id, name: `n${id}` }));
    const root = { items: (a: Record<string, unknown>) => ({ __connection: true, nodes: items.slice(0, a.first as number) }) };
    const { data, cost } = execute(root, fields, { vars: { n: 2 }, fragments: doc.fragments });
    expect(data).toEqual({ a: { nodes: [{ id: 1, label: 'n1' }, { id: 2, label: 'n2' }] } });
    expect(cost).toBe(4); // connection 2 + two nodes
    expect(requestedCost(op, doc, { n: 2 })).toBe(4);
  });

  it('rejects malformed documents', () => {
    expect(() => parse('{ a(')).toThrow();
    expect(() => parse('query { a ')).toThrow(/Expected/);
  });
});
