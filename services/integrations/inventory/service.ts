/**
 * Inventory sync, the application side: our stock (the tenant catalog, "EGDC" in the seed) and
 * its changes (HTTP and `svc.inventory.changed`), the fan-out of each change to the tenant's
 * connected channels, mappings, the conflict strategy and manual conflicts, sync runs, logs and
 * the status figures. The sync work itself is the `inventory-sync` actor's
 * (machines/integration/sync.ts), carried out by the engine (./engine.ts).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { connectionId, stateOf, type Provider } from '../../../machines/integration/index.js';
import { CONFLICT_STRATEGIES, type ConflictStrategy, type SyncDirection } from '../../../machines/integration/conflict.js';
import { DEFAULT_POLL_MS, syncType, type SyncContext, type SyncMode, type SyncRun } from '../../../machines/integration/sync.js';
import type { ActorHandle } from '../../../runtime/actor-handle.js';
import type { Clock } from '../../../runtime/clock.js';
import { ConcordError, ErrorCode } from '../../../runtime/errors.js';
import type { Logger } from '../../../runtime/logger.js';
import { DomainCode, DomainError, notFound } from '../../common/errors.js';
import { isPlatform, type Principal } from '../../common/principal.js';
import type { ConnectionService } from '../connections.js';
import type { ConnectionRef, OutboundCalls } from '../outbound/types.js';
import { jetstream } from '@nats-io/jetstream';
import type { InventoryUpdate } from '../../../machines/integration/sync.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { channelFor } from './channels.js';
import type { InventoryEngine } from './engine.js';
import type { PlannerStats } from './stats.js';

export const SYNC_PROVIDERS = ['shopify', 'mercadolibre'] as const satisfies readonly Provider[];
export type SyncProvider = (typeof SYNC_PROVIDERS)[number];

const SKU = /^[A-Za-z0-9][A-Za-z0-9._\-/]{0,99}$/;
const MAX_STOCK = 1_000_000_000;

export interface InventoryChannelView {
  service: string;
  account: string;
  externalIds: Record<string, unknown>;
  mappedBy: 'sync' | 'manual';
  lastKnownStock: number | null;
  lastKnownAt: string | null;
  syncedStock: number | null;
  lastSyncedAt: string | null;
  openConflict: string | null;
}

export interface InventoryView {
  tenantId: string;
  sku: string;
  stock: number;
  version: number;
  changedAt: string;
  source: string;
  channels: InventoryChannelView[];
}

export interface SyncProgress {
  syncId: string;
  service: string;
  account: string;
  mode: SyncMode;
  direction: SyncDirection;
  status: SyncRun['status'];
  total: number;
  synced: number;
  unchanged: number;
  failed: number;
  conflicts: number;
  unmapped: number;
  pages: number;
  startedAt: string;
  finishedAt: string | null;
  lastError: { code: string; message: string } | null;
}

export interface ConflictView {
  id: string;
  service: string;
  account: string;
  sku: string;
  ourStock: number;
  channelStock: number;
  ourChangedAt: string | null;
  channelChangedAt: string | null;
  status: 'open' | 'resolved';
  resolution: 'egdc' | 'marketplace' | 'custom' | null;
  resolvedStock: number | null;
  reason: string | null;
  resolvedBy: string | null;
  createdAt: string;
  resolvedAt: string | null;
}

export interface SyncStatus {
  conflictStrategy: ConflictStrategy;
  lastSync: SyncProgress | null;
  /** Items synced, unchanged or settled over those plus failed ones, last 24 hours (null: none). */
  syncSuccessRate: number | null;
  /** Webhooks of the last hour: received -> handed to the actor, and received -> applied to our stock (averages, ms). */
  webhookProcessing: { handedMs: number | null; appliedMs: number | null; count: number };
  openConflicts: number;
}

export interface InventoryServiceOptions {
  pool: pg.Pool;
  /** The incremental poll's interval (INVENTORY_POLL_MS). */
  pollMs?: number;
  syncs: ActorHandle<typeof syncType>;
  connections: ConnectionService;
  outbound: () => OutboundCalls;
  clock: Clock;
  log: Logger;
  eventsRoot: string;
  /** Where InventoryUpdated goes: JetStream when NATS is configured, the in-process bus otherwise. */
  runtime: Pick<Runtime, 'nats' | 'bus'>;
  /** Keeps the planner's statistics of the tables a webhook apply reads by key current (nudged on every apply). */
  stats?: PlannerStats;
}

/** A vendor acts for itself; an operator or a service names the tenant. */
export function tenantOf(principal: Principal, named: string | undefined | null): string {
  if (isPlatform(principal)) {
    if (!named) throw new DomainError(DomainCode.ValidationFailed, 'tenantId is required for operators and services', { field: 'tenantId' });
    return named;
  }
  if (principal.role !== 'vendor' || !principal.tenantId) throw new DomainError(DomainCode.Forbidden, 'only a vendor manages its own inventory');
  if (named && named !== principal.tenantId) throw notFound('tenant', named);
  return principal.tenantId;
}

function checkSku(sku: string): string {
  if (!SKU.test(sku)) throw new DomainError(DomainCode.ValidationFailed, 'sku must be 1-100 letters, digits, dots, dashes, underscores or slashes', { field: 'sku' });
  return sku;
}

function checkStock(stock: unknown): number {
  if (typeof stock !== 'number' || !Number.isSafeInteger(stock) || stock < 0 || stock > MAX_STOCK) {
    throw new DomainError(DomainCode.ValidationFailed, `stock must be an integer from 0 to ${MAX_STOCK}`, { field: 'stock' });
  }
  return stock;
}

function checkTime(at: unknown, field: string): string {
  if (typeof at !== 'string' || !Number.isFinite(Date.parse(at))) throw new DomainError(DomainCode.ValidationFailed, `${field} must be an ISO-8601 time`, { field });
  return new Date(at).toISOString();
}

/** Webhook topics that carry stock. */
export const STOCK_TOPICS = new Set(['inventory_levels/update', 'items']);
/**
 * Webhook applies running at once. Two: each apply is about ten statements, and more at once
 * crowd the accepts off the cores they share (bench/webhooks.ts with every level mapped: at 16,
 * accept p99 11-39 ms at 200/s and the accepts fell to 505-899/s at 1,000/s offered; at 2,
 * 8-12 ms, and 998/s answered at 1,000/s with the applies still keeping up).
 */
const APPLY_CONCURRENCY = 2;
/** Applies waiting at most; past it an accepted webhook is left to the sweep (memory stays bounded under a flood). */
const APPLY_QUEUE_MAX = 20_000;
/** How long an applied webhook's mark waits for others to share its statement. */
const APPLIED_FLUSH_MS = 100;
/** How often stock webhooks accepted but not applied (a crash, a failure) are looked for. */
const APPLY_SWEEP_MS = 10_000;

interface StockWebhook {
  tenant: string;
  service: string;
  connectionId: string;
  id: string;
  topic: string;
}

export class InventoryService {
  #engine: InventoryEngine | undefined;
  readonly #applyQueue: StockWebhook[] = [];
  readonly #applying = new Set<string>();
  /** Applied webhooks whose `applied_at` is not written yet. */
  readonly #applied: string[] = [];
  #appliedFlush: NodeJS.Timeout | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #idle: Array<() => void> = [];

  constructor(private readonly o: InventoryServiceOptions) {}

  /** INVENTORY_POLL_MS (default 5 minutes). */
  get #pollMs(): number {
    return this.o.pollMs ?? DEFAULT_POLL_MS;
  }

  /** The engine that applies webhooks (built beside this service: it fans out through it). */
  useEngine(engine: InventoryEngine): void {
    this.#engine = engine;
  }

  /**
   * A stock webhook (Shopify `inventory_levels/update`, MercadoLibre `items`) applied to our
   * side, its changes published as `InventoryUpdated`. Called by the webhook hand-off; throws to
   * leave the row for the sweep (the apply is idempotent per row, the message id per change).
   */
  async applyWebhook(w: { tenantId: string; provider: string; account: string; webhookId: string }): Promise<void> {
    if (!this.#engine || !(SYNC_PROVIDERS as readonly string[]).includes(w.provider)) return;
    this.o.stats?.nudge();
    const out = await this.#engine.applyWebhook({ ...w, provider: w.provider as SyncProvider });
    await this.publishUpdates({ tenantId: w.tenantId, provider: w.provider, account: w.account }, out.updates ?? []);
    this.#markApplied(w.webhookId);
  }

  /**
   * `applied_at` on the webhook's row, which takes it out of the sweep's index: after the publish,
   * marked in batches (one statement per APPLIED_FLUSH_MS). A crash loses at most the last batch's
   * marks; the sweep applies those again, which finds their log rows and publishes the same ids.
   */
  #markApplied(id: string): void {
    this.#applied.push(id);
    if (this.#appliedFlush) return;
    this.#appliedFlush = setTimeout(() => void this.#flushApplied(), APPLIED_FLUSH_MS);
    this.#appliedFlush.unref();
  }

  async #flushApplied(): Promise<void> {
    clearTimeout(this.#appliedFlush);
    this.#appliedFlush = undefined;
    const ids = this.#applied.splice(0);
    if (ids.length === 0) return;
    await this.o.pool
      .query({ name: 'concord_webhooks_applied', text: 'UPDATE integration_webhooks SET applied_at = now() WHERE id = ANY($1::bigint[]) AND applied_at IS NULL', values: [ids] })
      .catch((err: unknown) => this.o.log.warn({ err, webhooks: ids.length }, 'marking stock webhooks applied failed; the sweep applies them again'));
  }

  /**
   * A stock webhook was accepted: applied at once, up to APPLY_CONCURRENCY at a time, apart from
   * the connection actor's hand-off (one actor per connection would serialise them). What this
   * misses (a crash, a failure) the sweep finds: a stock webhook with no log row yet.
   */
  webhookAccepted(h: StockWebhook): void {
    if (!STOCK_TOPICS.has(h.topic) || this.#applying.has(h.id) || this.#applyQueue.length >= APPLY_QUEUE_MAX) return;
    this.#applying.add(h.id);
    this.#applyQueue.push(h);
    this.#pump();
  }

  #running = 0;

  #pump(): void {
    while (this.#running < APPLY_CONCURRENCY && this.#applyQueue.length > 0) {
      const h = this.#applyQueue.shift()!;
      this.#running++;
      void this.applyWebhook({ tenantId: h.tenant, provider: h.service, account: h.connectionId, webhookId: h.id })
        .catch((err: unknown) => this.o.log.warn({ err, webhookId: h.id, service: h.service }, 'applying a stock webhook failed; the sweep tries again'))
        .finally(() => {
          this.#running--;
          this.#applying.delete(h.id);
          if (this.#running === 0 && this.#applyQueue.length === 0) for (const w of this.#idle.splice(0)) w();
          this.#pump();
        });
    }
  }

  /**
   * Looks for stock webhooks of the last day accepted over 10 s ago and never applied; answers how
   * many it queued. It walks the partial index `integration_webhooks_unapplied` (migration 0020),
   * whose predicate names the stock topics as written here.
   */
  async sweepWebhooks(limit = 5_000): Promise<number> {
    // no more than the apply queue has room for (after a flood, what it left out comes back at this pace)
    limit = Math.min(limit, APPLY_QUEUE_MAX - this.#applyQueue.length);
    if (limit <= 0) return 0;
    const { rows } = await this.o.pool.query<{ tenant_id: string; service: string; connection_id: string; id: string; topic: string }>(
      `SELECT w.tenant_id, w.service, w.connection_id, w.id::text AS id, w.topic FROM integration_webhooks w
        WHERE w.applied_at IS NULL AND w.topic IN ('inventory_levels/update', 'items') AND w.status IN ('accepted', 'handed')
          AND w.received_at > now() - interval '1 day' AND w.received_at < now() - interval '10 seconds'
        ORDER BY w.id LIMIT $1`,
      [limit],
    );
    for (const r of rows) this.webhookAccepted({ tenant: r.tenant_id, service: r.service, connectionId: r.connection_id, id: r.id, topic: r.topic });
    return rows.length;
  }

  start(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => void this.sweepWebhooks().catch((err: unknown) => this.o.log.warn({ err }, 'stock webhook sweep failed')), APPLY_SWEEP_MS);
    this.#sweep.unref();
  }

  /** Stops the sweep and waits for the applies in flight (and their marks). */
  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.o.stats?.stop();
    this.#applyQueue.length = 0;
    if (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#flushApplied();
  }

  /** `<events>.InventoryUpdated`, one message per change; the message id makes a repeat a duplicate. */
  async publishUpdates(who: { tenantId: string; provider: string; account: string }, updates: InventoryUpdate[]): Promise<void> {
    const subject = `${this.o.eventsRoot}.InventoryUpdated`;
    for (const u of updates) {
      const data = { tenantId: who.tenantId, sku: u.sku, stock: u.stock, previousStock: u.previousStock, changedAt: u.changedAt, provider: who.provider, account: who.account, via: u.via, ...(u.conflict ? { conflict: true, reason: u.reason } : {}) };
      const messageId = `inventory:${who.tenantId}:${u.sku}:${u.changedAt}:${u.stock}`;
      const link = this.o.runtime.nats?.link;
      if (link) await jetstream(link.nc).publish(subject, new TextEncoder().encode(JSON.stringify(data)), { msgID: messageId });
      else await this.o.runtime.bus.publish({ subject, data, headers: {}, messageId });
    }
  }

  #provider(service: string): SyncProvider {
    if (!(SYNC_PROVIDERS as readonly string[]).includes(service)) throw notFound('inventory sync service', service);
    return service as SyncProvider;
  }

  #now(): string {
    return new Date(this.o.clock.now()).toISOString();
  }

  // --- our side ----------------------------------------------------------------------------------

  /**
   * Sets our stock of a SKU (HTTP `PUT /api/integrations/inventory/{sku}`, and
   * `svc.inventory.changed` with its message id): one statement stores it (a change older than
   * the stored one is ignored), then each connected channel of the tenant is told to push it.
   * With a message id, a repeat changes nothing and answers the current item.
   */
  async setStock(tenantId: string, sku: string, stock: number, o: { changedAt?: string; messageId?: string; source: string }): Promise<{ item: InventoryView; changed: boolean }> {
    checkSku(sku);
    checkStock(stock);
    const changedAt = o.changedAt ? checkTime(o.changedAt, 'changedAt') : this.#now();
    const { rows } = await this.o.pool.query<{ version: string; changed: boolean }>(
      `WITH msg AS (
         INSERT INTO inventory_messages (tenant_id, message_id, sku) SELECT $1, $5, $2 WHERE $5::text IS NOT NULL
         ON CONFLICT DO NOTHING RETURNING 1
       ), up AS (
         INSERT INTO inventory_items AS i (tenant_id, sku, stock, changed_at, source)
         SELECT $1, $2, $3, $4, $6 WHERE $5::text IS NULL OR EXISTS (SELECT 1 FROM msg)
         ON CONFLICT (tenant_id, sku) DO UPDATE
            SET stock = EXCLUDED.stock, version = i.version + 1, changed_at = EXCLUDED.changed_at, source = EXCLUDED.source, updated_at = now()
          WHERE i.changed_at <= EXCLUDED.changed_at AND i.stock IS DISTINCT FROM EXCLUDED.stock
         RETURNING version::text
       )
       SELECT version, true AS changed FROM up`,
      [tenantId, sku, stock, changedAt, o.messageId ?? null, o.source],
    );
    const changed = rows.length > 0;
    if (changed) await this.fanOut(tenantId, [sku], null, rows[0]!.version);
    return { item: await this.#view(tenantId, sku), changed };
  }

  /**
   * Tells each connected channel of the tenant (but `except`) that lists some of these SKUs to
   * push them. A SKU no channel record is mapped to has nothing to push: the next full sync maps
   * it or reports it unmapped.
   */
  async fanOut(tenantId: string, skus: string[], except: ConnectionRef | null, version?: string): Promise<void> {
    const { rows } = await this.o.pool.query<{ service: SyncProvider; connection_id: string; skus: string[] }>(
      `SELECT c.service, c.connection_id, array_agg(m.sku ORDER BY m.sku) AS skus
         FROM integration_credentials c
         JOIN integration_mappings m ON m.tenant_id = c.tenant_id AND m.service = c.service AND m.connection_id = c.connection_id AND m.sku = ANY($3::text[])
        WHERE c.tenant_id = $1 AND c.service = ANY($2::text[])
        GROUP BY c.service, c.connection_id ORDER BY c.service, c.connection_id`,
      [tenantId, SYNC_PROVIDERS, skus],
    );
    const at = this.#now();
    await Promise.all(
      rows
        .filter((r) => !(except && except.provider === r.service && except.account === r.connection_id))
        .map((r) =>
          this.o.syncs.send(
            connectionId(tenantId, r.service, r.connection_id),
            { type: 'sync.push', skus: r.skus, tenantId, provider: r.service, account: r.connection_id, events: this.o.eventsRoot, pollMs: this.#pollMs, at },
            { tenant: tenantId, ...(version && r.skus.length === 1 ? { messageId: `push:${r.skus[0]}:${version}` } : {}) },
          ),
        ),
    );
  }

  async put(principal: Principal, sku: string, body: { stock: number; tenantId?: string; changedAt?: string }): Promise<InventoryView> {
    const tenant = tenantOf(principal, body.tenantId);
    return (await this.setStock(tenant, sku, body.stock, { ...(body.changedAt ? { changedAt: body.changedAt } : {}), source: principal.role === 'service' ? 'service' : 'api' })).item;
  }

  /** `svc.inventory.changed` `{ tenantId, sku, stock, changedAt }`: applied once per message id. A malformed one is logged and dropped. */
  async changed(data: unknown, messageId: string): Promise<void> {
    const m = data as { tenantId?: unknown; sku?: unknown; stock?: unknown; changedAt?: unknown } | null;
    try {
      if (!m || typeof m.tenantId !== 'string' || !m.tenantId || typeof m.sku !== 'string') throw new DomainError(DomainCode.ValidationFailed, 'tenantId and sku are required');
      await this.setStock(m.tenantId, m.sku, m.stock as number, { ...(m.changedAt !== undefined ? { changedAt: m.changedAt as string } : {}), messageId, source: 'nats' });
    } catch (err) {
      if (err instanceof DomainError && err.code === DomainCode.ValidationFailed) {
        this.o.log.warn({ messageId, reason: err.message }, 'svc.inventory.changed ignored: it does not match the contract');
        return;
      }
      throw err;
    }
  }

  async get(principal: Principal, sku: string, tenantId?: string): Promise<InventoryView> {
    return this.#view(tenantOf(principal, tenantId), checkSku(sku));
  }

  async #view(tenantId: string, sku: string): Promise<InventoryView> {
    const { rows } = await this.o.pool.query<{ stock: number; version: string; changed_at: Date; source: string }>('SELECT stock, version::text, changed_at, source FROM inventory_items WHERE tenant_id = $1 AND sku = $2', [tenantId, sku]);
    const item = rows[0];
    if (!item) throw notFound('inventory item', sku);
    return { tenantId, sku, stock: item.stock, version: Number(item.version), changedAt: item.changed_at.toISOString(), source: item.source, channels: (await this.#channels(tenantId, [sku])).get(sku) ?? [] };
  }

  async #channels(tenantId: string, skus: string[]): Promise<Map<string, InventoryChannelView[]>> {
    const { rows } = await this.o.pool.query<{ sku: string; service: string; connection_id: string; external_ids: Record<string, unknown>; source: 'sync' | 'manual'; channel_stock: number | null; channel_changed_at: Date | null; synced_stock: number | null; last_synced_at: Date | null; conflict: string | null }>(
      `SELECT m.sku, m.service, m.connection_id, m.external_ids, m.source, m.channel_stock, m.channel_changed_at, m.synced_stock, m.last_synced_at,
              (SELECT c.id::text FROM integration_conflicts c WHERE c.tenant_id = m.tenant_id AND c.service = m.service AND c.connection_id = m.connection_id AND c.sku = m.sku AND c.status = 'open') AS conflict
         FROM integration_mappings m WHERE m.tenant_id = $1 AND m.sku = ANY($2::text[]) ORDER BY m.service, m.connection_id`,
      [tenantId, skus],
    );
    const out = new Map<string, InventoryChannelView[]>();
    for (const r of rows) {
      const list = out.get(r.sku) ?? [];
      list.push({
        service: r.service,
        account: r.connection_id,
        externalIds: r.external_ids,
        mappedBy: r.source,
        lastKnownStock: r.channel_stock,
        lastKnownAt: r.channel_changed_at?.toISOString() ?? null,
        syncedStock: r.synced_stock,
        lastSyncedAt: r.last_synced_at?.toISOString() ?? null,
        openConflict: r.conflict,
      });
      out.set(r.sku, list);
    }
    return out;
  }

  /**
   * Our items, by SKU: filters `sku` (prefix), `service` (mapped to that channel), `unmapped`
   * (true: not mapped to `service`, or to no channel), `conflicts` (true: with an open conflict);
   * `after` (the last SKU of the previous page) and `limit`.
   */
  async list(principal: Principal, q: { tenantId?: string; sku?: string; service?: string; unmapped?: boolean; conflicts?: boolean; after?: string; limit?: number }): Promise<{ data: InventoryView[]; next: string | null }> {
    const tenant = tenantOf(principal, q.tenantId);
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    const params: unknown[] = [tenant, q.after ?? '', limit + 1];
    const where = ['i.tenant_id = $1', 'i.sku > $2'];
    if (q.sku) {
      params.push(`${q.sku.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      where.push(`i.sku LIKE $${params.length}`);
    }
    if (q.service) {
      params.push(q.service);
      where.push(`${q.unmapped ? 'NOT ' : ''}EXISTS (SELECT 1 FROM integration_mappings m WHERE m.tenant_id = i.tenant_id AND m.sku = i.sku AND m.service = $${params.length})`);
    } else if (q.unmapped) where.push('NOT EXISTS (SELECT 1 FROM integration_mappings m WHERE m.tenant_id = i.tenant_id AND m.sku = i.sku)');
    if (q.conflicts) where.push(`EXISTS (SELECT 1 FROM integration_conflicts c WHERE c.tenant_id = i.tenant_id AND c.sku = i.sku AND c.status = 'open')`);
    const { rows } = await this.o.pool.query<{ sku: string; stock: number; version: string; changed_at: Date; source: string }>(
      `SELECT i.sku, i.stock, i.version::text, i.changed_at, i.source FROM inventory_items i WHERE ${where.join(' AND ')} ORDER BY i.sku LIMIT $3`,
      params,
    );
    const page = rows.slice(0, limit);
    const channels = await this.#channels(tenant, page.map((r) => r.sku));
    return {
      data: page.map((r) => ({ tenantId: tenant, sku: r.sku, stock: r.stock, version: Number(r.version), changedAt: r.changed_at.toISOString(), source: r.source, channels: channels.get(r.sku) ?? [] })),
      next: rows.length > limit ? page[page.length - 1]!.sku : null,
    };
  }

  // --- connections -------------------------------------------------------------------------------

  /** The tenant's connection to `service` (the named account, else the first); NOT_FOUND when none. */
  async #connection(tenantId: string, service: SyncProvider, account?: string): Promise<ConnectionRef> {
    const { rows } = await this.o.pool.query<{ connection_id: string }>(
      `SELECT connection_id FROM integration_credentials WHERE tenant_id = $1 AND service = $2 AND ($3::text IS NULL OR connection_id = $3) ORDER BY connection_id LIMIT 1`,
      [tenantId, service, account ?? null],
    );
    if (!rows[0]) throw notFound(`${service} connection of tenant`, tenantId);
    return { tenantId, provider: service, account: rows[0].connection_id };
  }

  async putMapping(principal: Principal, service: string, sku: string, body: { tenantId?: string; account?: string; externalIds: Record<string, unknown> }): Promise<InventoryChannelView> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, body.tenantId);
    checkSku(sku);
    const ref = await this.#connection(tenant, p, body.account);
    let key;
    try {
      key = channelFor(this.o.outbound(), ref).keyOf(body.externalIds ?? {});
    } catch (err) {
      throw new DomainError(DomainCode.ValidationFailed, err instanceof Error ? err.message : 'invalid externalIds', { field: 'externalIds' });
    }
    try {
      await this.o.pool.query(
        `INSERT INTO integration_mappings AS m (tenant_id, service, connection_id, sku, external_key, external_ids, source)
         VALUES ($1, $2, $3, $4, $5, $6, 'manual')
         ON CONFLICT (tenant_id, service, connection_id, sku) DO UPDATE
            SET external_key = EXCLUDED.external_key, external_ids = EXCLUDED.external_ids, source = 'manual',
                synced_stock = CASE WHEN m.external_key = EXCLUDED.external_key THEN m.synced_stock END,
                synced_version = CASE WHEN m.external_key = EXCLUDED.external_key THEN m.synced_version END, updated_at = now()`,
        [tenant, p, ref.account, sku, key.externalKey, JSON.stringify(key.externalIds)],
      );
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        // the record is mapped to another SKU: a sync-made mapping gives way to the hand-made one
        const moved = await this.o.pool.query(`DELETE FROM integration_mappings WHERE service = $1 AND connection_id = $2 AND external_key = $3 AND source = 'sync' AND tenant_id = $4`, [p, ref.account, key.externalKey, tenant]);
        if (moved.rowCount === 0) throw new DomainError(DomainCode.ValidationFailed, 'that channel record is already mapped by hand to another SKU', { field: 'externalIds' });
        return this.putMapping(principal, service, sku, body);
      }
      throw err;
    }
    const view = (await this.#channels(tenant, [sku])).get(sku)?.find((c) => c.service === p && c.account === ref.account);
    return view!;
  }

  // --- configuration and conflicts ---------------------------------------------------------------

  async getConfig(principal: Principal, service: string, tenantId?: string): Promise<{ service: string; tenantId: string; conflictStrategy: ConflictStrategy }> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, tenantId);
    const { rows } = await this.o.pool.query<{ conflict_strategy: ConflictStrategy }>('SELECT conflict_strategy FROM integration_sync_config WHERE tenant_id = $1 AND service = $2', [tenant, p]);
    return { service: p, tenantId: tenant, conflictStrategy: rows[0]?.conflict_strategy ?? 'most_recent' };
  }

  async setConfig(principal: Principal, service: string, body: { tenantId?: string; conflictStrategy: string }): Promise<{ service: string; tenantId: string; conflictStrategy: ConflictStrategy }> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, body.tenantId);
    if (!(CONFLICT_STRATEGIES as readonly string[]).includes(body.conflictStrategy)) {
      throw new DomainError(DomainCode.ValidationFailed, `conflictStrategy must be one of ${CONFLICT_STRATEGIES.join(', ')}`, { field: 'conflictStrategy' });
    }
    await this.o.pool.query(
      `INSERT INTO integration_sync_config (tenant_id, service, conflict_strategy, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, service) DO UPDATE SET conflict_strategy = EXCLUDED.conflict_strategy, updated_by = EXCLUDED.updated_by, updated_at = now()`,
      [tenant, p, body.conflictStrategy, principal.sub],
    );
    this.o.log.info({ tenantId: tenant, service: p, conflictStrategy: body.conflictStrategy, by: principal.sub }, 'conflict strategy set');
    return { service: p, tenantId: tenant, conflictStrategy: body.conflictStrategy as ConflictStrategy };
  }

  async conflicts(principal: Principal, service: string, q: { tenantId?: string; status?: 'open' | 'resolved'; limit?: number }): Promise<{ data: ConflictView[] }> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, q.tenantId);
    const { rows } = await this.o.pool.query<ConflictRow>(
      `SELECT * FROM integration_conflicts WHERE tenant_id = $1 AND service = $2 AND ($3::text IS NULL OR status = $3) ORDER BY id DESC LIMIT $4`,
      [tenant, p, q.status ?? null, Math.min(Math.max(q.limit ?? 100, 1), 500)],
    );
    return { data: rows.map(conflictView) };
  }

  /**
   * Closes a conflict: `egdc` keeps our stock, `marketplace` takes the channel's, `custom` sets
   * `stock` on both. Our side is written at once (versioned), the baseline is set so that the
   * push that follows writes the channel (compare-and-set against the stock the conflict saw: a
   * channel that moved again opens a new conflict rather than being overwritten). The resolution
   * and its reason are logged.
   */
  async resolve(principal: Principal, service: string, id: string, body: { tenantId?: string; resolution: 'egdc' | 'marketplace' | 'custom'; stock?: number; reason?: string }): Promise<ConflictView> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, body.tenantId);
    if (!/^\d{1,18}$/.test(id)) throw notFound('conflict', id);
    if (body.resolution === 'custom') checkStock(body.stock);
    else if (body.stock !== undefined) throw new DomainError(DomainCode.ValidationFailed, 'stock is only taken with resolution custom', { field: 'stock' });
    const client = await this.o.pool.connect();
    let view: ConflictView;
    let announce: { sku: string; stock: number; previous: number; changedAt: string } | null = null;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<ConflictRow>('SELECT * FROM integration_conflicts WHERE id = $1 AND tenant_id = $2 AND service = $3 FOR UPDATE', [id, tenant, p]);
      const c = rows[0];
      if (!c) throw notFound('conflict', id);
      if (c.status !== 'open') throw new ConcordError(ErrorCode.Conflict, `conflict ${id} is already resolved`, { id });
      const item = (await client.query<{ stock: number }>('SELECT stock FROM inventory_items WHERE tenant_id = $1 AND sku = $2 FOR UPDATE', [tenant, c.sku])).rows[0];
      const ours = item?.stock ?? c.our_stock;
      const target = body.resolution === 'egdc' ? ours : body.resolution === 'marketplace' ? c.channel_stock : body.stock!;
      const reason = body.reason?.trim() || `resolved by ${principal.sub}: ${body.resolution === 'egdc' ? 'our stock kept' : body.resolution === 'marketplace' ? "the channel's stock taken" : `stock set to ${target}`}`;
      const now = this.#now();
      let version: string | null = null;
      if (target !== ours) {
        const r = await client.query<{ version: string }>(
          `UPDATE inventory_items SET stock = $3, version = version + 1, changed_at = $4, source = 'resolution', updated_at = now() WHERE tenant_id = $1 AND sku = $2 RETURNING version::text`,
          [tenant, c.sku, target, now],
        );
        version = r.rows[0]?.version ?? null;
        announce = { sku: c.sku, stock: target, previous: ours, changedAt: now };
      }
      // the baseline is what the channel had when the conflict was seen: the push writes the target over exactly that
      await client.query(
        `UPDATE integration_mappings SET synced_stock = $5, synced_version = NULL, updated_at = now() WHERE tenant_id = $1 AND service = $2 AND connection_id = $3 AND sku = $4`,
        [tenant, p, c.connection_id, c.sku, c.channel_stock],
      );
      const done = await client.query<ConflictRow>(
        `UPDATE integration_conflicts SET status = 'resolved', resolution = $2, resolved_stock = $3, reason = $4, resolved_by = $5, resolved_at = $6 WHERE id = $1 RETURNING *`,
        [id, body.resolution, target, reason, principal.sub, now],
      );
      await client.query(
        `INSERT INTO integration_sync_logs (tenant_id, service, connection_id, op_key, sku, direction, outcome, our_stock, channel_stock, resolved_stock, action, reason, changed_at)
         VALUES ($1, $2, $3, $4, $5, 'both', 'resolved', $6, $7, $8, $9, $10, $11) ON CONFLICT (op_key, sku) DO NOTHING`,
        [tenant, p, c.connection_id, `resolve:${id}`, c.sku, ours, c.channel_stock, target, `resolution:${body.resolution}`, reason, now],
      );
      await client.query('COMMIT');
      view = conflictView(done.rows[0]!);
      this.o.log.info({ tenantId: tenant, service: p, conflict: id, sku: c.sku, resolution: body.resolution, stock: target, by: principal.sub }, 'conflict resolved');
      void version;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    const at = this.#now();
    const sync = connectionId(tenant, p, view.account);
    const who = { tenantId: tenant, provider: p, account: view.account, events: this.o.eventsRoot, at };
    if (announce) {
      await this.o.syncs.send(sync, { type: 'sync.announce', updates: [{ sku: announce.sku, stock: announce.stock, previousStock: announce.previous, changedAt: announce.changedAt, via: 'resolution' }], ...who }, { tenant, messageId: `resolve:${id}:announce` });
      await this.fanOut(tenant, [view.sku], { tenantId: tenant, provider: p, account: view.account });
    }
    await this.o.syncs.send(sync, { type: 'sync.push', skus: [view.sku], ...who }, { tenant, messageId: `resolve:${id}:push` });
    return view;
  }

  // --- sync runs ---------------------------------------------------------------------------------

  async startSync(principal: Principal, service: string, body: { tenantId?: string; account?: string; mode: SyncMode; direction: SyncDirection; pollMs?: number }): Promise<{ syncId: string; status: 'running' }> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, body.tenantId);
    const ref = await this.#connection(tenant, p, body.account);
    const conn = await this.o.connections.connection(tenant, p, ref.account);
    const state = conn ? stateOf(conn.value) : null;
    if (state !== 'connected' && state !== 'token_expired') {
      throw new ConcordError(ErrorCode.Conflict, `the ${p} connection is ${state ?? 'unknown'}: a sync needs it connected`, { state });
    }
    const syncId = randomUUID();
    const id = connectionId(tenant, p, ref.account);
    try {
      await this.o.syncs.send(
        id,
        { type: 'sync.start', syncId, mode: body.mode, direction: body.direction, requestedBy: principal.sub, tenantId: tenant, provider: p, account: ref.account, events: this.o.eventsRoot, pollMs: body.pollMs ?? this.#pollMs, at: this.#now() },
        { tenant },
      );
    } catch (err) {
      if (err instanceof ConcordError && err.code === ErrorCode.EventRejected) {
        const running = (await this.o.syncs.current(id, { tenant }))?.context.run;
        throw new ConcordError(ErrorCode.Conflict, `a sync of this connection is already running${running ? ` (${running.syncId})` : ''}: one at a time`, { id: running?.syncId ?? null });
      }
      throw err;
    }
    this.o.log.info({ tenantId: tenant, service: p, account: ref.account, syncId, mode: body.mode, direction: body.direction }, 'sync started');
    return { syncId, status: 'running' };
  }

  async getSync(principal: Principal, service: string, syncId: string, tenantId?: string): Promise<SyncProgress> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, tenantId);
    for (const ctx of await this.#syncContexts(tenant, p)) {
      const run = ctx.runs.find((r) => r.syncId === syncId);
      if (run) return progressOf(p, ctx.account ?? '', run);
    }
    throw notFound('sync', syncId);
  }

  async #syncContexts(tenant: string, p: SyncProvider): Promise<SyncContext[]> {
    const { rows } = await this.o.pool.query<{ id: string }>(`SELECT id FROM actors WHERE type = 'inventory-sync' AND tenant = $1 AND attrs->>'provider' = $2 ORDER BY id`, [tenant, p]);
    const states = await Promise.all(rows.map((r) => this.o.syncs.current(r.id, { tenant })));
    return states.filter((s) => s !== null).map((s) => s.context);
  }

  async logs(principal: Principal, service: string, q: { tenantId?: string; syncId?: string; sku?: string; outcome?: string; before?: string; limit?: number }): Promise<{ data: SyncLogView[]; next: string | null }> {
    const p = this.#provider(service);
    const tenant = tenantOf(principal, q.tenantId);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const before = q.before && /^\d{1,18}$/.test(q.before) ? q.before : null;
    const { rows } = await this.o.pool.query<LogRowDb>(
      `SELECT * FROM integration_sync_logs
        WHERE tenant_id = $1 AND service = $2 AND ($3::text IS NULL OR sync_id = $3) AND ($4::text IS NULL OR sku = $4)
          AND ($5::text IS NULL OR outcome = $5) AND ($6::bigint IS NULL OR id < $6)
        ORDER BY id DESC LIMIT $7`,
      [tenant, p, q.syncId ?? null, q.sku ?? null, q.outcome ?? null, before, limit + 1],
    );
    const page = rows.slice(0, limit);
    return { data: page.map(logView), next: rows.length > limit ? String(page[page.length - 1]!.id) : null };
  }

  /** The figures `GET /api/integrations/:service/status` adds for the sync. */
  async status(tenantId: string, service: string): Promise<SyncStatus> {
    const p = this.#provider(service);
    const [contexts, rate, hooks, open, config] = await Promise.all([
      this.#syncContexts(tenantId, p),
      this.o.pool.query<{ ok: string; failed: string }>(
        `SELECT count(*) FILTER (WHERE outcome IN ('synced', 'unchanged', 'conflict', 'resolved')) AS ok, count(*) FILTER (WHERE outcome = 'failed') AS failed
           FROM integration_sync_logs WHERE tenant_id = $1 AND service = $2 AND created_at > now() - interval '24 hours'`,
        [tenantId, p],
      ),
      this.o.pool.query<{ handed: number | null; applied: number | null; n: string }>(
        `SELECT avg(w.processing_ms) AS handed,
                avg(EXTRACT(EPOCH FROM (l.applied - w.received_at)) * 1000) AS applied, count(*) AS n
           FROM integration_webhooks w
           LEFT JOIN LATERAL (SELECT min(created_at) AS applied FROM integration_sync_logs s WHERE s.op_key = 'webhook:' || w.id) l ON true
          WHERE w.tenant_id = $1 AND w.service = $2 AND w.received_at > now() - interval '1 hour'`,
        [tenantId, p],
      ),
      this.o.pool.query<{ n: string }>(`SELECT count(*) AS n FROM integration_conflicts WHERE tenant_id = $1 AND service = $2 AND status = 'open'`, [tenantId, p]),
      this.o.pool.query<{ conflict_strategy: ConflictStrategy }>('SELECT conflict_strategy FROM integration_sync_config WHERE tenant_id = $1 AND service = $2', [tenantId, p]),
    ]);
    const runs = contexts.flatMap((c) => c.runs.map((r) => ({ account: c.account ?? '', r }))).sort((a, b) => b.r.startedAt.localeCompare(a.r.startedAt));
    const ok = Number(rate.rows[0]?.ok ?? 0);
    const failed = Number(rate.rows[0]?.failed ?? 0);
    const h = hooks.rows[0];
    return {
      conflictStrategy: config.rows[0]?.conflict_strategy ?? 'most_recent',
      lastSync: runs[0] ? progressOf(p, runs[0].account, runs[0].r) : null,
      syncSuccessRate: ok + failed === 0 ? null : ok / (ok + failed),
      webhookProcessing: { handedMs: h?.handed === null || h?.handed === undefined ? null : Number(h.handed), appliedMs: h?.applied === null || h?.applied === undefined ? null : Number(h.applied), count: Number(h?.n ?? 0) },
      openConflicts: Number(open.rows[0]?.n ?? 0),
    };
  }
}

interface ConflictRow {
  id: string;
  service: string;
  connection_id: string;
  sku: string;
  our_stock: number;
  channel_stock: number;
  our_changed_at: Date | null;
  channel_changed_at: Date | null;
  status: 'open' | 'resolved';
  resolution: 'egdc' | 'marketplace' | 'custom' | null;
  resolved_stock: number | null;
  reason: string | null;
  resolved_by: string | null;
  created_at: Date;
  resolved_at: Date | null;
}

function conflictView(r: ConflictRow): ConflictView {
  return {
    id: String(r.id),
    service: r.service,
    account: r.connection_id,
    sku: r.sku,
    ourStock: r.our_stock,
    channelStock: r.channel_stock,
    ourChangedAt: r.our_changed_at?.toISOString() ?? null,
    channelChangedAt: r.channel_changed_at?.toISOString() ?? null,
    status: r.status,
    resolution: r.resolution,
    resolvedStock: r.resolved_stock,
    reason: r.reason,
    resolvedBy: r.resolved_by,
    createdAt: r.created_at.toISOString(),
    resolvedAt: r.resolved_at?.toISOString() ?? null,
  };
}

interface LogRowDb {
  id: string;
  service: string;
  connection_id: string;
  sync_id: string | null;
  sku: string;
  direction: string;
  outcome: string;
  our_stock: number | null;
  channel_stock: number | null;
  resolved_stock: number | null;
  action: string | null;
  reason: string | null;
  error_code: string | null;
  created_at: Date;
}

export interface SyncLogView {
  id: string;
  account: string;
  syncId: string | null;
  sku: string;
  direction: string;
  outcome: string;
  ourStock: number | null;
  channelStock: number | null;
  resolvedStock: number | null;
  action: string | null;
  reason: string | null;
  errorCode: string | null;
  at: string;
}

function logView(r: LogRowDb): SyncLogView {
  return {
    id: String(r.id),
    account: r.connection_id,
    syncId: r.sync_id,
    sku: r.sku,
    direction: r.direction,
    outcome: r.outcome,
    ourStock: r.our_stock,
    channelStock: r.channel_stock,
    resolvedStock: r.resolved_stock,
    action: r.action,
    reason: r.reason,
    errorCode: r.error_code,
    at: r.created_at.toISOString(),
  };
}

function progressOf(service: string, account: string, r: SyncRun): SyncProgress {
  return {
    syncId: r.syncId,
    service,
    account,
    mode: r.mode,
    direction: r.direction,
    status: r.status,
    total: r.total,
    synced: r.synced,
    unchanged: r.unchanged,
    failed: r.failed,
    conflicts: r.conflicts,
    unmapped: r.unmapped,
    pages: r.pages,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    lastError: r.lastError,
  };
}
