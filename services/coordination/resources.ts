import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import { recordAudit } from '../common/audit.js';
import { keyedTransaction, type Answer, type CommandContext } from '../common/command.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, partyOf, type Principal } from '../common/principal.js';
import { queryBuilder, type Db } from '../common/schema.js';
import { decodeCursor, encodeCursor, iso, transaction, type Queryable } from '../common/sql.js';

export const RESOURCE_TYPES = ['API_ENDPOINT', 'WEBHOOK', 'DATABASE_TABLE', 'CACHE_KEY', 'QUEUE_TOPIC', 'STORAGE_BUCKET'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];
export const OWNER_TYPES = ['vendor', 'partner'] as const;
export type OwnerType = (typeof OWNER_TYPES)[number];
export const ACCESS_LEVELS = ['read', 'write', 'admin'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

const LEVEL: Record<AccessLevel, number> = { read: 1, write: 2, admin: 3 };
type Json = Record<string, unknown>;

export interface ResourceAccessGrant {
  id: string;
  resourceId: string;
  grantedToId: string;
  grantedToType: OwnerType;
  accessLevel: AccessLevel;
  grantedBy: string;
  grantedAt: string;
  expiresAt: string | null;
  isActive: boolean;
  conditions: Json | null;
  revokedAt: string | null;
  revokedBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface SharedResource {
  id: string;
  resourceId: string;
  resourceType: ResourceType;
  ownerId: string;
  ownerType: OwnerType;
  name: string;
  description: string | null;
  configuration: Json | null;
  accessControl: Json | null;
  isActive: boolean;
  createdAt: string;
  updatedAt: string;
  /** Grants the caller may see: all of them for the owner, admins and operators; its own otherwise. */
  accessGrants: ResourceAccessGrant[];
}

export interface CreateResource {
  resourceId: string;
  resourceType: ResourceType;
  name: string;
  description?: string | null;
  configuration?: Json | null;
  accessControl?: Json | null;
  ownerId?: string;
  ownerType?: OwnerType;
}

export interface CreateGrant {
  grantedToId: string;
  grantedToType: OwnerType;
  accessLevel: AccessLevel;
  expiresAt?: string | null;
  conditions?: Json | null;
}

export interface AccessDecision {
  resourceId: string;
  partyId: string;
  partyType: OwnerType;
  level: AccessLevel;
  allowed: boolean;
  /** The party's strongest level now (owner = admin), or null. */
  effectiveLevel: AccessLevel | null;
  reason: string;
  grantId: string | null;
  expiresAt: string | null;
  checkedAt: string;
}

function toGrant(r: Record<string, unknown>): ResourceAccessGrant {
  return {
    id: r.id as string,
    resourceId: r.resource_id as string,
    grantedToId: r.granted_to_id as string,
    grantedToType: r.granted_to_type as OwnerType,
    accessLevel: r.access_level as AccessLevel,
    grantedBy: r.granted_by as string,
    grantedAt: iso(r.granted_at as Date)!,
    expiresAt: iso(r.expires_at as Date | null),
    isActive: r.is_active as boolean,
    conditions: (r.conditions as Json | null) ?? null,
    revokedAt: iso(r.revoked_at as Date | null),
    revokedBy: (r.revoked_by as string | null) ?? null,
    createdAt: iso(r.created_at as Date)!,
    updatedAt: iso(r.updated_at as Date)!,
  };
}

function toResource(r: Record<string, unknown>, grants: ResourceAccessGrant[]): SharedResource {
  return {
    id: r.id as string,
    resourceId: r.resource_id as string,
    resourceType: r.resource_type as ResourceType,
    ownerId: r.owner_id as string,
    ownerType: r.owner_type as OwnerType,
    name: r.name as string,
    description: (r.description as string | null) ?? null,
    configuration: (r.configuration as Json | null) ?? null,
    accessControl: (r.access_control as Json | null) ?? null,
    isActive: r.is_active as boolean,
    createdAt: iso(r.created_at as Date)!,
    updatedAt: iso(r.updated_at as Date)!,
    accessGrants: grants,
  };
}

const isOwner = (p: Principal, r: { owner_id: unknown; owner_type: unknown }) => {
  const party = partyOf(p);
  return party !== null && party.id === r.owner_id && party.type === r.owner_type;
};

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

/**
 * Shared resources and their access grants (plain tables). A resource belongs to the vendor
 * or partner that created it; the owner, or a grantee holding `admin`, may grant, never above
 * its own level; a deactivated resource's grants stop working; `expiresAt` is honoured to the
 * second by every check. Callers that are not a party answer not-found.
 */
export class ResourceService {
  readonly #db: Db;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {
    this.#db = queryBuilder(pool);
  }

  #now(): Date {
    return new Date(this.clock.now());
  }

  /**
   * The caller's standing on a row: null when it may not see the resource at all. To read a
   * resource a vendor or partner must own it, or hold a live grant on it now: active, unexpired,
   * on an active resource (`read`). The access-decision route (`check`) and a grantee giving up
   * its own grant also let a party that holds an active grant see its own standing, expired or
   * on a deactivated resource, so that it can be told why it has no access.
   */
  async #standing(
    db: Queryable,
    p: Principal,
    row: Record<string, unknown>,
    purpose: 'read' | 'check' = 'read',
  ): Promise<{ level: AccessLevel | null; platform: boolean; owner: boolean } | null> {
    if (isPlatform(p)) return { level: 'admin', platform: true, owner: false };
    if (isOwner(p, row as never)) return { level: 'admin', platform: false, owner: true };
    const party = partyOf(p);
    if (!party) return null;
    const { rows } = await db.query<{ access_level: AccessLevel; live: boolean }>(
      `SELECT access_level, (expires_at IS NULL OR expires_at > $4) AS live FROM resource_access_grants
       WHERE resource_id = $1 AND granted_to_id = $2 AND granted_to_type = $3 AND is_active`,
      [row.id, party.id, party.type, this.#now()],
    );
    const live = rows.filter((r) => r.live).map((r) => r.access_level);
    const best = row.is_active ? (live.sort((a, b) => LEVEL[b] - LEVEL[a])[0] ?? null) : null;
    if (purpose === 'read' && best === null) return null;
    if (rows.length === 0) return null;
    return { level: best, platform: false, owner: false };
  }

  async #load(db: Queryable, p: Principal, id: string, lock = false, purpose: 'read' | 'check' = 'read') {
    const { rows } = await db.query(`SELECT * FROM shared_resources WHERE id = $1 ${lock ? 'FOR UPDATE' : ''}`, [id]);
    const row = rows[0];
    const standing = row ? await this.#standing(db, p, row, purpose) : null;
    if (!row || !standing) throw notFound('resource', id);
    return { row, standing };
  }

  async #grantsFor(db: Queryable, p: Principal, resourceId: string, all: boolean): Promise<ResourceAccessGrant[]> {
    const party = partyOf(p);
    const { rows } = all
      ? await db.query('SELECT * FROM resource_access_grants WHERE resource_id = $1 ORDER BY created_at, id', [resourceId])
      : await db.query('SELECT * FROM resource_access_grants WHERE resource_id = $1 AND granted_to_id = $2 AND granted_to_type = $3 ORDER BY created_at, id', [
          resourceId,
          party?.id,
          party?.type,
        ]);
    return rows.map(toGrant);
  }

  /** Creates a resource owned by the caller's tenant (operators name the owner): 201. */
  create(cx: CommandContext, input: CreateResource): Promise<Answer<SharedResource>> {
    return keyedTransaction(this.pool, cx, 201, (client) => this.#create(client, cx, input));
  }

  async #create(client: pg.PoolClient, { principal: p, requestId }: CommandContext, input: CreateResource): Promise<SharedResource> {
    const party = partyOf(p);
    let owner: { id: string; type: OwnerType };
    if (isPlatform(p)) {
      if (!input.ownerId || !input.ownerType) {
        throw new DomainError(DomainCode.ValidationFailed, 'an operator or service names the owner: ownerId and ownerType are required', {
          issues: [{ path: ['ownerId'], message: 'required for operator and service tokens' }],
        });
      }
      owner = { id: input.ownerId, type: input.ownerType };
    } else if (party) {
      if (input.ownerId !== undefined || input.ownerType !== undefined) {
        throw new DomainError(DomainCode.ValidationFailed, 'ownerId and ownerType come from the token for vendors and partners', {
          issues: [{ path: ['ownerId'], message: 'not allowed: the owner is the caller' }],
        });
      }
      owner = party;
    } else {
      throw new DomainError(DomainCode.Forbidden, 'this token has no tenant to own a resource');
    }
    const now = this.#now();
    const { rows } = await client.query(
      `INSERT INTO shared_resources (id, resource_id, resource_type, owner_id, owner_type, name, description, configuration, access_control, is_active, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10, $10) RETURNING *`,
      [randomUUID(), input.resourceId, input.resourceType, owner.id, owner.type, input.name, input.description ?? null, json(input.configuration), json(input.accessControl), now],
    );
    const res = toResource(rows[0], []);
    await recordAudit(client, { principal: p, action: 'resource.create', objectType: 'resource', objectId: res.id, before: null, after: res, at: now.toISOString(), requestId });
    return res;
  }

  async get(p: Principal, id: string): Promise<SharedResource> {
    const { row, standing } = await this.#load(this.pool, p, id);
    const all = standing.platform || standing.owner || standing.level === 'admin';
    return toResource(row, await this.#grantsFor(this.pool, p, id, all));
  }

  async list(
    p: Principal,
    f: { resourceType?: ResourceType; ownerId?: string; ownerType?: OwnerType; isActive?: boolean; limit: number; cursor?: string },
  ): Promise<{ data: SharedResource[]; nextCursor: string | null }> {
    let q = this.#db.selectFrom('shared_resources as r').selectAll('r');
    if (f.resourceType) q = q.where('r.resource_type', '=', f.resourceType);
    if (f.ownerId) q = q.where('r.owner_id', '=', f.ownerId);
    if (f.ownerType) q = q.where('r.owner_type', '=', f.ownerType);
    if (f.isActive !== undefined) q = q.where('r.is_active', '=', f.isActive);
    const party = partyOf(p);
    const now = this.#now();
    if (!isPlatform(p)) {
      if (!party) return { data: [], nextCursor: null };
      q = q.where((eb) =>
        eb.or([
          eb.and([eb('r.owner_id', '=', party.id), eb('r.owner_type', '=', party.type)]),
          eb.exists(
            eb
              .selectFrom('resource_access_grants as g')
              .select(sql.lit(1).as('one'))
              .whereRef('g.resource_id', '=', 'r.id')
              .where('g.granted_to_id', '=', party.id)
              .where('g.granted_to_type', '=', party.type)
              // the bare column, as the partial index on active grants is written
              .where(sql<boolean>`g.is_active`)
              // a live grant now: unexpired, on an active resource
              .where((w) => w.or([w('g.expires_at', 'is', null), w('g.expires_at', '>', now)]))
              .where(sql<boolean>`r.is_active`),
          ),
        ]),
      );
    }
    const cur = decodeCursor(f.cursor);
    if (f.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    if (cur) q = q.where(sql<boolean>`(r.created_at, r.id) < (${cur.at}::timestamptz, ${cur.id})`);
    const rows = await q.orderBy('r.created_at', 'desc').orderBy('r.id', 'desc').limit(f.limit + 1).execute();
    const page = rows.slice(0, f.limit);
    const data: SharedResource[] = [];
    for (const row of page) {
      const all = isPlatform(p) || isOwner(p, row);
      data.push(toResource(row, all ? await this.#grantsFor(this.pool, p, row.id, true) : await this.#grantsFor(this.pool, p, row.id, false)));
    }
    const last = page[page.length - 1];
    return { data, nextCursor: rows.length > f.limit && last ? encodeCursor(last.created_at, last.id) : null };
  }

  /** Deactivates a resource (its grants stop working): 200. */
  deactivate(cx: CommandContext, id: string): Promise<Answer<SharedResource>> {
    return keyedTransaction(this.pool, cx, 200, (client) => this.#deactivate(client, cx, id));
  }

  async #deactivate(client: pg.PoolClient, { principal: p, requestId }: CommandContext, id: string): Promise<SharedResource> {
    const { row, standing } = await this.#load(client, p, id, true);
    if (!standing.platform && !standing.owner && standing.level !== 'admin') {
      throw new DomainError(DomainCode.Forbidden, 'only the owner, an admin grantee or an operator may deactivate a resource');
    }
    if (!row.is_active) throw new DomainError(DomainCode.ResourceInactive, `resource ${id} is already inactive`, { isActive: false });
    const now = this.#now();
    const before = toResource(row, []);
    const { rows } = await client.query('UPDATE shared_resources SET is_active = false, updated_at = $2 WHERE id = $1 RETURNING *', [id, now]);
    const after = toResource(rows[0], await this.#grantsFor(client, p, id, true));
    await recordAudit(client, { principal: p, action: 'resource.deactivate', objectType: 'resource', objectId: id, before, after, at: now.toISOString(), requestId });
    return after;
  }

  /** Grants access to a resource (the owner or an admin grantee, never above its own level): 201. */
  grant(cx: CommandContext, resourceId: string, input: CreateGrant): Promise<Answer<ResourceAccessGrant>> {
    return keyedTransaction(this.pool, cx, 201, (client) => this.#grant(client, cx, resourceId, input));
  }

  async #grant(client: pg.PoolClient, { principal: p, requestId }: CommandContext, resourceId: string, input: CreateGrant): Promise<ResourceAccessGrant> {
    const { row, standing } = await this.#load(client, p, resourceId, true);
    if (standing.level !== 'admin') {
      throw new DomainError(DomainCode.Forbidden, 'only the owner or a grantee with admin access may grant access to this resource', {
        yourLevel: standing.level,
      });
    }
    if (LEVEL[input.accessLevel] > LEVEL[standing.level]) {
      throw new DomainError(DomainCode.AccessLevelExceeded, `a grant may not exceed the granter's level (${standing.level})`);
    }
    if (!row.is_active) throw new DomainError(DomainCode.ResourceInactive, `resource ${resourceId} is inactive: its grants do not work`, { isActive: false });
    if (input.grantedToId === row.owner_id && input.grantedToType === row.owner_type) {
      throw new DomainError(DomainCode.ValidationFailed, 'the owner already has full access', { issues: [{ path: ['grantedToId'], message: 'is the owner' }] });
    }
    const now = this.#now();
    const { rows } = await client.query(
      `INSERT INTO resource_access_grants (id, resource_id, granted_to_id, granted_to_type, access_level, granted_by, granted_at, expires_at, is_active, conditions, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $7, $7) RETURNING *`,
      [randomUUID(), resourceId, input.grantedToId, input.grantedToType, input.accessLevel, p.sub, now, input.expiresAt ?? null, json(input.conditions)],
    );
    const g = toGrant(rows[0]);
    await recordAudit(client, { principal: p, action: 'grant.create', objectType: 'grant', objectId: g.id, before: null, after: g, at: now.toISOString(), requestId });
    return g;
  }

  /** Revokes a grant (owner, admin grantee, operator, or the grantee itself), in one transaction. */
  revoke(cx: CommandContext, grantId: string): Promise<ResourceAccessGrant> {
    return transaction(this.pool, (client) => this.#revoke(client, cx, grantId));
  }

  async #revoke(client: pg.PoolClient, { principal: p, requestId }: CommandContext, grantId: string): Promise<ResourceAccessGrant> {
    const { rows } = await client.query('SELECT * FROM resource_access_grants WHERE id = $1 FOR UPDATE', [grantId]);
    const g = rows[0];
    if (!g) throw notFound('grant', grantId);
    const res = await client.query('SELECT * FROM shared_resources WHERE id = $1', [g.resource_id]);
    const standing = await this.#standing(client, p, res.rows[0], 'check');
    const party = partyOf(p);
    const isGrantee = party !== null && party.id === g.granted_to_id && party.type === g.granted_to_type;
    // another grantee's grant is not a lesser grantee's business: it does not exist for it
    if (!standing || !(standing.platform || standing.owner || standing.level === 'admin' || isGrantee)) throw notFound('grant', grantId);
    if (!g.is_active) throw new DomainError(DomainCode.GrantInactive, `grant ${grantId} is already revoked`, { isActive: false });
    const now = this.#now();
    const { rows: upd } = await client.query(
      'UPDATE resource_access_grants SET is_active = false, revoked_at = $2, revoked_by = $3, updated_at = $2 WHERE id = $1 RETURNING *',
      [grantId, now, p.sub],
    );
    const after = toGrant(upd[0]);
    await recordAudit(client, { principal: p, action: 'grant.revoke', objectType: 'grant', objectId: grantId, before: toGrant(g), after, at: now.toISOString(), requestId });
    return after;
  }

  /**
   * May `party` do `level` on the resource now? The owner may do anything while the resource
   * is active; anyone else needs an active, unexpired grant at that level or above. A vendor or
   * partner may ask about itself, or about anyone when it holds admin on the resource.
   */
  async check(p: Principal, resourceId: string, q: { partyId?: string; partyType?: OwnerType; level: AccessLevel }): Promise<AccessDecision> {
    const { row, standing } = await this.#load(this.pool, p, resourceId, false, 'check');
    const self = partyOf(p);
    const partyId = q.partyId ?? self?.id;
    const partyType = q.partyType ?? self?.type;
    if (!partyId || !partyType) {
      throw new DomainError(DomainCode.ValidationFailed, 'partyId and partyType are required for operator and service tokens', {
        issues: [{ path: ['partyId'], message: 'required' }],
      });
    }
    const asksForSelf = self !== null && self.id === partyId && self.type === partyType;
    if (!asksForSelf && standing.level !== 'admin') {
      throw new DomainError(DomainCode.Forbidden, 'only the owner, an admin grantee or an operator may check access for another party');
    }
    const now = this.#now();
    const base = { resourceId, partyId, partyType, level: q.level, checkedAt: now.toISOString() };
    if (row.owner_id === partyId && row.owner_type === partyType) {
      return row.is_active
        ? { ...base, allowed: true, effectiveLevel: 'admin', reason: 'owner', grantId: null, expiresAt: null }
        : { ...base, allowed: false, effectiveLevel: null, reason: 'resource is inactive', grantId: null, expiresAt: null };
    }
    if (!row.is_active) return { ...base, allowed: false, effectiveLevel: null, reason: 'resource is inactive', grantId: null, expiresAt: null };
    const { rows } = await this.pool.query(
      `SELECT * FROM resource_access_grants WHERE resource_id = $1 AND granted_to_id = $2 AND granted_to_type = $3 AND is_active
       AND (expires_at IS NULL OR expires_at > $4)`,
      [resourceId, partyId, partyType, now],
    );
    const grants = rows.map(toGrant).sort((a, b) => LEVEL[b.accessLevel] - LEVEL[a.accessLevel]);
    const best = grants[0];
    if (!best) return { ...base, allowed: false, effectiveLevel: null, reason: 'no active, unexpired grant', grantId: null, expiresAt: null };
    const allowed = LEVEL[best.accessLevel] >= LEVEL[q.level];
    return {
      ...base,
      allowed,
      effectiveLevel: best.accessLevel,
      reason: allowed ? `granted ${best.accessLevel}` : `granted only ${best.accessLevel}`,
      grantId: best.id,
      expiresAt: best.expiresAt,
    };
  }
}
