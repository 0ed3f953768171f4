import type pg from 'pg';
import { DomainCode, DomainError } from './errors.js';

/** Runs `work` in one transaction on one pooled connection; rolls back on any throw. */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await work(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export type Queryable = pg.Pool | pg.PoolClient;

/** Keyset cursor over `(created_at DESC, id DESC)`: opaque to clients. */
export function encodeCursor(at: Date | string, id: string): string {
  return Buffer.from(JSON.stringify([typeof at === 'string' ? at : at.toISOString(), id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): { at: string; id: string } | null {
  if (!cursor) return null;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    if (typeof at !== 'string' || typeof id !== 'string' || Number.isNaN(Date.parse(at))) return null;
    return { at, id };
  } catch {
    return null;
  }
}

export const iso = (d: Date | string | null | undefined): string | null => (d == null ? null : new Date(d).toISOString());

export interface ActorPageRow<C> {
  id: string;
  version: number;
  state_value: unknown;
  context: C;
  created_at: Date;
}

/**
 * One keyset page of actors (newest first) matching `where` (SQL conditions over `actors`,
 * numbered against `params`): the list routes of every actor-backed resource share it.
 */
export async function pageActors<C>(
  pool: Queryable,
  where: string[],
  params: unknown[],
  cursor: string | undefined,
  limit: number,
): Promise<{ rows: ActorPageRow<C>[]; nextCursor: string | null }> {
  const cur = decodeCursor(cursor);
  if (cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
  const conditions = [...where];
  const values = [...params];
  if (cur) {
    values.push(cur.at, cur.id);
    conditions.push(`(created_at, id) < ($${values.length - 1}::timestamptz, $${values.length})`);
  }
  values.push(limit + 1);
  const { rows } = await pool.query<ActorPageRow<C>>(
    `SELECT id, version, state_value, snapshot->'context' AS context, created_at FROM actors
     WHERE ${conditions.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
    values,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { rows: page, nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null };
}
