import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { assign, createActor, emit, raise, setup, cancel } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { PersistedSnapshot } from '../../runtime/registry.js';
import { LiveActor, step, type StepInput, type TimerRow } from '../../runtime/step.js';

/**
 * The runtime leans on xstate internals (system.scheduler, system._scheduledEvents,
 * system._register (every actor in the tree registers as it starts, before its first action:
 * how child emits are collected), snapshot._nodes). xstate is pinned to an exact version in
 * package.json; this suite is the contract that must hold before the pin is moved.
 */
const pkg = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('xstate/package.json'), 'utf8')) as { version: string };

const child = setup({
  types: { events: {} as { type: 'poke' } },
}).createMachine({
  id: 'kid',
  initial: 'a',
  states: {
    a: { on: { poke: { target: 'b', actions: emit({ type: 'concord.publish', subject: 'kid.poked', data: 1 } as never) } } },
    b: { after: { 150: 'c' } },
    c: {},
  },
});

const parent = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'go' } | { type: 'remind' } | { type: 'stop' } | { type: 'kick' } },
  actors: { child },
}).createMachine({
  id: 'p',
  context: { n: 0 },
  initial: 'waiting',
  invoke: { id: 'kid', src: 'child' },
  states: {
    waiting: {
      entry: raise({ type: 'remind' }, { delay: 100, id: 'remind1' }),
      after: { 200: 'timedOut' },
      on: {
        remind: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        stop: { actions: cancel('remind1') },
        kick: { actions: ({ self }) => self.getSnapshot().children.kid?.send({ type: 'poke' }) },
        go: 'other',
      },
    },
    timedOut: {},
    other: {},
  },
});

describe(`xstate ${pkg.version} contract`, () => {
  it('is the pinned version', () => {
    const ours = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    expect(ours.dependencies.xstate).toBe(pkg.version);
  });

  it('does not persist delayed events in the snapshot (why the runtime owns timers)', () => {
    const a = createActor(parent);
    a.start();
    const persisted = JSON.stringify(a.getPersistedSnapshot());
    expect(persisted).not.toContain('remind1');
    expect(persisted).not.toContain('xstate.after');
    a.stop();
  });

  it('exposes scheduled events on system._scheduledEvents and accepts re-injection through system.scheduler', () => {
    const first = step({ machine: parent, snapshot: null, input: {}, timers: [], deliver: { kind: 'event', event: { type: 'kick' } }, now: 0 });
    if ('rejected' in first) throw new Error('rejected');
    const keys = first.timers.map((t) => `${t.key}@${t.dueAt}`).sort();
    expect(keys).toEqual(['#remind1@100', '#xstate.after.200.p.waiting@200', 'kid#xstate.after.150.kid.b@150']);
    expect(first.timers.find((t) => t.key.startsWith('kid#'))).toMatchObject({ sourcePath: 'kid', targetPath: 'kid' });
    // a child machine's emit is collected (the child registered with the system as it started)
    expect(first.effects).toEqual([{ type: 'concord.publish', subject: 'kid.poked', data: 1 }]);

    // re-injected timers keep their due times; cancel() of an injected timer removes it
    const second = step({ machine: parent, snapshot: first.snapshot, input: null, timers: first.timers, deliver: { kind: 'event', event: { type: 'stop' } }, now: 50 });
    if ('rejected' in second) throw new Error('rejected');
    expect(second.timers.map((t) => `${t.key}@${t.dueAt}`).sort()).toEqual(['#xstate.after.200.p.waiting@200', 'kid#xstate.after.150.kid.b@150']);

    // a due timer delivered to its target (a child) takes the child's transition
    const kidTimer = second.timers.find((t) => t.key.startsWith('kid#')) as TimerRow;
    const third = step({ machine: parent, snapshot: second.snapshot, input: null, timers: second.timers, deliver: { kind: 'timer', key: kidTimer.key }, now: 150 });
    if ('rejected' in third) throw new Error('rejected');
    expect((third.snapshot.children.kid as { snapshot: { value: string } }).snapshot.value).toBe('c');

    // leaving the state cancels its `after` timer, including one injected from an earlier hydration
    const fourth = step({ machine: parent, snapshot: third.snapshot, input: null, timers: third.timers, deliver: { kind: 'event', event: { type: 'go' } }, now: 160 });
    if ('rejected' in fourth) throw new Error('rejected');
    expect(fourth.snapshot.value).toBe('other');
    expect(fourth.timers).toEqual([]);
  });

  it('collects the emits of a child spawned during the step, its entry actions included, and of a restored child', () => {
    const greeter = setup({}).createMachine({
      id: 'greeter',
      entry: emit({ type: 'concord.publish', subject: 'greeter.hello', data: 1 } as never),
      on: { again: { actions: emit({ type: 'concord.publish', subject: 'greeter.again', data: 2 } as never) } },
    });
    const host = setup({ actors: { greeter }, types: { events: {} as { type: 'spawn' } | { type: 'again' } } }).createMachine({
      id: 'host',
      initial: 'idle',
      states: {
        idle: { on: { spawn: { target: 'busy', actions: emit({ type: 'concord.publish', subject: 'host.spawning', data: 0 } as never) } } },
        busy: { invoke: { id: 'g', src: 'greeter' }, on: { again: { actions: ({ self }) => self.getSnapshot().children.g?.send({ type: 'again' }) } } },
      },
    });
    const first = step({ machine: host, snapshot: null, input: {}, timers: [], deliver: { kind: 'event', event: { type: 'spawn' } }, now: 0 });
    if ('rejected' in first) throw new Error('rejected');
    expect(first.effects.map((e) => (e as { subject?: string }).subject)).toEqual(['host.spawning', 'greeter.hello']);
    const second = step({ machine: host, snapshot: first.snapshot, input: null, timers: first.timers, deliver: { kind: 'event', event: { type: 'again' } }, now: 1 });
    if ('rejected' in second) throw new Error('rejected');
    // restoring the child does not run its entry again; its later emit is collected
    expect(second.effects.map((e) => (e as { subject?: string }).subject)).toEqual(['greeter.again']);
  });

  it('a live actor kept between transitions gives exactly what a fresh actor per transition gives', () => {
    const events: Array<{ deliver: StepInput; now: number }> = [
      { deliver: { kind: 'event', event: { type: 'kick' } }, now: 0 },
      { deliver: { kind: 'event', event: { type: 'remind' } }, now: 20 },
      { deliver: { kind: 'timer', key: '#remind1' }, now: 100 },
      { deliver: { kind: 'event', event: { type: 'go' } }, now: 110 }, // leaves the state: its timers go
      { deliver: { kind: 'event', event: { type: 'go' } }, now: 120 }, // rejected: nothing changes
    ];
    let fresh: { snapshot: PersistedSnapshot | null; timers: TimerRow[] } = { snapshot: null, timers: [] };
    const live = LiveActor.hydrate(parent, null, {}, [], 0);
    for (const e of events) {
      const a = step({ machine: parent, snapshot: fresh.snapshot, input: {}, timers: fresh.timers, deliver: e.deliver, now: e.now });
      const b = live.apply(e.deliver, e.now);
      expect(b).toEqual(a);
      if (!('rejected' in a)) fresh = { snapshot: a.snapshot, timers: a.timers };
    }
    // the child's own timer (the child is invoked at the root, so it outlives 'waiting') fires alike
    const kid = fresh.timers.find((t) => t.key.startsWith('kid#'))!;
    expect(kid).toMatchObject({ sourcePath: 'kid', dueAt: 150 });
    const a = step({ machine: parent, snapshot: fresh.snapshot, input: {}, timers: fresh.timers, deliver: { kind: 'timer', key: kid.key }, now: 150 });
    expect(live.apply({ kind: 'timer', key: kid.key }, 150)).toEqual(a);
    expect(() => live.apply({ kind: 'timer', key: kid.key }, 151)).toThrow(/not pending/);
    expect(live.broken).toBe(true);
    live.stop();
  });

  it('snapshot.can and the active nodes tell which events the state accepts', () => {
    const r = step({ machine: parent, snapshot: null, input: {}, timers: [], deliver: { kind: 'event', event: { type: 'go' } }, now: 0 });
    if ('rejected' in r) throw new Error('rejected');
    const rej = step({ machine: parent, snapshot: r.snapshot, input: null, timers: r.timers, deliver: { kind: 'event', event: { type: 'go' } }, now: 1 });
    expect(rej).toEqual({ rejected: true, value: 'other', accepts: [] });
  });

  it('a restored snapshot naming a removed state errors the actor instead of throwing from createActor', () => {
    const a = createActor(parent, { snapshot: { status: 'active', value: 'gone', context: { n: 0 }, children: {} } as never });
    let error: unknown;
    a.subscribe({ error: (e) => (error = e) });
    a.start();
    expect(String(error ?? a.getSnapshot().error)).toContain('gone');
  });
});
