import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import type { EventsConfig } from '../../runtime/config.js';
import { recordAudit } from '../common/audit.js';
import { keyedTransaction, type Answer, type CommandContext } from '../common/command.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { queryBuilder, type Db } from '../common/schema.js';
import { decodeCursor, encodeCursor, iso, transaction, type Queryable } from '../common/sql.js';
import {
  priorityRank,
  webhookIdOf,
  type CrossIntegrationEvent,
  type Delivery,
  type DeliveryStatus,
  type Endpoint,
  type EventPriority,
  type EventStatus,
} from './model.js';
import { newSecret } from './signing.js';

export interface PublishEvent {
  eventName: string;
  sourceIntegrationId: string;
  targetIntegrationIds: string[];
  payload: unknown;
  eventCategory: string;
  priority?: EventPriority;
  metadata?: Record<string, unknown> | null;
}

export interface EventFilter {
  sourceIntegrationId?: string;
  targetIntegrationId?: string;
  status?: EventStatus;
  eventCategory?: string;
  priority?: EventPriority;
  eventName?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

export interface PutEndpoint {
  url: string;
  eventNames?: string[] | null;
  eventCategories?: string[] | null;
  rotateSecret?: boolean;
}

const platformOnly = (p: Principal, what: string) => {
  if (!isPlatform(p)) throw new DomainError(DomainCode.Forbidden, `${what} are platform objects: only operator and service tokens may change them`);
};

interface EventRow {
  id: string;
  event_name: string;
  source_integration_id: string;
  target_integration_ids: string[];
  payload: unknown;
  event_category: string;
  priority: EventPriority;
  status: EventStatus;
  processed_at: Date | null;
  error_message: string | null;
  metadata: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  event_id: string;
  target_integration_id: string;
  status: DeliveryStatus;
  attempts: number;
  generation: number;
  last_error: string | null;
  last_status_code: number | null;
  channels: string[];
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  dead_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function renderEvent(r: EventRow): CrossIntegrationEvent {
  return {
    id: r.id,
    eventName: r.event_name,
    sourceIntegrationId: r.source_integration_id,
    targetIntegrationIds: r.target_integration_ids,
    payload: r.payload,
    eventCategory: r.event_category,
    priority: r.priority,
    status: r.status,
    processedAt: iso(r.processed_at),
    errorMessage: r.error_message,
    metadata: r.metadata,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

function renderDelivery(d: DeliveryRow): Delivery {
  const open = d.status === 'pending' || d.status === 'failed';
  return {
    targetIntegrationId: d.target_integration_id,
    status: d.status,
    attempts: d.attempts,
    lastError: d.last_error,
    lastStatusCode: d.last_status_code,
    channels: d.channels,
    webhookId: webhookIdOf(d.event_id, d.target_integration_id, d.generation),
    nextAttemptAt: open ? iso(d.next_attempt_at) : null,
    lastAttemptAt: iso(d.last_attempt_at),
    deliveredAt: iso(d.delivered_at),
    deadAt: iso(d.dead_at),
    createdAt: iso(d.created_at)!,
    updatedAt: iso(d.updated_at)!,
  };
}

/**
 * Cross-integration events: accepted into plain tables (the event and one delivery row per
 * target) in one transaction, delivered by `EventDeliveryWorker`. Reads are open to every role
 * (as the dependency graph is); publishing, republishing and endpoints are platform functions.
 */
export class EventService {
  readonly #db: Db;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
    private readonly config: EventsConfig,
    /** Told after a commit that made deliveries due (the local worker starts at once). */
    private readonly onDue: () => void = () => undefined,
  ) {
    this.#db = queryBuilder(pool);
  }

  /**
   * Inserts the event and its deliveries on `db` (a pool, or the caller's transaction when an
   * Idempotency-Key is stored with it). Publication is recorded by the event row itself
   * (`created_by`, `created_at`); republishing and endpoint changes go to the audit log.
   */
  async publish(db: Queryable, principal: Principal, input: PublishEvent): Promise<CrossIntegrationEvent> {
    platformOnly(principal, 'cross-integration events');
    const targets = input.targetIntegrationIds;
    const issues: Array<{ path: string[]; message: string }> = [];
    if (new Set(targets).size !== targets.length) issues.push({ path: ['targetIntegrationIds'], message: 'targets must be distinct' });
    if (targets.includes(input.sourceIntegrationId)) issues.push({ path: ['targetIntegrationIds'], message: 'the source cannot be its own target' });
    if (issues.length) throw new DomainError(DomainCode.ValidationFailed, issues.map((i) => i.message).join('; '), { issues });
    const size = Buffer.byteLength(JSON.stringify(input.payload ?? null));
    if (size > this.config.maxPayloadBytes) {
      throw new DomainError(DomainCode.PayloadTooLarge, `payload is ${size} bytes; the limit is ${this.config.maxPayloadBytes}`, { limit: this.config.maxPayloadBytes });
    }
    const priority = input.priority ?? 'medium';
    const now = new Date(this.clock.now());
    // one statement (atomic without a transaction): the event, and a delivery for each target
    // whose registered endpoint filters (names, categories) let it through
    const { rows } = await db.query<{ event: EventRow; deliveries: DeliveryRow[] }>(
      `WITH wanted AS (
         SELECT x.t, x.n FROM unnest($4::text[]) WITH ORDINALITY AS x(t, n)
         WHERE NOT EXISTS (
           SELECT 1 FROM integration_endpoints ep WHERE ep.integration_id = x.t
             AND ((cardinality(ep.event_names) > 0 AND NOT $2 = ANY(ep.event_names))
               OR (cardinality(ep.event_categories) > 0 AND NOT $6 = ANY(ep.event_categories))))
       ), e AS (
         INSERT INTO cross_integration_events (id, event_name, source_integration_id, target_integration_ids, payload, event_category, priority, status, processed_at, metadata, created_by, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, CASE WHEN n = 0 THEN 'processed' ELSE 'pending' END, CASE WHEN n = 0 THEN $10::timestamptz END, $8, $9, $10, $10
         FROM (SELECT count(*) AS n FROM wanted) c
         RETURNING *
       ), d AS (
         INSERT INTO event_deliveries (event_id, source_integration_id, target_integration_id, priority_rank, next_attempt_at, created_at, updated_at)
         SELECT e.id, $3, w.t, $11, $10, $10, $10 FROM wanted w CROSS JOIN e ORDER BY w.n
         RETURNING *
       )
       SELECT row_to_json(e.*) AS event, coalesce((SELECT json_agg(d.* ORDER BY d.id) FROM d), '[]'::json) AS deliveries FROM e`,
      [
        randomUUID(),
        input.eventName,
        input.sourceIntegrationId,
        targets,
        JSON.stringify(input.payload ?? null),
        input.eventCategory,
        priority,
        input.metadata == null ? null : JSON.stringify(input.metadata),
        principal.sub,
        now,
        priorityRank(priority),
      ],
    );
    const { event, deliveries } = rows[0]!;
    const delivered = new Set(deliveries.map((d) => d.target_integration_id));
    return { ...renderEvent(event), deliveries: deliveries.map(renderDelivery), filteredTargetIds: targets.filter((t) => !delivered.has(t)) };
  }

  /**
   * The publish command (202): without an Idempotency-Key the insert is one atomic statement;
   * with one, it commits with the stored answer. The local worker is told once it committed.
   */
  async accept(cx: CommandContext, input: PublishEvent): Promise<Answer<CrossIntegrationEvent>> {
    const out = cx.idempotency
      ? await keyedTransaction(this.pool, cx, 202, (client) => this.publish(client, cx.principal, input))
      : { status: 202, body: await this.publish(this.pool, cx.principal, input), replayed: false };
    if (!out.replayed) this.notify();
    return out;
  }

  /** Tells the local worker that deliveries are due (call after the publishing commit). */
  notify(): void {
    this.onDue();
  }

  async get(id: string): Promise<CrossIntegrationEvent> {
    const { rows } = await this.pool.query<EventRow>('SELECT * FROM cross_integration_events WHERE id = $1', [id]);
    if (!rows[0]) throw notFound('event', id);
    const d = await this.pool.query<DeliveryRow>('SELECT * FROM event_deliveries WHERE event_id = $1 ORDER BY id', [id]);
    const delivered = new Set(d.rows.map((r) => r.target_integration_id));
    return { ...renderEvent(rows[0]), deliveries: d.rows.map(renderDelivery), filteredTargetIds: rows[0].target_integration_ids.filter((t) => !delivered.has(t)) };
  }

  async list(f: EventFilter): Promise<{ data: CrossIntegrationEvent[]; nextCursor: string | null }> {
    let q = this.#db.selectFrom('cross_integration_events').selectAll();
    if (f.sourceIntegrationId) q = q.where('source_integration_id', '=', f.sourceIntegrationId);
    if (f.targetIntegrationId) q = q.where('target_integration_ids', '@>', sql<string[]>`ARRAY[${f.targetIntegrationId}]::text[]`);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.eventCategory) q = q.where('event_category', '=', f.eventCategory);
    if (f.priority) q = q.where('priority', '=', f.priority);
    if (f.eventName) q = q.where('event_name', '=', f.eventName);
    // ISO dates without a time are read by PostgreSQL, as they always were
    if (f.from) q = q.where('created_at', '>=', sql<Date>`${f.from}::timestamptz`);
    if (f.to) q = q.where('created_at', '<', sql<Date>`${f.to}::timestamptz`);
    const cur = decodeCursor(f.cursor);
    if (f.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    if (cur) q = q.where(sql<boolean>`(created_at, id) < (${cur.at}::timestamptz, ${cur.id})`);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit + 1).execute();
    const page = rows.slice(0, f.limit);
    const last = page[page.length - 1];
    return { data: page.map(renderEvent), nextCursor: rows.length > f.limit && last ? encodeCursor(last.created_at, last.id) : null };
  }

  /**
   * Puts deliveries back in their (source, target) queues, at their original place: all of
   * them, or with `onlyFailed` the failed and dead ones. A delivered row gets a new webhook-id
   * (its generation), so deduplicating receivers accept the deliberate resend.
   */
  async republish(cx: CommandContext, id: string, onlyFailed: boolean): Promise<Answer<CrossIntegrationEvent>> {
    const out = await keyedTransaction(this.pool, cx, 202, (client) => this.#republish(client, cx, id, onlyFailed));
    this.notify();
    return out;
  }

  async #republish(db: Queryable, { principal, requestId }: CommandContext, id: string, onlyFailed: boolean): Promise<CrossIntegrationEvent> {
    platformOnly(principal, 'cross-integration events');
    const now = new Date(this.clock.now());
    const ev = await db.query<EventRow>('SELECT * FROM cross_integration_events WHERE id = $1 FOR UPDATE', [id]);
    if (!ev.rows[0]) throw notFound('event', id);
    const { rowCount } = await db.query(
      `UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_until = NULL, updated_at = $2, dead_at = NULL, delivered_at = NULL,
              generation = generation + CASE WHEN status = 'delivered' THEN 1 ELSE 0 END
       WHERE event_id = $1 AND ($3::boolean = false OR status IN ('failed', 'dead'))`,
      [id, now, onlyFailed],
    );
    if ((rowCount ?? 0) > 0) {
      await db.query(`UPDATE cross_integration_events SET status = 'pending', processed_at = NULL, error_message = NULL, updated_at = $2 WHERE id = $1`, [id, now]);
    }
    await recordAudit(db, { principal, action: 'event.republish', objectType: 'cross_integration_event', objectId: id, before: null, after: { onlyFailed, deliveries: rowCount ?? 0 }, at: now.toISOString(), requestId });
    const d = await db.query<DeliveryRow>('SELECT * FROM event_deliveries WHERE event_id = $1 ORDER BY id', [id]);
    const after = await db.query<EventRow>('SELECT * FROM cross_integration_events WHERE id = $1', [id]);
    return { ...renderEvent(after.rows[0]!), deliveries: d.rows.map(renderDelivery) };
  }

  /** Dead-lettered deliveries, oldest first (the dead-letter queue), with their event's name and source. */
  async deadLetters(f: { targetIntegrationId?: string; sourceIntegrationId?: string; limit: number; cursor?: string }): Promise<{ data: Array<Delivery & { eventId: string; eventName: string; sourceIntegrationId: string }>; nextCursor: string | null }> {
    let q = this.#db
      .selectFrom('event_deliveries as d')
      .innerJoin('cross_integration_events as e', 'e.id', 'd.event_id')
      .selectAll('d')
      .select('e.event_name')
      .where('d.status', '=', 'dead');
    if (f.targetIntegrationId) q = q.where('d.target_integration_id', '=', f.targetIntegrationId);
    if (f.sourceIntegrationId) q = q.where('d.source_integration_id', '=', f.sourceIntegrationId);
    if (f.cursor) {
      const after = Number(Buffer.from(f.cursor, 'base64url').toString());
      if (!Number.isSafeInteger(after)) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
      q = q.where('d.id', '>', after);
    }
    const rows = await q.orderBy('d.id').limit(f.limit + 1).execute();
    const page = rows.slice(0, f.limit);
    return {
      data: page.map((r) => ({ eventId: r.event_id, eventName: r.event_name, sourceIntegrationId: r.source_integration_id, ...renderDelivery(r) })),
      nextCursor: rows.length > f.limit ? Buffer.from(String(page[page.length - 1]!.id)).toString('base64url') : null,
    };
  }

  /**
   * Requeues every dead delivery to a target (and from a source, if given) at its original
   * place in its (source, target) queue, so they go out in their original order: what an
   * operator does once a dead target is back.
   */
  async republishDead(cx: CommandContext, f: { targetIntegrationId: string; sourceIntegrationId?: string }): Promise<Answer<{ requeued: number }>> {
    const out = await keyedTransaction(this.pool, cx, 202, (client) => this.#republishDead(client, cx, f));
    this.notify();
    return out;
  }

  async #republishDead(db: Queryable, { principal, requestId }: CommandContext, f: { targetIntegrationId: string; sourceIntegrationId?: string }): Promise<{ requeued: number }> {
    platformOnly(principal, 'cross-integration events');
    const now = new Date(this.clock.now());
    const { rows } = await db.query<{ event_id: string }>(
      `UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, lease_until = NULL, updated_at = $3, dead_at = NULL
       WHERE status = 'dead' AND target_integration_id = $1 AND ($2::text IS NULL OR source_integration_id = $2)
       RETURNING event_id`,
      [f.targetIntegrationId, f.sourceIntegrationId ?? null, now],
    );
    if (rows.length) {
      await db.query(`UPDATE cross_integration_events SET status = 'pending', processed_at = NULL, error_message = NULL, updated_at = $2 WHERE id = ANY($1)`, [[...new Set(rows.map((r) => r.event_id))], now]);
    }
    await recordAudit(db, { principal, action: 'event.republishDead', objectType: 'integration', objectId: f.targetIntegrationId, before: null, after: { ...f, requeued: rows.length }, at: now.toISOString(), requestId });
    return { requeued: rows.length };
  }

  async getEndpoint(principal: Principal, integrationId: string): Promise<Endpoint & { secret: string }> {
    platformOnly(principal, 'integration endpoints');
    const { rows } = await this.pool.query('SELECT * FROM integration_endpoints WHERE integration_id = $1', [integrationId]);
    if (!rows[0]) throw notFound('endpoint of integration', integrationId);
    return { ...renderEndpoint(rows[0]), secret: rows[0].secret };
  }

  /** Registers or replaces the endpoint; the secret is kept unless `rotateSecret`. */
  async putEndpoint(principal: Principal, integrationId: string, input: PutEndpoint, requestId?: string | null): Promise<{ endpoint: Endpoint & { secret: string }; created: boolean }> {
    platformOnly(principal, 'integration endpoints');
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new DomainError(DomainCode.ValidationFailed, 'url must be an absolute http(s) URL', { issues: [{ path: ['url'], message: 'invalid URL' }] });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new DomainError(DomainCode.ValidationFailed, 'url must be http or https', { issues: [{ path: ['url'], message: 'http or https only' }] });
    }
    if (url.username || url.password) {
      throw new DomainError(DomainCode.ValidationFailed, 'url must not carry credentials', { issues: [{ path: ['url'], message: 'no user:password@' }] });
    }
    const now = new Date(this.clock.now());
    return transaction(this.pool, async (client) => {
      const prev = await client.query('SELECT * FROM integration_endpoints WHERE integration_id = $1 FOR UPDATE', [integrationId]);
      const secret = !prev.rows[0] || input.rotateSecret ? newSecret() : (prev.rows[0].secret as string);
      const { rows } = await client.query(
        `INSERT INTO integration_endpoints (integration_id, url, secret, event_names, event_categories, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (integration_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, event_names = EXCLUDED.event_names,
           event_categories = EXCLUDED.event_categories, updated_at = EXCLUDED.updated_at
         RETURNING *`,
        [integrationId, url.toString(), secret, input.eventNames ?? null, input.eventCategories ?? null, principal.sub, now],
      );
      const endpoint = renderEndpoint(rows[0]);
      await recordAudit(client, { principal, action: prev.rows[0] ? 'endpoint.update' : 'endpoint.create', objectType: 'integration_endpoint', objectId: integrationId, before: prev.rows[0] ? renderEndpoint(prev.rows[0]) : null, after: { ...endpoint, secretRotated: secret !== prev.rows[0]?.secret }, at: now.toISOString(), requestId });
      return { endpoint: { ...endpoint, secret }, created: !prev.rows[0] };
    });
  }
}

function renderEndpoint(r: { integration_id: string; url: string; event_names: string[] | null; event_categories: string[] | null; created_at: Date; updated_at: Date }): Endpoint {
  return { integrationId: r.integration_id, url: r.url, eventNames: r.event_names, eventCategories: r.event_categories, createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)! };
}
