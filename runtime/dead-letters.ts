import type pg from 'pg';
import { actorSubject } from './effects.js';
import { ConcordError, ErrorCode } from './errors.js';
import { partitionOf } from './partition.js';

/**
 * The dead-letter store: messages that will not be applied without help (a state that does
 * not accept them, an unknown correlation id, a handler that kept failing). They are kept with
 * their error, listed for operators, and replayed through the outbox, so a replay takes the
 * same path (and the same transport) as any other message.
 */
export interface DeadLetter {
  id: number;
  origin: string;
  reason: string;
  subject: string | null;
  actorType: string | null;
  actorId: string | null;
  messageId: string | null;
  payload: unknown;
  headers: Record<string, string>;
  error: string | null;
  attempts: number;
  createdAt: string;
  replayedAt: string | null;
}

export interface NewDeadLetter {
  reason: string;
  subject: string;
  actorType: string | null;
  actorId: string | null;
  messageId: string;
  payload: unknown;
  headers: Record<string, string>;
  error: string;
  attempts: number;
}

/**
 * Records a message consumed from NATS as dead. Recording twice (a crash between this and the
 * `term()`, then redelivery) leaves one open row: returns false the second time.
 */
export async function recordNatsDeadLetter(pool: pg.Pool, d: NewDeadLetter): Promise<boolean> {
  const { rowCount } = await pool.query(
    `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts)
     VALUES ('nats', $1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)
     ON CONFLICT (subject, message_id) WHERE origin = 'nats' AND replayed_at IS NULL DO NOTHING`,
    [d.reason, d.subject, d.actorType, d.actorId, d.messageId, JSON.stringify(d.payload ?? null), JSON.stringify(d.headers), d.error.slice(0, 4000), d.attempts],
  );
  return (rowCount ?? 0) > 0;
}

interface Row {
  id: string;
  origin: string;
  reason: string;
  subject: string | null;
  actor_type: string | null;
  actor_id: string | null;
  message_id: string | null;
  payload: unknown;
  headers: Record<string, string>;
  error: string | null;
  attempts: number;
  created_at: Date;
  replayed_at: Date | null;
}

const toDeadLetter = (r: Row): DeadLetter => ({
  id: Number(r.id),
  origin: r.origin,
  reason: r.reason,
  subject: r.subject,
  actorType: r.actor_type,
  actorId: r.actor_id,
  messageId: r.message_id,
  payload: r.payload,
  headers: r.headers,
  error: r.error,
  attempts: r.attempts,
  createdAt: r.created_at.toISOString(),
  replayedAt: r.replayed_at?.toISOString() ?? null,
});

export interface ListOptions {
  reason?: string;
  actor?: { type: string; id?: string };
  /** Include replayed ones (default: open ones only). */
  includeReplayed?: boolean;
  /** Page after this id (ids ascend). */
  afterId?: number;
  limit?: number;
}

/** One dead letter, replayed or not; null when there is none with that id. */
export async function getDeadLetter(pool: pg.Pool, id: number): Promise<DeadLetter | null> {
  const { rows } = await pool.query<Row>(
    `SELECT id, origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts, created_at, replayed_at
     FROM dead_letters WHERE id = $1`,
    [id],
  );
  return rows[0] ? toDeadLetter(rows[0]) : null;
}

/** Dead letters, oldest first. */
export async function listDeadLetters(pool: pg.Pool, o: ListOptions = {}): Promise<DeadLetter[]> {
  const { rows } = await pool.query<Row>(
    `SELECT id, origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts, created_at, replayed_at
     FROM dead_letters
     WHERE ($1::boolean OR replayed_at IS NULL) AND ($2::text IS NULL OR reason = $2)
       AND ($3::text IS NULL OR actor_type = $3) AND ($4::text IS NULL OR actor_id = $4) AND id > $5
     ORDER BY id LIMIT $6`,
    [o.includeReplayed ?? false, o.reason ?? null, o.actor?.type ?? null, o.actor?.id ?? null, o.afterId ?? 0, Math.min(o.limit ?? 100, 1_000)],
  );
  return rows.map(toDeadLetter);
}

export interface ReplayOptions {
  /** Replay this payload instead of the stored one (an operator's edit); the row keeps the original. */
  payload?: unknown;
  /**
   * Runs in the replay's transaction once the outbox row is written, with the dead letter before
   * and after (the caller's audit record commits with the replay, or neither does).
   */
  within?: (client: pg.PoolClient, before: DeadLetter, after: DeadLetter) => Promise<void>;
  /** What to do with a dead letter replayed before: answer it as it is (default) or refuse. */
  onReplayed?: (dl: DeadLetter) => void;
}

/**
 * Replays a dead letter: one outbox row, written in the same transaction that marks the dead
 * letter replayed, carries it again (to the actor it was for, or back to its subject to be
 * routed again). The actor-level message id is kept, so a message that was in fact applied is
 * not applied twice; the JetStream dedupe id is fresh (`replay:<id>`) so the stream's
 * duplicate window does not swallow the replay.
 */
export async function replayDeadLetter(pool: pg.Pool, id: number, partitions: number, o: ReplayOptions = {}): Promise<DeadLetter> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<Row>(
      `SELECT id, origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts, created_at, replayed_at
       FROM dead_letters WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const dl = rows[0];
    if (!dl) throw new ConcordError(ErrorCode.ActorNotFound, `dead letter ${id} not found`, { id });
    if (dl.replayed_at) {
      await client.query('ROLLBACK');
      o.onReplayed?.(toDeadLetter(dl));
      return toDeadLetter(dl);
    }
    const { 'Concord-Kind': storedKind, ...kept } = dl.headers ?? {};
    // transport headers of the dead delivery (its JetStream id among them) do not travel again
    const headers = Object.fromEntries(Object.entries(kept).filter(([k]) => !k.startsWith('Nats-') && k !== 'Concord-Message-Id'));
    let kind: 'send' | 'publish' | 'call';
    let subject: string;
    let source: { type: string; id: string };
    if (dl.origin === 'outbox') {
      kind = (storedKind as typeof kind | undefined) ?? 'send';
      subject = dl.subject ?? '';
      source = { type: dl.actor_type ?? 'concord', id: dl.actor_id ?? 'dead-letters' };
    } else if (dl.actor_type && dl.actor_id) {
      kind = 'send';
      subject = actorSubject(dl.actor_type, dl.actor_id);
      source = { type: dl.actor_type, id: dl.actor_id };
    } else {
      // never reached an actor (unroutable service event): publish it again to be routed again
      kind = 'publish';
      subject = headers['Concord-Origin-Subject'] ?? dl.subject ?? '';
      source = { type: 'concord', id: 'dead-letters' };
    }
    const messageId = dl.message_id ?? `dead-letter:${id}`;
    await client.query(
      `INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload, headers)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)`,
      [
        partitionOf(`${source.type}/${source.id}`, partitions),
        source.type,
        source.id,
        kind,
        subject,
        messageId,
        JSON.stringify(o.payload === undefined ? dl.payload : o.payload),
        JSON.stringify({ ...headers, 'Concord-Nats-Msg-Id': `replay:${id}` }),
      ],
    );
    const upd = await client.query<Row>(
      `UPDATE dead_letters SET replayed_at = now() WHERE id = $1
       RETURNING id, origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts, created_at, replayed_at`,
      [id],
    );
    const after = toDeadLetter(upd.rows[0]!);
    await o.within?.(client, toDeadLetter(dl), after);
    await client.query('COMMIT');
    return after;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Open dead letters by reason (for health and metrics). */
export async function countDeadLetters(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ reason: string; n: number }>(
    'SELECT reason, count(*)::int AS n FROM dead_letters WHERE replayed_at IS NULL GROUP BY reason',
  );
  return Object.fromEntries(rows.map((r) => [r.reason, r.n]));
}
