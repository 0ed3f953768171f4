import { assign, emit, enqueueActions, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { callConnector, publish, type ConcordEffect } from '../effects.js';
import { eventsRoot } from '../lib/events.js';
import type { SyncDirection } from './conflict.js';
import type { Provider } from './index.js';

/**
 * The inventory sync of one connection (id `<tenant>:<provider>:<account>`, the connection's):
 * the one place its sync work is sequenced, so two syncs of a connection never run at once.
 *
 * ```
 * run:   idle ─sync.start─► running.paging ─page.done (more)─► paging (next page call)
 *                              │  └─page.failed (retryable)─► backingOff ─after─► paging
 *                              └─page.done (last)─► idle (completed) · page.failed (terminal)─► idle (failed)
 * poll:  waiting ─after pollInterval─► polling ─poll.done/failed─► waiting (the cursor moves on)
 * any:   sync.push ─► push call · sync.announce, *.done ─► InventoryUpdated
 * ```
 *
 * The machine does no I/O: each step is a `concord.call` of the `inventory` connector (the
 * services' sync engine), stored with the transition and carried out after commit; its answer
 * (counts, the next cursor, what changed on our side) comes back as an event. Progress is
 * committed per page, so a restart resumes with the page in flight (the engine makes a page run
 * twice do its work once). Every change the engine applied to our side is published as
 * `<events>.InventoryUpdated` from here, through the outbox.
 */

/** Page retries before a run fails (a breaker that stays open, a provider down for long). */
export const PAGE_MAX_ATTEMPTS = 12;
/** Longest wait between page retries. */
export const PAGE_RETRY_MAX_MS = 5 * 60_000;
/** Default interval of the incremental poll for changes a webhook missed. */
export const DEFAULT_POLL_MS = 5 * 60_000;
/** Runs kept for `GET .../syncs/{syncId}`. */
export const RUNS_KEPT = 20;

export type SyncMode = 'full' | 'delta';
export type RunStatus = 'running' | 'completed' | 'failed';

export interface SyncCounts {
  total: number;
  synced: number;
  unchanged: number;
  failed: number;
  conflicts: number;
  unmapped: number;
}

export interface SyncRun extends SyncCounts {
  syncId: string;
  mode: SyncMode;
  direction: SyncDirection;
  status: RunStatus;
  startedAt: string;
  finishedAt: string | null;
  pages: number;
  /** Where the next page starts (the engine's opaque cursor); null before the first page. */
  cursor: unknown;
  attempts: number;
  lastError: { code: string; message: string } | null;
  requestedBy: string | null;
  /** A delta's "changes since": the start of the last completed run (null: none completed). */
  since?: string | null;
}

/** A change applied to our side, for `InventoryUpdated`. */
export interface InventoryUpdate {
  sku: string;
  stock: number;
  previousStock: number | null;
  changedAt: string;
  /** What changed it: `webhook`, `poll`, `sync`, `resolution`. */
  via: string;
  conflict?: boolean;
  reason?: string;
}

export interface StepOutput extends Partial<SyncCounts> {
  /** The next page's cursor; null with `done`. */
  cursor?: unknown;
  done?: boolean;
  updates?: InventoryUpdate[];
}

export interface SyncContext {
  id: string;
  tenantId: string | null;
  provider: Provider | null;
  account: string | null;
  events?: string;
  run: SyncRun | null;
  runs: SyncRun[];
  pollMs: number;
  /** The incremental poll's cursor (changes since), kept by the engine's answers. */
  pollCursor: unknown;
  lastPollAt: string | null;
  lastSyncAt: string | null;
  lastEventAt: string | null;
  /** Running totals of item outcomes outside runs (pushes, webhooks, polls). */
  live: { pushes: number; polls: number; failures: number };
}

interface Stamp {
  at: string;
}
interface Who {
  tenantId: string;
  provider: Provider;
  account: string;
  events?: string;
  /** The poll's interval (INVENTORY_POLL_MS), carried by the service's events: a change restarts the wait. */
  pollMs?: number;
}
type Failure = { code: string; message: string; retryable: boolean; retryAfterMs?: number };

export type SyncEvent =
  | ({ type: 'sync.start'; syncId: string; mode: SyncMode; direction: SyncDirection; requestedBy?: string; pollMs?: number } & Who & Stamp)
  | ({ type: 'sync.push'; skus: string[] } & Who & Stamp)
  /** Changes applied to our side outside a step (a conflict resolved by hand), to announce. */
  | ({ type: 'sync.announce'; updates: InventoryUpdate[] } & Who & Stamp)
  | ({ type: 'inventory.page.done'; output: StepOutput } & Stamp)
  | ({ type: 'inventory.page.failed'; error: Failure } & Stamp)
  | ({ type: 'inventory.push.done'; output: StepOutput } & Stamp)
  | ({ type: 'inventory.push.failed'; error: Failure } & Stamp)
  | ({ type: 'inventory.poll.done'; output: StepOutput } & Stamp)
  | ({ type: 'inventory.poll.failed'; error: Failure } & Stamp);

const who = (c: SyncContext) => ({ tenantId: c.tenantId, provider: c.provider, account: c.account });

const pageCall = (c: SyncContext): ConcordEffect =>
  callConnector('inventory', 'page', { ...who(c), syncId: c.run!.syncId, mode: c.run!.mode, direction: c.run!.direction, cursor: c.run!.cursor, page: c.run!.pages, since: c.run!.since ?? null });

const zero: SyncCounts = { total: 0, synced: 0, unchanged: 0, failed: 0, conflicts: 0, unmapped: 0 };

function add(run: SyncRun, o: StepOutput): SyncRun {
  return {
    ...run,
    total: run.total + (o.total ?? 0),
    synced: run.synced + (o.synced ?? 0),
    unchanged: run.unchanged + (o.unchanged ?? 0),
    failed: run.failed + (o.failed ?? 0),
    conflicts: run.conflicts + (o.conflicts ?? 0),
    unmapped: run.unmapped + (o.unmapped ?? 0),
  };
}

/** The run in the list of recent runs, replaced by id. */
const keep = (runs: SyncRun[], run: SyncRun): SyncRun[] => [run, ...runs.filter((r) => r.syncId !== run.syncId)].slice(0, RUNS_KEPT);

const outputOf = (e: SyncEvent): StepOutput | null => ('output' in e ? e.output : e.type === 'sync.announce' ? { updates: e.updates } : null);

export const syncMachine = setup({
  types: {
    context: {} as SyncContext,
    events: {} as SyncEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
  guards: {
    lastPage: ({ event }) => event.type === 'inventory.page.done' && event.output.done === true,
    pollChanged: ({ context, event }) => 'pollMs' in event && typeof event.pollMs === 'number' && event.pollMs > 0 && event.pollMs !== context.pollMs,
    retryPage: ({ context, event }) => event.type === 'inventory.page.failed' && event.error.retryable && (context.run?.attempts ?? 0) + 1 < PAGE_MAX_ATTEMPTS,
  },
  delays: {
    pageRetry: ({ context }) => {
      const attempts = Math.max(1, context.run?.attempts ?? 1);
      const wanted = Math.min(1000 * 2 ** (attempts - 1), PAGE_RETRY_MAX_MS);
      const after = context.run?.lastError && 'retryAfterMs' in context.run.lastError ? Number(context.run.lastError.retryAfterMs) || 0 : 0;
      return Math.min(Math.max(wanted, after), PAGE_RETRY_MAX_MS);
    },
    pollInterval: ({ context }) => context.pollMs,
  },
  actions: {
    identify: assign(({ context, event }) => {
      if (!('tenantId' in event)) return { lastEventAt: event.at };
      return {
        tenantId: context.tenantId ?? event.tenantId,
        provider: context.provider ?? event.provider,
        account: context.account ?? event.account,
        lastEventAt: event.at,
        ...(event.events ? { events: event.events } : {}),
        ...(event.pollMs ? { pollMs: event.pollMs } : {}),
      };
    }),
    startRun: assign(({ context, event }) => {
      if (event.type !== 'sync.start') return {};
      const run: SyncRun = {
        syncId: event.syncId,
        mode: event.mode,
        direction: event.direction,
        status: 'running',
        startedAt: event.at,
        finishedAt: null,
        pages: 0,
        cursor: null,
        attempts: 0,
        lastError: null,
        requestedBy: event.requestedBy ?? null,
        since: context.runs.find((r) => r.status === 'completed')?.startedAt ?? null,
        ...zero,
      };
      return { run, runs: keep(context.runs, run), ...(event.pollMs ? { pollMs: event.pollMs } : {}) };
    }),
    requestPage: emit(({ context }) => pageCall(context)),
    recordPage: assign(({ context, event }) => {
      const o = outputOf(event);
      if (event.type !== 'inventory.page.done' || !o || !context.run) return {};
      const run: SyncRun = { ...add(context.run, o), pages: context.run.pages + 1, cursor: o.cursor ?? null, attempts: 0, lastError: null };
      return { run, runs: keep(context.runs, run), lastEventAt: event.at };
    }),
    recordPageFailure: assign(({ context, event }) => {
      if (event.type !== 'inventory.page.failed' || !context.run) return {};
      const e = event.error;
      const run: SyncRun = { ...context.run, attempts: context.run.attempts + 1, lastError: { code: e.code, message: e.message, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) } };
      return { run, runs: keep(context.runs, run), lastEventAt: event.at };
    }),
    completeRun: assign(({ context, event }) => {
      if (!context.run) return {};
      const run: SyncRun = { ...context.run, status: 'completed', finishedAt: event.at, cursor: null };
      return { run: null, runs: keep(context.runs, run), lastSyncAt: event.at };
    }),
    failRun: assign(({ context, event }) => {
      if (!context.run) return {};
      const run: SyncRun = { ...context.run, status: 'failed', finishedAt: event.at };
      return { run: null, runs: keep(context.runs, run), lastSyncAt: event.at };
    }),
    requestPush: emit(({ context, event }) => callConnector('inventory', 'push', { ...who(context), skus: event.type === 'sync.push' ? event.skus : [] })),
    requestPoll: emit(({ context }) => callConnector('inventory', 'poll', { ...who(context), cursor: context.pollCursor })),
    recordPoll: assign(({ context, event }) => {
      const o = outputOf(event);
      return {
        pollCursor: o && o.cursor !== undefined ? o.cursor : context.pollCursor,
        lastPollAt: event.at,
        live: { ...context.live, polls: context.live.polls + 1, failures: context.live.failures + (o ? (o.failed ?? 0) : 1) },
      };
    }),
    countPush: assign(({ context, event }) => {
      const o = outputOf(event);
      return { live: { ...context.live, pushes: context.live.pushes + 1, failures: context.live.failures + (o ? (o.failed ?? 0) : 1) } };
    }),
    // every change the engine applied to our side, to the platform (one message per change; its
    // id is the SKU and the change time, so a repeat of the same answer is deduped downstream)
    announce: enqueueActions(({ context, event, enqueue }) => {
      for (const u of outputOf(event)?.updates ?? []) {
        enqueue.emit(
          publish(
            `${eventsRoot(context)}.InventoryUpdated`,
            { tenantId: context.tenantId, sku: u.sku, stock: u.stock, previousStock: u.previousStock, changedAt: u.changedAt, provider: context.provider, account: context.account, via: u.via, ...(u.conflict ? { conflict: true, reason: u.reason } : {}) },
            { messageId: `inventory:${context.tenantId}:${u.sku}:${u.changedAt}:${u.stock}` },
          ),
        );
      }
    }),
  },
}).createMachine({
  id: 'inventory-sync',
  context: ({ input }) => ({
    id: input.id,
    tenantId: input.tenant,
    provider: null,
    account: null,
    run: null,
    runs: [],
    pollMs: DEFAULT_POLL_MS,
    pollCursor: null,
    lastPollAt: null,
    lastSyncAt: null,
    lastEventAt: null,
    live: { pushes: 0, polls: 0, failures: 0 },
  }),
  type: 'parallel',
  on: {
    'sync.push': { actions: ['identify', 'requestPush'] },
    'sync.announce': { actions: ['identify', 'announce'] },
    'inventory.push.done': { actions: ['countPush', 'announce'] },
    'inventory.push.failed': { actions: 'countPush' },
  },
  states: {
    run: {
      initial: 'idle',
      states: {
        idle: {
          on: { 'sync.start': { target: 'running', actions: ['identify', 'startRun', 'requestPage'] } },
        },
        running: {
          initial: 'paging',
          states: {
            paging: {
              on: {
                'inventory.page.done': [
                  { guard: 'lastPage', target: '#inventory-sync.run.idle', actions: ['recordPage', 'announce', 'completeRun'] },
                  { actions: ['recordPage', 'announce', 'requestPage'] },
                ],
                'inventory.page.failed': [
                  { guard: 'retryPage', target: 'backingOff', actions: 'recordPageFailure' },
                  { target: '#inventory-sync.run.idle', actions: ['recordPageFailure', 'failRun'] },
                ],
              },
            },
            backingOff: { after: { pageRetry: { target: 'paging', actions: 'requestPage' } } },
          },
        },
      },
    },
    poll: {
      initial: 'waiting',
      states: {
        waiting: {
          after: { pollInterval: { target: 'polling', actions: 'requestPoll' } },
          // a new interval restarts the wait (the first one was started with the default)
          on: {
            'sync.start': { guard: 'pollChanged', target: 'waiting', reenter: true },
            'sync.push': { guard: 'pollChanged', target: 'waiting', reenter: true },
            'sync.announce': { guard: 'pollChanged', target: 'waiting', reenter: true },
          },
        },
        polling: {
          on: {
            'inventory.poll.done': { target: 'waiting', actions: ['recordPoll', 'announce'] },
            'inventory.poll.failed': { target: 'waiting', actions: 'recordPoll' },
          },
        },
      },
    },
  },
});

export const version = 1;
export const migrations: ActorTypeDefinition['migrations'] = {};

export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as SyncContext;
  return {
    status: c.run ? 'RUNNING' : 'IDLE',
    tenant: c.tenantId,
    attrs: { provider: c.provider, account: c.account, syncId: c.run?.syncId ?? null },
  };
}

export const syncType: ActorTypeDefinition<typeof syncMachine> = {
  type: 'inventory-sync',
  machine: syncMachine,
  version,
  migrations,
  project,
};
