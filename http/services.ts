import pg from 'pg';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { AuditWriter } from '../runtime/domain/audit.js';
import { pruneIdempotencyKeys } from '../runtime/domain/idempotency.js';
import { ActorInspector } from '../runtime/domain/actors.js';
import { CoordinationMonitor } from '../runtime/domain/coordination.js';
import { DependencyService } from '../runtime/domain/dependencies.js';
import { RelationshipService } from '../runtime/domain/relationships.js';
import { ResourceService } from '../runtime/domain/resources.js';

/** The domain services the routes call; http/ only translates. */
export interface Services {
  runtime: Runtime;
  clock: Clock;
  relationships: RelationshipService;
  dependencies: DependencyService;
  resources: ResourceService;
  monitor: CoordinationMonitor;
  actors: ActorInspector;
}

export function createServices(runtime: Runtime, clock: Clock, log?: Logger): Services {
  const pool = runtime.database.pool;
  const prune = setInterval(() => {
    pruneIdempotencyKeys(pool, runtime.config.inboxRetentionHours).catch((err: unknown) => log?.warn({ err }, 'pruning idempotency keys failed'));
  }, 10 * 60_000);
  prune.unref();
  return {
    runtime,
    clock,
    relationships: new RelationshipService(runtime.host, pool, clock, new AuditWriter(auditPool(runtime)), log),
    dependencies: new DependencyService(pool, clock),
    resources: new ResourceService(pool, clock),
    monitor: new CoordinationMonitor(runtime, clock),
    actors: new ActorInspector(runtime),
  };
}

/**
 * The records written after an actor's commit go through their own small pool with
 * asynchronous commit: the actor's journal, committed with the transition, is the durable
 * record, and reading the audit log completes anything a crash lost (`reconcileActorAudit`),
 * so these records need not wait for a second WAL flush.
 */
function auditPool(runtime: Runtime): pg.Pool {
  const p = new pg.Pool({
    connectionString: runtime.database.url,
    max: 2,
    application_name: 'concord-audit',
    options: '-c synchronous_commit=off',
    allowExitOnIdle: true,
  });
  p.on('error', () => undefined); // an idle client losing its server is replaced on next use
  return p;
}
