/**
 * One channel's stock as the sync engine sees it: read a page of every SKU, read one record,
 * write stocks with compare-and-set, read what a webhook points at, poll for changes since a
 * cursor. Every provider call goes through the outbound door (`OutboundCalls.call`: budget,
 * retries, breaker, refresh-on-401); nothing here calls a provider directly.
 */
import { createHash } from 'node:crypto';
import { isConnectorError } from '../../../connectors/kit/errors.js';
import { itemToRecords, MULTIGET_MAX, OFFSET_CAP, type MLItem } from '../../../connectors/mercadolibre/index.js';
import { levelPayloadIds, type InventoryLevelPayload, type ShopifyInventoryItem, type ShopifyInventoryLevel, type ShopifyLocation, type ShopifyVariant } from '../../../connectors/shopify/index.js';
import type { Provider } from '../../../machines/integration/index.js';
import type { ConnectionRef, OutboundCalls } from '../outbound/types.js';

/** One SKU's record at a channel. */
export interface ChannelRecord {
  /** Null: the channel's record has no SKU (reported unmapped, never guessed). */
  sku: string | null;
  /** Unique per connection: what a webhook or poll names (`<inventoryItem>|<location>`, `<item>|<variation>`). */
  externalKey: string;
  externalIds: Record<string, string | number>;
  stock: number;
  changedAt: string | null;
}

export interface ChannelPage {
  records: ChannelRecord[];
  /** Records the channel lists that cannot be synced (no level at the location), as unmapped. */
  unsyncable: Array<{ externalKey: string; sku: string | null; reason: string }>;
  cursor: unknown;
  done: boolean;
}

export interface WriteItem {
  key: string;
  externalIds: Record<string, string | number>;
  stock: number;
  /** The stock we read at the channel: the write applies only if it is still there. */
  expected: number;
}

export type WriteResult = { ok: true } | { ok: false; stale: boolean; code: string; message: string };

export interface Channel {
  readonly provider: Provider;
  /** A page of every record, from `cursor` (null: the first). */
  readPage(cursor: unknown, key: string): Promise<ChannelPage>;
  /** The current records behind these mappings (missing ones are left out). */
  readMany(ids: Array<Record<string, string | number>>, key: string): Promise<ChannelRecord[]>;
  /** Writes each stock compare-and-set; a stale one is answered `stale` and nothing of it is written. */
  write(items: WriteItem[], key: string): Promise<Map<string, WriteResult>>;
  /** The records a webhook row is about (Shopify: its payload, signed; MercadoLibre: fetched). */
  fromWebhook(topic: string, payload: unknown, resource: string | null, key: string): Promise<ChannelRecord[]>;
  /** Records changed since `cursor` (null: since `fallbackSince`); the next cursor. */
  poll(cursor: unknown, fallbackSince: string, key: string): Promise<{ records: ChannelRecord[]; cursor: unknown }>;
  /** The external key of manually given ids (validated), for `PUT .../mappings/{sku}`. */
  keyOf(ids: Record<string, unknown>): { externalKey: string; externalIds: Record<string, string | number> };
}

const hash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

/**
 * Items per channel page. Shopify allows 250 per connection page, but this page's query (levels
 * with their items and SKUs) then costs more than the 1000 points a query may ask: 250 fails the
 * sync with MAX_COST_EXCEEDED at the fake (tried, h-sync2).
 */
const PAGE = 100;

// --- Shopify -------------------------------------------------------------------------------------

const available = (lv: ShopifyInventoryLevel): number => lv.quantities.find((q) => q.name === 'available')?.quantity ?? 0;

export class ShopifyChannel implements Channel {
  readonly provider = 'shopify' as const;
  #location: string | undefined;

  constructor(
    private readonly outbound: OutboundCalls,
    private readonly ref: ConnectionRef,
  ) {}

  keyOf(ids: Record<string, unknown>) {
    const item = ids.inventoryItemId;
    const location = ids.locationId;
    if (typeof item !== 'string' || !/^gid:\/\/shopify\/InventoryItem\/\d+$/.test(item)) throw new TypeError('inventoryItemId must be a gid://shopify/InventoryItem/<id>');
    if (typeof location !== 'string' || !/^gid:\/\/shopify\/Location\/\d+$/.test(location)) throw new TypeError('locationId must be a gid://shopify/Location/<id>');
    return { externalKey: `${item}|${location}`, externalIds: { inventoryItemId: item, locationId: location } };
  }

  async #call<T>(operation: string, input: unknown, key: string, o: { write?: boolean } = {}): Promise<T> {
    // a write that fails is the sync's item outcome (logged, retried by the next step): a stale
    // compare-and-set is expected, not a dead letter
    return this.outbound.call<T>(this.ref, { operation, input, idempotencyKey: key, ...(o.write ? { deadLetter: false } : {}) });
  }

  /** The shop's first active location: where a full sync reads and writes. */
  async location(key: string): Promise<string> {
    if (this.#location) return this.#location;
    const r = await this.#call<{ locations: ShopifyLocation[] }>('listLocations', { first: 50 }, `${key}:locations`);
    const loc = r.locations.find((l) => l.isActive) ?? r.locations[0];
    if (!loc) throw new TypeError('the shop has no location');
    this.#location = loc.id;
    return loc.id;
  }

  #record(v: { sku: string | null; inventoryItemId: string; variantId: string | null; productId: string | null }, lv: ShopifyInventoryLevel): ChannelRecord {
    return {
      sku: v.sku || null,
      externalKey: `${v.inventoryItemId}|${lv.location.id}`,
      externalIds: { inventoryItemId: v.inventoryItemId, locationId: lv.location.id, ...(v.variantId ? { variantId: v.variantId } : {}), ...(v.productId ? { productId: v.productId } : {}) },
      stock: available(lv),
      changedAt: lv.updatedAt,
    };
  }

  async readPage(cursor: unknown, key: string): Promise<ChannelPage> {
    const c = (cursor ?? {}) as { locationId?: string; after?: string | null };
    const locationId = c.locationId ?? (await this.location(key));
    const r = await this.#call<{ variants: ShopifyVariant[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>(
      'listVariants',
      { locationId, first: PAGE, after: c.after ?? null },
      `${key}:read`,
    );
    const records: ChannelRecord[] = [];
    const unsyncable: ChannelPage['unsyncable'] = [];
    for (const v of r.variants) {
      const lv = v.inventoryItem.inventoryLevel;
      if (!lv) {
        unsyncable.push({ externalKey: `${v.inventoryItem.id}|${locationId}`, sku: v.sku || null, reason: 'not stocked at the location' });
        continue;
      }
      records.push(this.#record({ sku: v.sku, inventoryItemId: v.inventoryItem.id, variantId: v.id, productId: v.product.id }, lv));
    }
    const done = !r.pageInfo.hasNextPage || !r.pageInfo.endCursor;
    return { records, unsyncable, cursor: done ? null : { locationId, after: r.pageInfo.endCursor }, done };
  }

  async readMany(ids: Array<Record<string, string | number>>, key: string): Promise<ChannelRecord[]> {
    const out = await Promise.all(
      ids.map(async (id) => {
        try {
          const r = await this.#call<{ sku: string | null; variantId: string | null; productId: string | null; level: ShopifyInventoryLevel | null }>(
            'getInventoryLevel',
            { inventoryItemId: id.inventoryItemId, locationId: id.locationId },
            `${key}:read:${String(id.inventoryItemId)}`,
          );
          return r.level ? this.#record({ sku: r.sku, inventoryItemId: String(id.inventoryItemId), variantId: r.variantId, productId: r.productId }, r.level) : null;
        } catch (err) {
          if (isConnectorError(err) && err.code === 'NOT_FOUND') return null;
          throw err;
        }
      }),
    );
    return out.filter((r): r is ChannelRecord => r !== null);
  }

  async write(items: WriteItem[], key: string): Promise<Map<string, WriteResult>> {
    const results = new Map<string, WriteResult>();
    if (items.length === 0) return results;
    const quantities = (list: WriteItem[]) =>
      list.map((i) => ({ inventoryItemId: String(i.externalIds.inventoryItemId), locationId: String(i.externalIds.locationId), quantity: i.stock, changeFromQuantity: i.expected }));
    const one = async (list: WriteItem[]): Promise<void> => {
      const q = quantities(list);
      try {
        // the key carries the arguments: a replay after a crash is answered the first answer, a
        // different write is a new one (Shopify refuses a reused key with other arguments)
        await this.#call('setQuantities', { name: 'available', reason: 'correction', quantities: q }, `${key}:set:${hash(q)}`, { write: true });
        for (const i of list) results.set(i.key, { ok: true });
      } catch (err) {
        const code = isConnectorError(err) ? err.code : 'UNKNOWN';
        const message = err instanceof Error ? err.message : String(err);
        if (code === 'CONFLICT' && list.length > 1) {
          // one stale quantity fails the whole set (nothing applied): write one by one to find it
          for (const i of list) await one([i]);
          return;
        }
        for (const i of list) results.set(i.key, { ok: false, stale: code === 'CONFLICT', code, message });
      }
    };
    for (let i = 0; i < items.length; i += 100) await one(items.slice(i, i + 100));
    return results;
  }

  async fromWebhook(topic: string, payload: unknown): Promise<ChannelRecord[]> {
    if (topic !== 'inventory_levels/update' || !payload || typeof payload !== 'object') return [];
    const p = levelPayloadIds(payload as InventoryLevelPayload);
    if (p.available === null || p.available === undefined) return [];
    // signed by Shopify and checked stale by Triggered-At at intake: the payload is the level
    return [{ sku: null, externalKey: `${p.inventoryItemId}|${p.locationId}`, externalIds: { inventoryItemId: p.inventoryItemId, locationId: p.locationId }, stock: p.available, changedAt: p.updatedAt ?? null }];
  }

  async poll(cursor: unknown, fallbackSince: string, key: string): Promise<{ records: ChannelRecord[]; cursor: unknown }> {
    const since = typeof cursor === 'string' ? cursor : fallbackSince;
    const locationId = await this.location(key);
    const records: ChannelRecord[] = [];
    let after: string | null = null;
    let newest = since;
    for (let page = 0; page < 20; page++) {
      const r: { items: ShopifyInventoryItem[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } = await this.#call('listInventoryItems', { locationId, first: PAGE, after, query: `updated_at:>'${since}'` }, `${key}:poll:${page}`);
      for (const it of r.items) {
        if (it.updatedAt > newest) newest = it.updatedAt;
        if (it.inventoryLevel) records.push(this.#record({ sku: it.sku, inventoryItemId: it.id, variantId: it.variant?.id ?? null, productId: it.variant?.product.id ?? null }, it.inventoryLevel));
      }
      if (!r.pageInfo.hasNextPage || !r.pageInfo.endCursor) break;
      after = r.pageInfo.endCursor;
    }
    return { records, cursor: newest };
  }
}

// --- MercadoLibre --------------------------------------------------------------------------------

const mlKey = (itemId: string, variationId?: number) => `${itemId}|${variationId ?? ''}`;

function mlRecords(item: MLItem): ChannelRecord[] {
  return itemToRecords(item).map((r) => ({
    sku: r.sku,
    externalKey: mlKey(r.externalIds.itemId, r.externalIds.variationId),
    externalIds: { itemId: r.externalIds.itemId, ...(r.externalIds.variationId === undefined ? {} : { variationId: r.externalIds.variationId }) },
    stock: r.stock,
    changedAt: item.last_updated ?? null,
  }));
}

export class MercadoLibreChannel implements Channel {
  readonly provider = 'mercadolibre' as const;

  constructor(
    private readonly outbound: OutboundCalls,
    private readonly ref: ConnectionRef,
  ) {}

  keyOf(ids: Record<string, unknown>) {
    const itemId = ids.itemId;
    const variationId = ids.variationId;
    if (typeof itemId !== 'string' || !/^[A-Z]{3}\d+$/.test(itemId)) throw new TypeError('itemId must be a MercadoLibre item id such as MLA123');
    if (variationId !== undefined && variationId !== null && !(typeof variationId === 'number' && Number.isSafeInteger(variationId) && variationId > 0)) throw new TypeError('variationId must be a positive integer');
    const v = typeof variationId === 'number' ? variationId : undefined;
    return { externalKey: mlKey(itemId, v), externalIds: { itemId, ...(v === undefined ? {} : { variationId: v }) } };
  }

  /** `requests`: what the call costs ML's budget, which counts HTTP requests (a stock write is a read and a PUT). */
  #call<T>(operation: string, input: unknown, key: string, write = false, requests = 1): Promise<T> {
    return this.outbound.call<T>(this.ref, { operation, input, idempotencyKey: key, ...(requests === 1 ? {} : { requests }), ...(write ? { deadLetter: false } : {}) });
  }

  /** Items by id, one multiget call (one request: the budget counts requests) per 20 ids. */
  async #items(ids: string[], key: string): Promise<MLItem[]> {
    const out: MLItem[] = [];
    for (let i = 0; i < ids.length; i += MULTIGET_MAX) {
      const chunk = ids.slice(i, i + MULTIGET_MAX);
      const r = await this.#call<{ items: MLItem[] }>('multiget', { ids: chunk, attributes: ['id', 'available_quantity', 'variations', 'seller_custom_field', 'attributes', 'last_updated'] }, `${key}:${i}`);
      out.push(...r.items);
    }
    return out;
  }

  async readPage(cursor: unknown, key: string): Promise<ChannelPage> {
    const c = (cursor ?? { offset: 0 }) as { offset?: number; scrollId?: string | null; scan?: boolean };
    let ids: string[];
    let next: unknown;
    let done: boolean;
    if (!c.scan) {
      const offset = c.offset ?? 0;
      const r = await this.#call<{ ids: string[]; total: number }>('searchItems', { offset, limit: 50 }, `${key}:search`);
      if (r.total > OFFSET_CAP) {
        // past ML's offset cap: scan from the start instead (this page reads nothing)
        return { records: [], unsyncable: [], cursor: { scan: true, scrollId: null }, done: false };
      }
      ids = r.ids;
      done = offset + 50 >= r.total || r.ids.length === 0;
      next = done ? null : { offset: offset + 50 };
    } else {
      const r = await this.#call<{ ids: string[]; scrollId: string; done: boolean }>('scanItems', { scrollId: c.scrollId ?? null, limit: 100 }, `${key}:scan`);
      ids = r.ids;
      done = r.done;
      next = done ? null : { scan: true, scrollId: r.scrollId };
    }
    const items = await this.#items(ids, `${key}:items`);
    const records = items.flatMap(mlRecords);
    const unsyncable = items.filter((it) => mlRecords(it).length === 0).map((it) => ({ externalKey: mlKey(it.id), sku: null, reason: 'no SKU (seller_custom_field or SELLER_SKU)' }));
    return { records, unsyncable, cursor: next, done };
  }

  async readMany(ids: Array<Record<string, string | number>>, key: string): Promise<ChannelRecord[]> {
    const items = await this.#items([...new Set(ids.map((i) => String(i.itemId)))], `${key}:items`);
    const wanted = new Set(ids.map((i) => mlKey(String(i.itemId), i.variationId === undefined ? undefined : Number(i.variationId))));
    return items.flatMap(mlRecords).filter((r) => wanted.has(r.externalKey));
  }

  async write(items: WriteItem[], key: string): Promise<Map<string, WriteResult>> {
    const results = new Map<string, WriteResult>();
    // no batch write at ML: one PUT per item (setStock reads first: `expected` is checked just before it)
    for (const i of items) {
      const input = { itemId: String(i.externalIds.itemId), ...(i.externalIds.variationId === undefined ? {} : { variationId: Number(i.externalIds.variationId) }), quantity: i.stock, expected: i.expected };
      try {
        // two requests (connectors/mercadolibre setStock: the item read that checks `expected`, then the PUT)
        await this.#call('setStock', input, `${key}:set:${hash(input)}`, true, 2);
        results.set(i.key, { ok: true });
      } catch (err) {
        const code = isConnectorError(err) ? err.code : 'UNKNOWN';
        results.set(i.key, { ok: false, stale: code === 'CONFLICT', code, message: err instanceof Error ? err.message : String(err) });
      }
    }
    return results;
  }

  async fromWebhook(topic: string, _payload: unknown, resource: string | null, key: string): Promise<ChannelRecord[]> {
    const m = resource ? /^\/items\/([A-Z]{3}\d+)$/.exec(resource) : null;
    if (topic !== 'items' || !m) return [];
    // never the body's claims: the item is fetched with the seller's token
    const item = await this.#call<MLItem>('getItem', { itemId: m[1], attributes: ['id', 'available_quantity', 'variations', 'seller_custom_field', 'attributes', 'last_updated'] }, `${key}:item`);
    return mlRecords(item);
  }

  /**
   * MercadoLibre has no "changed since" item search; what a webhook missed is in `/missed_feeds`
   * (the notifications ML could not deliver, kept 2 days). The poll reads its `items` messages of
   * this seller received after the cursor (`{ since, ids }`: the newest time read and the ids
   * at that time; first poll: `fallbackSince`), and reads those items (multiget) like a webhook.
   */
  async poll(cursor: unknown, fallbackSince: string, key: string): Promise<{ records: ChannelRecord[]; cursor: unknown }> {
    const c = (cursor ?? null) as { since?: string; ids?: string[] } | null;
    const since = c?.since ?? fallbackSince;
    const sinceMs = Date.parse(since);
    const seen = new Set(c?.ids ?? []);
    let newest = c?.since ?? since;
    let atNewest = new Set(c?.ids ?? []);
    const itemIds = new Set<string>();
    for (let page = 0, offset = 0; page < MISSED_PAGES; page++) {
      const r = await this.#call<{ messages: Array<{ id: string; resource: string; received: string }>; total: number; limit: number }>('missedFeeds', { topic: 'items', offset, limit: MISSED_PAGE }, `${key}:missed:${page}`);
      for (const m of r.messages) {
        const at = Date.parse(m.received);
        if (!Number.isFinite(at) || at < sinceMs || (at === sinceMs && seen.has(m.id))) continue;
        const item = /^\/items\/([A-Z]{3}\d+)$/.exec(m.resource);
        if (item) itemIds.add(item[1]!);
        const nAt = Date.parse(newest);
        if (!Number.isFinite(nAt) || at > nAt) {
          newest = m.received;
          atNewest = new Set([m.id]);
        } else if (at === nAt) atNewest.add(m.id);
      }
      offset += MISSED_PAGE;
      if (offset >= r.total) break;
    }
    const records = itemIds.size === 0 ? [] : (await this.#items([...itemIds], `${key}:items`)).flatMap(mlRecords);
    return { records, cursor: { since: newest, ids: [...atNewest] } };
  }
}

/** `/missed_feeds` page size, and the most pages one poll reads (ML keeps 2 days of them). */
const MISSED_PAGE = 50;
const MISSED_PAGES = 20;

export function channelFor(outbound: OutboundCalls, ref: ConnectionRef): Channel {
  if (ref.provider === 'shopify') return new ShopifyChannel(outbound, ref);
  if (ref.provider === 'mercadolibre') return new MercadoLibreChannel(outbound, ref);
  throw new TypeError(`no inventory channel for ${ref.provider}`);
}
