import { describe, expect, it } from 'vitest';
import { FairAdmission, type Release } from '../../runtime/admission.js';

/** Lets the microtasks the admissions resolve in run. */
const settle = () => new Promise((r) => setImmediate(r));

/** Admits `tenant:n` and records the order in which admissions happen. */
function recorder(gate: FairAdmission) {
  const order: string[] = [];
  const held = new Map<string, Release>();
  const ask = (name: string) =>
    void gate.admit(name.split(':')[0]!).then((release) => {
      order.push(name);
      held.set(name, release);
    });
  const release = async (name: string) => {
    held.get(name)!();
    await settle();
  };
  return { order, held, ask, release };
}

describe('fair admission by tenant', () => {
  it('admits at once below the limit, and no more than the limit at once', async () => {
    const gate = new FairAdmission({ limit: 2 });
    const r = recorder(gate);
    for (let i = 0; i < 5; i++) r.ask(`a:${i}`);
    await settle();
    expect(r.order).toEqual(['a:0', 'a:1']);
    expect(gate.running).toBe(2);
    expect(gate.waiting).toBe(3);
    await r.release('a:0');
    expect(r.order).toEqual(['a:0', 'a:1', 'a:2']);
    expect(gate.running).toBe(2);
  });

  it("one tenant's queue of hundreds does not go ahead of another's single request: the next free place is the other's", async () => {
    const gate = new FairAdmission({ limit: 2 });
    const r = recorder(gate);
    for (let i = 0; i < 300; i++) r.ask(`a:${i}`);
    r.ask('b:0');
    await settle();
    expect(r.order).toEqual(['a:0', 'a:1']);
    await r.release('a:0');
    // a:2 was queued first, so the rotation starts with a; b is next, not after a:299
    await r.release('a:1');
    expect(r.order.slice(0, 4)).toEqual(['a:0', 'a:1', 'a:2', 'b:0']);
    // and within a tenant, its own order holds
    for (let k = 2; k < 300; k++) await r.release(`a:${k}`);
    await r.release('b:0');
    expect(r.order.filter((n) => n.startsWith('a:'))).toEqual(Array.from({ length: 300 }, (_, i) => `a:${i}`));
    expect(gate.running).toBe(0);
    expect(gate.waiting).toBe(0);
  });

  it('weights: a tenant of weight 3 takes three places per turn to the other tenant one', async () => {
    const gate = new FairAdmission({ limit: 1, weightOf: (t) => (t === 'big' ? 3 : 1) });
    const r = recorder(gate);
    r.ask('x:hold');
    for (let i = 0; i < 6; i++) r.ask(`big:${i}`);
    for (let i = 0; i < 3; i++) r.ask(`small:${i}`);
    await settle();
    await r.release('x:hold');
    for (let k = 0; k < 9; k++) await r.release(r.order.at(-1)!);
    expect(r.order.slice(1)).toEqual(['big:0', 'big:1', 'big:2', 'small:0', 'big:3', 'big:4', 'big:5', 'small:1', 'small:2']);
  });

  it('a release given twice frees one place, and run() gives the place back when the work fails', async () => {
    const gate = new FairAdmission({ limit: 1 });
    const release = await gate.admit('a');
    release();
    release();
    expect(gate.running).toBe(0);
    await expect(gate.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gate.running).toBe(0);
    await expect(gate.run('a', async () => 7)).resolves.toBe(7);
    expect(() => new FairAdmission({ limit: 0 })).toThrow(RangeError);
  });

  it('work-conserving: one tenant alone takes up to soloLimit; a second tenant brings the fair limit back until it has been quiet for the window', async () => {
    let now = 0;
    const gate = new FairAdmission({ limit: 2, soloLimit: 6, soloWindowMs: 1_000, now: () => now });
    const r = recorder(gate);
    for (let i = 0; i < 10; i++) r.ask(`a:${i}`);
    await settle();
    expect(r.order).toHaveLength(6); // alone: six at once
    expect(gate.limit).toBe(6);
    r.ask('b:0');
    await settle();
    expect(gate.limit).toBe(2);
    // b waits for the running work to fall below the fair limit, and gets the next place in turn
    for (let k = 0; k < 4; k++) await r.release(`a:${k}`);
    expect(r.order).toHaveLength(6);
    await r.release('a:4');
    expect(r.order.slice(6)).toEqual(['a:6']);
    await r.release('a:5');
    expect(r.order.slice(7)).toEqual(['b:0']);
    // b quiet for less than the window: still fair
    now = 900;
    await r.release('a:6');
    expect(gate.running).toBe(2);
    // quiet for the window: a alone again, up to six
    now = 2_000;
    await r.release('b:0');
    for (let i = 10; i < 14; i++) r.ask(`a:${i}`);
    await settle();
    expect(gate.running).toBe(6);
    expect(gate.limit).toBe(6);
    expect(r.order.filter((n) => n.startsWith('a:'))).toEqual(Array.from({ length: 13 }, (_, i) => `a:${i}`)); // a:7-a:12 running, in order
  });

  it('soloLimit defaults to the limit (no solo burst unless asked)', async () => {
    const gate = new FairAdmission({ limit: 2 });
    const r = recorder(gate);
    for (let i = 0; i < 5; i++) r.ask(`a:${i}`);
    await settle();
    expect(r.order).toHaveLength(2);
  });
});
