import { createHash } from 'node:crypto';
import type pg from 'pg';
import { DomainCode, DomainError } from './errors.js';
import type { Principal } from './principal.js';
import { transaction } from './sql.js';
import { uuidFromHex } from '../../machines/lib/uuid.js';

/** A POST's Idempotency-Key, scoped to its caller, with the fingerprint of the request. */
export interface IdempotencyRequest {
  scope: string;
  key: string;
  fingerprint: string;
}

export interface StoredResponse {
  status: number;
  body: unknown;
}

export interface IdempotentResult extends StoredResponse {
  /** True when this is the first answer given again. */
  replayed: boolean;
}

const KEY_RE = /^[\x21-\x7e]{1,255}$/;

export function idempotencyRequest(principal: Principal, key: string | undefined, method: string, path: string, body: unknown): IdempotencyRequest | null {
  if (key === undefined) return null;
  if (!KEY_RE.test(key)) {
    throw new DomainError(DomainCode.IdempotencyKeyInvalid, 'Idempotency-Key must be 1-255 visible ASCII characters');
  }
  const scope = `${principal.role}:${principal.tenantId ?? ''}:${principal.sub}`;
  const fingerprint = createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('base64url');
  return { scope, key, fingerprint };
}

/** The actor inbox message id for a keyed request: the actor applies it at most once. */
export const messageIdOf = (r: IdempotencyRequest): string => `idem:${r.scope}:${r.key}`;

/** A stable id derived from the key, so a retried create lands on the same actor. */
export function derivedId(r: IdempotencyRequest): string {
  const h = createHash('sha256').update(`${r.scope}\n${r.key}`).digest('hex');
  return uuidFromHex(h);
}

function mismatch(): DomainError {
  return new DomainError(DomainCode.IdempotencyKeyReused, 'this Idempotency-Key was used with a different request');
}

async function stored(db: pg.Pool | pg.PoolClient, r: IdempotencyRequest): Promise<StoredResponse | null> {
  const { rows } = await db.query<{ fingerprint: string; status: number; body: unknown }>(
    'SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2',
    [r.scope, r.key],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.fingerprint !== r.fingerprint) throw mismatch();
  return { status: row.status, body: row.body };
}

/**
 * Plain-table work under an Idempotency-Key: the key row is inserted first in the same
 * transaction as the work, so a concurrent retry waits on it, and the response is stored
 * before COMMIT. A failure rolls everything back, the key included.
 */
export async function idempotentTransaction(
  pool: pg.Pool,
  r: IdempotencyRequest | null,
  work: (client: pg.PoolClient) => Promise<StoredResponse>,
): Promise<IdempotentResult> {
  for (;;) {
    const out = await transaction(pool, async (client) => {
      if (r) {
        const claimed = await client.query(
          `INSERT INTO idempotency_keys (scope, key, fingerprint, status) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING RETURNING 1`,
          [r.scope, r.key, r.fingerprint],
        );
        if (claimed.rowCount === 0) {
          const first = await stored(client, r);
          // status 0 cannot be seen committed: it is always replaced before COMMIT
          return first ? { ...first, replayed: true } : null;
        }
      }
      const res = await work(client);
      if (r) {
        await client.query('UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2', [r.scope, r.key, res.status, JSON.stringify(res.body)]);
      }
      return { ...res, replayed: false };
    });
    if (out) return out;
  }
}

/**
 * An actor transition under an Idempotency-Key. The actor's inbox (keyed by the message id,
 * written in the transition's own commit) guarantees the work happens once; the HTTP answer is
 * stored right after, so a retry gets the first answer. `run` receives the message id and
 * whether the key was seen by the actor before (then it renders the actor as it is now).
 */
export async function idempotentTransition(
  pool: pg.Pool,
  r: IdempotencyRequest | null,
  run: (messageId: string | undefined) => Promise<StoredResponse>,
): Promise<IdempotentResult> {
  if (!r) return { ...(await run(undefined)), replayed: false };
  const first = await stored(pool, r);
  if (first) return { ...first, replayed: true };
  const res = await run(messageIdOf(r));
  await pool.query(
    `INSERT INTO idempotency_keys (scope, key, fingerprint, status, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [r.scope, r.key, r.fingerprint, res.status, JSON.stringify(res.body)],
  );
  const winner = await stored(pool, r);
  return winner && JSON.stringify(winner.body) !== JSON.stringify(res.body) ? { ...winner, replayed: true } : { ...res, replayed: false };
}

function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/**
 * Forgets keys older than the actors' inbox retention: after that a retry is a new request
 * anyway, since the inbox no longer knows its message id.
 */
export async function pruneIdempotencyKeys(pool: pg.Pool, retentionHours: number): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)`, [retentionHours]);
  return rowCount ?? 0;
}
