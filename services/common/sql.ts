import type pg from 'pg';
import { DomainCode, DomainError } from './errors.js';
import { isPlatform, partyOf, type Principal } from './principal.js';

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

/** What an actor-backed list filters on. */
export interface ActorListFilter {
  type: string;
  /** Attribute equalities (`attrs @>`); undefined values are left out. */
  attrs: Record<string, string | undefined>;
  /** A status, or (absent) every status but DRAFT. */
  status?: string;
  /** Vendors and partners see only actors whose `<party>Id` attribute is theirs. */
  principal: Principal;
  cursor?: string;
  limit: number;
}

/**
 * One keyset page of actors (newest first) matching the filter, over indexed columns: the list
 * routes of every actor-backed resource (relationships, workflows) share it.
 */
export async function pageActors<C>(pool: Queryable, f: ActorListFilter): Promise<{ rows: ActorPageRow<C>[]; nextCursor: string | null }> {
  const cur = decodeCursor(f.cursor);
  if (f.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
  const values: unknown[] = [f.type];
  const conditions = ['type = $1'];
  const attrs = Object.fromEntries(Object.entries(f.attrs).filter(([, v]) => v !== undefined && v !== ''));
  if (Object.keys(attrs).length) {
    values.push(JSON.stringify(attrs));
    conditions.push(`attrs @> $${values.length}::jsonb`);
  }
  if (f.status) {
    values.push(f.status);
    conditions.push(`status = $${values.length}`);
  } else {
    conditions.push(`status <> 'DRAFT'`);
  }
  if (!isPlatform(f.principal)) {
    const party = partyOf(f.principal);
    if (!party) return { rows: [], nextCursor: null };
    values.push(JSON.stringify({ [`${party.type}Id`]: party.id }));
    conditions.push(`attrs @> $${values.length}::jsonb`);
  }
  if (cur) {
    values.push(cur.at, cur.id);
    conditions.push(`(created_at, id) < ($${values.length - 1}::timestamptz, $${values.length})`);
  }
  values.push(f.limit + 1);
  const { rows } = await pool.query<ActorPageRow<C>>(
    `SELECT id, version, state_value, snapshot->'context' AS context, created_at FROM actors
     WHERE ${conditions.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
    values,
  );
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return { rows: page, nextCursor: rows.length > f.limit && last ? encodeCursor(last.created_at, last.id) : null };
}
