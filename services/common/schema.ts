import { Kysely, PostgresDialect, type Generated } from 'kysely';
import type pg from 'pg';

/**
 * The tables the application layer reads through kysely, as `migrations/*.sql` define them and
 * as node-postgres returns them (timestamptz as `Date`, bigint as `number`, jsonb parsed).
 *
 * The rule: kysely builds the services' list and search queries, whose WHERE clause depends on
 * the filters given (typed columns instead of `$n` bookkeeping); the engine's hot paths
 * (commit, load, inbox, relay, timers) and the services' fixed statements stay raw, prepared
 * pg SQL, where the text is the point.
 */
export interface Schema {
  actors: ActorsTable;
  integration_dependencies: IntegrationDependenciesTable;
  shared_resources: SharedResourcesTable;
  resource_access_grants: ResourceAccessGrantsTable;
  cross_integration_events: CrossIntegrationEventsTable;
  event_deliveries: EventDeliveriesTable;
}

type Json = Record<string, unknown>;

/** `0001_runtime.sql` and `0008_operators.sql` (the engine's table, searched by operators). */
export interface ActorsTable {
  type: string;
  id: string;
  tenant: string | null;
  machine_version: number;
  version: number;
  state_value: unknown;
  status: string;
  attrs: Json;
  snapshot: unknown;
  created_at: Date;
  updated_at: Date;
  /** `0008_operators.sql` */
  paused_at: Date | null;
  paused_by: string | null;
  paused_reason: string | null;
  forked_from: { type: string; id: string; version: number } | null;
}

/** `0002_coordination.sql` */
export interface IntegrationDependenciesTable {
  id: string;
  integration_id: string;
  depends_on_integration_id: string;
  dependency_type: 'REQUIRES' | 'CONFLICTS' | 'ENHANCES' | 'DEPENDS_ON_DATA';
  condition: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

/** `0002_coordination.sql` */
export interface SharedResourcesTable {
  id: string;
  resource_id: string;
  resource_type: 'API_ENDPOINT' | 'WEBHOOK' | 'DATABASE_TABLE' | 'CACHE_KEY' | 'QUEUE_TOPIC' | 'STORAGE_BUCKET';
  owner_id: string;
  owner_type: 'vendor' | 'partner';
  name: string;
  description: string | null;
  configuration: Json | null;
  access_control: Json | null;
  is_active: Generated<boolean>;
  created_at: Date;
  updated_at: Date;
}

/** `0002_coordination.sql` */
export interface ResourceAccessGrantsTable {
  id: string;
  resource_id: string;
  granted_to_id: string;
  granted_to_type: 'vendor' | 'partner';
  access_level: 'read' | 'write' | 'admin';
  granted_by: string;
  granted_at: Date;
  expires_at: Date | null;
  is_active: Generated<boolean>;
  conditions: Json | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** `0004_events.sql` */
export interface CrossIntegrationEventsTable {
  id: string;
  seq: Generated<number>;
  event_name: string;
  source_integration_id: string;
  target_integration_ids: string[];
  payload: unknown;
  event_category: string;
  priority: Generated<'low' | 'medium' | 'high' | 'critical'>;
  status: Generated<'pending' | 'processed' | 'failed'>;
  processed_at: Date | null;
  error_message: string | null;
  metadata: Json | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

/** `0004_events.sql` */
export interface EventDeliveriesTable {
  id: Generated<number>;
  event_id: string;
  source_integration_id: string;
  target_integration_id: string;
  priority_rank: number;
  status: Generated<'pending' | 'delivered' | 'failed' | 'dead'>;
  attempts: Generated<number>;
  generation: Generated<number>;
  next_attempt_at: Date;
  lease_until: Date | null;
  last_error: string | null;
  last_status_code: number | null;
  channels: Generated<string[]>;
  created_at: Date;
  updated_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  dead_at: Date | null;
}

export type Db = Kysely<Schema>;

/**
 * A query builder over `pool`. It opens no connections of its own and is never destroyed here:
 * the runtime owns the pool and ends it.
 */
export function queryBuilder(pool: pg.Pool): Db {
  return new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
}
