import type pg from 'pg';
import type { EventObject } from 'xstate';
import { ActorHandle } from './actor-handle.js';
import { LruCache } from './cache.js';
import type { Clock } from './clock.js';
import { Committer, type CommitOutcome } from './committer.js';
import { toOutbox } from './effects.js';
import { ConcordError, ErrorCode, isConcordError } from './errors.js';
import type { Logger } from './logger.js';
import { Mailbox } from './mailbox.js';
import { partitionOf } from './partition.js';
import { assertRef, refKey, upgradeSnapshot, type ActorRef, type ActorTypeDefinition, type AnyActorTypeDefinition, type PersistedSnapshot, type Registry } from './registry.js';
import { acceptedEventsOf, canonical, LiveActor, replay, type StepInput, type TimerRow } from './step.js';
import { actorAttributes, Attr, endFailed, SOURCE_VERSION, SpanKind, TRACEPARENT, Tracing, type Context, type Span } from './tracing.js';
import {
  CorrelationIndex,
  loadActor,
  lookupInbox,
  readJournal,
  type CommitExtension,
  type CommitExtras,
  type CommitRecord,
  type Fence,
  type ForkMark,
  type JournalEntry,
  type PauseMark,
  type StoredActor,
} from './store.js';

/** An event as callers send it: a `type` and any JSON fields. */
export type ActorEvent = { type: string; [key: string]: unknown };

/** A transition's outcome before it commits: what `SendOptions.extras` renders its rows from. */
export interface Transition<TContext = Record<string, unknown>> {
  /** The version the actor will have once this commits. */
  version: number;
  value: unknown;
  status: string;
  context: TContext;
}

/** Why an actor refused an event: its state (fresh from Postgres) and the events it accepts there. */
export interface RejectionInfo {
  ref: ActorRef;
  value: unknown;
  status: string | null;
  accepts: string[];
  event: string;
}

export interface SendOptions<TContext = Record<string, unknown>> {
  /** Dedupe key: a message id already applied to this actor is not applied again. */
  messageId?: string;
  /** The caller's tenant; an actor of another tenant answers ACTOR_NOT_FOUND. */
  tenant?: string | null;
  /** Deliver to a child actor (`kid`, `kid/grandkid`) instead of the root. */
  targetPath?: string;
  /**
   * Extra rows of this transition, by commit extension name (`extendCommit`): written in the
   * transition's own statement, so they commit with the change or not at all (an audit record,
   * the stored answer of an HTTP command). Called with the transition's outcome before the
   * commit, again on each retry after a version conflict; null writes none.
   */
  extras?: (t: Transition<TContext>) => CommitExtras | null | undefined;
  /**
   * The error to throw when the actor's state does not accept the event (by default an
   * EVENT_REJECTED `ConcordError` naming the state and the accepted events). Built once, here,
   * from the state the decision was made on.
   */
  rejected?: (r: RejectionInfo) => Error;
  /**
   * The partition lease the event was consumed under (a NATS partition consumer's): the commit
   * writes nothing, and the send fails with FENCED, once that lease has passed to another process.
   */
  fence?: Fence;
  /**
   * The W3C trace context the event arrived with (a message's `traceparent` header): the
   * transition's span is its child. Without it, the caller's active span is the parent.
   */
  traceparent?: string;
  /**
   * The caller expects the actor not to exist yet (a saga's start: its id is new per order). When
   * nothing is cached, the transition starts from the machine's initial state without reading the
   * stored row first; if the actor does exist after all, the commit's version check refuses the
   * insert and the send reads the row and decides again, as after any conflict. Saves one round
   * trip per creation; costs one refused commit when the guess is wrong.
   */
  expectNew?: boolean;
}

export interface SendResult<TContext = Record<string, unknown>> {
  ref: ActorRef;
  version: number;
  value: unknown;
  status: string;
  /** True when the message id had been applied before: this is the first answer again. */
  duplicate: boolean;
  /** The context after the transition (absent on a duplicate). */
  context?: TContext;
}

/** An actor's current state as this process knows it (see `ActorHost.current`). */
export interface ActorState<TContext = Record<string, unknown>> {
  ref: ActorRef;
  tenant: string | null;
  version: number;
  value: unknown;
  status: string;
  context: TContext;
}

export interface ActorView<TContext = Record<string, unknown>> {
  ref: ActorRef;
  tenant: string | null;
  version: number;
  machineVersion: number;
  value: unknown;
  status: string;
  context: TContext;
  attrs: Record<string, unknown>;
  timers: Array<{ key: string; event: string; dueAt: string; targetPath: string }>;
  accepts: string[];
  /** Who paused the actor, when and why; null while it runs. */
  paused: PauseMark | null;
  forkedFrom: ForkMark | null;
  createdAt: string;
  updatedAt: string;
}

/** Points where a crash matters; tests make the process die (or fail) right there. */
export interface HostHooks {
  beforeCommit?(rec: CommitRecord): void | Promise<void>;
  afterCommit?(rec: CommitRecord): void | Promise<void>;
}

export interface ActorHostOptions {
  pool: pg.Pool;
  registry: Registry;
  clock: Clock;
  log: Logger;
  partitions: number;
  cacheSize: number;
  /** How many cached actors stay started between transitions (`LiveActor`); 0 = none. */
  liveSize?: number;
  idleMs: number;
  commitBatchMax: number;
  commitConcurrency: number;
  /**
   * Fair group commit: a tenant's share of each commit batch (default 1 each; the registry's tiers
   * may weigh them). Transitions without a tenant count as one tenant, ''. `false`: first come,
   * first served.
   */
  tenantWeight?: ((tenant: string) => number) | false;
  hooks?: HostHooks;
  /** Spans of transitions and commits (off: none at all). */
  tracing?: Tracing;
  /** Told after every commit that wrote outbox rows or timers, so dispatchers wake at once. */
  onCommitted?(rec: CommitRecord): void;
}

interface Entry extends StoredActor {
  def: ActorTypeDefinition;
  /** Message ids this process applied to the actor lately, with their answers (newest last). */
  recent?: Map<string, unknown>;
  /**
   * The started actor at exactly this version (see `LiveActor`), made on the first transition
   * after hydration. A transition takes it out of the entry; only a committed one puts it back.
   */
  live?: LiveActor;
  /** Transitions this process committed since the actor was cached. */
  uses?: number;
}

/** How many applied message ids a cached actor remembers, so a redelivery costs no transition. */
const RECENT_IDS = 32;

const MAX_CONFLICT_RETRIES = 50;

/**
 * The actor host: hydrate -> transition -> commit, one event at a time per actor.
 *
 * Every transition is one statement (see store.ts) that writes the snapshot under a version
 * check together with the inbox, journal, outbox and timer rows; nothing leaves the process
 * before it commits. A commit that finds the version moved on (another process) or the message
 * id already applied reloads and answers accordingly. A paused actor (`actors.paused_at`, set by
 * an operator) applies nothing: the commit statement refuses its transitions, so a pause taken
 * in one process stops every other, and the send fails with ACTOR_PAUSED.
 */
export class ActorHost {
  readonly #mailbox = new Mailbox();
  readonly #cache: LruCache<Entry>;
  /** Entries holding a started actor, least recently used first (bounded: a live actor costs ~4-20 KB). */
  readonly #live = new Map<string, Entry>();
  readonly #committer: Committer;
  readonly #tracing: Tracing;
  #closing = false;
  /** `paused`: events and timers refused because their actor is paused (they wait, or the caller got ACTOR_PAUSED). */
  readonly stats = { transitions: 0, duplicates: 0, rejected: 0, conflicts: 0, hydrations: 0, paused: 0 };
  /** Which actor waits on a correlation id (what this host committed is answered from memory). */
  readonly correlations: CorrelationIndex;

  constructor(private readonly o: ActorHostOptions) {
    this.#cache = new LruCache<Entry>(o.cacheSize, o.idleMs);
    this.correlations = new CorrelationIndex(o.pool);
    this.#committer = new Committer(o.pool, o.commitBatchMax, o.commitConcurrency, o.tenantWeight === false ? undefined : (o.tenantWeight ?? (() => 1)));
    this.#tracing = o.tracing ?? Tracing.off;
  }

  get registry(): Registry {
    return this.o.registry;
  }

  /** The runtime's clock (tests drive it): for the runtime's own time stamps. */
  now(): number {
    return this.o.clock.now();
  }

  /**
   * Adds a commit extension: rows the application writes with a transition (see
   * `CommitExtension`). Register every extension before the first commit (before `start()`).
   */
  extendCommit(ext: CommitExtension): void {
    this.#committer.extend(ext);
  }

  /** A typed handle on the actors of one type: its machine's events in, its context out. */
  actor<TDef extends AnyActorTypeDefinition>(def: TDef): ActorHandle<TDef> {
    return new ActorHandle(this, def);
  }

  /** Applies `event` to the actor (creating it from its initial state if it does not exist). */
  async send(ref: ActorRef, event: ActorEvent, opts: SendOptions = {}): Promise<SendResult> {
    const def = this.o.registry.get(ref.type);
    assertRef(ref);
    if (typeof event?.type !== 'string' || event.type === '' || event.type.startsWith('xstate.')) {
      throw new ConcordError(ErrorCode.InvalidEvent, 'an event needs a string `type` that does not start with "xstate."', { ref });
    }
    if (this.#closing) throw new ConcordError(ErrorCode.ShuttingDown, 'the runtime is shutting down');
    const input: StepInput = { kind: 'event', event, targetPath: opts.targetPath ?? '' };
    if (!this.#tracing.enabled) return this.#mailbox.run(refKey(ref), () => this.#apply(def, ref, input, opts, null));
    // the parent is taken now, in the caller's context: the mailbox may run the work from another
    const parent = this.#tracing.parent(opts.traceparent);
    return this.#mailbox.run(refKey(ref), () => this.#traced(def, ref, input, opts, parent, event.type));
  }

  /**
   * Fires a due timer through the normal path (deduped by its key and due time). A timer that
   * is no longer pending (cancelled, rescheduled, already fired) is a no-op and returns null.
   */
  async fireTimer(ref: ActorRef, key: string, dueAt: number, traceparent?: string | null): Promise<SendResult | null> {
    // the transition that set the timer is the parent of the one its firing makes
    const parent = this.#tracing.enabled ? this.#tracing.parent(traceparent ?? undefined) : undefined;
    const def = this.o.registry.get(ref.type);
    return this.#mailbox.run(refKey(ref), async () => {
      for (let fresh = false; ; fresh = true) {
        const entry = await this.#load(def, ref, fresh);
        const pending = entry?.timers.find((t) => t.key === key);
        if (pending && pending.dueAt === dueAt) break;
        if (fresh) return null;
      }
      const input: StepInput = { kind: 'timer', key };
      const opts = { messageId: `timer:${key}@${dueAt}` };
      return this.#tracing.enabled ? this.#traced(def, ref, input, opts, parent, key) : this.#apply(def, ref, input, opts, null);
    });
  }

  /** A transition in its span (`transition <type>`), with the actor's type, id and new version on it. */
  async #traced(def: ActorTypeDefinition, ref: ActorRef, input: StepInput, opts: SendOptions, parent: Context | undefined, event: string): Promise<SendResult> {
    const span = this.#tracing.start(`transition ${ref.type}`, SpanKind.INTERNAL, parent, {
      ...actorAttributes(ref),
      [Attr.event]: event,
      ...(opts.messageId ? { [Attr.messageId]: opts.messageId } : {}),
    })!;
    try {
      const r = await this.#tracing.within(span, () => this.#apply(def, ref, input, opts, span));
      span.setAttribute(Attr.actorVersion, r.version);
      span.setAttribute(Attr.outcome, r.duplicate ? 'duplicate' : 'applied');
      span.end();
      return r;
    } catch (err) {
      if (isConcordError(err, ErrorCode.EventRejected)) span.setAttribute(Attr.outcome, 'rejected');
      endFailed(span, err);
      throw err;
    }
  }

  async #apply(def: ActorTypeDefinition, ref: ActorRef, input: StepInput, opts: SendOptions, span: Span | null): Promise<SendResult> {
    const key = refKey(ref);
    const messageId = opts.messageId ?? null;
    const statement = this.#committer.statement;
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const fresh = attempt > 0;
      // assumed absent: not read (expectNew), so a rejection below is decided again on the stored row
      const assumed = !fresh && opts.expectNew === true && this.#cache.peek(key) === undefined;
      const entry = assumed ? null : await this.#load(def, ref, fresh);
      if (entry && opts.tenant && entry.tenant && entry.tenant !== opts.tenant) {
        throw new ConcordError(ErrorCode.ActorNotFound, `actor ${key} not found`, { ref });
      }
      // an id once applied stays applied: a redelivery seen here needs neither a transition nor a query
      const remembered = messageId ? entry?.recent?.get(messageId) : undefined;
      if (remembered !== undefined) return this.#duplicate(ref, remembered);
      if (entry?.paused) {
        if (!fresh) continue; // a resume in another process is seen only in the stored row
        this.stats.paused++;
        throw new ConcordError(ErrorCode.ActorPaused, `${key} is paused: it applies nothing until an operator resumes it`, { ref, pausedAt: entry.paused.at });
      }
      const now = this.o.clock.now();
      const machineInput = entry ? null : { id: ref.id, tenant: opts.tenant ?? null };
      // the entry's started actor, taken out: it comes back (advanced) only with a commit
      const live = entry?.live ?? LiveActor.hydrate(def.machine, entry?.snapshot ?? null, machineInput, entry?.timers ?? [], now);
      if (entry) entry.live = undefined;
      const out = live.apply(input, now);
      if ('rejected' in out) {
        if (entry) this.#keepLive(key, live, entry); // a rejection changes nothing
        if (messageId) {
          const first = await lookupInbox(this.o.pool, ref, messageId);
          if (first !== undefined) return this.#duplicate(ref, first);
        }
        if (!fresh && (entry || assumed)) continue; // the cached snapshot may be stale (or was not read): decide on the stored one
        this.stats.rejected++;
        const why: RejectionInfo = { ref, value: out.value, status: entry?.status ?? null, accepts: out.accepts, event: (input as { event: EventObject }).event.type };
        throw opts.rejected?.(why) ?? new ConcordError(ErrorCode.EventRejected, `${key} in state ${JSON.stringify(why.value)} does not accept '${why.event}'`, { ...why });
      }
      const version = (entry?.version ?? 0) + 1;
      const projection = def.project(out.snapshot);
      const tenant = entry?.tenant ?? projection.tenant ?? opts.tenant ?? null;
      const prevTimers = new Map((entry?.timers ?? []).map((t) => [t.key, t]));
      const nextKeys = new Set(out.timers.map((t) => t.key));
      const result = { version, value: out.snapshot.value, status: projection.status };
      const effects = toOutbox(out.effects, `${key}@${version}`);
      if (span) {
        // the trace goes on with what this transition sends: the relay's span is its child
        span.setAttribute(Attr.actorVersion, version);
        const traceparent = this.#tracing.traceparentOf(span);
        for (const o of effects.outbox) o.headers = { ...o.headers, [TRACEPARENT]: traceparent, [SOURCE_VERSION]: String(version) };
      }
      const rec: CommitRecord = {
        type: ref.type,
        id: ref.id,
        tenant,
        expected: entry?.version ?? 0,
        machineVersion: def.version,
        value: out.snapshot.value,
        status: projection.status,
        attrs: projection.attrs ?? {},
        snapshot: out.snapshot,
        messageId,
        result,
        journal: { kind: out.applied.kind, targetPath: out.applied.targetPath, event: out.applied.event, input: machineInput },
        partition: partitionOf(key, this.o.partitions),
        outbox: effects.outbox,
        correlations: effects.correlations,
        timerDeletes: [...prevTimers.keys()].filter((k) => !nextKeys.has(k)),
        timerUpserts: out.timers.filter((t) => prevTimers.get(t.key)?.dueAt !== t.dueAt || prevTimers.get(t.key)?.xstateId !== t.xstateId),
        at: new Date(now).toISOString(),
        extras: opts.extras?.({ version, value: out.snapshot.value, status: projection.status, context: out.snapshot.context }) ?? {},
        fence: opts.fence ?? null,
        traceId: span?.spanContext().traceId ?? null,
        traceparent: span ? this.#tracing.traceparentOf(span) : null,
      };
      for (const name of Object.keys(rec.extras)) {
        if (!statement.has(name)) throw new ConcordError(ErrorCode.InvalidConfig, `${key}: no commit extension '${name}' is registered`, { ref });
      }
      await this.o.hooks?.beforeCommit?.(rec);
      let outcome: CommitOutcome;
      const commitSpan = span && this.#tracing.start(`commit ${ref.type}`, SpanKind.INTERNAL, undefined, { ...actorAttributes(ref, version), [Attr.messageId]: messageId ?? '' });
      try {
        outcome = await this.#committer.commit(rec);
        if (commitSpan) {
          commitSpan.setAttribute(Attr.outcome, typeof outcome === 'object' ? 'refused' : outcome);
          commitSpan.end();
        }
      } catch (err) {
        endFailed(commitSpan, err);
        this.#cache.delete(key);
        throw new ConcordError(ErrorCode.CommitFailed, `commit of ${key} failed: ${(err as Error).message}`, { ref }, { cause: err });
      }
      if (outcome === 'fenced') {
        this.#cache.delete(key);
        const fence = opts.fence!;
        throw new ConcordError(ErrorCode.Fenced, `partition ${fence.partition} has passed to another process (lease epoch ${fence.epoch} is stale); ${key} is unchanged`, { ref, ...fence });
      }
      if (typeof outcome === 'object') {
        this.#cache.delete(key); // refused before the version check: what is cached is not known to be current
        throw new ConcordError(ErrorCode.Conflict, `${key}: the commit extension '${outcome.refusedBy}' refused the transition; ${key} is unchanged`, { ref, ...outcome });
      }
      if (outcome === 'conflict') {
        this.stats.conflicts++;
        this.#cache.delete(key);
        if (messageId) {
          const first = await lookupInbox(this.o.pool, ref, messageId);
          if (first !== undefined) return this.#duplicate(ref, first);
        }
        continue;
      }
      this.stats.transitions++;
      const at = new Date(now);
      const recent = entry?.recent ?? new Map<string, unknown>();
      if (messageId) {
        recent.set(messageId, result);
        if (recent.size > RECENT_IDS) recent.delete(recent.keys().next().value as string);
      }
      this.#cache.set(key, {
        recent,
        def,
        tenant,
        machineVersion: def.version,
        version,
        snapshot: out.snapshot,
        status: projection.status,
        attrs: projection.attrs ?? {},
        timers: out.timers,
        createdAt: entry?.createdAt ?? at,
        updatedAt: at,
        paused: null,
        forkedFrom: entry?.forkedFrom ?? null,
        uses: (entry?.uses ?? 0) + 1,
      });
      // an actor touched once (a create, a one-off event) is not worth keeping started
      if ((entry?.uses ?? 0) >= 1) this.#keepLive(key, live);
      if (rec.correlations.length > 0) this.correlations.remember(rec.correlations, { type: ref.type, id: ref.id });
      await this.o.hooks?.afterCommit?.(rec);
      if (rec.outbox.length > 0 || rec.timerUpserts.length > 0) this.o.onCommitted?.(rec);
      return { ref, version, value: out.snapshot.value, status: projection.status, duplicate: false, context: out.snapshot.context };
    }
    throw new ConcordError(ErrorCode.Conflict, `${key}: gave up after ${MAX_CONFLICT_RETRIES} conflicting writers`, { ref });
  }

  /** Keeps `live` with the cached entry of `key`, within the live budget (the oldest one stops). */
  #keepLive(key: string, live: LiveActor, entry = this.#cache.peek(key)): void {
    const budget = this.o.liveSize ?? 0;
    this.#live.delete(key);
    if (!entry || budget <= 0) return;
    entry.live = live;
    this.#live.set(key, entry);
    while (this.#live.size > budget) {
      const [oldest, held] = this.#live.entries().next().value as [string, Entry];
      this.#live.delete(oldest);
      held.live = undefined;
    }
  }

  #duplicate(ref: ActorRef, first: unknown): SendResult {
    this.stats.duplicates++;
    const r = first as { version: number; value: unknown; status: string };
    return { ref, version: r.version, value: r.value, status: r.status, duplicate: true };
  }

  async #load(def: ActorTypeDefinition, ref: ActorRef, fresh: boolean): Promise<Entry | null> {
    const key = refKey(ref);
    if (!fresh) {
      const hit = this.#cache.get(key);
      if (hit) return hit;
    }
    const stored = await loadActor(this.o.pool, ref);
    if (!stored) {
      this.#cache.delete(key);
      return null;
    }
    this.stats.hydrations++;
    const snapshot = upgradeSnapshot(def, ref, stored.snapshot, stored.machineVersion);
    const entry: Entry = { ...stored, snapshot, def };
    this.#cache.set(key, entry);
    return entry;
  }

  /**
   * The actor's current state as this process knows it: the cached snapshot (what the next
   * transition here starts from), else one load from Postgres, which then stays cached. Null
   * when it does not exist, or belongs to another tenant than `opts.tenant`. Another process
   * may have moved it on since; a transition decides on its own copy and its version check.
   */
  async current(ref: ActorRef, opts: { tenant?: string | null } = {}): Promise<ActorState | null> {
    const def = this.o.registry.get(ref.type);
    const key = refKey(ref);
    let entry: StoredActor | undefined = this.#cache.get(key);
    if (!entry) {
      const stored = await loadActor(this.o.pool, ref);
      if (!stored) return null;
      this.stats.hydrations++;
      const loaded: Entry = { ...stored, snapshot: upgradeSnapshot(def, ref, stored.snapshot, stored.machineVersion), def };
      // a transition may have cached a newer copy meanwhile: it stays
      if (!this.#cache.peek(key)) this.#cache.set(key, loaded);
      entry = loaded;
    }
    if (opts.tenant && entry.tenant && entry.tenant !== opts.tenant) return null;
    return { ref, tenant: entry.tenant, version: entry.version, value: entry.snapshot.value, status: entry.status, context: entry.snapshot.context };
  }

  /** The actor as stored now (always read from Postgres, so any process sees the latest). */
  async get(ref: ActorRef, opts: { tenant?: string | null } = {}): Promise<ActorView> {
    const def = this.o.registry.get(ref.type);
    const stored = await loadActor(this.o.pool, ref);
    if (!stored || (opts.tenant && stored.tenant && stored.tenant !== opts.tenant)) {
      throw new ConcordError(ErrorCode.ActorNotFound, `actor ${refKey(ref)} not found`, { ref });
    }
    const snapshot = upgradeSnapshot(def, ref, stored.snapshot, stored.machineVersion);
    return {
      ref,
      tenant: stored.tenant,
      version: stored.version,
      machineVersion: stored.machineVersion,
      value: snapshot.value,
      status: stored.status,
      context: snapshot.context,
      attrs: stored.attrs,
      timers: stored.timers.map((t) => ({ key: t.key, event: t.event.type, dueAt: new Date(t.dueAt).toISOString(), targetPath: t.targetPath })),
      accepts: acceptedEventsOf(def.machine, snapshot),
      paused: stored.paused,
      forkedFrom: stored.forkedFrom,
      createdAt: stored.createdAt.toISOString(),
      updatedAt: stored.updatedAt.toISOString(),
    };
  }

  /** The journal of applied events, oldest first. */
  history(ref: ActorRef, opts: { afterVersion?: number; limit?: number } = {}): Promise<JournalEntry[]> {
    this.o.registry.get(ref.type);
    return readJournal(this.o.pool, ref, opts);
  }

  /**
   * Replays the actor's journal through its machine from the initial state and compares the
   * result with the stored snapshot (valid while the machine version is unchanged).
   */
  async verifyReplay(ref: ActorRef): Promise<{ matches: boolean; replayed: PersistedSnapshot; stored: PersistedSnapshot }> {
    const def = this.o.registry.get(ref.type);
    const stored = await loadActor(this.o.pool, ref);
    if (!stored) throw new ConcordError(ErrorCode.ActorNotFound, `actor ${refKey(ref)} not found`, { ref });
    const journal = await readJournal(this.o.pool, ref);
    const replayed = replay(def.machine, journal[0]?.input ?? { id: ref.id, tenant: stored.tenant }, journal);
    const same = JSON.stringify(canonical(replayed.value)) === JSON.stringify(canonical(stored.snapshot.value)) &&
      JSON.stringify(canonical(replayed.context)) === JSON.stringify(canonical(stored.snapshot.context));
    return { matches: same, replayed, stored: stored.snapshot };
  }

  /**
   * Forgets what this process holds of the actor, so its next use reads the stored row (after an
   * operator paused, resumed or changed its timers outside a transition).
   */
  evict(ref: ActorRef): void {
    this.#cache.delete(refKey(ref));
  }

  /** Drops idle actors from memory. */
  passivateIdle(): number {
    return this.#cache.sweep();
  }

  get cached(): number {
    return this.#cache.size;
  }

  get inFlight(): number {
    return this.#mailbox.busy;
  }

  /** Stops intake and waits for in-flight transitions to commit. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#mailbox.drain();
  }
}

export type { TimerRow };
