/**
 * The sync engine: the `inventory` connector whose operations the sync actor
 * (machines/integration/sync.ts) calls, one step at a time, after each commit:
 *
 * - `page`: one page of a full or delta sync (read the channel, compare, write, log);
 * - `push`: our change of some SKUs to this channel (read it, compare, write compare-and-set);
 * - `poll`: the incremental poll (the channel's changes since the cursor, and our changes not yet
 *   pushed), for what a webhook or a push missed.
 *
 * Every step compares each SKU's two sides with `decide` (machines/integration/conflict.ts), acts
 * (a compare-and-set write to the channel, a versioned update of ours, or an open conflict), and
 * logs each item's outcome in `integration_sync_logs` under the step's key. The key is stable
 * when the step runs again (after a crash the outbox carries the call out again), and items it
 * already logged are not done twice: the answer is read back from the log, so a page's counts
 * and the changes it announces are the same however often it runs.
 */
import type pg from 'pg';
import { ConnectorCode, ConnectorError } from '../../../connectors/kit/errors.js';
import type { CallContext, ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { decide, type ConflictStrategy, type Decision, type SyncDirection } from '../../../machines/integration/conflict.js';
import type { Provider } from '../../../machines/integration/index.js';
import type { InventoryUpdate, StepOutput, SyncMode } from '../../../machines/integration/sync.js';
import type { Clock } from '../../../runtime/clock.js';
import type { Logger } from '../../../runtime/logger.js';
import type { ConnectionRef, OutboundCalls } from '../outbound/types.js';
import { channelFor, type Channel, type ChannelRecord, type WriteItem } from './channels.js';
import type { PlannerStats } from './stats.js';

/** Points where a test makes the world move (a sale on the channel between our read and our write). */
export interface EngineHooks {
  beforeChannelWrite?(info: { tenantId: string; provider: Provider; account: string; skus: string[] }): void | Promise<void>;
  /** A page was committed to the log (the crash test kills the process after some). */
  afterPage?(info: { syncId: string; page: number }): void | Promise<void>;
  /** A full sync's channel page was read, before it is compared (tests put a webhook in between). */
  pageRead?(info: { syncId: string; page: number; skus: string[] }): void | Promise<void>;
}

export interface EngineOptions {
  pool: pg.Pool;
  outbound: () => OutboundCalls;
  clock: Clock;
  log: Logger;
  /** Tells the tenant's other connections that our stock of these SKUs changed (a channel's change fans out). */
  fanOut(tenantId: string, skus: string[], except: ConnectionRef): Promise<void>;
  hooks?: EngineHooks;
  /** Channel pages per step of a full sync (progress is committed per step); default 20. */
  pagesPerStep?: number;
  /** Told of the mappings a step created, so the planner's statistics keep up with a sync (stats.ts). */
  stats?: PlannerStats;
}

interface Who {
  tenantId: string;
  provider: Provider;
  account: string;
}

interface Step extends Who {
  opKey: string;
  syncId: string | null;
  direction: SyncDirection;
  via: string;
}

interface MappingRow {
  sku: string;
  external_key: string;
  external_ids: Record<string, string | number>;
  source: 'sync' | 'manual';
  synced_stock: number | null;
  /** The channel's stock and its own time of it, as this connection last applied or saw it. */
  channel_stock: number | null;
  channel_changed_at: Date | null;
}

interface ItemRow {
  sku: string;
  stock: number;
  version: string;
  changed_at: Date;
}

interface LogRow {
  sku: string;
  direction: SyncDirection;
  outcome: 'synced' | 'unchanged' | 'conflict' | 'failed' | 'unmapped' | 'skipped' | 'resolved';
  our_stock: number | null;
  channel_stock: number | null;
  resolved_stock: number | null;
  action: string | null;
  reason: string | null;
  error_code: string | null;
  changed_at: string | null;
}

/** A SKU's pair of sides in one step. */
interface Pair {
  sku: string;
  record: ChannelRecord;
  mapping: MappingRow;
  item: ItemRow;
}

/**
 * The mappings of a step's records, by SKU or by the channel's key ($1 tenant, $2 service, $3
 * connection, $4 SKUs, $5 external keys). Both halves are index lookups only while the planner has
 * statistics of the table (stats.ts keeps them current as a sync fills it).
 */
export const MAPPINGS_OF_RECORDS = `SELECT sku, external_key, external_ids, source, synced_stock, channel_stock, channel_changed_at FROM integration_mappings
  WHERE tenant_id = $1 AND service = $2 AND connection_id = $3 AND (sku = ANY($4::text[]) OR external_key = ANY($5::text[]))`;

const DELTA_PAGE = 100;
/** Channel pages per step of a full sync: each step is one durable round trip through the sync actor (h-sync2: 5 -> 20). */
const DEFAULT_PAGES_PER_STEP = 20;
const iso = (d: Date | string | null): string | null => (d === null ? null : typeof d === 'string' ? d : d.toISOString());

export class InventoryEngine {
  constructor(private readonly o: EngineOptions) {}

  /** The `inventory` connector the runtime registers: the sync actor's steps. */
  invoker(): ConnectorInvoker {
    return async (operation, input, ctx) => {
      const i = input as never;
      switch (operation) {
        case 'page':
          return this.page(i);
        case 'push':
          return this.push(i, ctx);
        case 'poll':
          return this.poll(i, ctx);
        default:
          throw new ConnectorError(ConnectorCode.Validation, `connector 'inventory' has no operation '${operation}'`);
      }
    };
  }

  #channel(w: Who): Channel {
    return channelFor(this.o.outbound(), { tenantId: w.tenantId, provider: w.provider, account: w.account });
  }

  // --- steps -----------------------------------------------------------------------------------

  async page(i: Who & { syncId: string; mode: SyncMode; direction: SyncDirection; cursor: unknown; page: number; since?: string | null }): Promise<StepOutput> {
    const opKey = `${i.syncId}:page:${i.page}`;
    const step: Step = { ...i, opKey, syncId: i.syncId, direction: i.direction, via: 'sync' };
    const channel = this.#channel(i);
    let cursor: unknown;
    let done: boolean;
    const keys = [opKey];
    if (i.mode === 'full') {
      // a step is a batch of channel pages; the next page is read while this one is compared and written
      const batch = Math.max(1, this.o.pagesPerStep ?? DEFAULT_PAGES_PER_STEP);
      let page = await channel.readPage(i.cursor, `${opKey}:0`);
      for (let k = 0; ; k++) {
        const next = !page.done && k + 1 < batch ? channel.readPage(page.cursor, `${opKey}:${k + 1}`) : null;
        next?.catch(() => undefined); // awaited below; a failure of this page's work must not leave it unhandled
        await this.o.hooks?.pageRead?.({ syncId: i.syncId, page: i.page, skus: page.records.flatMap((r) => (r.sku === null ? [] : [r.sku])) });
        await this.#unsyncable(step, page.unsyncable);
        await this.reconcile(step, channel, page.records, { createMappings: true });
        if (!next) break;
        page = await next;
      }
      done = page.done;
      cursor = page.cursor;
      if (done) {
        // our SKUs the channel does not list: reported, not guessed
        const unmappedKey = `${i.syncId}:unmapped`;
        await this.#unmappedOurs({ ...step, opKey: unmappedKey });
        keys.push(unmappedKey);
      }
    } else {
      const c = (i.cursor ?? { phase: i.direction === 'outbound' ? 'outbound' : 'inbound' }) as { phase: 'inbound' | 'outbound'; after?: string };
      if (c.phase === 'inbound') {
        // changes since the last completed run started (else since the connection's oldest sync)
        const since = i.since ?? (await this.#lastSynced(i, 'min'));
        const r = await channel.poll(null, since, opKey);
        await this.reconcile(step, channel, r.records, { createMappings: true });
        done = i.direction === 'inbound';
        cursor = done ? null : { phase: 'outbound', after: '' };
      } else {
        const dirty = await this.#dirty(i, c.after ?? '', DELTA_PAGE);
        const records = await channel.readMany(dirty.map((m) => m.external_ids), opKey);
        await this.reconcile(step, channel, records, { createMappings: false });
        done = dirty.length < DELTA_PAGE;
        cursor = done ? null : { phase: 'outbound', after: dirty[dirty.length - 1]!.sku };
      }
    }
    await this.o.hooks?.afterPage?.({ syncId: i.syncId, page: i.page });
    return { ...(await this.#summary(keys, 'sync')), cursor, done };
  }

  async push(i: Who & { skus: string[] }, ctx: CallContext): Promise<StepOutput> {
    const step: Step = { ...i, opKey: ctx.idempotencyKey, syncId: null, direction: 'both', via: 'push' };
    const channel = this.#channel(i);
    const skus = [...new Set(i.skus)];
    const mappings = await this.#mappingsBySku(i, skus);
    const unmapped = skus.filter((s) => !mappings.has(s));
    if (unmapped.length > 0) {
      await this.#log(step, unmapped.map((sku) => ({ ...blank(sku, 'outbound'), outcome: 'unmapped', reason: 'no record at the channel is mapped to this SKU (run a full sync, or PUT a mapping)' })));
    }
    const records = await channel.readMany([...mappings.values()].map((m) => m.external_ids), step.opKey);
    await this.reconcile(step, channel, records, { createMappings: false });
    return this.#summary([step.opKey], 'push');
  }

  /**
   * What a stored webhook row says, applied to our side (called by the webhook hand-off, off the
   * request). Idempotent: the row's items are logged under `webhook:<id>`, so the sweep's retry
   * of a row answers what the first run did.
   */
  async applyWebhook(i: Who & { webhookId: string }): Promise<StepOutput> {
    const { rows } = await this.o.pool.query<{ topic: string; payload: unknown; resource: string | null }>(
      'SELECT topic, payload, resource FROM integration_webhooks WHERE id = $1 AND tenant_id = $2 AND service = $3 AND connection_id = $4',
      [i.webhookId, i.tenantId, i.provider, i.account],
    );
    const row = rows[0];
    if (!row) return {};
    const step: Step = { ...i, opKey: `webhook:${i.webhookId}`, syncId: null, direction: 'both', via: 'webhook' };
    const channel = this.#channel(i);
    const records = await channel.fromWebhook(row.topic, row.payload, row.resource, step.opKey);
    // a Shopify record names no SKU: one no mapping names yet (a full sync running that has not
    // reached it) is read from the channel for its SKU, so the sale is applied now and the sync
    // finds both sides agreeing, instead of being dropped as unmapped and written over
    await this.reconcile(step, channel, records, { createMappings: i.provider !== 'shopify', readUnknown: i.provider === 'shopify' });
    return this.#summary([step.opKey], 'webhook');
  }

  async poll(i: Who & { cursor: unknown }, ctx: CallContext): Promise<StepOutput> {
    const step: Step = { ...i, opKey: ctx.idempotencyKey, syncId: null, direction: 'both', via: 'poll' };
    const channel = this.#channel(i);
    const since = await this.#lastSynced(i);
    const r = await channel.poll(i.cursor, since, step.opKey);
    await this.reconcile(step, channel, r.records, { createMappings: true });
    // our changes a push missed (a crash between our commit and the push's hand-off)
    const dirty = await this.#dirty(i, '', DELTA_PAGE);
    if (dirty.length > 0) {
      const outKey = `${step.opKey}:out`;
      await this.reconcile({ ...step, opKey: outKey }, channel, await channel.readMany(dirty.map((m) => m.external_ids), outKey), { createMappings: false });
      return { ...(await this.#summary([step.opKey, outKey], 'poll')), cursor: r.cursor };
    }
    return { ...(await this.#summary([step.opKey], 'poll')), cursor: r.cursor };
  }

  // --- the comparison ----------------------------------------------------------------------------

  /**
   * Compares each record with our side and acts on the decision; logs every item. Records whose
   * SKU is already logged under the step's key were done by an earlier run of the step.
   */
  async reconcile(step: Step, channel: Channel, records: ChannelRecord[], o: { createMappings: boolean; readUnknown?: boolean }): Promise<void> {
    const { pool } = this.o;
    if (records.length === 0) return;
    const done = new Set((await pool.query<{ sku: string }>('SELECT sku FROM integration_sync_logs WHERE op_key = $1', [step.opKey])).rows.map((r) => r.sku));
    const skusIn = [...new Set(records.map((r) => r.sku).filter((s): s is string => s !== null))];
    const { rows: maps } = await pool.query<MappingRow>(MAPPINGS_OF_RECORDS, [step.tenantId, step.provider, step.account, skusIn, records.map((r) => r.externalKey)]);
    const bySku = new Map(maps.map((m) => [m.sku, m]));
    const byKey = new Map(maps.map((m) => [m.external_key, m]));
    const logs: LogRow[] = [];
    const fresh: Array<{ sku: string; record: ChannelRecord }> = [];
    const matched: Array<{ sku: string; record: ChannelRecord; mapping: MappingRow }> = [];
    const unknown: ChannelRecord[] = [];
    for (const record of records) {
      // a record mapped by hand names its SKU; otherwise the record's own SKU
      const byRecord = byKey.get(record.externalKey);
      const sku = byRecord?.sku ?? record.sku;
      if (!sku) {
        if (o.readUnknown) {
          unknown.push(record);
          continue;
        }
        if (!done.has(record.externalKey)) logs.push({ ...blank(record.externalKey, step.direction), outcome: 'unmapped', channel_stock: record.stock, reason: 'the channel record has no SKU we know' });
        continue;
      }
      if (done.has(sku)) continue;
      const mapping = bySku.get(sku);
      if (mapping && mapping.external_key !== record.externalKey) {
        if (mapping.source === 'manual') continue; // the SKU is mapped by hand to another record: this one is not it
        if (!o.createMappings) continue;
        fresh.push({ sku, record }); // the record moved (re-created at the channel): the sync mapping follows
        continue;
      }
      if (!mapping) {
        if (o.createMappings) fresh.push({ sku, record });
        continue;
      }
      matched.push({ sku, record, mapping });
    }
    if (fresh.length > 0) {
      const created = await this.#upsertMappings(step, fresh);
      for (const f of fresh) {
        const m = created.get(f.sku);
        if (m) matched.push({ sku: f.sku, record: f.record, mapping: m });
        else logs.push({ ...blank(f.sku, step.direction), outcome: 'unmapped', channel_stock: f.record.stock, reason: 'the channel record is mapped by hand to another SKU' });
      }
    }
    // A record read before a newer change of it was applied (a webhook that came while this page
    // was read or waited): compared now, its old stock would be written back over the newer one.
    // Older by the channel's own clock: skipped. Of the same time but another stock than the one
    // applied (providers stamp to the second): read again, which is at least as new.
    const suspect: typeof matched = [];
    for (let k = matched.length - 1; k >= 0; k--) {
      const m = matched[k]!;
      const seen = m.mapping.channel_changed_at;
      const at = m.record.changedAt === null ? NaN : Date.parse(m.record.changedAt);
      if (!seen || Number.isNaN(at) || at > seen.getTime()) continue;
      if (at === seen.getTime() && m.record.stock === m.mapping.channel_stock) continue;
      matched.splice(k, 1);
      if (at < seen.getTime()) logs.push({ ...blank(m.sku, step.direction), outcome: 'unchanged', channel_stock: m.record.stock, reason: `stale read: the channel record (changed ${m.record.changedAt}) is older than its change already applied (${seen.toISOString()})` });
      else suspect.push(m);
    }
    if (suspect.length > 0) {
      const fresh = new Map((await channel.readMany(suspect.map((m) => m.record.externalIds), `${step.opKey}:stale`)).map((r) => [r.externalKey, r]));
      for (const m of suspect) {
        const now = fresh.get(m.record.externalKey);
        if (now) matched.push({ ...m, record: now });
        else logs.push({ ...blank(m.sku, step.direction), outcome: 'failed', channel_stock: m.record.stock, reason: 'the channel record vanished', error_code: 'NOT_FOUND' });
      }
    }
    const skus = matched.map((m) => m.sku);
    const [items, open, strategy] = await Promise.all([this.#items(step.tenantId, skus), this.#openConflicts(step, skus), this.strategy(step.tenantId, step.provider)]);
    const pairs: Pair[] = [];
    for (const m of matched) {
      const item = items.get(m.sku);
      if (!item) {
        logs.push({ ...blank(m.sku, step.direction), outcome: 'unmapped', channel_stock: m.record.stock, reason: 'the SKU is not in our catalog' });
        continue;
      }
      if (open.has(m.sku)) {
        logs.push({ ...blank(m.sku, step.direction), outcome: 'skipped', our_stock: item.stock, channel_stock: m.record.stock, reason: `conflict ${open.get(m.sku)} is open: the SKU is not synced until it is resolved` });
        continue;
      }
      pairs.push({ ...m, item });
    }
    logs.push(...(await this.#act(step, channel, pairs, strategy)));
    await this.#log(step, logs);
    if (unknown.length > 0) {
      const read = await channel.readMany(unknown.map((r) => r.externalIds), `${step.opKey}:sku`);
      const found = new Set(read.map((r) => r.externalKey));
      const named = read.filter((r) => r.sku !== null);
      await this.#log(step, [
        ...unknown.filter((r) => !found.has(r.externalKey)).map((r) => ({ ...blank(r.externalKey, step.direction), outcome: 'unmapped' as const, channel_stock: r.stock, reason: 'the channel record is gone' })),
        ...read.filter((r) => r.sku === null).map((r) => ({ ...blank(r.externalKey, step.direction), outcome: 'unmapped' as const, channel_stock: r.stock, reason: 'the channel record has no SKU' })),
      ]);
      if (named.length > 0) await this.reconcile(step, channel, named, { createMappings: true });
    }
  }

  /** Decides each pair, writes the channel (compare-and-set) and ours, records the new baselines. */
  async #act(step: Step, channel: Channel, pairs: Pair[], strategy: ConflictStrategy): Promise<LogRow[]> {
    const logs: LogRow[] = [];
    const baselines: Array<{ sku: string; stock: number; version: string | null; channel: number; channelAt: string | null }> = [];
    const toChannel: Array<{ pair: Pair; d: Decision & { stock: number } }> = [];
    const toOurs: Array<{ pair: Pair; d: Decision & { stock: number } }> = [];
    const conflicts: Array<{ pair: Pair; d: Decision }> = [];
    const judge = (pair: Pair) => {
      const d = decide({
        ours: { stock: pair.item.stock, changedAt: iso(pair.item.changed_at) },
        channel: { stock: pair.record.stock, changedAt: pair.record.changedAt },
        baseline: pair.mapping.synced_stock,
        direction: step.direction,
        strategy,
      });
      if (d.action === 'none') {
        const unchanged = pair.item.stock === pair.record.stock;
        logs.push({ ...blank(pair.sku, step.direction), outcome: 'unchanged', our_stock: pair.item.stock, channel_stock: pair.record.stock, reason: d.reason });
        if (unchanged) baselines.push({ sku: pair.sku, stock: pair.item.stock, version: pair.item.version, channel: pair.record.stock, channelAt: pair.record.changedAt });
      } else if (d.action === 'write_channel') toChannel.push({ pair, d });
      else if (d.action === 'write_ours') toOurs.push({ pair, d });
      else conflicts.push({ pair, d });
    };
    for (const p of pairs) judge(p);

    // the channel, compare-and-set against what we read: a sale in between is refused, re-read and judged again
    for (let round = 0; round < 2 && toChannel.length > 0; round++) {
      const batch = toChannel.splice(0);
      await this.o.hooks?.beforeChannelWrite?.({ tenantId: step.tenantId, provider: step.provider, account: step.account, skus: batch.map((b) => b.pair.sku) });
      const items: WriteItem[] = batch.map((b) => ({ key: b.pair.sku, externalIds: b.pair.record.externalIds, stock: b.d.stock, expected: b.pair.record.stock }));
      const results = await channel.write(items, `${step.opKey}:w${round}`);
      const stale: Pair[] = [];
      for (const b of batch) {
        const r = results.get(b.pair.sku) ?? { ok: false as const, stale: false, code: 'UNKNOWN', message: 'no answer' };
        if (r.ok) {
          logs.push({ ...blank(b.pair.sku, step.direction), outcome: b.d.conflict ? 'conflict' : 'synced', our_stock: b.pair.item.stock, channel_stock: b.pair.record.stock, resolved_stock: b.d.stock, action: 'write_channel', reason: b.d.reason });
          baselines.push({ sku: b.pair.sku, stock: b.d.stock, version: b.pair.item.version, channel: b.d.stock, channelAt: null });
        } else if (r.stale && round === 0) stale.push(b.pair);
        else logs.push({ ...blank(b.pair.sku, step.direction), outcome: 'failed', our_stock: b.pair.item.stock, channel_stock: b.pair.record.stock, action: 'write_channel', reason: r.message, error_code: r.code });
      }
      if (stale.length > 0) {
        const reread = new Map((await channel.readMany(stale.map((p) => p.record.externalIds), `${step.opKey}:reread`)).map((r) => [r.externalKey, r]));
        for (const p of stale) {
          const now = reread.get(p.record.externalKey);
          if (!now) {
            logs.push({ ...blank(p.sku, step.direction), outcome: 'failed', our_stock: p.item.stock, channel_stock: p.record.stock, action: 'write_channel', reason: 'the channel record vanished', error_code: 'NOT_FOUND' });
            continue;
          }
          // the channel moved under us: both sides changed since the baseline, whatever it was
          const d = decide({
            ours: { stock: p.item.stock, changedAt: iso(p.item.changed_at) },
            channel: { stock: now.stock, changedAt: now.changedAt },
            baseline: p.mapping.synced_stock ?? p.record.stock,
            direction: step.direction,
            strategy,
          });
          const moved = { ...p, record: now };
          const why = `the channel changed between our read (${p.record.stock}) and our write (now ${now.stock}): compare-and-set refused the write`;
          if (d.action === 'write_channel') toChannel.push({ pair: moved, d: { ...d, conflict: true, reason: `${why}; ${d.reason}` } });
          else if (d.action === 'write_ours') toOurs.push({ pair: moved, d: { ...d, conflict: true, reason: `${why}; ${d.reason}` } });
          else if (d.action === 'open_conflict') conflicts.push({ pair: moved, d: { ...d, reason: `${why}; ${d.reason}` } });
          else {
            logs.push({ ...blank(p.sku, step.direction), outcome: 'unchanged', our_stock: p.item.stock, channel_stock: now.stock, reason: `${why}; ${d.reason}` });
            if (p.item.stock === now.stock) baselines.push({ sku: p.sku, stock: now.stock, version: p.item.version, channel: now.stock, channelAt: now.changedAt });
          }
        }
      }
    }
    for (const b of toChannel) logs.push({ ...blank(b.pair.sku, step.direction), outcome: 'failed', our_stock: b.pair.item.stock, channel_stock: b.pair.record.stock, action: 'write_channel', reason: 'the channel kept changing under our writes', error_code: 'CONFLICT' });

    // ours: versioned, so a change of ours made meanwhile is never overwritten
    if (toOurs.length > 0) {
      const now = new Date(this.o.clock.now()).toISOString();
      const input = toOurs.map((b) => ({ sku: b.pair.sku, stock: b.d.stock, version: b.pair.item.version, changed_at: b.pair.record.changedAt ?? now }));
      const { rows } = await this.o.pool.query<{ sku: string; version: string; changed_at: Date }>(
        `UPDATE inventory_items i SET stock = x.stock, version = i.version + 1, changed_at = x.changed_at, source = $3, updated_at = now()
           FROM jsonb_to_recordset($2::jsonb) AS x(sku text, stock int, version bigint, changed_at timestamptz)
          WHERE i.tenant_id = $1 AND i.sku = x.sku AND i.version = x.version
          RETURNING i.sku, i.version::text, i.changed_at`,
        [step.tenantId, JSON.stringify(input), `channel:${step.provider}`],
      );
      const written = new Map(rows.map((r) => [r.sku, r]));
      for (const b of toOurs) {
        const w = written.get(b.pair.sku);
        if (w) {
          logs.push({ ...blank(b.pair.sku, step.direction), outcome: b.d.conflict ? 'conflict' : 'synced', our_stock: b.pair.item.stock, channel_stock: b.pair.record.stock, resolved_stock: b.d.stock, action: 'write_ours', reason: b.d.reason, changed_at: w.changed_at.toISOString() });
          baselines.push({ sku: b.pair.sku, stock: b.d.stock, version: w.version, channel: b.pair.record.stock, channelAt: b.pair.record.changedAt });
        } else {
          logs.push({ ...blank(b.pair.sku, step.direction), outcome: 'failed', our_stock: b.pair.item.stock, channel_stock: b.pair.record.stock, action: 'write_ours', reason: 'our stock changed while the channel change was applied: the next step compares again', error_code: 'CONCURRENT_CHANGE' });
        }
      }
      if (rows.length > 0) {
        await this.o.fanOut(step.tenantId, rows.map((r) => r.sku), { tenantId: step.tenantId, provider: step.provider, account: step.account }).catch((err: unknown) => {
          this.o.log.warn({ err, tenantId: step.tenantId }, 'fanning a channel change out to the other channels failed; the next poll pushes it');
        });
      }
    }

    for (const c of conflicts) {
      const { rows } = await this.o.pool.query<{ id: string }>(
        `INSERT INTO integration_conflicts (tenant_id, service, connection_id, sku, our_stock, channel_stock, our_changed_at, channel_changed_at, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, service, connection_id, sku) WHERE status = 'open' DO UPDATE SET our_stock = EXCLUDED.our_stock, channel_stock = EXCLUDED.channel_stock
         RETURNING id::text`,
        [step.tenantId, step.provider, step.account, c.pair.sku, c.pair.item.stock, c.pair.record.stock, c.pair.item.changed_at, c.pair.record.changedAt, c.d.reason],
      );
      logs.push({ ...blank(c.pair.sku, step.direction), outcome: 'conflict', our_stock: c.pair.item.stock, channel_stock: c.pair.record.stock, action: 'open_conflict', reason: `${c.d.reason} (conflict ${rows[0]!.id})` });
    }

    if (baselines.length > 0) {
      await this.o.pool.query(
        `UPDATE integration_mappings m SET synced_stock = x.stock, synced_version = COALESCE(x.version, m.synced_version), channel_stock = x.channel,
                channel_changed_at = COALESCE(x.channel_at, m.channel_changed_at), last_synced_at = now(), updated_at = now()
           FROM jsonb_to_recordset($4::jsonb) AS x(sku text, stock int, version bigint, channel int, channel_at timestamptz)
          WHERE m.tenant_id = $1 AND m.service = $2 AND m.connection_id = $3 AND m.sku = x.sku`,
        [step.tenantId, step.provider, step.account, JSON.stringify(baselines.map((b) => ({ sku: b.sku, stock: b.stock, version: b.version, channel: b.channel, channel_at: b.channelAt })))],
      );
    }
    return logs;
  }

  // --- SQL ---------------------------------------------------------------------------------------

  /** The connection's conflict strategy (`most_recent` until one is set). */
  async strategy(tenantId: string, provider: string): Promise<ConflictStrategy> {
    const { rows } = await this.o.pool.query<{ conflict_strategy: ConflictStrategy }>('SELECT conflict_strategy FROM integration_sync_config WHERE tenant_id = $1 AND service = $2', [tenantId, provider]);
    return rows[0]?.conflict_strategy ?? 'most_recent';
  }

  async #items(tenantId: string, skus: string[]): Promise<Map<string, ItemRow>> {
    if (skus.length === 0) return new Map();
    const { rows } = await this.o.pool.query<ItemRow>('SELECT sku, stock, version::text, changed_at FROM inventory_items WHERE tenant_id = $1 AND sku = ANY($2::text[])', [tenantId, skus]);
    return new Map(rows.map((r) => [r.sku, r]));
  }

  async #openConflicts(w: Who, skus: string[]): Promise<Map<string, string>> {
    if (skus.length === 0) return new Map();
    const { rows } = await this.o.pool.query<{ sku: string; id: string }>(
      `SELECT sku, id::text FROM integration_conflicts WHERE tenant_id = $1 AND service = $2 AND connection_id = $3 AND status = 'open' AND sku = ANY($4::text[])`,
      [w.tenantId, w.provider, w.account, skus],
    );
    return new Map(rows.map((r) => [r.sku, r.id]));
  }

  async #mappingsBySku(w: Who, skus: string[]): Promise<Map<string, MappingRow>> {
    const { rows } = await this.o.pool.query<MappingRow>(
      'SELECT sku, external_key, external_ids, source, synced_stock FROM integration_mappings WHERE tenant_id = $1 AND service = $2 AND connection_id = $3 AND sku = ANY($4::text[])',
      [w.tenantId, w.provider, w.account, skus],
    );
    return new Map(rows.map((r) => [r.sku, r]));
  }

  /** Mappings of SKUs whose stock changed since it was last synced with this connection, after `after`. */
  async #dirty(w: Who, after: string, limit: number): Promise<MappingRow[]> {
    const { rows } = await this.o.pool.query<MappingRow>(
      `SELECT m.sku, m.external_key, m.external_ids, m.source, m.synced_stock FROM integration_mappings m
         JOIN inventory_items i ON i.tenant_id = m.tenant_id AND i.sku = m.sku
        WHERE m.tenant_id = $1 AND m.service = $2 AND m.connection_id = $3 AND m.sku > $4
          AND (m.synced_version IS DISTINCT FROM i.version OR m.synced_stock IS DISTINCT FROM i.stock)
        ORDER BY m.sku LIMIT $5`,
      [w.tenantId, w.provider, w.account, after, limit],
    );
    return rows;
  }

  async #lastSynced(w: Who, which: 'min' | 'max' = 'max'): Promise<string> {
    const { rows } = await this.o.pool.query<{ at: Date | null }>(`SELECT ${which}(last_synced_at) AS at FROM integration_mappings WHERE tenant_id = $1 AND service = $2 AND connection_id = $3`, [w.tenantId, w.provider, w.account]);
    return (rows[0]?.at ?? new Date(this.o.clock.now() - 3_600_000)).toISOString();
  }

  /**
   * Records the SKU -> channel record mappings a sync found (a hand-made mapping is never
   * replaced); answers the mapping of each SKU that now points at its record.
   */
  async #upsertMappings(step: Step, fresh: Array<{ sku: string; record: ChannelRecord }>): Promise<Map<string, MappingRow>> {
    const input = fresh.map((f) => ({ sku: f.sku, external_key: f.record.externalKey, external_ids: f.record.externalIds }));
    // a record already mapped (by hand) to another SKU is left out: ON CONFLICT takes one target,
    // so those are filtered first
    const { rows } = await this.o.pool.query<MappingRow>(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($4::jsonb) AS x(sku text, external_key text, external_ids jsonb)
          WHERE NOT EXISTS (SELECT 1 FROM integration_mappings o WHERE o.service = $2 AND o.connection_id = $3 AND o.external_key = x.external_key AND o.sku <> x.sku)
       )
       INSERT INTO integration_mappings AS m (tenant_id, service, connection_id, sku, external_key, external_ids, source)
       SELECT $1, $2, $3, sku, external_key, external_ids, 'sync' FROM x
       ON CONFLICT (tenant_id, service, connection_id, sku) DO UPDATE
          SET external_key = EXCLUDED.external_key, external_ids = EXCLUDED.external_ids, synced_stock = NULL, synced_version = NULL, channel_changed_at = NULL, updated_at = now()
        WHERE m.source = 'sync'
       RETURNING sku, external_key, external_ids, source, synced_stock, channel_stock, channel_changed_at`,
      [step.tenantId, step.provider, step.account, JSON.stringify(input)],
    );
    this.o.stats?.changed('integration_mappings', rows.length);
    return new Map(rows.map((r) => [r.sku, r]));
  }

  async #unsyncable(step: Step, list: Array<{ externalKey: string; sku: string | null; reason: string }>): Promise<void> {
    if (list.length === 0) return;
    await this.#log(step, list.map((u) => ({ ...blank(u.sku ?? u.externalKey, step.direction), outcome: 'unmapped', reason: u.reason })));
  }

  async #unmappedOurs(step: Step): Promise<void> {
    await this.o.pool.query(
      `INSERT INTO integration_sync_logs (tenant_id, service, connection_id, sync_id, op_key, sku, direction, outcome, our_stock, reason)
       SELECT i.tenant_id, $2, $3, $4, $5, i.sku, $6, 'unmapped', i.stock, 'no record at the channel lists this SKU'
         FROM inventory_items i
        WHERE i.tenant_id = $1
          AND NOT EXISTS (SELECT 1 FROM integration_mappings m WHERE m.tenant_id = i.tenant_id AND m.service = $2 AND m.connection_id = $3 AND m.sku = i.sku)
       ON CONFLICT (op_key, sku) DO NOTHING`,
      [step.tenantId, step.provider, step.account, step.syncId, step.opKey, step.direction],
    );
  }

  async #log(step: Step, logs: LogRow[]): Promise<void> {
    if (logs.length === 0) return;
    await this.o.pool.query(
      `INSERT INTO integration_sync_logs (tenant_id, service, connection_id, sync_id, op_key, sku, direction, outcome, our_stock, channel_stock, resolved_stock, action, reason, error_code, changed_at)
       SELECT $1, $2, $3, $4, $5, x.sku, x.direction, x.outcome, x.our_stock, x.channel_stock, x.resolved_stock, x.action, x.reason, x.error_code, x.changed_at
         FROM jsonb_to_recordset($6::jsonb) AS x(sku text, direction text, outcome text, our_stock int, channel_stock int, resolved_stock int, action text, reason text, error_code text, changed_at timestamptz)
       ON CONFLICT (op_key, sku) DO NOTHING`,
      [step.tenantId, step.provider, step.account, step.syncId, step.opKey, JSON.stringify(logs)],
    );
  }

  /** A step's answer, read back from its log: the same however often the step ran. */
  async #summary(keys: string[], via: string): Promise<StepOutput> {
    const { rows } = await this.o.pool.query<{ sku: string; outcome: LogRow['outcome']; action: string | null; our_stock: number | null; resolved_stock: number | null; reason: string | null; changed_at: Date | null }>(
      'SELECT sku, outcome, action, our_stock, resolved_stock, reason, changed_at FROM integration_sync_logs WHERE op_key = ANY($1::text[])',
      [keys],
    );
    const out = { total: rows.length, synced: 0, unchanged: 0, failed: 0, conflicts: 0, unmapped: 0 };
    const updates: InventoryUpdate[] = [];
    for (const r of rows) {
      if (r.outcome === 'synced') out.synced++;
      else if (r.outcome === 'unchanged') out.unchanged++;
      else if (r.outcome === 'failed') out.failed++;
      else if (r.outcome === 'conflict') out.conflicts++;
      else if (r.outcome === 'unmapped') out.unmapped++;
      if (r.action === 'write_ours' && r.resolved_stock !== null && r.changed_at) {
        updates.push({ sku: r.sku, stock: r.resolved_stock, previousStock: r.our_stock, changedAt: r.changed_at.toISOString(), via, ...(r.outcome === 'conflict' ? { conflict: true, reason: r.reason ?? '' } : {}) });
      }
    }
    return { ...out, updates };
  }
}

function blank(sku: string, direction: SyncDirection): LogRow {
  return { sku, direction, outcome: 'unchanged', our_stock: null, channel_stock: null, resolved_stock: null, action: null, reason: null, error_code: null, changed_at: null };
}
