import type pg from 'pg';
import { Grouper } from '../../runtime/grouper.js';
import type { CommitExtension, CommitExtras } from '../../runtime/store.js';
import type { Principal } from './principal.js';
import { decodeCursor, encodeCursor, iso, type Queryable } from './sql.js';

export interface AuditRecord {
  principal: Principal;
  action: string;
  objectType: string;
  objectId: string;
  before: unknown;
  after: unknown;
  at: string;
  requestId?: string | null;
  /** Makes the record safe to write twice (e.g. `relationship/<id>@<version>`). */
  dedupeKey?: string;
  /** Why: the reason an operator gave for the action. */
  reason?: string | null;
}

/** An audit record as the API shows it: the stored row with its id and who as one object. */
export interface AuditEntry extends Pick<AuditRow, 'at' | 'action' | 'objectType' | 'objectId' | 'before' | 'after' | 'requestId' | 'reason'> {
  id: number;
  who: { sub: string; role: string; tenantId: string | null };
}

/** One `audit_log` row: who changed what, when, with the object before and after. */
export interface AuditRow {
  at: string;
  subject: string;
  role: string;
  tenant: string | null;
  action: string;
  objectType: string;
  objectId: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
  dedupeKey: string | null;
  /** Why (operator actions); absent is NULL. */
  reason?: string | null;
}

/**
 * The audit trail: who changed what, when, with the object before and after. Plain-table
 * changes write their record in the transaction that does the work; actor transitions carry it
 * into their own commit statement (`auditExtension`), deduplicated by actor version.
 */
const COLUMNS = '(at, subject, role, tenant, action, object_type, object_id, before, after, request_id, dedupe_key, reason)';

/** The record layout of `AuditRow` for `jsonb_to_recordset`. */
const RECORD = `("at" timestamptz, "subject" text, "role" text, "tenant" text, "action" text,
    "objectType" text, "objectId" text, "before" jsonb, "after" jsonb, "requestId" text, "dedupeKey" text, "reason" text)`;

const AUDIT = 'audit';

/**
 * The commit extension that writes a transition's audit records in its own statement (the
 * change and its record commit together or not at all); `createServices` registers it.
 */
export const auditExtension: CommitExtension = {
  name: AUDIT,
  sql: (rows) => `INSERT INTO audit_log ${COLUMNS}
  SELECT r."at", r."subject", r."role", r."tenant", r."action", r."objectType", r."objectId", r."before", r."after", r."requestId", r."dedupeKey", r."reason"
  FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r${RECORD}
  ON CONFLICT (dedupe_key) DO NOTHING`,
};

/** A transition's extra rows holding its audit record (none for null). */
export const auditExtras = (row: AuditRow | null): CommitExtras => (row ? { [AUDIT]: [row] } : {});

/**
 * One named statement whatever the number of records: they travel as one jsonb array, so
 * PostgreSQL plans the insert once per connection instead of once per batch size.
 */
/** The `audit_log` row of a record (also what a transition carries to commit it with itself). */
export function toAuditRow(r: AuditRecord): AuditRow {
  return {
    at: r.at,
    subject: r.principal.sub,
    role: r.principal.role,
    tenant: r.principal.tenantId,
    action: r.action,
    objectType: r.objectType,
    objectId: r.objectId,
    before: r.before === undefined ? null : r.before,
    after: r.after === undefined ? null : r.after,
    requestId: r.requestId ?? null,
    dedupeKey: r.dedupeKey ?? null,
    reason: r.reason ?? null,
  };
}

function insertMany(recs: readonly AuditRecord[]): { name: string; text: string; values: unknown[] } {
  const rows = recs.map(toAuditRow);
  return {
    name: 'concord_audit_insert',
    text: `INSERT INTO audit_log ${COLUMNS}
           SELECT r.at, r.subject, r.role, r.tenant, r.action, r.object_type, r.object_id, r.before, r.after, r.request_id, r.dedupe_key, r.reason
           FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS ${RECORD})
             WITH ORDINALITY AS r(at, subject, role, tenant, action, object_type, object_id, before, after, request_id, dedupe_key, reason, n)
           ORDER BY r.n
           ON CONFLICT (dedupe_key) DO NOTHING`,
    values: [JSON.stringify(rows)],
  };
}

/** Writes one record on `db` (inside the caller's transaction, for plain-table changes). */
export async function recordAudit(db: Queryable, r: AuditRecord): Promise<void> {
  await db.query(insertMany([r]));
}

/**
 * Group writes of the records that follow actor commits: records ready at the same moment share
 * one INSERT (and one WAL flush), as the actor host's committer does for transitions
 * (`Grouper`). `write` resolves once the record is committed.
 */
export class AuditWriter {
  readonly #writer: Grouper<AuditRecord, void>;

  constructor(pool: pg.Pool, concurrency = 2, maxBatch = 200) {
    this.#writer = new Grouper<AuditRecord, void>(
      async (recs) => {
        await pool.query(insertMany(recs));
        return recs.map(() => undefined);
      },
      { maxBatch, concurrency },
    );
  }

  write(rec: AuditRecord): Promise<void> {
    return this.#writer.submit(rec);
  }
}

/** Transitions this recent may still be getting their audit record from the request that made them. */
export const RECONCILE_GRACE_MS = 30_000;

/**
 * Completes the audit trail of actors from their journals, which commit with every transition:
 * changes no request recorded (a durable timer firing, e.g. a relationship reaching its
 * `endDate`, or a process that died between commit and audit write) get a record with who
 * (`by` of the event, or `system` for a timer), what, when, and the state before and after.
 * Idempotent by `dedupe_key`; timer entries at once, others after a grace period.
 */
export async function reconcileActorAudit(pool: pg.Pool, type: string, nowMs: number, objectId?: string): Promise<number> {
  const statusOf = (v: string) =>
    `upper(CASE WHEN jsonb_typeof(${v}) = 'string' THEN ${v} #>> '{}' ELSE (SELECT k FROM jsonb_object_keys(${v}) k LIMIT 1) END)`;
  const { rowCount } = await pool.query(
    `INSERT INTO audit_log ${COLUMNS}
     SELECT j.at,
            CASE WHEN j.kind = 'timer' THEN 'system' ELSE coalesce(j.event->>'by', 'unknown') END,
            CASE WHEN j.kind = 'timer' THEN 'system' ELSE 'unknown' END,
            NULL,
            CASE WHEN j.kind = 'timer' THEN $1 || '.timer' ELSE j.event->>'type' END,
            $1, j.actor_id,
            (SELECT jsonb_build_object('id', p.actor_id, 'version', p.version, 'status', ${statusOf('p.state_value')}, 'value', p.state_value)
               FROM journal p WHERE p.actor_type = j.actor_type AND p.actor_id = j.actor_id AND p.version = j.version - 1),
            jsonb_build_object('id', j.actor_id, 'version', j.version, 'status', ${statusOf('j.state_value')}, 'value', j.state_value, 'event', j.event),
            NULL,
            $1 || '/' || j.actor_id || '@' || j.version,
            NULL
       FROM journal j
      WHERE j.actor_type = $1 AND ($2::text IS NULL OR j.actor_id = $2)
        AND (j.kind = 'timer' OR j.at < $3::timestamptz)
        AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.dedupe_key = $1 || '/' || j.actor_id || '@' || j.version)
     ON CONFLICT (dedupe_key) DO NOTHING`,
    [type, objectId ?? null, new Date(nowMs - RECONCILE_GRACE_MS)],
  );
  return rowCount ?? 0;
}

export async function listAudit(
  pool: pg.Pool,
  q: { objectType?: string; objectId?: string; action?: string; limit: number; cursor?: string },
): Promise<{ data: AuditEntry[]; nextCursor: string | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.objectType) add('object_type = ?', q.objectType);
  if (q.objectId) add('object_id = ?', q.objectId);
  if (q.action) add('action = ?', q.action);
  const cur = decodeCursor(q.cursor);
  if (cur) {
    params.push(cur.at, Number(cur.id));
    where.push(`(at, id) < ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  }
  params.push(q.limit + 1);
  const { rows } = await pool.query(
    `SELECT id, at, subject, role, tenant, action, object_type, object_id, before, after, request_id, reason FROM audit_log
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((r) => ({
      id: Number(r.id),
      at: iso(r.at)!,
      who: { sub: r.subject, role: r.role, tenantId: r.tenant },
      action: r.action,
      objectType: r.object_type,
      objectId: r.object_id,
      before: r.before,
      after: r.after,
      requestId: r.request_id,
      reason: r.reason,
    })),
    nextCursor: rows.length > q.limit && last ? encodeCursor(last.at, String(last.id)) : null,
  };
}
