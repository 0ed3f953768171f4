import pg from 'pg';
import type { Registry as MetricsRegistry } from 'prom-client';
import { FairAdmission } from '../runtime/admission.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { CONNECT_TIMEOUT_MS } from '../runtime/db.js';
import { partitionOf } from '../runtime/partition.js';
import { auditExtension, AuditWriter } from './common/audit.js';
import { Idempotency, idempotencyExtension, pruneIdempotencyKeys } from './common/idempotency.js';
import { DependencyService } from './coordination/dependencies.js';
import { CoordinationMonitor } from './coordination/monitor.js';
import { EcosystemService } from './ecosystem/index.js';
import { RelationshipService } from './coordination/relationships.js';
import { ResourceService } from './coordination/resources.js';
import { createEventDelivery, type EventDelivery } from './events/index.js';
import { EventService } from './events/service.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { integrationType } from '../machines/integration/index.js';
import { ConnectionService, type ConnectionHooks } from './integrations/connections.js';
import { InventoryEngine, type EngineHooks } from './integrations/inventory/engine.js';
import { PlannerStats } from './integrations/inventory/stats.js';
import { InventoryIntake } from './integrations/inventory/intake.js';
import { InventoryService } from './integrations/inventory/service.js';
import type { OutboundCalls } from './integrations/outbound/types.js';
import { syncType } from '../machines/integration/sync.js';
import { EXECUTION_TYPE, executionTypeWith } from '../machines/playbook/index.js';
import { CredentialVault, KeyRing } from './integrations/vault.js';
import { connectionControl, OutboundService } from './integrations/outbound/index.js';
import { OutboundStore } from './integrations/outbound/store.js';
import { OperatorActions } from './operators/actions.js';
import { ChannelConnections } from './playbooks/connections.js';
import { TemplateStore } from './playbooks/templates.js';
import { ACCEPT_CONCURRENCY, WebhookIntake } from './integrations/webhooks.js';
import { AuditTrail } from './operators/audit.js';
import { BulkActions } from './operators/bulk.js';
import { ConsoleQueries } from './operators/console.js';
import { DeadLetterService } from './operators/dead-letters.js';
import { ActorInspector } from './operators/inspector.js';
import { TimerControl } from './operators/timers.js';
import { ActorWatch } from './operators/watch.js';
import { registerSagaMetrics } from './saga/index.js';
import { SagaIntake } from './saga/intake.js';
import { SagaService } from './saga/service.js';
import { WorkflowService } from './workflows/service.js';
import { TenantQuotaService } from './common/quotas.js';
import { PlaybookNatsIntake } from './playbooks/nats.js';
import { createInstantSteps } from './playbooks/instant.js';
import { PlaybookService } from './playbooks/service.js';
import { createExpressions, createStepRunners } from './playbooks/steps/index.js';
import type { Expressions, StepRunner, StepType } from './playbooks/steps/types.js';

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
  /** The operator console's reads: actor search with counts, an actor's timers. */
  console: ConsoleQueries;
  /** Version and pause changes of watched actors (the console's live pages); stopped by `stop()`. */
  watch: ActorWatch;
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
  /** Per-tenant API quotas, taken by the edge once per request. */
  quotas: TenantQuotaService;
  /** Fair admission of API requests by tenant (`ADMISSION_LIMIT`), taken by the edge after the quota; undefined when off. */
  admission: FairAdmission | undefined;
  /** Our stock, its fan-out to the channels, mappings, conflicts, sync runs and logs. */
  inventory: InventoryService;
  /** `svc.inventory.changed` in (NATS consumer or in-process bus). */
  inventoryIntake: InventoryIntake;
  /** The one door every call out to a provider goes through: budget, breaker, retries, refresh on 401, dead letters (issue 17). */
  outbound: OutboundService;
  /** The partner registry: registered integrations, tiers, templates, health, usage, audit and compliance (`/api/v1/ecosystem`). */
  ecosystem: EcosystemService;
  /** Playbooks: definitions, executions, triggers; `invoker()` is the `playbook` connector (step work). */
  playbooks: PlaybookService;
  /** The playbooks' nats trigger. */
  playbookIntake: PlaybookNatsIntake;
  /** The playbook template library (`GET/POST /api/partnerships/templates`), read by `template` steps. */
  templates: TemplateStore;
  /** Messaging and CRM connections of `communicate` steps, and `webhook` steps' signing secrets (`/api/partnerships/connections`, `/webhook-secrets`). */
  playbookConnections: ChannelConnections;
  /** The playbook step runners (`query`, `evaluate`, `template`, `communicate`, `webhook`) the execution actor's effects call. */
  playbookSteps: Record<StepType, StepRunner>;
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
  run?: { events?: boolean; sagaIntake?: boolean; housekeeping?: boolean; outbound?: boolean; inventoryIntake?: boolean; playbookIntake?: boolean };
  /** Playbook step runners by type key and the expression engine (CEL, Liquid). */
  playbooks?: {
    runners?: Partial<Record<string, StepRunner>>;
    expressions?: Expressions;
    /** false: every step attempt is a call to the runners, `evaluate` and `if` included (default: they run inside the execution's transition). */
    inline?: boolean;
  };
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
  /**
   * The outbound call door every provider call of the inventory sync goes through (budget,
   * retries, breaker, refresh-on-401; services/integrations/outbound/types.ts).
   */
  outbound?: OutboundCalls;
  /** Points of the sync engine where tests make the world move. */
  inventoryHooks?: EngineHooks;
  /** Channel pages per step of a full sync (progress is committed per step; default 5). */
  inventoryPagesPerStep?: number;
}

/** Builds every service over `runtime`; `start()`/`stop()` own their background work. */
export function createServices(o: ServicesOptions): Services {
  const { runtime, log } = o;
  // one time for the whole process: the runtime's (the database's by default), so an event's own
  // time and the timers computed from it agree, and tokens, OAuth states and webhook signatures
  // agree across processes even when a machine's wall clock is off
  const clock = o.clock ?? runtime.clock;
  const run = { events: true, sagaIntake: true, housekeeping: true, outbound: true, inventoryIntake: true, playbookIntake: true, ...o.run };
  const pool = runtime.database.pool;
  // rows that commit with a transition, in its one statement (registered before the first commit)
  runtime.host.extendCommit(auditExtension);
  runtime.host.extendCommit(idempotencyExtension);
  const audit = auditPool(runtime.database.url);
  const webhookAcceptPool = acceptPool(runtime.database.url);
  const eventDelivery = createEventDelivery({ pool, config: runtime.config, clock, log, bus: runtime.bus, nats: runtime.nats });
  const sagas = new SagaService(runtime.host, pool, runtime.config, clock);
  const operators = new OperatorActions(runtime, clock);
  const vault = new CredentialVault(pool, o.credentialKeys ?? new KeyRing(runtime.config.credentialsKeys ?? []), log);
  const templates = new TemplateStore(pool);
  const integrations = new ConnectionService(runtime.host.actor(integrationType), pool, vault, runtime.config, clock, log, o.integrationHooks);
  o.connectors?.set('integration', integrations.invoker());
  const outbound = new OutboundService({ pool, config: runtime.config, vault, connections: connectionControl(integrations), log });
  integrations.extendStatus(async (c) => ({ outbound: await outbound.status(c) }));
  integrations.useBudget((c, work) => outbound.door.budgeted(c, work));
  o.connectors?.set('outbound', outbound.invoker());
  const door = (): OutboundCalls => o.outbound ?? outbound;
  const eventsRoot = `${runtime.config.nats.prefix}.events`;
  const syncs = runtime.host.actor(syncType);
  const plannerStats = new PlannerStats(pool, log);
  const inventory = new InventoryService({ pool, syncs, connections: integrations, outbound: door, clock, log, eventsRoot, runtime, stats: plannerStats, pollMs: runtime.config.inventoryPollMs });
  const engine = new InventoryEngine({ pool, outbound: door, clock, log, stats: plannerStats, hooks: o.inventoryHooks, ...(o.inventoryPagesPerStep ? { pagesPerStep: o.inventoryPagesPerStep } : {}), fanOut: (tenantId, skus, except) => inventory.fanOut(tenantId, skus, except) });
  o.connectors?.set('inventory', engine.invoker());
  inventory.useEngine(engine);
  // the health checks of a registered integration run in the process that owns its actor's partition
  const ecosystem = new EcosystemService({ host: runtime.host, pool, vault, config: runtime.config, clock, log, owns: (id) => runtime.leases.owned().includes(partitionOf(`ecosystem/${id}`, runtime.config.partitions)) });
  o.connectors?.set('ecosystem', ecosystem.invoker());
  // the registry's tiers limit a registered connection to its share of the provider's budget; sync calls and event deliveries are counted in its usage
  outbound.door.hooks({ shareOf: (c) => ecosystem.shareOf(c), attempted: (c, _call, outcome) => ecosystem.countSyncCall(c, outcome) });
  eventDelivery.worker.onDelivered((targets, at) => ecosystem.countDeliveries(targets, at));
  let started = { events: false, intake: false, outbound: false, inventory: false, playbooks: false };
  integrations.extendStatus(async (c) => (c.provider === 'generic' ? {} : { sync: await inventory.status(c.tenantId, c.provider) }));
  const stepRunners = createStepRunners({
    pool,
    vault,
    templates,
    clock,
    webhooks: { allowPrivateTargets: runtime.config.events.allowPrivateTargets, timeoutMs: runtime.config.events.webhookTimeoutMs },
    // communicate's budgets and breakers share the outbound door's state (one key per tenant, provider, account)
    outbound: { store: new OutboundStore(pool), breakerThreshold: runtime.config.outbound.breakerThreshold, breakerCooldownMs: runtime.config.outbound.breakerCooldownMs, rateLimits: runtime.config.outbound.rateLimits },
  });
  const playbooks = new PlaybookService({
    host: runtime.host,
    pool,
    clock,
    log,
    vault,
    runners: o.playbooks?.runners ?? stepRunners,
    expressions: o.playbooks?.expressions ?? createExpressions(),
    publicBaseUrl: runtime.config.providers.publicBaseUrl,
  });
  o.connectors?.set('playbook', playbooks.invoker());
  // the execution actor runs instant step work (CEL: `evaluate`, `if`) inside its own transition:
  // its machine gets it injected here, as machines/ do not reach into services/
  if (o.playbooks?.inline !== false && runtime.host.registry.has(EXECUTION_TYPE)) runtime.host.registry.replace(executionTypeWith(createInstantSteps()));
  const playbookIntake = new PlaybookNatsIntake(runtime, playbooks, log);
  const consoleQueries = new ConsoleQueries(pool);
  let prune: NodeJS.Timeout | undefined;
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
    deadLetters: new DeadLetterService(pool, runtime.config.partitions, clock, { outbound: (id) => outbound.replay(id) }),
    idempotency: new Idempotency(pool),
    audit: new AuditTrail(pool, clock),
    console: consoleQueries,
    watch: new ActorWatch(consoleQueries, log),
    events: new EventService(pool, clock, runtime.config.events, () => eventDelivery.worker.wake()),
    eventDelivery,
    workflows: new WorkflowService(runtime.host, pool, clock, runtime.config.nats.prefix),
    sagas,
    sagaIntake: new SagaIntake(runtime, sagas, log),
    vault,
    integrations,
    quotas: new TenantQuotaService(runtime.config.tenantQuotas),
    // one tenant alone may use four times the places (the group commit batches them); a second brings the limit back
    admission: runtime.config.admissionLimit > 0 ? new FairAdmission({ limit: runtime.config.admissionLimit, soloLimit: runtime.config.admissionLimit * 4 }) : undefined,
    webhooks: new WebhookIntake({
      pool,
      acceptPool: webhookAcceptPool,
      providers: runtime.config.providers,
      host: runtime.host,
      clock,
      log,
      onAccepted: (h) => inventory.webhookAccepted(h),
    }),
    inventory,
    inventoryIntake: new InventoryIntake(runtime, inventory, log),
    outbound,
    ecosystem,
    playbooks,
    playbookIntake,
    templates,
    playbookConnections: new ChannelConnections(pool, vault),
    playbookSteps: stepRunners,
    registerMetrics(registry) {
      outbound.registerMetrics(registry);
      registerSagaMetrics(registry, { pool, sagas, clock });
      services.webhooks.registerMetrics(registry);
    },
    async start() {
      // a wrong or missing key stops start-up here, before anything could need a credential
      await services.vault.check();
      await ecosystem.start({ reconcile: run.housekeeping });
      if (run.events) {
        await eventDelivery.start();
        started.events = true;
      }
      if (run.sagaIntake) {
        await services.sagaIntake.start();
        started.intake = true;
      }
      if (run.inventoryIntake) {
        await services.inventoryIntake.start();
        started.inventory = true;
      }
      if (run.outbound) {
        outbound.start();
        started.outbound = true;
      }
      if (run.playbookIntake) {
        await playbookIntake.start();
        started.playbooks = true;
      }
      if (run.housekeeping) {
        services.webhooks.start();
        inventory.start();
        prune = setInterval(() => {
          pruneIdempotencyKeys(pool, runtime.config.inboxRetentionHours).catch((err: unknown) => log.warn({ err }, 'pruning idempotency keys failed'));
          integrations.pruneStates().catch((err: unknown) => log.warn({ err }, 'pruning OAuth states failed'));
          playbooks.prune().catch((err: unknown) => log.warn({ err }, 'pruning playbook webhook ids failed'));
        }, 10 * 60_000);
        prune.unref();
      }
    },
    async stop() {
      services.watch.stop();
      clearInterval(prune);
      await services.webhooks.stop();
      await inventory.stop();
      if (started.playbooks) await playbookIntake.stop();
      if (started.intake) await services.sagaIntake.stop();
      if (started.inventory) await services.inventoryIntake.stop();
      if (started.events) await eventDelivery.stop();
      if (started.outbound) await outbound.stop();
      started = { events: false, intake: false, outbound: false, inventory: false, playbooks: false };
      await ecosystem.stop();
      await audit.end();
      await webhookAcceptPool.end();
    },
  };
  return services;
}

/**
 * The webhook accept statements' own connections (ACCEPT_CONCURRENCY of them; commits are
 * synchronous: a 200 means the delivery is durable), apart from the shared pool, where the
 * applies, hand-offs and actor commits that the accepted webhooks set off would queue ahead of
 * the next accept.
 */
function acceptPool(url: string): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max: ACCEPT_CONCURRENCY, application_name: 'concord-webhooks', allowExitOnIdle: true });
  p.on('error', () => undefined); // an idle client losing its server is replaced on next use
  return p;
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
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    options: '-c synchronous_commit=off',
    allowExitOnIdle: true,
  });
  p.on('error', () => undefined); // an idle client losing its server is replaced on next use
  return p;
}
