import type pg from 'pg';
import { DomainCode, DomainError } from '../common/errors.js';
import { decodeCursor, encodeCursor, iso } from '../common/sql.js';
import { AUDIT_OBJECT } from './registry.js';

export interface RegistryAuditEntry {
  id: number;
  at: string;
  who: { sub: string; role: string; tenantId: string | null };
  action: string;
  integrationId: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
}

export interface AuditFilter {
  /** Only this tenant's integrations (a vendor's or partner's own). */
  tenantId: string | null;
  /** Integration name (with `ownerId`, one integration). */
  name?: string;
  ownerId?: string;
  action?: string;
  /** Who: the token's subject. */
  actor?: string;
  from?: number;
  to?: number;
  limit: number;
  cursor?: string;
}

/** The registry's audit trail (rows of `audit_log` with object type `ecosystem.integration`), newest first. */
export async function listRegistryAudit(pool: pg.Pool, f: AuditFilter): Promise<{ data: RegistryAuditEntry[]; nextCursor: string | null }> {
  const params: unknown[] = [AUDIT_OBJECT];
  const cond = ['object_type = $1'];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    cond.push(sql.replaceAll('?', `$${params.length}`));
  };
  const owner = f.tenantId ?? f.ownerId;
  if (owner) add(`starts_with(object_id, ? || ':')`, owner);
  if (f.name) add(`split_part(object_id, ':', 2) = ?`, f.name);
  if (f.action) add('action = ?', f.action);
  if (f.actor) add('subject = ?', f.actor);
  if (f.from !== undefined) add('at >= ?', new Date(f.from));
  if (f.to !== undefined) add('at < ?', new Date(f.to));
  if (f.cursor) {
    const c = decodeCursor(f.cursor);
    if (!c) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { field: 'cursor' });
    params.push(c.at, Number(c.id));
    cond.push(`(at, id) < ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  }
  params.push(f.limit + 1);
  const { rows } = await pool.query(
    `SELECT id, at, subject, role, tenant, action, object_id, before, after, request_id FROM audit_log
      WHERE ${cond.join(' AND ')} ORDER BY at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((r) => ({
      id: Number(r.id),
      at: iso(r.at)!,
      who: { sub: r.subject, role: r.role, tenantId: r.tenant },
      action: r.action,
      integrationId: r.object_id,
      before: r.before,
      after: r.after,
      requestId: r.request_id,
    })),
    nextCursor: rows.length > f.limit && last ? encodeCursor(last.at, String(last.id)) : null,
  };
}
