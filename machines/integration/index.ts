import { assign, emit, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { callConnector, publish, type ConcordEffect } from '../effects.js';
import { eventsRoot } from '../lib/events.js';

/**
 * One marketplace connection: a (tenant, provider, account), id `<tenant>:<provider>:<account>`.
 *
 * ```
 * connecting ─connected─► connected ─refreshDue / refresh.start─► token_expired ─done─► connected
 *                            │  ▲                                      └─failed (terminal)─► reauthorization_required
 *                            pause/resume ─► paused
 * any but disconnected ─disconnect─► disconnected
 * ```
 *
 * The connection is the one writer of its credentials: a refresh is a `concord.call` of the
 * `integration.refresh` operation that only the transition into `token_expired` emits, so
 * however many processes ask for a refresh at once, one call runs. The snapshot holds a
 * credential reference (the vault key), never a token. Time arrives in events (`at`).
 */

/** Refresh this long before the access token expires (or at once, when it lives less). */
export const REFRESH_MARGIN_MS = 5 * 60_000;
/** Wait before retrying a refresh that failed with a retryable error. */
export const REFRESH_RETRY_MS = 30_000;

/** A marketplace over OAuth, or `generic`: any REST API connected with an API key or OAuth client credentials. */
export type Provider = 'shopify' | 'mercadolibre' | 'generic';

/** The vault key of a connection's secret: never the secret. */
export interface CredentialReference {
  tenantId: string;
  service: string;
  connectionId: string;
  /** The vault row's version the connection last stored or read. */
  version: number;
}

export interface IntegrationContext {
  id: string;
  tenantId: string | null;
  provider: Provider | null;
  account: string | null;
  /** Subject root of Concord's events (`<NATS_PREFIX>.events`), from the first event. */
  events?: string;
  /** The nonce of the pending authorization's state (a reference, not the signed state). */
  stateNonce: string | null;
  credential: CredentialReference | null;
  tokenExpiresAt: string | null;
  scopes: string[];
  webhookSubscriptions: string[];
  lastWebhook: { webhookId: string; topic: string; receivedAt: string } | null;
  lastEventAt: string | null;
  connectedAt: string | null;
  lastRefreshAt: string | null;
  refreshFailures: number;
  lastError: { code: string; message: string } | null;
  pausedFrom: 'connected' | 'token_expired' | 'reauthorization_required' | null;
}

interface Stamp {
  at: string;
}

export type IntegrationEvent =
  | ({ type: 'integration.authorization.started'; tenantId: string; provider: Provider; account: string; stateNonce: string; events?: string } & Stamp)
  | ({
      type: 'integration.connected';
      tenantId: string;
      provider: Provider;
      account: string;
      credential: CredentialReference;
      tokenExpiresAt: string | null;
      scopes: string[];
      webhookSubscriptions?: string[];
      events?: string;
    } & Stamp)
  /** A refresh is wanted now (a 401, an operator): the same as the durable `refreshDue` timer. */
  /**
   * `seenVersion`: the credential version the asker's call was refused with; a refresh asked for an
   * older version than the connection holds is already done (another caller's refresh won).
   */
  | ({ type: 'integration.refresh.start'; reason?: string; seenVersion?: number } & Stamp)
  | ({ type: 'integration.refresh.done'; output: { credential: CredentialReference; tokenExpiresAt: string | null; scopes: string[] } } & Stamp)
  | ({ type: 'integration.refresh.failed'; error: { code: string; message: string; retryable: boolean; retryAfterMs?: number } } & Stamp)
  /** A call with the connection's token was answered that only a person can fix it (the outbound door's REAUTHORIZATION_REQUIRED). */
  | ({ type: 'integration.reauthorization.required'; error: { code: string; message: string } } & Stamp)
  | ({ type: 'integration.pause'; reason?: string } & Stamp)
  | ({ type: 'integration.resume' } & Stamp)
  | ({ type: 'integration.disconnect'; by?: string } & Stamp)
  | { type: 'integration.webhook.received'; webhookId: string; topic: string; receivedAt: string };

const at = (event: IntegrationEvent): string => ('at' in event ? event.at : event.receivedAt);

const refreshCall = (c: IntegrationContext): ConcordEffect =>
  callConnector('integration', 'refresh', { tenantId: c.tenantId, provider: c.provider, account: c.account, credential: c.credential });

/** Every live state records the last webhook received; `disconnected` refuses it. */
const webhooks = { 'integration.webhook.received': { actions: 'recordWebhook' as const } };

export const integrationMachine = setup({
  types: {
    context: {} as IntegrationContext,
    events: {} as IntegrationEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
  guards: {
    expires: ({ context }) => context.tokenExpiresAt !== null,
    retryable: ({ event }) => event.type === 'integration.refresh.failed' && event.error.retryable,
  },
  delays: {
    refreshDue: ({ context }) => Math.max(0, Date.parse(context.tokenExpiresAt ?? '') - REFRESH_MARGIN_MS - Date.parse(context.lastEventAt ?? '')),
    refreshRetry: ({ context }) => {
      const wanted = Math.max(REFRESH_RETRY_MS, context.lastError && 'retryAfterMs' in context.lastError ? Number(context.lastError.retryAfterMs) || 0 : 0);
      return Math.min(wanted * 2 ** Math.max(0, context.refreshFailures - 1), 15 * 60_000);
    },
  },
  actions: {
    recordStart: assign(({ event }) => {
      if (event.type !== 'integration.authorization.started') return {};
      return {
        tenantId: event.tenantId,
        provider: event.provider,
        account: event.account,
        stateNonce: event.stateNonce,
        lastEventAt: event.at,
        ...(event.events ? { events: event.events } : {}),
      };
    }),
    recordConnection: assign(({ event }) => {
      if (event.type !== 'integration.connected') return {};
      return {
        tenantId: event.tenantId,
        provider: event.provider,
        account: event.account,
        stateNonce: null,
        credential: event.credential,
        tokenExpiresAt: event.tokenExpiresAt,
        scopes: event.scopes,
        webhookSubscriptions: event.webhookSubscriptions ?? [],
        connectedAt: event.at,
        lastEventAt: event.at,
        refreshFailures: 0,
        lastError: null,
        pausedFrom: null,
        ...(event.events ? { events: event.events } : {}),
      };
    }),
    stamp: assign(({ event }) => ({ lastEventAt: at(event) })),
    requestRefresh: emit(({ context }) => refreshCall(context)),
    recordRefresh: assign(({ event }) => {
      if (event.type !== 'integration.refresh.done') return {};
      return {
        credential: event.output.credential,
        tokenExpiresAt: event.output.tokenExpiresAt,
        scopes: event.output.scopes,
        lastRefreshAt: event.at,
        lastEventAt: event.at,
        refreshFailures: 0,
        lastError: null,
      };
    }),
    recordFailure: assign(({ context, event }) => {
      if (event.type !== 'integration.refresh.failed') return {};
      const e = event.error;
      return {
        refreshFailures: context.refreshFailures + 1,
        lastError: { code: e.code, message: e.message, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) },
        lastEventAt: event.at,
      };
    }),
    recordRefusal: assign(({ event }) => {
      if (event.type !== 'integration.reauthorization.required') return {};
      return { lastError: { code: event.error.code, message: event.error.message }, lastEventAt: event.at };
    }),
    announceReauthorization: emit(({ context }) =>
      publish(`${eventsRoot(context)}.IntegrationReauthorizationRequired`, {
        connectionId: context.id,
        tenantId: context.tenantId,
        provider: context.provider,
        account: context.account,
        reason: context.lastError?.code ?? null,
        at: context.lastEventAt,
      }),
    ),
    recordWebhook: assign(({ event }) => {
      if (event.type !== 'integration.webhook.received') return {};
      return { lastWebhook: { webhookId: event.webhookId, topic: event.topic, receivedAt: event.receivedAt } };
    }),
    rememberConnected: assign({ pausedFrom: 'connected' as const }),
    rememberExpired: assign({ pausedFrom: 'token_expired' as const }),
    rememberReauth: assign({ pausedFrom: 'reauthorization_required' as const }),
    forget: assign(({ event }) => ({
      credential: null,
      tokenExpiresAt: null,
      stateNonce: null,
      webhookSubscriptions: [],
      pausedFrom: null,
      lastEventAt: at(event),
    })),
  },
}).createMachine({
  id: 'integration',
  context: ({ input }) => ({
    id: input.id,
    tenantId: input.tenant,
    provider: null,
    account: null,
    stateNonce: null,
    credential: null,
    tokenExpiresAt: null,
    scopes: [],
    webhookSubscriptions: [],
    lastWebhook: null,
    lastEventAt: null,
    connectedAt: null,
    lastRefreshAt: null,
    refreshFailures: 0,
    lastError: null,
    pausedFrom: null,
  }),
  initial: 'connecting',
  on: {
    'integration.disconnect': { target: '.disconnected', actions: 'forget' },
    // a new authorization (to reauthorize, or to change scopes) records its nonce; a working
    // connection keeps working until the callback delivers `integration.connected`
    'integration.authorization.started': { actions: 'recordStart' },
    'integration.connected': { target: '.connected', actions: 'recordConnection' },
  },
  states: {
    connecting: { on: { ...webhooks } },
    connected: {
      initial: 'check',
      states: {
        check: { always: [{ guard: 'expires', target: 'waiting' }, { target: 'lasting' }] },
        lasting: {},
        waiting: { after: { refreshDue: { target: '#integration.token_expired', actions: 'requestRefresh' } } },
      },
      on: {
        ...webhooks,
        'integration.refresh.start': [
          // refused with a token older than the one we hold: a refresh already happened since
          { guard: ({ context, event }) => event.seenVersion !== undefined && (context.credential?.version ?? 0) > event.seenVersion, actions: 'stamp' },
          { target: 'token_expired', actions: ['stamp', 'requestRefresh'] },
        ],
        'integration.reauthorization.required': { target: 'reauthorization_required', actions: ['recordRefusal', 'announceReauthorization'] },
        'integration.pause': { target: 'paused', actions: ['stamp', 'rememberConnected'] },
      },
    },
    token_expired: {
      initial: 'refreshing',
      states: {
        refreshing: {},
        backingOff: { after: { refreshRetry: { target: 'refreshing', actions: 'requestRefresh' } } },
      },
      on: {
        ...webhooks,
        // already refreshing: one refresh per connection, however many ask
        'integration.refresh.start': { actions: 'stamp' },
        'integration.refresh.done': { target: 'connected', actions: 'recordRefresh' },
        'integration.refresh.failed': [
          { guard: 'retryable', target: '.backingOff', actions: 'recordFailure' },
          { target: 'reauthorization_required', actions: ['recordFailure', 'announceReauthorization'] },
        ],
        'integration.pause': { target: 'paused', actions: ['stamp', 'rememberExpired'] },
      },
    },
    reauthorization_required: {
      on: {
        ...webhooks,
        'integration.refresh.start': { actions: 'stamp' },
        'integration.reauthorization.required': { actions: 'recordRefusal' },
        'integration.pause': { target: 'paused', actions: ['stamp', 'rememberReauth'] },
      },
    },
    paused: {
      on: {
        ...webhooks,
        'integration.resume': [
          { guard: ({ context }) => context.pausedFrom === 'reauthorization_required', target: 'reauthorization_required', actions: 'stamp' },
          { guard: ({ context }) => context.pausedFrom === 'token_expired', target: 'token_expired', actions: ['stamp', 'requestRefresh'] },
          { target: 'connected', actions: 'stamp' },
        ],
        // a refresh answer that lands while paused still carries the newest credential reference
        'integration.refresh.done': { actions: 'recordRefresh' },
        'integration.refresh.failed': { actions: 'recordFailure' },
      },
    },
    disconnected: {
      // a webhook for a disconnected connection is refused (EVENT_REJECTED): nothing applies it
      on: {
        'integration.authorization.started': { target: 'connecting', actions: 'recordStart' },
        'integration.disconnect': { actions: 'stamp' },
        // the answer of a refresh that was running when the connection was disconnected: its
        // vault write lost the compare-and-set against the delete, so there is nothing to keep
        'integration.refresh.done': { actions: 'stamp' },
        'integration.refresh.failed': { actions: 'stamp' },
      },
    },
  },
});

export const version = 1;
export const migrations: ActorTypeDefinition['migrations'] = {};

export const INTEGRATION_STATES = ['connecting', 'connected', 'token_expired', 'reauthorization_required', 'paused', 'disconnected'] as const;
export type IntegrationState = (typeof INTEGRATION_STATES)[number];

/** The top-level state of a snapshot's value. */
export function stateOf(value: unknown): IntegrationState {
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as IntegrationState;
}

/** The connection's id: `<tenant>:<provider>:<account>`. */
export const connectionId = (tenantId: string, provider: Provider, account: string): string => `${tenantId}:${provider}:${account}`;

export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as IntegrationContext;
  return {
    status: stateOf(snapshot.value).toUpperCase(),
    tenant: c.tenantId,
    attrs: { provider: c.provider, account: c.account },
  };
}

export const integrationType: ActorTypeDefinition<typeof integrationMachine> = {
  type: 'integration',
  machine: integrationMachine,
  version,
  migrations,
  project,
};
