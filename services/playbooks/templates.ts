import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { recordAudit } from '../common/audit.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { decodeCursor, encodeCursor, iso, transaction } from '../common/sql.js';
import { checkTemplate } from './steps/liquid.js';
import { PLATFORM_TENANT } from './steps/query.js';

/**
 * The playbook template library (`GET/POST /api/partnerships/templates`): Liquid sources that
 * `template` steps render by id (`template: { templateId }`). Each tenant has its own; the
 * platform's (written by operators) are readable by every tenant. Posting a name again makes its
 * next version under a new id; a template never changes once written, so an execution renders
 * the version it referenced. Every create is audited.
 */

export const TEMPLATE_FORMATS = ['text', 'markdown', 'html', 'pdf'] as const;
export type TemplateFormat = (typeof TEMPLATE_FORMATS)[number];

export interface Template {
  id: string;
  /** The owner: a vendor or partner id, or null for the platform's library. */
  tenantId: string | null;
  name: string;
  version: number;
  description: string | null;
  format: TemplateFormat;
  source: string;
  createdBy: string;
  createdAt: string;
}

export interface CreateTemplate {
  name: string;
  source: string;
  format?: TemplateFormat;
  description?: string | null;
  /** Operators may write a tenant's library (or, without it, the platform's). */
  tenantId?: string;
}

interface Row {
  id: string;
  tenant_id: string;
  name: string;
  version: number;
  description: string | null;
  format: TemplateFormat;
  source: string;
  created_by: string;
  created_at: Date;
}

const toTemplate = (r: Row): Template => ({
  id: r.id,
  tenantId: r.tenant_id === PLATFORM_TENANT ? null : r.tenant_id,
  name: r.name,
  version: r.version,
  description: r.description,
  format: r.format,
  source: r.source,
  createdBy: r.created_by,
  createdAt: iso(r.created_at)!,
});

const invalid = (field: string, message: string) => new DomainError(DomainCode.ValidationFailed, message, { field });

/** The tenant whose library a principal reads and writes by default: its own, or the platform's. */
export const tenantOf = (p: Principal): string => (isPlatform(p) ? PLATFORM_TENANT : (p.tenantId ?? PLATFORM_TENANT));

export class TemplateStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(principal: Principal, input: CreateTemplate, requestId?: string | null): Promise<Template> {
    if (typeof input.name !== 'string' || !/^[\w.-]{1,100}$/.test(input.name)) throw invalid('name', 'name must be 1 to 100 letters, digits, ".", "-" or "_"');
    if (typeof input.source !== 'string' || input.source === '') throw invalid('source', 'source must be a non-empty Liquid template');
    const format = input.format ?? 'text';
    if (!TEMPLATE_FORMATS.includes(format)) throw invalid('format', `format must be one of ${TEMPLATE_FORMATS.join(', ')}`);
    if (input.description != null && (typeof input.description !== 'string' || input.description.length > 1000)) throw invalid('description', 'description must be a string of at most 1000 characters');
    if (input.tenantId !== undefined && !isPlatform(principal)) throw new DomainError(DomainCode.Forbidden, 'only operators may write another library than their own', { field: 'tenantId' });
    if (input.tenantId !== undefined && (typeof input.tenantId !== 'string' || input.tenantId === '' || input.tenantId.length > 255)) throw invalid('tenantId', 'tenantId must be a non-empty string');
    try {
      checkTemplate(input.source);
    } catch (err) {
      throw invalid('source', (err as Error).message);
    }
    const tenant = input.tenantId ?? tenantOf(principal);
    return transaction(this.pool, async (client) => {
      // versions of one name are numbered in order: serialize creates of the same name
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`playbook_template:${tenant}:${input.name}`]);
      const { rows } = await client.query<Row>(
        `INSERT INTO playbook_templates (id, tenant_id, name, version, description, format, source, created_by)
          SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6, $7 FROM playbook_templates WHERE tenant_id = $2 AND name = $3
          RETURNING *`,
        [`tpl_${randomUUID()}`, tenant, input.name, input.description ?? null, format, input.source, principal.sub],
      );
      const t = toTemplate(rows[0]!);
      await recordAudit(client, { principal, action: 'template.create', objectType: 'playbook_template', objectId: t.id, before: null, after: { ...t, source: undefined, sourceLength: t.source.length }, at: t.createdAt, requestId: requestId ?? null });
      return t;
    });
  }

  /** A template the tenant may render: its own or the platform's; another tenant's is NOT_FOUND. */
  async get(tenantId: string, id: string): Promise<Template> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM playbook_templates WHERE id = $1 AND tenant_id IN ($2, $3)', [id, tenantId, PLATFORM_TENANT]);
    if (!rows[0]) throw notFound('template', id);
    return toTemplate(rows[0]);
  }

  /** For the edge: operators see every library; a tenant its own and the platform's. */
  async read(principal: Principal, id: string): Promise<Template> {
    if (isPlatform(principal)) {
      const { rows } = await this.pool.query<Row>('SELECT * FROM playbook_templates WHERE id = $1', [id]);
      if (!rows[0]) throw notFound('template', id);
      return toTemplate(rows[0]);
    }
    return this.get(tenantOf(principal), id);
  }

  /** Newest first, a page at a time; `name` narrows to one template's versions. */
  async list(principal: Principal, f: { name?: string; limit?: number; cursor?: string } = {}): Promise<{ data: Template[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(f.limit ?? 50, 1), 200);
    const after = decodeCursor(f.cursor);
    if (f.cursor !== undefined && !after) throw invalid('cursor', 'cursor is not one this API gave');
    const params: unknown[] = [];
    const where: string[] = [];
    if (!isPlatform(principal)) {
      params.push(tenantOf(principal), PLATFORM_TENANT);
      where.push(`tenant_id IN ($${params.length - 1}, $${params.length})`);
    }
    if (f.name !== undefined) {
      params.push(f.name);
      where.push(`name = $${params.length}`);
    }
    if (after) {
      params.push(after.at, after.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(limit + 1);
    const { rows } = await this.pool.query<Row>(
      `SELECT * FROM playbook_templates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: page.map(toTemplate), nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null };
  }
}
