import { createActor, type AnyActorRef, type AnyStateMachine, type EventObject } from 'xstate';
import { ConcordError, ErrorCode } from './errors.js';
import type { PersistedSnapshot } from './registry.js';

/**
 * One transition of one actor, in memory, with nothing fired by xstate's own clock.
 *
 * XState v5 does not persist delayed events (`after`, delayed `raise`/`sendTo`); they live in
 * `system._scheduledEvents` (statelyai/xstate#5331). So the runtime owns time: the actor runs on
 * a clock that never fires, its pending timers are re-injected from the `timers` table after
 * `start()`, the event is delivered, and the scheduler's contents become the new timer rows.
 * Emitted events (`emit(...)`, including from child machines) are the transition's effects.
 *
 * This module leans on xstate internals (`system.scheduler`, `system._scheduledEvents`,
 * `system._register`, `snapshot._nodes`); xstate's version is pinned and `test/runtime/xstate-contract.test.ts`
 * proves the behaviour this relies on.
 */

export interface TimerRow {
  /** Stable key: `<sourcePath>#<xstate id>`. */
  key: string;
  xstateId: string;
  sourcePath: string;
  targetPath: string;
  event: EventObject;
  /** Epoch milliseconds. */
  dueAt: number;
}

export type StepInput =
  | { kind: 'event'; event: EventObject; targetPath?: string }
  | { kind: 'timer'; key: string };

export interface StepResult {
  snapshot: PersistedSnapshot;
  /** The event applied and where it went (what the journal records). */
  applied: { kind: 'event' | 'timer'; event: EventObject; targetPath: string };
  effects: EventObject[];
  timers: TimerRow[];
}

export interface Rejection {
  rejected: true;
  value: unknown;
  accepts: string[];
}

const NULL_CLOCK = { setTimeout: () => 0, clearTimeout: () => undefined };

/** Walks the live actor tree: '' is the root, `kid` and `kid/grandkid` below it. */
function actorPaths(root: AnyActorRef): Map<string, AnyActorRef> {
  const out = new Map<string, AnyActorRef>();
  const walk = (ref: AnyActorRef, path: string) => {
    out.set(path, ref);
    const children = (ref.getSnapshot() as { children?: Record<string, AnyActorRef> }).children;
    if (!children) return;
    for (const [name, child] of Object.entries(children)) {
      if (child && typeof child.send === 'function') walk(child, path === '' ? name : `${path}/${name}`);
    }
  };
  walk(root, '');
  return out;
}

interface ScheduledEvent {
  source: AnyActorRef;
  target: AnyActorRef;
  event: EventObject;
  delay: number;
  id: string;
  startedAt: number;
}

interface InternalSystem {
  scheduler: {
    schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, id: string): void;
    cancel(source: AnyActorRef, id: string): void;
  };
  getSnapshot(): { _scheduledEvents: Record<string, ScheduledEvent> };
  _snapshot: { _scheduledEvents: Record<string, ScheduledEvent> };
  _register(sessionId: string, ref: AnyActorRef): string;
}

/** The event types the snapshot's active states handle (xstate-internal events left out). */
export function acceptedEvents(snapshot: unknown): string[] {
  const nodes = (snapshot as { _nodes?: Array<{ ownEvents: string[] }> })._nodes ?? [];
  const all = new Set<string>();
  for (const n of nodes) for (const e of n.ownEvents) if (!e.startsWith('xstate.')) all.add(e);
  return [...all].sort();
}

/** The accepted events of a persisted snapshot, for inspection. */
export function acceptedEventsOf(machine: AnyStateMachine, snapshot: PersistedSnapshot): string[] {
  return acceptedEvents(machine.resolveState({ value: snapshot.value as never, context: snapshot.context }));
}

/**
 * A started actor kept between transitions, so a cached actor does not pay for restoring its
 * snapshot, starting and stopping on every event (about half the cost of a transition). Its
 * clock never fires; pending timers are injected once, when it is hydrated, and every
 * transition turns the scheduler's contents into timer rows. A transition that fails leaves the
 * actor unusable (`broken`): the caller drops it and hydrates again from the stored snapshot.
 */
export class LiveActor {
  readonly #actor: AnyActorRef;
  readonly #system: InternalSystem;
  #effects: EventObject[] = [];
  #failure: unknown;
  /** Due time of each scheduled event, by the scheduler's own object (kept until it fires or is cancelled). */
  readonly #due = new WeakMap<ScheduledEvent, number>();
  broken = false;

  private constructor(machine: AnyStateMachine, snapshot: PersistedSnapshot | null, input: unknown) {
    const actor = createActor(machine, { ...(snapshot ? { snapshot: snapshot as never } : { input }), clock: NULL_CLOCK });
    const collect = (e: EventObject) => this.#effects.push(e);
    actor.on('*', collect);
    // A child machine's emits reach its own listeners, not the root's. Every actor in the tree
    // registers with the system when it starts, before it runs an action (children restored from
    // the snapshot, invoked or spawned later alike): listen on each as it registers.
    // (xstate's `inspect` would see them too, at the price of an inspection event per microstep.)
    const sys = actor.system as unknown as InternalSystem;
    const register = sys._register;
    sys._register = (sessionId, ref) => {
      if (ref !== actor) ref.on('*', collect);
      return register(sessionId, ref);
    };
    actor.subscribe({ error: (err) => (this.#failure = err) });
    this.#actor = actor;
    this.#system = sys;
  }

  /**
   * Starts the actor from `snapshot` (null: a new actor from the machine's initial state with
   * `input`, whose entry effects belong to its first transition) and re-injects `timers`.
   */
  static hydrate(machine: AnyStateMachine, snapshot: PersistedSnapshot | null, input: unknown, timers: readonly TimerRow[], now: number): LiveActor {
    const live = new LiveActor(machine, snapshot, input);
    live.#actor.start();
    const paths = actorPaths(live.#actor);
    for (const t of timers) {
      const src = paths.get(t.sourcePath);
      const tgt = paths.get(t.targetPath);
      if (!src || !tgt) continue; // the child that owned it is gone; so is its timer
      live.#system.scheduler.schedule(src, tgt, t.event, Math.max(0, t.dueAt - now), t.xstateId);
      const scheduled = live.#system._snapshot._scheduledEvents[`${src.sessionId}.${t.xstateId}`];
      if (scheduled) live.#due.set(scheduled, t.dueAt);
    }
    return live;
  }

  /** Applies one event or due timer. A rejection changes nothing. */
  apply(deliver: StepInput, now: number): StepResult | Rejection {
    if (this.broken) throw new ConcordError(ErrorCode.TransitionFailed, 'this actor failed an earlier transition');
    try {
      return this.#apply(deliver, now);
    } catch (err) {
      this.broken = true;
      throw err;
    }
  }

  stop(): void {
    this.#actor.stop();
  }

  #apply(deliver: StepInput, now: number): StepResult | Rejection {
    const actor = this.#actor;
    const system = this.#system;
    const paths = actorPaths(actor);
    let applied: StepResult['applied'];
    if (deliver.kind === 'timer') {
      const inverse = new Map<AnyActorRef, string>();
      for (const [p, ref] of paths) inverse.set(ref, p);
      const firing = Object.values(system.getSnapshot()._scheduledEvents).find((se) => `${inverse.get(se.source)}#${se.id}` === deliver.key);
      const targetPath = firing && inverse.get(firing.target);
      if (!firing || targetPath === undefined) throw new ConcordError(ErrorCode.TransitionFailed, `timer ${deliver.key} is not pending`);
      // it fires now: out of the scheduler (as xstate does before delivering a due event)
      system.scheduler.cancel(firing.source, firing.id);
      applied = { kind: 'timer', event: firing.event, targetPath };
      firing.target.send(firing.event);
    } else {
      const targetPath = deliver.targetPath ?? '';
      const target = paths.get(targetPath);
      if (!target) throw new ConcordError(ErrorCode.TransitionFailed, `no child actor at '${targetPath}'`);
      if (targetPath === '') {
        const current = actor.getSnapshot();
        if (!current.can(deliver.event)) {
          return { rejected: true, value: current.value, accepts: acceptedEvents(current) };
        }
      }
      applied = { kind: 'event', event: deliver.event, targetPath };
      target.send(deliver.event);
    }

    const after = actor.getSnapshot();
    if (this.#failure !== undefined || after.status === 'error') {
      const err = this.#failure ?? after.error;
      throw new ConcordError(ErrorCode.TransitionFailed, `transition failed: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err });
    }
    const inverse = new Map<AnyActorRef, string>();
    for (const [p, ref] of actorPaths(actor)) inverse.set(ref, p);
    const nextTimers: TimerRow[] = [];
    for (const se of Object.values(system.getSnapshot()._scheduledEvents)) {
      const sourcePath = inverse.get(se.source);
      const targetPath = inverse.get(se.target);
      if (sourcePath === undefined || targetPath === undefined) continue; // outside the tree: not ours to keep
      let dueAt = this.#due.get(se);
      if (dueAt === undefined) {
        dueAt = Math.round(now + se.delay);
        this.#due.set(se, dueAt);
      }
      nextTimers.push({ key: `${sourcePath}#${se.id}`, xstateId: se.id, sourcePath, targetPath, event: se.event, dueAt });
    }
    // what jsonb will hold, detached from the live actor's objects
    const snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as PersistedSnapshot;
    const effects = this.#effects.map((e) => JSON.parse(JSON.stringify(e)) as EventObject);
    this.#effects = [];
    return { snapshot, applied, effects, timers: nextTimers };
  }
}

/**
 * Runs one transition on a fresh actor. `snapshot` null means the actor does not exist yet: it
 * starts from the machine's initial state with `input`. Returns a rejection (and changes
 * nothing) when the current state does not accept the event.
 */
export function step(args: {
  machine: AnyStateMachine;
  snapshot: PersistedSnapshot | null;
  input: unknown;
  timers: readonly TimerRow[];
  deliver: StepInput;
  now: number;
}): StepResult | Rejection {
  const live = LiveActor.hydrate(args.machine, args.snapshot, args.input, args.timers, args.now);
  try {
    return live.apply(args.deliver, args.now);
  } finally {
    live.stop();
  }
}

/**
 * Replays journal entries through the machine from its initial state and returns the resulting
 * persisted snapshot; with deterministic machines it equals the stored one.
 */
export function replay(machine: AnyStateMachine, input: unknown, entries: Iterable<{ event: EventObject; targetPath: string }>): PersistedSnapshot {
  const actor = createActor(machine, { input, clock: NULL_CLOCK });
  let failure: unknown;
  actor.subscribe({ error: (err) => (failure = err) });
  actor.start();
  try {
    for (const e of entries) {
      const target = actorPaths(actor).get(e.targetPath);
      if (!target) throw new ConcordError(ErrorCode.TransitionFailed, `replay: no child actor at '${e.targetPath}'`);
      target.send(e.event);
      if (failure !== undefined) throw new ConcordError(ErrorCode.TransitionFailed, `replay failed: ${String(failure)}`);
    }
    return JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as PersistedSnapshot;
  } finally {
    actor.stop();
  }
}

/** A JSON value with object keys sorted, for comparing snapshots whatever their key order. */
export function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  }
  return v;
}
