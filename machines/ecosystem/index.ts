import { assign, emit, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { callConnector, publish, type ConcordEffect } from '../effects.js';
import { eventsRoot } from '../lib/events.js';

/**
 * One integration of the partner registry, id `<tenant>:<name>`: whether it is monitored, and its
 * health status.
 *
 * ```
 * unregistered ─register─► active.waiting ─ecosystem.check─► active.checking ─health.done/failed─► active.waiting
 *                             │  ▲        (health.observed: a scheduled check changed the status)
 *                  deactivate │  │ activate
 *                             ▼  │
 *                           inactive            any ─delete─► deleted ─register─► active
 * ```
 *
 * The periodic checks are not this actor's timers (version 1 had one timer, two transitions and
 * two commits per check): the registry's health monitor (services/ecosystem/monitor.ts) checks
 * every active integration at its tier's interval, on due times spread by a hash of the id,
 * records every outcome in bulk, and sends `ecosystem.health.observed` (the health it computed
 * with `nextHealth`) only when the status changed. `ecosystem.check` still checks through the
 * actor: a `concord.call` of the `ecosystem.health` operation, answered as
 * `ecosystem.health.done` or `.failed`. The status is `healthy` (answered as expected, under the
 * tier's latency bound), `degraded` (slow, or fewer failures in a row than the tier's
 * `unhealthyAfter`), `unhealthy`, or `unknown` (never checked). A change of status publishes
 * `<events>.IntegrationHealthChanged`. Tier settings arrive in events, so the machine stays
 * pure: no clock, no configuration.
 */

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy' | 'unknown';

/** What a tier sets for the checks (from the tier table, services/ecosystem/tiers.json). */
export interface CheckSettings {
  tier: string;
  /** Milliseconds between checks. */
  intervalMs: number;
  /** A check that answered as expected but took longer than this is `degraded`. */
  degradedLatencyMs: number;
  /** Failures in a row at which the status becomes `unhealthy` (fewer: `degraded`). */
  unhealthyAfter: number;
}

/** One check's outcome, as the registry's connector answers it. */
export interface CheckOutput {
  ok: boolean;
  /** The HTTP status the service answered (0 when it could not be reached). */
  status: number;
  latencyMs: number;
}

export interface EcosystemHealth {
  status: HealthStatus;
  latencyMs: number | null;
  lastCheckAt: string | null;
  lastOkAt: string | null;
  consecutiveFailures: number;
  /** When the current status began. */
  since: string | null;
  lastError: { code: string; message: string } | null;
  checks: number;
}

export interface EcosystemContext extends CheckSettings {
  id: string;
  tenantId: string | null;
  name: string | null;
  /** Subject root of Concord's events (`<NATS_PREFIX>.events`), from the registration. */
  events?: string;
  health: EcosystemHealth;
}

interface Stamp {
  at: string;
}

export type EcosystemEvent =
  | ({ type: 'ecosystem.register'; tenantId: string; name: string; settings: CheckSettings; events?: string; firstCheck?: CheckOutput | null } & Stamp)
  | ({ type: 'ecosystem.configure'; settings: CheckSettings; by?: string } & Stamp)
  | ({ type: 'ecosystem.deactivate'; by?: string } & Stamp)
  | ({ type: 'ecosystem.activate'; by?: string } & Stamp)
  | ({ type: 'ecosystem.delete'; by?: string } & Stamp)
  /** Check now (an operator, or a change of config), instead of waiting for the timer. */
  | ({ type: 'ecosystem.check' } & Stamp)
  | ({ type: 'ecosystem.health.done'; output: CheckOutput } & Stamp)
  | ({ type: 'ecosystem.health.failed'; error: { code: string; message: string; retryable?: boolean } } & Stamp)
  /** The health monitor's scheduled checks changed the status: the health it computed (`nextHealth` over its own record). */
  | ({ type: 'ecosystem.health.observed'; health: EcosystemHealth } & Stamp);

const UNKNOWN: EcosystemHealth = { status: 'unknown', latencyMs: null, lastCheckAt: null, lastOkAt: null, consecutiveFailures: 0, since: null, lastError: null, checks: 0 };

/**
 * The health after one check (pure): the rule every check applies, exported for the tests and
 * for the registration's first check.
 */
export function nextHealth(prev: EcosystemHealth, s: CheckSettings, outcome: { ok: boolean; latencyMs: number | null; error: { code: string; message: string } | null }, at: string): EcosystemHealth {
  const failures = outcome.ok ? 0 : prev.consecutiveFailures + 1;
  const status: HealthStatus = outcome.ok
    ? outcome.latencyMs !== null && outcome.latencyMs > s.degradedLatencyMs
      ? 'degraded'
      : 'healthy'
    : failures >= s.unhealthyAfter
      ? 'unhealthy'
      : 'degraded';
  return {
    status,
    latencyMs: outcome.latencyMs,
    lastCheckAt: at,
    lastOkAt: outcome.ok ? at : prev.lastOkAt,
    consecutiveFailures: failures,
    since: status === prev.status ? prev.since : at,
    lastError: outcome.error,
    checks: prev.checks + 1,
  };
}

const outcomeOf = (event: EcosystemEvent): { ok: boolean; latencyMs: number | null; error: { code: string; message: string } | null } | null => {
  if (event.type === 'ecosystem.health.done') {
    const o = event.output;
    return { ok: o.ok, latencyMs: o.latencyMs, error: o.ok ? null : { code: 'UNEXPECTED_STATUS', message: `health check answered ${o.status}` } };
  }
  if (event.type === 'ecosystem.health.failed') return { ok: false, latencyMs: null, error: { code: event.error.code, message: event.error.message } };
  if (event.type === 'ecosystem.register' && event.firstCheck) {
    const o = event.firstCheck;
    return { ok: o.ok, latencyMs: o.latencyMs, error: o.ok ? null : { code: o.status === 0 ? 'NETWORK' : 'UNEXPECTED_STATUS', message: o.status === 0 ? 'the service could not be reached' : `health check answered ${o.status}` } };
  }
  return null;
};

const settingsOf = (s: CheckSettings): CheckSettings => ({ tier: s.tier, intervalMs: s.intervalMs, degradedLatencyMs: s.degradedLatencyMs, unhealthyAfter: s.unhealthyAfter });

export const ecosystemMachine = setup({
  types: {
    context: {} as EcosystemContext,
    events: {} as EcosystemEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
  actions: {
    recordRegistration: assign(({ event }) => {
      if (event.type !== 'ecosystem.register') return {};
      return { tenantId: event.tenantId, name: event.name, ...settingsOf(event.settings), health: { ...UNKNOWN }, ...(event.events ? { events: event.events } : {}) };
    }),
    recordSettings: assign(({ event }) => (event.type === 'ecosystem.configure' ? settingsOf(event.settings) : {})),
    requestCheck: emit(({ context }) => callConnector('ecosystem', 'health', { id: context.id, tenantId: context.tenantId, name: context.name })),
    recordCheck: assign(({ context, event }) => {
      if (event.type === 'ecosystem.health.observed') return { health: { ...event.health } };
      const outcome = outcomeOf(event);
      return outcome ? { health: nextHealth(context.health, context, outcome, event.at) } : {};
    }),
    /** Publishes IntegrationHealthChanged when the check just recorded changed the status (`since` is then the check's time). */
    announceChange: emit(({ context, event }) => {
      const h = context.health;
      return publish(`${eventsRoot(context)}.IntegrationHealthChanged`, {
        integrationId: context.id,
        tenantId: context.tenantId,
        name: context.name,
        tier: context.tier,
        status: h.status,
        latencyMs: h.latencyMs,
        consecutiveFailures: h.consecutiveFailures,
        lastError: h.lastError,
        at: event.at,
      });
    }),
  },
  guards: {
    statusChanged: ({ context, event }) => {
      if (event.type === 'ecosystem.health.observed') return event.health.status !== context.health.status;
      const outcome = outcomeOf(event);
      return outcome !== null && nextHealth(context.health, context, outcome, event.at).status !== context.health.status;
    },
  },
}).createMachine({
  id: 'ecosystem',
  context: ({ input }) => ({
    id: input.id,
    tenantId: input.tenant,
    name: null,
    tier: 'community',
    intervalMs: 300_000,
    degradedLatencyMs: 2_000,
    unhealthyAfter: 3,
    health: { ...UNKNOWN },
  }),
  initial: 'unregistered',
  on: {
    'ecosystem.delete': { target: '.deleted' },
  },
  states: {
    unregistered: {
      on: {
        'ecosystem.register': [
          { guard: 'statusChanged', target: 'active', actions: ['recordRegistration', 'recordCheck', 'announceChange'] },
          { target: 'active', actions: ['recordRegistration', 'recordCheck'] },
        ],
      },
    },
    active: {
      initial: 'waiting',
      states: {
        waiting: {
          on: {
            'ecosystem.check': { target: 'checking', actions: 'requestCheck' },
            'ecosystem.configure': { actions: 'recordSettings' },
          },
        },
        checking: {
          on: {
            // one check at a time: the answer of the running one is awaited
            'ecosystem.check': {},
            'ecosystem.configure': { actions: 'recordSettings' },
          },
        },
      },
      on: {
        'ecosystem.health.done': [
          { guard: 'statusChanged', target: '.waiting', reenter: true, actions: ['recordCheck', 'announceChange'] },
          { target: '.waiting', reenter: true, actions: 'recordCheck' },
        ],
        'ecosystem.health.failed': [
          { guard: 'statusChanged', target: '.waiting', reenter: true, actions: ['recordCheck', 'announceChange'] },
          { target: '.waiting', reenter: true, actions: 'recordCheck' },
        ],
        'ecosystem.health.observed': [
          { guard: 'statusChanged', actions: ['recordCheck', 'announceChange'] },
          { actions: 'recordCheck' },
        ],
        'ecosystem.deactivate': { target: 'inactive' },
        // registered again (the delete of an earlier registration never reached this actor): start over
        'ecosystem.register': [
          { guard: 'statusChanged', target: 'active', reenter: true, actions: ['recordRegistration', 'recordCheck', 'announceChange'] },
          { target: 'active', reenter: true, actions: ['recordRegistration', 'recordCheck'] },
        ],
      },
    },
    inactive: {
      on: {
        'ecosystem.activate': { target: 'active.checking', actions: 'requestCheck' },
        'ecosystem.register': [
          { guard: 'statusChanged', target: 'active', actions: ['recordRegistration', 'recordCheck', 'announceChange'] },
          { target: 'active', actions: ['recordRegistration', 'recordCheck'] },
        ],
        'ecosystem.configure': { actions: 'recordSettings' },
        // the answer of a check that was running when the integration was deactivated
        'ecosystem.health.done': {},
        'ecosystem.health.failed': {},
        'ecosystem.health.observed': {},
      },
    },
    deleted: {
      on: {
        'ecosystem.register': [
          { guard: 'statusChanged', target: 'active', actions: ['recordRegistration', 'recordCheck', 'announceChange'] },
          { target: 'active', actions: ['recordRegistration', 'recordCheck'] },
        ],
        'ecosystem.health.done': {},
        'ecosystem.health.failed': {},
        'ecosystem.health.observed': {},
      },
    },
  },
});

/** Version 2: no check timer (the health monitor schedules the checks), `ecosystem.health.observed`. */
export const version = 2;
/** A version-1 snapshot is a version-2 one (its pending check timer is deleted by migration 0018). */
export const migrations: ActorTypeDefinition['migrations'] = { 1: (s) => s };

export const ECOSYSTEM_STATES = ['unregistered', 'active', 'inactive', 'deleted'] as const;
export type EcosystemState = (typeof ECOSYSTEM_STATES)[number];

/** The top-level state of a snapshot's value. */
export function ecosystemStateOf(value: unknown): EcosystemState {
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as EcosystemState;
}

/** The registered integration's actor id: `<tenant>:<name>`. */
export const ecosystemId = (tenantId: string, name: string): string => `${tenantId}:${name}`;

export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as EcosystemContext;
  return {
    status: ecosystemStateOf(snapshot.value).toUpperCase(),
    tenant: c.tenantId,
    attrs: { name: c.name, tier: c.tier, health: c.health.status },
  };
}

export const ecosystemType: ActorTypeDefinition<typeof ecosystemMachine> = {
  type: 'ecosystem',
  machine: ecosystemMachine,
  version,
  migrations,
  project,
};
