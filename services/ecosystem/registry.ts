import type pg from 'pg';
import { ecosystemId, type CheckOutput, type CheckSettings, type ecosystemType } from '../../machines/ecosystem/index.js';
import { isConnectorError } from '../../connectors/kit/errors.js';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { Clock } from '../../runtime/clock.js';
import type { Config } from '../../runtime/config.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { recordAudit } from '../common/audit.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { transaction } from '../common/sql.js';
import { assertPublicTarget, parseBaseUrl } from '../integrations/connections.js';
import { isVaultError, VaultCode } from '../integrations/errors.js';
import type { CredentialVault } from '../integrations/vault.js';
import { clientOf, refusesCredentials, VAULT_SERVICE, type IntegrationCalls, type Reachable } from './calls.js';
import type { Catalog, RegistryAuthPattern, Template, TierName } from './catalog.js';
import { splitCredentials, type SplitCredentials } from './credentials.js';
import type { HealthMonitor } from './monitor.js';
import { itemsSql, viewOf, type IntegrationView, type ItemRow } from './views.js';

/** `POST /api/v1/ecosystem/integrations`. */
export interface RegisterInput {
  name: string;
  platform: string;
  template: string;
  tier: TierName;
  features?: string[];
  authPattern: RegistryAuthPattern;
  credentials: Record<string, unknown>;
  config: Record<string, unknown> & { baseUrl?: string; healthCheck?: { path: string; expectStatus: number } };
  /** The vendor or partner that owns it (its tenant); operators must name it, a vendor or partner registers its own. */
  ownerId?: string;
}

/** `PATCH /api/v1/ecosystem/integrations/{name}`: any of these; credentials are replaced (rotation) when given. */
export interface UpdateInput {
  platform?: string;
  tier?: TierName;
  features?: string[];
  config?: RegisterInput['config'];
  authPattern?: RegistryAuthPattern;
  credentials?: Record<string, unknown>;
}

export interface ListFilter {
  tier?: string;
  platform?: string;
  status?: 'active' | 'inactive';
  feature?: string;
  source?: 'registry' | 'marketplace';
  ownerId?: string;
  limit: number;
  cursor?: string;
}

export const AUDIT_OBJECT = 'ecosystem.integration';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** An owner (tenant) id: it prefixes the actor id `<owner>:<name>`, so no colon, and what an actor id allows. */
const OWNER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,98}$/;
const bad = (message: string, field: string, extra: Record<string, unknown> = {}) => new DomainError(DomainCode.ValidationFailed, message, { field, ...extra });
const notFound = (name: string) => new DomainError(DomainCode.NotFound, `integration ${name} not found`, { name });

/** Who sees what: operators and services everything; a vendor or partner its own tenant's. */
export function tenantScope(p: Principal): string | null {
  if (isPlatform(p)) return null;
  if ((p.role === 'vendor' || p.role === 'partner') && p.tenantId) return p.tenantId;
  throw new DomainError(DomainCode.Forbidden, 'this role may not use the partner registry');
}

/**
 * The partner registry: integrations registered by name, their credentials in the vault
 * (write-only), an audit record for every change, and a registry actor per integration (its
 * health status); the health monitor (monitor.ts) runs the checks at its tier's interval and
 * hears of every change made here.
 */
export class RegistryService {
  readonly #tier: string;
  #monitor: Pick<HealthMonitor, 'refresh' | 'checkNow'> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly actors: ActorHandle<typeof ecosystemType>,
    private readonly vault: CredentialVault,
    private readonly calls: IntegrationCalls,
    private readonly catalog: Catalog,
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.#tier = catalog.tiers.marketplaceTier;
  }

  /** The health monitor told of every change (EcosystemService sets it). */
  useMonitor(m: Pick<HealthMonitor, 'refresh' | 'checkNow'>): void {
    this.#monitor = m;
  }

  /** Tells the monitor of a change to an integration (a failure is logged: its periodic refresh catches up). */
  async #watch(id: string): Promise<void> {
    await this.#monitor?.refresh([id]).catch((err: unknown) => this.log.warn({ err, integrationId: id }, 'telling the health monitor of a change failed'));
  }

  /** Checks now, in the background (the outcome shows in the health report). */
  #checkSoon(id: string, tenant: string, at: string): Promise<unknown> {
    if (!this.#monitor) return this.actors.send(id, { type: 'ecosystem.check', at }, { tenant });
    void this.#monitor.checkNow(id).catch((err: unknown) => this.log.warn({ err, integrationId: id }, 'checking now failed'));
    return Promise.resolve();
  }

  /** The check settings of a tier (from the tier table). */
  settingsOf(tier: string): CheckSettings {
    const t = this.catalog.tier(tier);
    return { tier, intervalMs: t.healthCheckIntervalMs, degradedLatencyMs: t.degradedLatencyMs, unhealthyAfter: t.unhealthyAfter };
  }

  async register(principal: Principal, body: RegisterInput, requestId?: string): Promise<IntegrationView> {
    const owner = ownerFor(principal, body.ownerId);
    if (!NAME.test(body.name)) throw bad('name must be 1-100 letters, digits, dots, dashes or underscores', 'name');
    const template = this.#template(body.template);
    this.#checkTier(body.tier);
    const authPattern = this.#checkPattern(template, body.authPattern);
    if (template.platforms.length > 0 && !template.platforms.includes(body.platform)) {
      throw bad(`template ${template.id} is for ${template.platforms.join(', ')}`, 'platform', { allowed: template.platforms });
    }
    const features = this.#checkFeatures(template, body.features ?? template.defaultFeatures);
    const config = await this.#checkConfig(template, body.config);
    const creds = await this.#checkCredentials(authPattern, body.credentials);
    guardConfig(config, creds.secret);
    const id = ecosystemId(owner, body.name);
    if ((await this.pool.query('SELECT 1 FROM ecosystem_integrations WHERE id = $1', [id])).rowCount) {
      throw new ConcordError(ErrorCode.Conflict, `integration ${body.name} is already registered`, { name: body.name });
    }
    const firstCheck = await this.#firstCheck({ id, tenantId: owner, name: body.name, platform: body.platform, authPattern, auth: creds.auth, config }, creds);
    const ref = { tenantId: owner, service: VAULT_SERVICE, connectionId: body.name };
    let info;
    try {
      info = await this.vault.put(ref, creds.secret, { expectedVersion: 0, scopes: creds.scopes, expiresAt: creds.certificateExpiresAt, metadata: { integrationId: id, authPattern } });
    } catch (err) {
      if (isVaultError(err, VaultCode.VersionConflict)) throw new ConcordError(ErrorCode.Conflict, `integration ${body.name} is already registered`, { name: body.name });
      throw err;
    }
    const now = new Date(this.clock.now());
    let view: IntegrationView;
    try {
      view = await transaction(this.pool, async (db) => {
        await db.query(
          `INSERT INTO ecosystem_integrations (id, tenant_id, name, platform, template, tier, features, auth_pattern, auth, scopes, config, credentials_set_at, credentials_version, certificate_expires_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $12, $12)`,
          [id, owner, body.name, body.platform, template.id, body.tier, features, authPattern, creds.auth, creds.scopes, config, now, info.version, creds.certificateExpiresAt],
        );
        const v = await this.#read(db, id);
        await recordAudit(db, { principal, action: 'integration.registered', objectType: AUDIT_OBJECT, objectId: id, before: null, after: auditable(v), at: now.toISOString(), requestId: requestId ?? null });
        return v;
      });
    } catch (err) {
      await this.vault.delete(ref).catch(() => undefined);
      if ((err as { code?: string }).code === '23505') throw new ConcordError(ErrorCode.Conflict, `integration ${body.name} is already registered`, { name: body.name });
      throw err;
    }
    await this.actors.send(id, { type: 'ecosystem.register', tenantId: owner, name: body.name, settings: this.settingsOf(body.tier), events: `${this.config.nats.prefix}.events`, firstCheck, at: now.toISOString() }, { tenant: owner });
    await this.#watch(id);
    this.log.info({ integrationId: id, tier: body.tier, authPattern, by: principal.sub }, 'integration registered');
    return (await this.get(principal, body.name, owner)) ?? view;
  }

  async list(principal: Principal, f: ListFilter): Promise<{ data: IntegrationView[]; nextCursor: string | null }> {
    const scope = tenantScope(principal);
    let after: { name: string; id: string } | undefined;
    if (f.cursor) {
      const c = parseNameCursor(f.cursor);
      if (!c) throw bad('invalid cursor', 'cursor');
      after = c;
    }
    const q = itemsSql(this.#tier, { tenantId: scope ?? f.ownerId, tier: f.tier, platform: f.platform, status: f.status, feature: f.feature, source: f.source, after, limit: f.limit + 1 });
    const { rows } = await this.pool.query<ItemRow>(q);
    const page = rows.slice(0, f.limit);
    const last = page[page.length - 1];
    return { data: page.map(viewOf), nextCursor: rows.length > f.limit && last ? nameCursor(last.name, last.id) : null };
  }

  /** One integration the caller may see, by name (operators name the owner when two owners share a name); null when none. */
  async get(principal: Principal, name: string, ownerId?: string): Promise<IntegrationView | null> {
    const scope = tenantScope(principal);
    const { rows } = await this.pool.query<ItemRow>(itemsSql(this.#tier, { name, tenantId: scope ?? ownerId, limit: 3 }));
    const own = rows.filter((r) => r.source === 'registry');
    const pick = own.length > 0 ? own : rows;
    if (pick.length > 1 && new Set(pick.map((r) => r.tenant_id)).size > 1) {
      throw bad(`integration ${name} is registered by several owners: name one with ?ownerId=`, 'ownerId', { owners: [...new Set(pick.map((r) => r.tenant_id))] });
    }
    return pick[0] ? viewOf(pick[0]) : null;
  }

  /** A registered (not marketplace) integration the caller may manage; 404 otherwise. */
  async #own(principal: Principal, name: string, ownerId?: string): Promise<IntegrationView> {
    const v = await this.get(principal, name, ownerId);
    if (!v) throw notFound(name);
    if (v.source !== 'registry') throw bad(`${name} is a marketplace connection: manage it at /api/integrations/${v.platform}`, 'name');
    return v;
  }

  /** The view, or 404: for routes that answer one integration. */
  async require(principal: Principal, name: string, ownerId?: string): Promise<IntegrationView> {
    const v = await this.get(principal, name, ownerId);
    if (!v) throw notFound(name);
    return v;
  }

  async update(principal: Principal, name: string, body: UpdateInput, ownerId?: string, requestId?: string): Promise<IntegrationView> {
    const current = await this.#own(principal, name, ownerId);
    const template = this.#template(current.template);
    if (body.tier !== undefined) this.#checkTier(body.tier);
    const authPattern = body.authPattern === undefined ? (current.authPattern as RegistryAuthPattern) : this.#checkPattern(template, body.authPattern);
    if (authPattern !== current.authPattern && !body.credentials) throw bad('a new authPattern needs its credentials', 'credentials');
    const platform = body.platform ?? current.platform;
    if (body.platform !== undefined && template.platforms.length > 0 && !template.platforms.includes(platform)) throw bad(`template ${template.id} is for ${template.platforms.join(', ')}`, 'platform');
    const features = body.features === undefined ? current.features : this.#checkFeatures(template, body.features);
    const config = body.config === undefined ? (current.config as Reachable['config']) : await this.#checkConfig(template, body.config);
    const tier = body.tier ?? current.tier;
    let creds: SplitCredentials | null = null;
    let credentialsVersion = current.credentials!.version;
    const ref = { tenantId: current.ownerId, service: VAULT_SERVICE, connectionId: current.name };
    if (body.credentials) {
      creds = await this.#checkCredentials(authPattern, body.credentials);
      guardConfig(config, creds.secret);
      // new credentials are checked against the service before they replace the old ones
      await this.#firstCheck({ id: current.id, tenantId: current.ownerId, name: current.name, platform, authPattern, auth: creds.auth, config }, creds);
      try {
        // revoked credentials left no vault row: the new ones are its first version again
        const expectedVersion = current.credentials!.revokedAt ? 0 : credentialsVersion;
        const info = await this.vault.put(ref, creds.secret, { expectedVersion, scopes: creds.scopes, expiresAt: creds.certificateExpiresAt, metadata: { integrationId: current.id, authPattern } });
        credentialsVersion = info.version;
      } catch (err) {
        if (isVaultError(err, VaultCode.VersionConflict)) throw new ConcordError(ErrorCode.Conflict, `the credentials of ${name} changed meanwhile: read it again and retry`, { name });
        throw err;
      }
      this.calls.forget(current.id);
    }
    const now = new Date(this.clock.now());
    const next = await transaction(this.pool, async (db) => {
      const r = await db.query(
        `UPDATE ecosystem_integrations SET platform = $3, tier = $4, features = $5, config = $6, auth_pattern = $7,
                auth = coalesce($8, auth), scopes = coalesce($9, scopes), credentials_version = $10,
                credentials_set_at = CASE WHEN $11 THEN $12 ELSE credentials_set_at END,
                certificate_expires_at = CASE WHEN $11 THEN $13 ELSE certificate_expires_at END,
                credentials_revoked_at = CASE WHEN $11 THEN NULL ELSE credentials_revoked_at END,
                version = version + 1, updated_at = $12
          WHERE id = $1 AND version = $2`,
        [current.id, current.version, platform, tier, features, config, authPattern, creds?.auth ?? null, creds?.scopes ?? null, credentialsVersion, creds !== null, now, creds?.certificateExpiresAt ?? null],
      );
      if (r.rowCount !== 1) throw new ConcordError(ErrorCode.Conflict, `integration ${name} changed meanwhile: read it again and retry`, { name });
      const v = await this.#read(db, current.id);
      const { before, after, changed } = diff(auditable(current), auditable(v));
      await recordAudit(db, {
        principal,
        action: creds && changed.length === 1 ? 'integration.credentials_rotated' : 'integration.updated',
        objectType: AUDIT_OBJECT,
        objectId: current.id,
        before,
        after: { ...after, changed },
        at: now.toISOString(),
        requestId: requestId ?? null,
      });
      return v;
    });
    if (tier !== current.tier) {
      await this.actors.send(current.id, { type: 'ecosystem.configure', settings: this.settingsOf(tier), by: principal.sub, at: now.toISOString() }, { tenant: current.ownerId });
      await this.#watch(current.id);
    }
    if ((body.config !== undefined || creds) && next.status === 'active') {
      this.calls.forget(current.id);
      await this.#checkSoon(current.id, current.ownerId, now.toISOString());
    }
    return (await this.get(principal, name, current.ownerId)) ?? next;
  }

  async setActive(principal: Principal, name: string, active: boolean, ownerId?: string, requestId?: string): Promise<IntegrationView> {
    const current = await this.#own(principal, name, ownerId);
    const status = active ? 'active' : 'inactive';
    if (current.status === status) return current;
    if (active && current.credentials?.revokedAt) {
      throw new ConcordError(ErrorCode.Conflict, `the credentials of ${name} were revoked: PATCH new credentials, then activate`, { name });
    }
    const now = new Date(this.clock.now());
    await transaction(this.pool, async (db) => {
      await db.query('UPDATE ecosystem_integrations SET status = $2, version = version + 1, updated_at = $3 WHERE id = $1', [current.id, status, now]);
      await recordAudit(db, { principal, action: active ? 'integration.activated' : 'integration.deactivated', objectType: AUDIT_OBJECT, objectId: current.id, before: { status: current.status }, after: { status }, at: now.toISOString(), requestId: requestId ?? null });
    });
    await this.actors.send(current.id, { type: active ? 'ecosystem.activate' : 'ecosystem.deactivate', by: principal.sub, at: now.toISOString() }, { tenant: current.ownerId });
    await this.#watch(current.id);
    return (await this.get(principal, name, current.ownerId))!;
  }

  /**
   * Revokes the credentials: forgotten from the vault, the integration inactive (its checks
   * stop) until new credentials arrive by PATCH and it is activated again.
   */
  async revokeCredentials(principal: Principal, name: string, ownerId?: string, requestId?: string): Promise<IntegrationView> {
    const current = await this.#own(principal, name, ownerId);
    if (current.credentials?.revokedAt) return current;
    const now = new Date(this.clock.now());
    await transaction(this.pool, async (db) => {
      await db.query(`UPDATE ecosystem_integrations SET credentials_revoked_at = $2, status = 'inactive', version = version + 1, updated_at = $2 WHERE id = $1`, [current.id, now]);
      await recordAudit(db, {
        principal,
        action: 'integration.credentials_revoked',
        objectType: AUDIT_OBJECT,
        objectId: current.id,
        before: { status: current.status, credentials: current.credentials },
        after: { status: 'inactive', credentials: { ...current.credentials, revokedAt: now.toISOString() } },
        at: now.toISOString(),
        requestId: requestId ?? null,
      });
    });
    await this.vault.delete({ tenantId: current.ownerId, service: VAULT_SERVICE, connectionId: current.name });
    this.calls.forget(current.id);
    if (current.status === 'active') await this.actors.send(current.id, { type: 'ecosystem.deactivate', by: principal.sub, at: now.toISOString() }, { tenant: current.ownerId });
    await this.#watch(current.id);
    this.log.info({ integrationId: current.id, by: principal.sub }, 'integration credentials revoked');
    return (await this.get(principal, name, current.ownerId))!;
  }

  /** Deletes the registration and revokes (forgets) its credentials; its usage and health history stay. */
  async delete(principal: Principal, name: string, ownerId?: string, requestId?: string): Promise<IntegrationView> {
    const current = await this.#own(principal, name, ownerId);
    const now = new Date(this.clock.now());
    await transaction(this.pool, async (db) => {
      const r = await db.query('DELETE FROM ecosystem_integrations WHERE id = $1', [current.id]);
      if (r.rowCount !== 1) throw notFound(name);
      await recordAudit(db, { principal, action: 'integration.deleted', objectType: AUDIT_OBJECT, objectId: current.id, before: auditable(current), after: { credentials: 'revoked' }, at: now.toISOString(), requestId: requestId ?? null });
    });
    await this.vault.delete({ tenantId: current.ownerId, service: VAULT_SERVICE, connectionId: current.name });
    this.calls.forget(current.id);
    await this.actors.send(current.id, { type: 'ecosystem.delete', by: principal.sub, at: now.toISOString() }, { tenant: current.ownerId });
    await this.#watch(current.id);
    this.log.info({ integrationId: current.id, by: principal.sub }, 'integration deleted');
    return { ...current, status: 'inactive', credentials: null };
  }

  /**
   * Brings the registry actors in line with the rows after a crash between a row's commit and
   * its actor's event: an active row without a running actor is registered (its checks start),
   * an inactive one's actor deactivated, an actor without a row deleted. Answers how many it fixed.
   */
  async reconcile(): Promise<number> {
    const at = new Date(this.clock.now()).toISOString();
    const { rows } = await this.pool.query<{ id: string; tenant_id: string; name: string; tier: string; status: string; actor: string | null }>(
      `SELECT i.id, i.tenant_id, i.name, i.tier, i.status, a.status AS actor
         FROM ecosystem_integrations i LEFT JOIN actors a ON a.type = 'ecosystem' AND a.id = i.id
        WHERE (i.status = 'active' AND (a.status IS NULL OR a.status IN ('UNREGISTERED', 'DELETED')))
           OR (i.status = 'inactive' AND a.status = 'ACTIVE')
       UNION ALL
       SELECT a.id, a.tenant, a.attrs->>'name', a.attrs->>'tier', 'deleted', a.status FROM actors a
        WHERE a.type = 'ecosystem' AND a.status IN ('ACTIVE', 'INACTIVE') AND NOT EXISTS (SELECT 1 FROM ecosystem_integrations i WHERE i.id = a.id)`,
    );
    for (const r of rows) {
      if (r.status === 'active') {
        await this.actors.send(r.id, { type: 'ecosystem.register', tenantId: r.tenant_id, name: r.name, settings: this.settingsOf(r.tier), events: `${this.config.nats.prefix}.events`, at }, { tenant: r.tenant_id });
      } else if (r.status === 'inactive') {
        await this.actors.send(r.id, { type: 'ecosystem.deactivate', by: 'system', at }, { tenant: r.tenant_id });
      } else {
        await this.actors.send(r.id, { type: 'ecosystem.delete', by: 'system', at }, { tenant: r.tenant_id });
      }
    }
    if (rows.length > 0) this.log.info({ fixed: rows.length }, 'registry actors reconciled with their rows');
    return rows.length;
  }

  /** Checks the integration now (the answer arrives asynchronously). */
  async checkNow(principal: Principal, name: string, ownerId?: string): Promise<void> {
    const v = await this.#own(principal, name, ownerId);
    await this.#checkSoon(v.id, v.ownerId, new Date(this.clock.now()).toISOString());
  }

  async #read(db: pg.PoolClient, id: string): Promise<IntegrationView> {
    const { rows } = await db.query<ItemRow>(itemsSql(this.#tier, { id, source: 'registry', limit: 1 }));
    return viewOf(rows[0]!);
  }

  #template(id: string): Template {
    const t = this.catalog.template(id);
    if (!t) throw bad(`unknown template ${id}`, 'template', { known: this.catalog.templates().map((x) => x.id) });
    return t;
  }

  #checkTier(tier: string): void {
    if (!this.catalog.tiers.tiers[tier as TierName]) throw bad(`unknown tier ${tier}`, 'tier');
  }

  #checkPattern(t: Template, p: RegistryAuthPattern): RegistryAuthPattern {
    if (!t.authPatterns.includes(p)) throw bad(`template ${t.id} allows ${t.authPatterns.join(', ')}`, 'authPattern', { allowed: t.authPatterns });
    return p;
  }

  #checkFeatures(t: Template, features: string[]): string[] {
    const unknown = t.features.length > 0 ? features.filter((f) => !t.features.includes(f)) : [];
    if (unknown.length > 0) throw bad(`template ${t.id} has no feature ${unknown.join(', ')}`, 'features', { allowed: t.features });
    return [...new Set(features)];
  }

  async #checkConfig(t: Template, config: RegisterInput['config']): Promise<Reachable['config'] & Record<string, unknown>> {
    const missing = t.requiredConfig.filter((k) => config[k] === undefined || config[k] === null || config[k] === '');
    if (missing.length > 0) throw bad(`template ${t.id} needs config ${missing.join(', ')}`, 'config', { missing });
    if (typeof config.baseUrl !== 'string') throw bad('config.baseUrl must be an absolute http(s) URL', 'config.baseUrl');
    const base = parseBaseUrl(config.baseUrl, 'config.baseUrl');
    await assertPublicTarget(base, this.config.events.allowPrivateTargets, 'config.baseUrl');
    return { ...config, baseUrl: base.href.replace(/\/+$/, ''), healthCheck: config.healthCheck ?? t.healthCheck };
  }

  async #checkCredentials(pattern: RegistryAuthPattern, c: Record<string, unknown>): Promise<SplitCredentials> {
    const s = splitCredentials(pattern, c);
    if (s.tokenUrl) await assertPublicTarget(parseBaseUrl(s.tokenUrl, 'credentials.tokenUrl'), this.config.events.allowPrivateTargets, 'credentials.tokenUrl');
    return s;
  }

  /**
   * The credentials' one check against the service before they are stored: refused (401/403, a
   * refused token request) is a 400 and stores nothing; a service that is down or answers
   * otherwise is registered, its status from this check.
   */
  async #firstCheck(r: Pick<Reachable, 'id' | 'tenantId' | 'name' | 'platform' | 'authPattern' | 'auth' | 'config'>, creds: SplitCredentials): Promise<CheckOutput> {
    const { client, credentials } = clientOf(r, creds.secret, () => this.clock.now());
    const refused = (reason: string) => new DomainError(DomainCode.ValidationFailed, 'the service refused the credentials', { field: 'credentials', reason });
    try {
      const out = await this.calls.checkWith(r, client, credentials, AbortSignal.timeout(this.config.connectorCallTimeoutMs));
      if (refusesCredentials(out.status)) throw refused(`the health check answered ${out.status}`);
      return out;
    } catch (err) {
      if (err instanceof DomainError) throw err;
      if (isConnectorError(err) && !err.retryable && err.status !== undefined && err.status < 500) throw refused(`the service answered ${err.code}`);
      this.log.warn({ integrationId: r.id, code: isConnectorError(err) ? err.code : 'UNKNOWN' }, 'first health check failed; registering it as not healthy');
      return { ok: false, status: 0, latencyMs: 0 };
    }
  }
}

function ownerFor(p: Principal, ownerId: string | undefined): string {
  let owner: string;
  if (isPlatform(p)) {
    if (!ownerId) throw bad('ownerId is required for operators: the vendor or partner that owns the integration', 'ownerId');
    owner = ownerId;
  } else {
    owner = tenantScope(p)!;
    if (ownerId !== undefined && ownerId !== owner) throw new DomainError(DomainCode.Forbidden, 'a vendor or partner registers only its own integrations');
  }
  if (!OWNER.test(owner)) throw bad('ownerId must be 1-99 letters, digits, dots, dashes, underscores or @ (no colon)', 'ownerId');
  return owner;
}

/** Config is stored and answered in clear: refuse one that repeats a credential value (a secret put in the wrong field). */
function guardConfig(config: Record<string, unknown>, secret: Readonly<Record<string, string>>): void {
  const clear = JSON.stringify(config);
  for (const [field, value] of Object.entries(secret)) {
    if (value.length >= 8 && clear.includes(value)) throw bad(`config repeats the credential ${field}: config is stored in clear, credentials go in credentials`, 'config');
  }
}

/** What an audit record keeps of an integration: the view without its health (not a change) and timestamps. */
function auditable(v: IntegrationView): Record<string, unknown> {
  const { health: _h, updatedAt: _u, createdAt: _c, ...rest } = v;
  return rest;
}

/** The fields that differ, before and after. */
function diff(a: Record<string, unknown>, b: Record<string, unknown>): { before: Record<string, unknown>; after: Record<string, unknown>; changed: string[] } {
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  const changed: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (k === 'version') continue;
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      before[k] = a[k];
      after[k] = b[k];
      changed.push(k);
    }
  }
  return { before, after, changed };
}

/** Keyset cursor over (name, id). */
function nameCursor(name: string, id: string): string {
  return Buffer.from(JSON.stringify(['n', name, id])).toString('base64url');
}

function parseNameCursor(cursor: string): { name: string; id: string } | null {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(v) || v[0] !== 'n' || typeof v[1] !== 'string' || typeof v[2] !== 'string') return null;
    return { name: v[1], id: v[2] };
  } catch {
    return null;
  }
}
