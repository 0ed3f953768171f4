import { assign, emit, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from './kit/actor-type.js';
import { publish, type ConcordEffect } from './effects.js';
import { eventsRoot } from './lib/events.js';

/**
 * A vendor-partner relationship and its lifecycle:
 *
 * ```
 * draft ─create─► PENDING ─activate─► ACTIVE ─suspend─► SUSPENDED ─activate─► ACTIVE
 *                    └──────── terminate (or endDate passes) ────────► TERMINATED
 * ```
 *
 * Each live state watches `endDate`: with one set, it waits in `ending` on the named delay
 * `untilEnd`, which the runtime stores as a durable timer; with none, it rests in `open`.
 * Changing `endDate` re-enters the state, so the timer is rescheduled. Time arrives in events
 * (`at`), never from a clock, so a journal replays to the same state. Every change is published
 * on `<events>.relationship.<kind>` (`events` from `relationship.create`: `<NATS_PREFIX>.events`).
 */

export const RELATIONSHIP_TYPES = ['INTEGRATION', 'RESELLER', 'REFERRAL', 'COLLABORATION', 'API_CONSUMPTION'] as const;
export type RelationshipType = (typeof RELATIONSHIP_TYPES)[number];
export const RELATIONSHIP_STATUSES = ['PENDING', 'ACTIVE', 'SUSPENDED', 'TERMINATED'] as const;
export type RelationshipStatus = (typeof RELATIONSHIP_STATUSES)[number];

type Json = Record<string, unknown>;

export interface RelationshipContext {
  id: string;
  vendorId: string;
  partnerId: string;
  relationshipType: RelationshipType | null;
  startDate: string | null;
  endDate: string | null;
  agreementDetails: Json | null;
  configuration: Json | null;
  metadata: Json | null;
  createdAt: string | null;
  createdBy: string | null;
  lastEventAt: string | null;
  activatedAt: string | null;
  suspendedAt: string | null;
  terminatedAt: string | null;
  /** Why the relationship left ACTIVE (suspend) or ended (terminate, `endDate`). */
  statusReason: string | null;
  /**
   * Subject root of Concord's own events (`<NATS_PREFIX>.events`), from `relationship.create`.
   * Absent in snapshots written before it existed: those publish under `concord.events`.
   */
  events?: string;
}

interface Stamp {
  at: string;
  by: string;
}

export type RelationshipEvent =
  | ({
      type: 'relationship.create';
      vendorId: string;
      partnerId: string;
      relationshipType: RelationshipType;
      startDate?: string;
      endDate?: string | null;
      agreementDetails?: Json | null;
      configuration?: Json | null;
      metadata?: Json | null;
      /** Subject root of Concord's events (`<NATS_PREFIX>.events`; `concord.events` if absent). */
      events?: string;
    } & Stamp)
  | ({
      type: 'relationship.update';
      agreementDetails?: Json | null;
      configuration?: Json | null;
      metadata?: Json | null;
      endDate?: string | null;
    } & Stamp)
  | ({ type: 'relationship.activate'; reason?: string } & Stamp)
  | ({ type: 'relationship.suspend'; reason?: string } & Stamp)
  | ({ type: 'relationship.terminate'; reason?: string } & Stamp);

/** The lifecycle action each event stands for, as the HTTP edge names it. */
export const RELATIONSHIP_ACTIONS: Record<string, string> = {
  'relationship.update': 'update',
  'relationship.activate': 'activate',
  'relationship.suspend': 'suspend',
  'relationship.terminate': 'terminate',
};


/**
 * Every live status watches `endDate`: with one set, the relationship waits on the named delay
 * `untilEnd` (a durable timer) and then terminates itself; an update re-enters the status so the
 * wait starts again from the new date.
 */
const watchEndDate = {
  initial: 'watching',
  states: {
    watching: { always: [{ guard: 'hasEndDate', target: 'ending' }, { target: 'open' }] },
    open: {},
    ending: { after: { untilEnd: { target: '#relationship.terminated', actions: ['recordExpiry', { type: 'announce', params: { kind: 'terminated' } }] } } },
  },
} as const;

export const relationshipMachine = setup({
  types: {
    context: {} as RelationshipContext,
    events: {} as RelationshipEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
  guards: {
    hasEndDate: ({ context }) => context.endDate !== null,
    changesEndDate: ({ context, event }) => event.type === 'relationship.update' && 'endDate' in event && (event.endDate ?? null) !== context.endDate,
  },
  delays: {
    untilEnd: ({ context }) => Math.max(0, Date.parse(context.endDate ?? '') - Date.parse(context.lastEventAt ?? '')),
  },
  actions: {
    recordCreation: assign(({ event }) => {
      if (event.type !== 'relationship.create') return {};
      return {
        vendorId: event.vendorId,
        partnerId: event.partnerId,
        relationshipType: event.relationshipType,
        startDate: event.startDate ?? event.at,
        endDate: event.endDate ?? null,
        agreementDetails: event.agreementDetails ?? null,
        configuration: event.configuration ?? null,
        metadata: event.metadata ?? null,
        createdAt: event.at,
        createdBy: event.by,
        lastEventAt: event.at,
        ...(event.events ? { events: event.events } : {}),
      };
    }),
    applyUpdate: assign(({ context, event }) => {
      if (event.type !== 'relationship.update') return {};
      return {
        agreementDetails: 'agreementDetails' in event ? (event.agreementDetails ?? null) : context.agreementDetails,
        configuration: 'configuration' in event ? (event.configuration ?? null) : context.configuration,
        metadata: 'metadata' in event ? (event.metadata ?? null) : context.metadata,
        endDate: 'endDate' in event ? (event.endDate ?? null) : context.endDate,
        lastEventAt: event.at,
      };
    }),
    recordActivation: assign(({ event }) => ({ activatedAt: event.at, lastEventAt: event.at, statusReason: null })),
    recordSuspension: assign(({ event }) => ({
      suspendedAt: event.at,
      lastEventAt: event.at,
      statusReason: 'reason' in event ? (event.reason ?? null) : null,
    })),
    recordTermination: assign(({ event }) => ({
      terminatedAt: event.at,
      lastEventAt: event.at,
      statusReason: 'reason' in event ? (event.reason ?? null) : null,
    })),
    recordExpiry: assign(({ context }) => ({ terminatedAt: context.endDate, lastEventAt: context.endDate, statusReason: 'endDate reached' })),
    announce: emit(({ context }, params: { kind: string }) =>
      publish(`${eventsRoot(context)}.relationship.${params.kind}`, {
        id: context.id,
        vendorId: context.vendorId,
        partnerId: context.partnerId,
        relationshipType: context.relationshipType,
        at: context.lastEventAt,
        reason: context.statusReason,
      }),
    ),
  },
}).createMachine({
  id: 'relationship',
  context: ({ input }) => ({
    id: input.id,
    vendorId: '',
    partnerId: '',
    relationshipType: null,
    startDate: null,
    endDate: null,
    agreementDetails: null,
    configuration: null,
    metadata: null,
    createdAt: null,
    createdBy: null,
    lastEventAt: null,
    activatedAt: null,
    suspendedAt: null,
    terminatedAt: null,
    statusReason: null,
  }),
  initial: 'draft',
  states: {
    draft: {
      on: {
        'relationship.create': { target: 'pending', actions: ['recordCreation', { type: 'announce', params: { kind: 'created' } }] },
      },
    },
    pending: {
      ...watchEndDate,
      on: {
        'relationship.update': { target: 'pending', reenter: true, actions: 'applyUpdate' },
        'relationship.activate': { target: 'active', actions: ['recordActivation', { type: 'announce', params: { kind: 'activated' } }] },
        'relationship.terminate': { target: 'terminated', actions: ['recordTermination', { type: 'announce', params: { kind: 'terminated' } }] },
      },
    },
    active: {
      ...watchEndDate,
      on: {
        'relationship.update': { target: 'active', reenter: true, actions: 'applyUpdate' },
        'relationship.suspend': { target: 'suspended', actions: ['recordSuspension', { type: 'announce', params: { kind: 'suspended' } }] },
        'relationship.terminate': { target: 'terminated', actions: ['recordTermination', { type: 'announce', params: { kind: 'terminated' } }] },
      },
    },
    suspended: {
      ...watchEndDate,
      on: {
        'relationship.update': { target: 'suspended', reenter: true, actions: 'applyUpdate' },
        'relationship.activate': { target: 'active', actions: ['recordActivation', { type: 'announce', params: { kind: 'activated' } }] },
        'relationship.terminate': { target: 'terminated', actions: ['recordTermination', { type: 'announce', params: { kind: 'terminated' } }] },
      },
    },
    terminated: {},
  },
});

export const version = 1;
export const migrations: ActorTypeDefinition['migrations'] = {};

/** The spec's status word for a state value. */
export function statusOf(value: unknown): RelationshipStatus | 'DRAFT' {
  const top = typeof value === 'string' ? value : Object.keys(value as object)[0];
  switch (top) {
    case 'pending':
      return 'PENDING';
    case 'active':
      return 'ACTIVE';
    case 'suspended':
      return 'SUSPENDED';
    case 'terminated':
      return 'TERMINATED';
    default:
      return 'DRAFT';
  }
}

/** Indexed columns: the status, the vendor as tenant, and the searchable fields in `attrs`. */
export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as RelationshipContext;
  return {
    status: statusOf(snapshot.value),
    tenant: c.vendorId || null,
    attrs: { vendorId: c.vendorId, partnerId: c.partnerId, relationshipType: c.relationshipType },
  };
}

export const relationshipType: ActorTypeDefinition<typeof relationshipMachine> = {
  type: 'relationship',
  machine: relationshipMachine,
  version,
  migrations,
  project,
};
