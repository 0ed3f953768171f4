import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { EventObject } from 'xstate';
import { LruCache } from './cache.js';
import { ConcordError, ErrorCode } from './errors.js';
import type { OutboxDraft } from './effects.js';
import type { ActorRef, PersistedSnapshot } from './registry.js';
import type { TimerRow } from './step.js';

/** An actor as stored: its snapshot row and its pending timers. */
export interface StoredActor {
  tenant: string | null;
  machineVersion: number;
  version: number;
  snapshot: PersistedSnapshot;
  status: string;
  attrs: Record<string, unknown>;
  timers: TimerRow[];
  createdAt: Date;
  updatedAt: Date;
  /** Set while an operator has the actor paused (see `ActorHost`): it applies nothing. */
  paused: PauseMark | null;
  /** The journal entry this actor was forked from, if it was made by a fork. */
  forkedFrom: ForkMark | null;
}

/** Who paused an actor, when and why. */
export interface PauseMark {
  at: string;
  by: string;
  reason: string | null;
}

/** The journal entry a forked actor was made from. */
export interface ForkMark {
  type: string;
  id: string;
  version: number;
}

/** Everything one transition writes, committed together or not at all. */
export interface CommitRecord {
  type: string;
  id: string;
  tenant: string | null;
  /** The version the transition was computed from (0 for a new actor). */
  expected: number;
  machineVersion: number;
  value: unknown;
  status: string;
  attrs: Record<string, unknown>;
  snapshot: PersistedSnapshot;
  messageId: string | null;
  result: unknown;
  journal: { kind: 'event' | 'timer'; targetPath: string; event: EventObject; input: unknown };
  /** The trace the transition ran in (when tracing is on): kept with its journal entry. */
  traceId?: string | null;
  /** Its W3C traceparent (when tracing is on): kept with the timers it sets, whose firing continues the trace. */
  traceparent?: string | null;
  partition: number;
  outbox: OutboxDraft[];
  /** Correlation ids this transition starts waiting on. */
  correlations: string[];
  timerDeletes: string[];
  timerUpserts: TimerRow[];
  at: string;
  /** Extra rows of the transition, by commit extension name (see `CommitExtension`). */
  extras: CommitExtras;
  /** The partition lease this transition's message was consumed under: no write unless it is current. */
  fence: Fence | null;
}

/** A partition lease's fencing token (`partition_epochs`). */
export interface Fence {
  partition: number;
  epoch: number;
}

/** Extra rows a transition commits with, by commit extension name. */
export type CommitExtras = Record<string, readonly unknown[]>;

/**
 * Rows the application writes together with a transition, in the transition's own statement:
 * written only when the transition commits, never otherwise (e.g. an audit record, the stored
 * answer of an HTTP command). The engine knows no application table: an extension names its
 * rows, and the engine composes its one commit statement from every extension once, before the
 * first commit.
 *
 * ```ts
 * const notes: CommitExtension = {
 *   name: 'notes',
 *   sql: (rows) => `INSERT INTO notes (actor_id, version, text) SELECT g.id, g.expected + 1, r.text FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r(text text)`,
 * };
 * host.extendCommit(notes); // before start; then: host.send(ref, event, { extras: (t) => ({ notes: [{ text: `v${t.version}` }] }) })
 * ```
 */
export interface CommitExtension {
  /** The key of `extras` whose rows this writes: `[a-z][a-z0-9_]*`. */
  name: string;
  /**
   * A data-modifying statement (a CTE body) over `g`, the transitions that committed (columns
   * `type`, `id`, `tenant`, `expected`, `at`, ...); `rows` is the SQL expression of one
   * transition's jsonb array of rows (NULL when it carries none).
   */
  sql(rows: string): string;
  /**
   * Optional: a boolean SQL expression over `b`, one transition before it is written; true
   * refuses the transition (nothing of it is written, and the send fails with CONFLICT whose
   * `refusedBy` names this extension). For rows that claim something unique, such as a key.
   */
  refuse?(rows: string): string;
}

const EXTENSION_NAME = /^[a-z][a-z0-9_]{0,40}$/;

const TIMERS_JSON = `COALESCE((SELECT json_agg(json_build_object(
    'key', t.timer_key, 'xstateId', t.xstate_id, 'sourcePath', t.source_path, 'targetPath', t.target_path,
    'event', t.event, 'dueAt', round(extract(epoch FROM t.due_at) * 1000)) ORDER BY t.due_at)
  FROM timers t WHERE t.actor_type = a.type AND t.actor_id = a.id), '[]'::json)`;

const LOAD_SQL = `SELECT a.tenant, a.machine_version, a.version, a.snapshot, a.status, a.attrs, a.created_at, a.updated_at,
  a.paused_at, a.paused_by, a.paused_reason, a.forked_from, ${TIMERS_JSON} AS timers FROM actors a WHERE a.type = $1 AND a.id = $2`;

interface ActorRow {
  tenant: string | null;
  machine_version: number;
  version: number;
  snapshot: PersistedSnapshot;
  status: string;
  attrs: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  paused_at: Date | null;
  paused_by: string | null;
  paused_reason: string | null;
  forked_from: ForkMark | null;
  timers: TimerRow[];
}

export async function loadActor(db: pg.Pool | pg.ClientBase, ref: ActorRef): Promise<StoredActor | null> {
  const { rows } = await db.query<ActorRow>({ name: 'concord_load_actor', text: LOAD_SQL, values: [ref.type, ref.id] });
  const r = rows[0];
  if (!r) return null;
  return {
    tenant: r.tenant,
    machineVersion: r.machine_version,
    version: r.version,
    snapshot: r.snapshot,
    status: r.status,
    attrs: r.attrs,
    timers: r.timers.map((t) => ({ ...t, dueAt: Number(t.dueAt) })),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    paused: r.paused_at ? { at: r.paused_at.toISOString(), by: r.paused_by ?? 'unknown', reason: r.paused_reason } : null,
    forkedFrom: r.forked_from,
  };
}

export async function lookupInbox(db: pg.Pool, ref: ActorRef, messageId: string): Promise<unknown | undefined> {
  const { rows } = await db.query<{ result: unknown }>({
    name: 'concord_inbox_lookup',
    text: 'SELECT result FROM inbox WHERE actor_type = $1 AND actor_id = $2 AND message_id = $3',
    values: [ref.type, ref.id, messageId],
  });
  return rows[0]?.result;
}

/** The column of `b` holding one extension's rows of a transition. */
const extColumn = (name: string) => `"x_${name}"`;

/**
 * The whole commit of a batch of transitions (of distinct actors) as ONE statement. Each
 * actor's row is written only if its version is still the one the transition started from,
 * its message id is not yet in the inbox, the actor is not paused, its fence is current and no extension refuses it; the
 * inbox, journal, outbox, timer and extension writes follow only for the rows that were
 * written. Rows are locked in key order so that two concurrent batches cannot deadlock. Returns
 * the keys that committed, were fenced or were refused.
 */
function commitSql(exts: readonly CommitExtension[]): string {
  const columns = exts.map((e) => `, ${extColumn(e.name)} jsonb`).join('');
  const refusals = exts.filter((e) => e.refuse);
  const refused = refusals.length
    ? `refused AS (
  SELECT DISTINCT ON (b.type, b.id) b.type, b.id, r.ext FROM b CROSS JOIN LATERAL (
    ${refusals.map((e) => `SELECT '${e.name}'::text AS ext WHERE ${e.refuse!(`b.${extColumn(e.name)}`)}`).join('\n    UNION ALL ')}
  ) r
  WHERE NOT EXISTS (SELECT 1 FROM fenced WHERE fenced.type = b.type AND fenced.id = b.id)
),`
    : `refused AS (SELECT NULL::text AS type, NULL::text AS id, NULL::text AS ext WHERE false),`;
  const writes = exts.map((e) => `,\n${extColumn(e.name)} AS (\n  ${e.sql(`g.${extColumn(e.name)}`)}\n)`).join('');
  return `
WITH b AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
    i int, type text, id text, tenant text, expected bigint, mv int, value jsonb, status text, attrs jsonb,
    snapshot jsonb, msg text, result jsonb, jkind text, jtarget text, jevent jsonb, jinput jsonb, part int,
    outbox jsonb, corr jsonb, tdel jsonb, tups jsonb, at timestamptz, fp int, fe bigint, tid text, tp text${columns})
),
-- transitions consumed under a partition lease that has passed to another process
fenced AS (
  SELECT b.type, b.id FROM b
  WHERE b.fp IS NOT NULL AND NOT EXISTS (SELECT 1 FROM partition_epochs f WHERE f.partition = b.fp AND f.epoch = b.fe)
),
-- transitions an extension refuses (e.g. an Idempotency-Key already taken)
${refused}
ok AS (
  INSERT INTO actors AS a (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
  SELECT b.type, b.id, b.tenant, b.mv, b.expected + 1, b.value, b.status, b.attrs, b.snapshot, b.at, b.at FROM b
  -- a LATERAL probe, not NOT EXISTS: Postgres may run an EXISTS as a hashed subplan that reads
  -- the whole inbox on every commit; this stays one index lookup per transition
  LEFT JOIN LATERAL (
    SELECT true AS seen FROM inbox n WHERE n.actor_type = b.type AND n.actor_id = b.id AND n.message_id = b.msg LIMIT 1
  ) d ON b.msg IS NOT NULL
  WHERE d.seen IS NULL AND NOT EXISTS (SELECT 1 FROM fenced WHERE fenced.type = b.type AND fenced.id = b.id)
    AND NOT EXISTS (SELECT 1 FROM refused WHERE refused.type = b.type AND refused.id = b.id)
  ORDER BY b.type, b.id
  ON CONFLICT (type, id) DO UPDATE SET
    tenant = EXCLUDED.tenant, machine_version = EXCLUDED.machine_version, version = EXCLUDED.version,
    state_value = EXCLUDED.state_value, status = EXCLUDED.status, attrs = EXCLUDED.attrs,
    snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at
  -- a paused actor takes no transition, whichever process computed it (the row is locked and
  -- read here anyway: the pause check costs nothing); the host reloads and sees the pause
  WHERE a.version = EXCLUDED.version - 1 AND a.paused_at IS NULL
  RETURNING a.type, a.id
),
g AS (SELECT b.* FROM b JOIN ok ON ok.type = b.type AND ok.id = b.id),
ib AS (
  INSERT INTO inbox (actor_type, actor_id, message_id, version, result, created_at)
  SELECT type, id, msg, expected + 1, result, at FROM g WHERE msg IS NOT NULL
  ON CONFLICT DO NOTHING
),
jn AS (
  INSERT INTO journal (actor_type, actor_id, version, message_id, kind, target_path, event, input, state_value, at, trace_id)
  SELECT type, id, expected + 1, msg, jkind, jtarget, jevent, jinput, value, at, tid FROM g
),
ob AS (
  INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload, headers, created_at)
  SELECT g.part, g.type, g.id, o.kind, o.subject, o.message_id, o.payload, o.headers, g.at
  FROM g CROSS JOIN LATERAL jsonb_to_recordset(g.outbox) AS o(n int, kind text, subject text, message_id text, payload jsonb, headers jsonb)
  ORDER BY g.i, o.n
),
co AS (
  INSERT INTO correlations (correlation_id, actor_type, actor_id, created_at)
  SELECT c.value, g.type, g.id, g.at FROM g CROSS JOIN LATERAL jsonb_array_elements_text(g.corr) AS c(value)
  ON CONFLICT (correlation_id) DO UPDATE SET actor_type = EXCLUDED.actor_type, actor_id = EXCLUDED.actor_id
),
td AS (
  DELETE FROM timers t USING g
  WHERE t.actor_type = g.type AND t.actor_id = g.id AND g.tdel ? t.timer_key
),
tu AS (
  INSERT INTO timers (actor_type, actor_id, timer_key, xstate_id, source_path, target_path, event, due_at, traceparent)
  SELECT g.type, g.id, u.key, u.xid, u.src, u.tgt, u.event, to_timestamp(u.due / 1000.0), g.tp
  FROM g CROSS JOIN LATERAL jsonb_to_recordset(g.tups) AS u(key text, xid text, src text, tgt text, event jsonb, due float8)
  ON CONFLICT (actor_type, actor_id, timer_key) DO UPDATE SET
    xstate_id = EXCLUDED.xstate_id, source_path = EXCLUDED.source_path, target_path = EXCLUDED.target_path,
    event = EXCLUDED.event, due_at = EXCLUDED.due_at, claimed_until = NULL, traceparent = EXCLUDED.traceparent
)${writes}
SELECT type, id, 'committed' AS outcome, NULL AS ext FROM ok
UNION ALL
SELECT type, id, 'fenced', NULL FROM fenced
UNION ALL
SELECT type, id, 'refused', ext FROM refused`;
}

/** What became of one transition of a batch (absent from the answer: a conflict). */
export type BatchOutcome = 'committed' | 'fenced' | { refusedBy: string };

/**
 * The commit statement of a set of extensions: composed once, then prepared once per
 * connection (its name follows its text, so runtimes with other extensions never collide).
 */
export class CommitStatement {
  readonly #name: string;
  readonly #text: string;
  readonly #exts: readonly CommitExtension[];

  constructor(exts: readonly CommitExtension[] = []) {
    const seen = new Set<string>();
    for (const e of exts) {
      if (!EXTENSION_NAME.test(e.name)) throw new ConcordError(ErrorCode.InvalidConfig, `invalid commit extension name '${e.name}'`);
      if (seen.has(e.name)) throw new ConcordError(ErrorCode.InvalidConfig, `commit extension '${e.name}' registered twice`);
      seen.add(e.name);
    }
    this.#exts = [...exts];
    this.#text = commitSql(this.#exts);
    this.#name = `concord_commit_${createHash('sha1').update(this.#text).digest('hex').slice(0, 12)}`;
  }

  /** The extensions this statement writes, by name. */
  has(name: string): boolean {
    return this.#exts.some((e) => e.name === name);
  }

  /** Writes a batch in one round trip; answers what became of each transition, by `type/id`. */
  async run(db: pg.Pool, recs: readonly CommitRecord[]): Promise<Map<string, BatchOutcome>> {
    const { rows } = await db.query<{ type: string; id: string; outcome: 'committed' | 'fenced' | 'refused'; ext: string | null }>({
      name: this.#name,
      text: this.#text,
      values: [this.#encode(recs)],
    });
    return new Map(rows.map((r) => [`${r.type}/${r.id}`, r.outcome === 'refused' ? { refusedBy: r.ext! } : r.outcome]));
  }

  #encode(recs: readonly CommitRecord[]): string {
    return JSON.stringify(
      recs.map((r, i) => {
        const row: Record<string, unknown> = {
          i,
          type: r.type,
          id: r.id,
          tenant: r.tenant,
          expected: r.expected,
          mv: r.machineVersion,
          value: r.value,
          status: r.status,
          attrs: r.attrs,
          snapshot: r.snapshot,
          msg: r.messageId,
          result: r.result,
          jkind: r.journal.kind,
          jtarget: r.journal.targetPath,
          jevent: r.journal.event,
          jinput: r.journal.input ?? null,
          part: r.partition,
          outbox: r.outbox.map((o, n) => ({ n, kind: o.kind, subject: o.subject, message_id: o.messageId, payload: o.payload, headers: o.headers })),
          corr: r.correlations,
          tdel: r.timerDeletes,
          tups: r.timerUpserts.map((t) => ({ key: t.key, xid: t.xstateId, src: t.sourcePath, tgt: t.targetPath, event: t.event, due: t.dueAt })),
          at: r.at,
          fp: r.fence?.partition ?? null,
          fe: r.fence?.epoch ?? null,
          tid: r.traceId ?? null,
          tp: r.traceparent ?? null,
        };
        // the host lets through only extensions of this statement (`has`); absent rows are NULL
        for (const [name, extra] of Object.entries(r.extras)) if (extra.length > 0) row[`x_${name}`] = extra;
        return row;
      }),
    );
  }
}

export interface JournalEntry {
  version: number;
  messageId: string | null;
  kind: 'event' | 'timer';
  targetPath: string;
  event: EventObject;
  /** The machine input, on the entry that created the actor. */
  input: unknown;
  value: unknown;
  at: string;
  /** The trace of the transition that wrote it (null when tracing was off). */
  traceId: string | null;
}

export async function readJournal(db: pg.Pool, ref: ActorRef, opts: { afterVersion?: number; limit?: number } = {}): Promise<JournalEntry[]> {
  const { rows } = await db.query<{
    version: number;
    message_id: string | null;
    kind: 'event' | 'timer';
    target_path: string;
    event: EventObject;
    input: unknown;
    state_value: unknown;
    at: Date;
    trace_id: string | null;
  }>(
    `SELECT version, message_id, kind, target_path, event, input, state_value, at, trace_id FROM journal
     WHERE actor_type = $1 AND actor_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
    [ref.type, ref.id, opts.afterVersion ?? 0, opts.limit ?? 1_000_000],
  );
  return rows.map((r) => ({
    version: r.version,
    messageId: r.message_id,
    kind: r.kind,
    targetPath: r.target_path,
    event: r.event,
    input: r.input,
    value: r.state_value,
    at: r.at.toISOString(),
    traceId: r.trace_id,
  }));
}

/** The actor waiting on a correlation id, if any. */
export async function lookupCorrelation(db: pg.Pool, correlationId: string): Promise<ActorRef | null> {
  const { rows } = await db.query<{ actor_type: string; actor_id: string }>({
    name: 'concord_correlation_lookup',
    text: 'SELECT actor_type, actor_id FROM correlations WHERE correlation_id = $1',
    values: [correlationId],
  });
  const r = rows[0];
  return r ? { type: r.actor_type, id: r.actor_id } : null;
}

/**
 * Which actor waits on a correlation id. A reply usually reaches the process whose commit
 * started the wait a few milliseconds earlier: that process answers from memory (bounded,
 * recent waits only) and asks the `correlations` table only for what it did not write itself.
 * A correlation id names one command, so one actor waits on it (a retried transition claims it
 * again for the same actor); the table stays the authority.
 */
export class CorrelationIndex {
  readonly #recent: LruCache<ActorRef>;

  constructor(
    private readonly pool: pg.Pool,
    capacity = 20_000,
    idleMs = 10 * 60_000,
  ) {
    this.#recent = new LruCache<ActorRef>(capacity, idleMs);
  }

  /** Told after a commit that wrote `ids` for `ref`. */
  remember(ids: readonly string[], ref: ActorRef): void {
    for (const id of ids) this.#recent.set(id, ref);
  }

  async lookup(correlationId: string): Promise<ActorRef | null> {
    return this.#recent.get(correlationId) ?? (await lookupCorrelation(this.pool, correlationId));
  }
}
