import pg from 'pg';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { auditExtension, AuditWriter } from './common/audit.js';
import { Idempotency, idempotencyExtension, pruneIdempotencyKeys } from './common/idempotency.js';
import { DependencyService } from './coordination/dependencies.js';
import { CoordinationMonitor } from './coordination/monitor.js';
import { RelationshipService } from './coordination/relationships.js';
import { ResourceService } from './coordination/resources.js';
import { createEventDelivery, type EventDelivery } from './events/index.js';
import { EventService } from './events/service.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { integrationType } from '../machines/integration/index.js';
import { ConnectionService, type ConnectionHooks } from './integrations/connections.js';
import { CredentialVault, KeyRing } from './integrations/vault.js';
import { OperatorActions } from './operators/actions.js';
import { WebhookIntake } from './integrations/webhooks.js';
import { AuditTrail } from './operators/audit.js';
import { BulkActions } from './operators/bulk.js';
import { DeadLetterService } from './operators/dead-letters.js';
import { ActorInspector } from './operators/inspector.js';
import { TimerControl } from './operators/timers.js';
import { registerSagaMetrics } from './saga/index.js';
import { SagaIntake } from './saga/intake.js';
import { SagaService } from './saga/service.js';
import { WorkflowService } from './workflows/service.js';

/**
 * Concord's application layer: every service the HTTP edge and the NATS intake call, built once
 * over one runtime. The engine (`runtime/`) knows none of them.
 */
export interface Services {
  runtime: Runtime;
  clock: Clock;
  log: Logger;
  relationships: RelationshipService;
  dependencies: DependencyService;
  resources: ResourceService;
  monitor: CoordinationMonitor;
  actors: ActorInspector;
  /** Operator actions on one actor: pause, resume, send, fork. */
  operators: OperatorActions;
  /** An operator action over every actor a filter matches. */
  bulk: BulkActions;
  /** Pending durable timers: list, fire now, cancel. */
  timers: TimerControl;
  /** The engine's dead-letter store, for operators. */
  deadLetters: DeadLetterService;
  /** Idempotency-Key answers of actor commands: stored with the commit, replayed on a retry. */
  idempotency: Idempotency;
  /** The audit log, for operators. */
  audit: AuditTrail;
  events: EventService;
  /** The cross-integration delivery worker and its channel (NATS or the in-process bus). */
  eventDelivery: EventDelivery;
  workflows: WorkflowService;
  sagas: SagaService;
  /** Order events and service replies reaching sagas (NATS consumer or in-process bus). */
  sagaIntake: SagaIntake;
  /** Connection secrets, encrypted at rest; `start()` checks that the key ring opens what is stored. */
  vault: CredentialVault;
  /** Marketplace connections: OAuth flows, status, disconnect; the connection actors' refresh. */
  integrations: ConnectionService;
  /** Signed webhooks in (`POST /api/integrations/:service/webhook`), handed to the connection's actor. */
  webhooks: WebhookIntake;
  /** Adds the services' own figures (sagas) to the edge's metrics registry. */
  registerMetrics(registry: MetricsRegistry): void;
  /** Starts the background work that `run` asks for; call after `runtime.start()`. */
  start(): Promise<void>;
  /** Stops the background work and closes what the services opened; call before `runtime.stop()`. */
  stop(): Promise<void>;
}

export interface ServicesOptions {
  runtime: Runtime;
  log: Logger;
  /** Time for tokens and events (tests drive it); the runtime's clock (the database's time) by default. */
  clock?: Clock;
  /** Background work to run; all by default. */
  run?: { events?: boolean; sagaIntake?: boolean; housekeeping?: boolean };
  /**
   * The vault's keys (app/main.ts resolves them with `resolveCredentialKeys`); by default
   * `config.credentialsKeys`, else an empty ring that stores nothing and fails the start-up
   * check if anything is stored.
   */
  credentialKeys?: KeyRing;
  /**
   * The runtime's connector map (the one passed to `createRuntime({ connectors })`): the services
   * register the connectors they implement in it (`integration`, the connection actor's refresh).
   */
  connectors?: Map<string, ConnectorInvoker>;
  /** Crash points of the integration flows, for tests. */
  integrationHooks?: ConnectionHooks;
}

/** Builds every service over `runtime`; `start()`/`stop()` own their background work. */
export function createServices(o: ServicesOptions): Services {
  const { runtime, log } = o;
  // the runtime's time (the database's by default): tokens, OAuth states and webhook signatures
  // agree across processes even when a machine's wall clock is off
  const clock = o.clock ?? runtime.clock;
  const run = { events: true, sagaIntake: true, housekeeping: true, ...o.run };
  const pool = runtime.database.pool;
  // rows that commit with a transition, in its one statement (registered before the first commit)
  runtime.host.extendCommit(auditExtension);
  runtime.host.extendCommit(idempotencyExtension);
  const audit = auditPool(runtime.database.url);
  const eventDelivery = createEventDelivery({ pool, config: runtime.config, clock, log, bus: runtime.bus, nats: runtime.nats });
  const sagas = new SagaService(runtime.host, pool, runtime.config, clock);
  const operators = new OperatorActions(runtime, clock);
  const vault = new CredentialVault(pool, o.credentialKeys ?? new KeyRing(runtime.config.credentialsKeys ?? []), log);
  const integrations = new ConnectionService(runtime.host.actor(integrationType), pool, vault, runtime.config, clock, log, o.integrationHooks);
  o.connectors?.set('integration', integrations.invoker());
  let prune: NodeJS.Timeout | undefined;
  let started = { events: false, intake: false };
  const services: Services = {
    runtime,
    clock,
    log,
    relationships: new RelationshipService(runtime.host, pool, clock, new AuditWriter(audit), log, `${runtime.config.nats.prefix}.events`),
    dependencies: new DependencyService(pool, clock),
    resources: new ResourceService(pool, clock),
    monitor: new CoordinationMonitor(runtime, clock),
    actors: new ActorInspector(runtime),
    operators,
    bulk: new BulkActions(runtime, operators),
    timers: new TimerControl(runtime, clock),
    deadLetters: new DeadLetterService(pool, runtime.config.partitions),
    idempotency: new Idempotency(pool),
    audit: new AuditTrail(pool, clock),
    events: new EventService(pool, clock, runtime.config.events, () => eventDelivery.worker.wake()),
    eventDelivery,
    workflows: new WorkflowService(runtime.host, pool, clock, runtime.config.nats.prefix),
    sagas,
    sagaIntake: new SagaIntake(runtime, sagas, log),
    vault,
    integrations,
    webhooks: new WebhookIntake({ pool, providers: runtime.config.providers, host: runtime.host, clock, log }),
    registerMetrics(registry) {
      registerSagaMetrics(registry, { pool, sagas, clock });
      services.webhooks.registerMetrics(registry);
    },
    async start() {
      // a wrong or missing key stops start-up here, before anything could need a credential
      await services.vault.check();
      if (run.events) {
        await eventDelivery.start();
        started.events = true;
      }
      if (run.sagaIntake) {
        await services.sagaIntake.start();
        started.intake = true;
      }
      if (run.housekeeping) {
        services.webhooks.start();
        prune = setInterval(() => {
          pruneIdempotencyKeys(pool, runtime.config.inboxRetentionHours).catch((err: unknown) => log.warn({ err }, 'pruning idempotency keys failed'));
          integrations.pruneStates().catch((err: unknown) => log.warn({ err }, 'pruning OAuth states failed'));
        }, 10 * 60_000);
        prune.unref();
      }
    },
    async stop() {
      clearInterval(prune);
      await services.webhooks.stop();
      if (started.intake) await services.sagaIntake.stop();
      if (started.events) await eventDelivery.stop();
      started = { events: false, intake: false };
      await audit.end();
    },
  };
  return services;
}

/**
 * The records written after an actor's commit go through their own small pool with
 * asynchronous commit: the actor's journal, committed with the transition, is the durable
 * record, and reading the audit log completes anything a crash lost (`reconcileActorAudit`),
 * so these records need not wait for a second WAL flush.
 */
function auditPool(url: string): pg.Pool {
  const p = new pg.Pool({
    connectionString: url,
    max: 2,
    application_name: 'concord-audit',
    options: '-c synchronous_commit=off',
    allowExitOnIdle: true,
  });
  p.on('error', () => undefined); // an idle client losing its server is replaced on next use
  return p;
}
