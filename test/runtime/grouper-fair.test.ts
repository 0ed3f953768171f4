import { describe, expect, it } from 'vitest';
import { Grouper } from '../../runtime/grouper.js';

/** A write that records each batch and holds it until released, so batches form behind it. */
function gate() {
  const batches: string[][] = [];
  const waiting: Array<() => void> = [];
  const write = async (items: readonly string[]) => {
    batches.push([...items]);
    await new Promise<void>((r) => waiting.push(r));
    return items.map((i) => `ok:${i}`);
  };
  const releaseAll = async () => {
    while (waiting.length > 0 || batches.length === 0) {
      waiting.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { batches, write, releaseAll };
}

const tenantOf = (item: string) => item.split(':')[0]!;

describe('fair group commit (Grouper with fairBy)', () => {
  it("one tenant's flood shares the next batch with another tenant's one item instead of going ahead of it", async () => {
    const g = gate();
    const grouper = new Grouper(g.write, { maxBatch: 4, concurrency: 1, fairBy: tenantOf });
    const done: Array<Promise<string>> = [];
    for (let i = 0; i < 20; i++) done.push(grouper.submit(`a:${i}`));
    done.push(grouper.submit('b:0'));
    await g.releaseAll();
    expect(await Promise.all(done)).toEqual([...Array.from({ length: 20 }, (_, i) => `ok:a:${i}`), 'ok:b:0']);
    // the first batch left at once with a:0 alone; b:0 is in the second, not the sixth
    expect(g.batches[0]).toEqual(['a:0']);
    expect(g.batches[1]).toContain('b:0');
    // a tenant's own items keep their order
    const as = g.batches.flat().filter((x) => x.startsWith('a:'));
    expect(as).toEqual(Array.from({ length: 20 }, (_, i) => `a:${i}`));
  });

  it('first come, first served without fairBy (what fairness changes)', async () => {
    const g = gate();
    const grouper = new Grouper(g.write, { maxBatch: 4, concurrency: 1 });
    const done = [...Array.from({ length: 20 }, (_, i) => grouper.submit(`a:${i}`)), grouper.submit('b:0')];
    await g.releaseAll();
    await Promise.all(done);
    expect(g.batches.findIndex((b) => b.includes('b:0'))).toBe(5); // behind all twenty of a's
  });

  it("weights give a tenant that many items per round", async () => {
    const g = gate();
    const grouper = new Grouper(g.write, { maxBatch: 8, concurrency: 1, fairBy: tenantOf, weightOf: (t) => (t === 'gold' ? 3 : 1) });
    const done = [grouper.submit('x:first')];
    for (let i = 0; i < 10; i++) done.push(grouper.submit(`gold:${i}`), grouper.submit(`free:${i}`));
    await g.releaseAll();
    await Promise.all(done);
    const second = g.batches[1]!;
    expect(second.filter((x) => x.startsWith('gold:'))).toHaveLength(6);
    expect(second.filter((x) => x.startsWith('free:'))).toHaveLength(2);
  });
});
