import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ErrorCode, isConcordError } from '../../runtime/errors.js';
import type { CommitExtension, CommitExtras } from '../../runtime/store.js';
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

const IDEMPOTENCY = 'idempotency';

/**
 * The commit extension that stores a keyed command's answer with the transition that applies
 * it, and refuses a transition whose key is taken (by an earlier request of the same caller, on
 * this actor or another): a keyed command on a cached actor is then ONE statement, and a key
 * reused for another request never applies it. `createServices` registers it.
 */
export const idempotencyExtension: CommitExtension = {
  name: IDEMPOTENCY,
  sql: (rows) => `INSERT INTO idempotency_keys (scope, key, fingerprint, status, body)
  SELECT r.scope, r.key, r.fingerprint, r.status, r.body
  FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r(scope text, key text, fingerprint text, status int, body jsonb)
  ON CONFLICT DO NOTHING`,
  refuse: (rows) =>
    // a LATERAL probe (one primary-key lookup per key), not a join: Postgres planned a hash join
    // that scanned the whole idempotency_keys table on every commit
    `EXISTS (SELECT 1 FROM jsonb_to_recordset(${rows}) AS r(scope text, key text) CROSS JOIN LATERAL (SELECT 1 FROM idempotency_keys k WHERE k.scope = r.scope AND k.key = r.key LIMIT 1) k)`,
};

/**
 * A command under an Idempotency-Key, as a service carries it into the actor's commit: the
 * inbox message id (the actor applies the command at most once) and the answer, rendered from
 * the transition's outcome before the commit, that commits with it.
 *
 * ```ts
 * const res = await handle.send(id, event, {
 *   messageId: key?.messageId,
 *   extras: (t) => { after = render(t); return { ...auditExtras(row), ...key?.answer(after) } },
 * });
 * return res.duplicate ? this.get(id) : after; // `after` is what the commit stored
 * ```
 */
export class KeyedCommand {
  readonly messageId: string;
  #answered: unknown;

  constructor(
    readonly request: IdempotencyRequest,
    /** The HTTP status of the answer. */
    readonly status: number,
  ) {
    this.messageId = messageIdOf(request);
  }

  /** The transition's extra rows that store `body` as this command's answer. */
  answer(body: object): CommitExtras {
    this.#answered = body;
    const { scope, key, fingerprint } = this.request;
    return { [IDEMPOTENCY]: [{ scope, key, fingerprint, status: this.status, body }] };
  }

  /** True when `body` is the answer the last rendered transition stored (the one that committed, if one did). */
  carried(body: unknown): boolean {
    return this.#answered !== undefined && body === this.#answered;
  }
}

/**
 * An actor command under an Idempotency-Key (`r`; null: a plain command). `run` passes the key
 * to the service, which sends the command with `key.messageId` and stores its answer with the
 * commit (`key.answer`), and answers with that very object: then nothing is left to do here,
 * and the whole command was the transition's one statement.
 *
 * Otherwise the command was applied before (the inbox refused the message id, or the key was
 * taken): the stored answer is read, checked against this request's fingerprint (another
 * request with the same key is IDEMPOTENCY_KEY_REUSED) and given again. An answer that was
 * never stored (pruned, or lost) is stored now, first writer wins. A rejection stores nothing.
 */
export async function idempotentCommand(
  pool: pg.Pool,
  r: IdempotencyRequest | null,
  status: number,
  run: (key: KeyedCommand | undefined) => Promise<unknown>,
): Promise<IdempotentResult> {
  if (!r) return { status, body: await run(undefined), replayed: false };
  const key = new KeyedCommand(r, status);
  let body: unknown;
  try {
    body = await run(key);
  } catch (err) {
    if (!(isConcordError(err, ErrorCode.Conflict) && err.details.refusedBy === IDEMPOTENCY)) throw err;
    const first = await stored(pool, r); // the key is taken: that request's answer, if this is the same request
    if (first) return { ...first, replayed: true };
    throw err;
  }
  if (key.carried(body)) return { status, body, replayed: false };
  const first = await stored(pool, r);
  if (first) return { ...first, replayed: true };
  return storeFirst(pool, r, { status, body });
}

/** Stores `res` as the key's answer unless another is stored already; answers the one that stands. */
async function storeFirst(pool: pg.Pool, r: IdempotencyRequest, res: StoredResponse): Promise<IdempotentResult> {
  const { rowCount } = await pool.query(
    `INSERT INTO idempotency_keys (scope, key, fingerprint, status, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [r.scope, r.key, r.fingerprint, res.status, JSON.stringify(res.body)],
  );
  if (rowCount === 1) return { ...res, replayed: false };
  const winner = await stored(pool, r);
  return winner ? { ...winner, replayed: true } : { ...res, replayed: false };
}

/**
 * A call under an Idempotency-Key whose actor messages are not keyed by it (starting an order's
 * saga: its message id is the order's, and its answer is 201 or 200): the stored answer is
 * looked up first, `run` makes the answer, which is stored right after.
 */
export async function idempotentCall(pool: pg.Pool, r: IdempotencyRequest | null, run: () => Promise<StoredResponse>): Promise<IdempotentResult> {
  if (!r) return { ...(await run()), replayed: false };
  const first = await stored(pool, r);
  if (first) return { ...first, replayed: true };
  return storeFirst(pool, r, await run());
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

/**
 * The Idempotency-Key mechanics over one pool, as the services hand them to the edge: a route
 * says which answer a keyed command gives, the service layer stores and replays it.
 */
export class Idempotency {
  constructor(private readonly pool: pg.Pool) {}

  /** An actor command under a key: its answer rides the commit (see `idempotentCommand`). */
  command(r: IdempotencyRequest | null, status: number, run: (key: KeyedCommand | undefined) => Promise<unknown>): Promise<IdempotentResult> {
    return idempotentCommand(this.pool, r, status, run);
  }

  /** A call whose actor messages are not keyed by the key (see `idempotentCall`). */
  call(r: IdempotencyRequest | null, run: () => Promise<StoredResponse>): Promise<IdempotentResult> {
    return idempotentCall(this.pool, r, run);
  }
}
