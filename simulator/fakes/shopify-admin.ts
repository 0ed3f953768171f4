/**
 * The Shopify fake's store data and its GraphQL Admin resolvers: products, variants, inventory
 * items, locations, inventory levels, inventory mutations with compare-and-set and idempotency
 * keys, and webhook subscriptions. Ids are numbers inside Shopify GIDs
 * (`gid://shopify/InventoryItem/123`).
 */
import { FieldError } from './graphql.js';
import { connection, matchesSearch } from './shopify-connection.js';

export interface Product {
  id: number;
  title: string;
  handle: string;
  createdAt: string;
  updatedAt: string;
  variantIds: number[];
}
export interface Variant {
  id: number;
  productId: number;
  sku: string;
  title: string;
  price: string;
  inventoryItemId: number;
  updatedAt: string;
}
export interface InventoryItem {
  id: number;
  sku: string;
  variantId: number;
  tracked: boolean;
  createdAt: string;
  updatedAt: string;
}
export interface Location {
  id: number;
  name: string;
  isActive: boolean;
}
export interface Level {
  itemId: number;
  locationId: number;
  available: number;
  committed: number;
  createdAt: string;
  updatedAt: string;
}
export interface WebhookSubscription {
  id: number;
  topic: string;
  uri: string;
  format: string;
  createdAt: string;
}

/** One store's data. */
export class ShopData {
  readonly products = new Map<number, Product>();
  readonly variants = new Map<number, Variant>();
  readonly items = new Map<number, InventoryItem>();
  readonly locations = new Map<number, Location>();
  readonly levels = new Map<string, Level>();
  readonly webhookSubscriptions = new Map<number, WebhookSubscription>();
  /** `@idempotent` keys: what the first request asked and answered. */
  readonly idempotency = new Map<string, { fingerprint: string; data: unknown }>();
  constructor(readonly domain: string) {}

  itemBySku(sku: string): InventoryItem | undefined {
    for (const i of this.items.values()) if (i.sku === sku) return i;
    return undefined;
  }
  level(itemId: number, locationId: number): Level | undefined {
    return this.levels.get(`${itemId}:${locationId}`);
  }
  levelsOfItem(itemId: number): Level[] {
    // an index by item, rebuilt when levels were added (they are never removed): a scan of every
    // level per item made a full sync's reads quadratic in the fake
    if (this.#byItemSize !== this.levels.size) {
      this.#byItem.clear();
      for (const l of this.levels.values()) {
        let list = this.#byItem.get(l.itemId);
        if (!list) this.#byItem.set(l.itemId, (list = []));
        list.push(l);
      }
      this.#byItemSize = this.levels.size;
    }
    return [...(this.#byItem.get(itemId) ?? [])];
  }
  readonly #byItem = new Map<number, Level[]>();
  #byItemSize = -1;
  defaultLocation(): Location | undefined {
    return this.locations.values().next().value;
  }
}

export const gid = (type: string, id: number | string) => `gid://shopify/${type}/${id}`;

/** The number in a GID of the given type, or undefined when it is not one. */
export function gidNumber(value: unknown, type: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = new RegExp(`^gid://shopify/${type}/(\\d+)(\\?.*)?$`).exec(value);
  return m ? Number(m[1]) : undefined;
}

/** What the resolvers need from the server around them. */
export interface AdminContext {
  shop: ShopData;
  version: string;
  now: () => string;
  nextId: () => number;
  /** Called after quantities changed (the server sends `inventory_levels/update` webhooks). */
  onLevelChanged: (level: Level) => void;
  /** The token's scopes, to refuse fields it may not read or write. */
  scopes: Set<string>;
}

/** `'unstable'` is newer than every dated version. */
export const versionAtLeast = (version: string, min: string) => (version === 'unstable' ? true : version >= min);

export function quantityOf(level: Level, name: string): number {
  switch (name) {
    case 'available':
      return level.available;
    case 'committed':
      return level.committed;
    case 'on_hand':
      return level.available + level.committed;
    default:
      return 0; // incoming, reserved, damaged, safety_stock, quality_control: not modelled
  }
}

const READ_SCOPE: Record<string, string> = {
  products: 'read_products',
  product: 'read_products',
  productVariants: 'read_products',
  productVariant: 'read_products',
  inventoryItems: 'read_inventory',
  inventoryItem: 'read_inventory',
  inventoryLevel: 'read_inventory',
  locations: 'read_locations',
  location: 'read_locations',
  inventorySetQuantities: 'write_inventory',
  inventoryAdjustQuantities: 'write_inventory',
};

/** Refuses a root field the token's scopes do not cover (write_x covers read_x). */
export function checkScope(field: string, scopes: Set<string>): void {
  const need = READ_SCOPE[field];
  if (!need) return;
  const alt = need.replace(/^read_/, 'write_');
  if (scopes.has(need) || scopes.has(alt)) return;
  throw new FieldError(`Access denied for ${field} field. Required access: \`${need}\` access scope.`, { code: 'ACCESS_DENIED', documentation: 'https://shopify.dev/api/usage/access-scopes' });
}

const REASONS = new Set([
  'correction', 'cycle_count_available', 'damaged', 'movement_created', 'movement_updated', 'movement_received', 'movement_canceled',
  'other', 'promotion', 'quality_control', 'received', 'reservation_created', 'reservation_deleted', 'reservation_updated', 'restock',
  'safety_stock', 'shrinkage',
]);

type UserError = { __typename: string; code: string; field: (string | number)[]; message: string };

/** The GraphQL root objects for one request. */
export function adminRoot(ctx: AdminContext) {
  const { shop } = ctx;

  const location = (l: Location): unknown => ({
    __typename: 'Location',
    id: gid('Location', l.id),
    legacyResourceId: String(l.id),
    name: l.name,
    isActive: l.isActive,
    fulfillsOnlineOrders: true,
    inventoryLevels: (a: Record<string, unknown>) =>
      connection('InventoryLevel', [...shop.levels.values()].filter((x) => x.locationId === l.id).map(levelSortable), a, (x) => level(x.level)),
    inventoryLevel: (a: Record<string, unknown>) => {
      const lv = shop.level(gidNumber(a.inventoryItemId, 'InventoryItem') ?? -1, l.id);
      return lv ? level(lv) : null;
    },
  });

  const levelSortable = (lv: Level) => ({ id: lv.locationId * 1e6 + lv.itemId, updatedAt: lv.updatedAt, level: lv });

  const level = (lv: Level): unknown => ({
    __typename: 'InventoryLevel',
    id: `${gid('InventoryLevel', lv.locationId)}?inventory_item_id=${lv.itemId}`,
    createdAt: lv.createdAt,
    updatedAt: lv.updatedAt,
    canDeactivate: true,
    isActive: true,
    item: () => item(shop.items.get(lv.itemId)!),
    location: () => location(shop.locations.get(lv.locationId)!),
    quantities: (a: Record<string, unknown>) => {
      const names = Array.isArray(a.names) ? (a.names as string[]) : ['available', 'on_hand'];
      return names.map((name) => ({ __typename: 'InventoryQuantity', id: `gid://shopify/InventoryQuantity/${lv.locationId}?inventory_item_id=${lv.itemId}&name=${name}`, name, quantity: quantityOf(lv, name), updatedAt: lv.updatedAt }));
    },
  });

  const item = (i: InventoryItem): unknown => ({
    __typename: 'InventoryItem',
    id: gid('InventoryItem', i.id),
    legacyResourceId: String(i.id),
    sku: i.sku,
    tracked: i.tracked,
    requiresShipping: true,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
    variant: () => variant(shop.variants.get(i.variantId)!),
    inventoryLevels: (a: Record<string, unknown>) => connection('InventoryLevel', shop.levelsOfItem(i.id).map(levelSortable), a, (x) => level(x.level)),
    inventoryLevel: (a: Record<string, unknown>) => {
      const lv = shop.level(i.id, gidNumber(a.locationId, 'Location') ?? -1);
      return lv ? level(lv) : null;
    },
  });

  const variant = (v: Variant): unknown => ({
    __typename: 'ProductVariant',
    id: gid('ProductVariant', v.id),
    legacyResourceId: String(v.id),
    sku: v.sku,
    title: v.title,
    displayName: `${shop.products.get(v.productId)?.title ?? ''} - ${v.title}`,
    price: v.price,
    updatedAt: v.updatedAt,
    inventoryQuantity: shop.levelsOfItem(v.inventoryItemId).reduce((s, l) => s + l.available, 0),
    product: () => product(shop.products.get(v.productId)!),
    inventoryItem: () => item(shop.items.get(v.inventoryItemId)!),
  });

  const product = (p: Product): unknown => ({
    __typename: 'Product',
    id: gid('Product', p.id),
    legacyResourceId: String(p.id),
    title: p.title,
    handle: p.handle,
    status: 'ACTIVE',
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    tracksInventory: true,
    totalInventory: p.variantIds.reduce((s, id) => s + shop.levelsOfItem(shop.variants.get(id)!.inventoryItemId).reduce((t, l) => t + l.available, 0), 0),
    variants: (a: Record<string, unknown>) => connection('ProductVariant', p.variantIds.map((id) => shop.variants.get(id)!), a, variant),
  });

  const subscription = (s: WebhookSubscription): unknown => ({
    __typename: 'WebhookSubscription',
    id: gid('WebhookSubscription', s.id),
    legacyResourceId: String(s.id),
    topic: s.topic,
    format: s.format,
    uri: s.uri,
    callbackUrl: s.uri,
    endpoint: { __typename: 'WebhookHttpEndpoint', callbackUrl: s.uri },
    includeFields: [],
    metafieldNamespaces: [],
    filter: null,
    createdAt: s.createdAt,
    updatedAt: s.createdAt,
  });

  const variantsOf = (p: Product) => p.variantIds.map((id) => shop.variants.get(id)!);

  const query = {
    __typename: 'QueryRoot',
    shop: () => ({ __typename: 'Shop', id: gid('Shop', 1), name: shop.domain.split('.')[0], myshopifyDomain: shop.domain, currencyCode: 'USD', ianaTimezone: 'UTC' }),
    products: (a: Record<string, unknown>) =>
      connection(
        'Product',
        [...shop.products.values()].filter((p) =>
          matchesSearch(a.query, { sku: variantsOf(p).map((v) => v.sku), updated_at: p.updatedAt, created_at: p.createdAt, title: p.title, id: p.id }),
        ),
        a,
        product,
      ),
    product: (a: Record<string, unknown>) => {
      const p = shop.products.get(gidNumber(a.id, 'Product') ?? -1);
      return p ? product(p) : null;
    },
    productVariants: (a: Record<string, unknown>) =>
      connection('ProductVariant', [...shop.variants.values()].filter((v) => matchesSearch(a.query, { sku: v.sku, updated_at: v.updatedAt, id: v.id })), a, variant),
    productVariant: (a: Record<string, unknown>) => {
      const v = shop.variants.get(gidNumber(a.id, 'ProductVariant') ?? -1);
      return v ? variant(v) : null;
    },
    inventoryItems: (a: Record<string, unknown>) =>
      connection('InventoryItem', [...shop.items.values()].filter((i) => matchesSearch(a.query, { sku: i.sku, updated_at: i.updatedAt, created_at: i.createdAt, id: i.id })), a, item),
    inventoryItem: (a: Record<string, unknown>) => {
      const i = shop.items.get(gidNumber(a.id, 'InventoryItem') ?? -1);
      return i ? item(i) : null;
    },
    inventoryLevel: (a: Record<string, unknown>) => {
      const m = typeof a.id === 'string' ? /^gid:\/\/shopify\/InventoryLevel\/(\d+)\?inventory_item_id=(\d+)$/.exec(a.id) : null;
      const lv = m ? shop.level(Number(m[2]), Number(m[1])) : undefined;
      return lv ? level(lv) : null;
    },
    locations: (a: Record<string, unknown>) => connection('Location', [...shop.locations.values()].map((l) => ({ ...l, title: l.name })), a, location),
    location: (a: Record<string, unknown>) => {
      const l = a.id === undefined ? shop.defaultLocation() : shop.locations.get(gidNumber(a.id, 'Location') ?? -1);
      return l ? location(l) : null;
    },
    webhookSubscriptions: (a: Record<string, unknown>) => {
      const topics = Array.isArray(a.topics) ? (a.topics as string[]) : undefined;
      const list = [...shop.webhookSubscriptions.values()]
        .filter((s) => !topics || topics.includes(s.topic))
        .filter((s) => (typeof a.uri === 'string' ? s.uri === a.uri : typeof a.callbackUrl === 'string' ? s.uri === a.callbackUrl : true))
        .map((s) => ({ ...s, updatedAt: s.createdAt }));
      return connection('WebhookSubscription', list, a, subscription);
    },
  };

  /** Applies quantity changes if every one is valid; either all apply or none. */
  const applyChanges = (
    kind: 'set' | 'adjust',
    input: Record<string, unknown>,
  ): { group: unknown; userErrors: UserError[] } => {
    const errType = kind === 'set' ? 'InventorySetQuantitiesUserError' : 'InventoryAdjustQuantitiesUserError';
    const userErrors: UserError[] = [];
    const err = (code: string, field: (string | number)[], message: string) => userErrors.push({ __typename: errType, code, field, message });
    const name = String(input.name ?? '');
    if (name !== 'available' && name !== 'on_hand') err('INVALID_NAME', ['input', 'name'], "The quantity name must be either 'available' or 'on_hand'.");
    if (!REASONS.has(String(input.reason ?? ''))) err('INVALID_REASON', ['input', 'reason'], 'The specified reason is invalid.');
    const listKey = kind === 'set' ? 'quantities' : 'changes';
    const list = Array.isArray(input[listKey]) ? (input[listKey] as Record<string, unknown>[]) : [];
    const v2026_04 = versionAtLeast(ctx.version, '2026-04');
    const v2026_01 = versionAtLeast(ctx.version, '2026-01');
    const planned: Array<{ lv: Level; after: number }> = [];
    list.forEach((q, i) => {
      const at = (f: string) => ['input', listKey, i, f];
      if (v2026_04 && !('changeFromQuantity' in q)) {
        throw new FieldError(`changeFromQuantity is required for ${listKey}[${i}] from version 2026-04 (pass null to opt out of the check)`, { code: 'INVALID_FIELD_ARGUMENTS', field: at('changeFromQuantity') });
      }
      if (!v2026_01 && 'changeFromQuantity' in q) throw new FieldError(`InputObject doesn't accept argument 'changeFromQuantity' in version ${ctx.version}`, { code: 'argumentNotAccepted' });
      if (v2026_04 && 'compareQuantity' in q) throw new FieldError(`InputObject doesn't accept argument 'compareQuantity' in version ${ctx.version}`, { code: 'argumentNotAccepted' });
      const itemId = gidNumber(q.inventoryItemId, 'InventoryItem');
      const locId = gidNumber(q.locationId, 'Location');
      if (itemId === undefined || !shop.items.has(itemId)) return void err('INVALID_INVENTORY_ITEM', at('inventoryItemId'), 'The specified inventory item could not be found.');
      if (locId === undefined || !shop.locations.has(locId)) return void err('INVALID_LOCATION', at('locationId'), 'The specified location could not be found.');
      const lv = shop.level(itemId, locId);
      if (!lv) return void err('ITEM_NOT_STOCKED_AT_LOCATION', at('locationId'), 'The specified inventory item is not stocked at the location.');
      const current = quantityOf(lv, name === 'on_hand' ? 'on_hand' : 'available');
      const target = kind === 'set' ? Number(q.quantity) : current + Number(q.delta);
      if (!Number.isInteger(target)) return void err('INVALID_QUANTITY_NEGATIVE', at(kind === 'set' ? 'quantity' : 'delta'), 'The quantity must be an integer.');
      if (kind === 'set' && target < 0) return void err('INVALID_QUANTITY_NEGATIVE', at('quantity'), "The quantity can't be negative.");
      if (target > 1_000_000_000) return void err('INVALID_QUANTITY_TOO_HIGH', at(kind === 'set' ? 'quantity' : 'delta'), "The total quantity can't be higher than 1,000,000,000.");
      if ('changeFromQuantity' in q && q.changeFromQuantity !== null && q.changeFromQuantity !== undefined) {
        if (Number(q.changeFromQuantity) !== current) return void err('CHANGE_FROM_QUANTITY_STALE', at('changeFromQuantity'), 'The changeFromQuantity value does not match persisted value.');
      } else if (kind === 'set' && !v2026_04 && !('changeFromQuantity' in q) && input.ignoreCompareQuantity !== true) {
        if (q.compareQuantity === undefined || q.compareQuantity === null) return void err('COMPARE_QUANTITY_REQUIRED', at('compareQuantity'), 'The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.');
        if (Number(q.compareQuantity) !== current) return void err('COMPARE_QUANTITY_STALE', at('compareQuantity'), 'The compareQuantity value does not match persisted value.');
      }
      planned.push({ lv, after: target });
    });
    if (userErrors.length > 0) return { group: null, userErrors };
    const now = ctx.now();
    const changes: Array<{ lv: Level; name: string; delta: number; after: number }> = [];
    for (const { lv, after } of planned) {
      const delta = after - quantityOf(lv, name);
      if (delta === 0) continue;
      lv.available += delta; // on_hand = available + committed, so both move together
      lv.updatedAt = now;
      const it = shop.items.get(lv.itemId)!;
      it.updatedAt = now;
      changes.push({ lv, name: 'available', delta, after: lv.available });
      changes.push({ lv, name: 'on_hand', delta, after: quantityOf(lv, 'on_hand') });
      ctx.onLevelChanged(lv);
    }
    if (changes.length === 0 && kind === 'set') return { group: null, userErrors };
    const groupId = ctx.nextId();
    const group = {
      __typename: 'InventoryAdjustmentGroup',
      id: gid('InventoryAdjustmentGroup', groupId),
      createdAt: now,
      reason: String(input.reason),
      referenceDocumentUri: (input.referenceDocumentUri as string | undefined) ?? null,
      changes: (a: Record<string, unknown>) =>
        changes
          .filter((c) => !Array.isArray(a.quantityNames) || (a.quantityNames as string[]).includes(c.name))
          .filter((c) => !Array.isArray(a.inventoryItemIds) || (a.inventoryItemIds as string[]).includes(gid('InventoryItem', c.lv.itemId)))
          .filter((c) => !Array.isArray(a.locationIds) || (a.locationIds as string[]).includes(gid('Location', c.lv.locationId)))
          .map((c) => ({
            __typename: 'InventoryChange',
            name: c.name,
            delta: c.delta,
            quantityAfterChange: c.after,
            ledgerDocumentUri: null,
            item: () => item(shop.items.get(c.lv.itemId)!),
            location: () => location(shop.locations.get(c.lv.locationId)!),
          })),
    };
    return { group, userErrors };
  };

  const mutation = {
    __typename: 'Mutation',
    inventorySetQuantities: (a: Record<string, unknown>) => {
      const r = applyChanges('set', (a.input ?? {}) as Record<string, unknown>);
      return { __typename: 'InventorySetQuantitiesPayload', inventoryAdjustmentGroup: r.group, userErrors: r.userErrors };
    },
    inventoryAdjustQuantities: (a: Record<string, unknown>) => {
      const r = applyChanges('adjust', (a.input ?? {}) as Record<string, unknown>);
      return { __typename: 'InventoryAdjustQuantitiesPayload', inventoryAdjustmentGroup: r.group, userErrors: r.userErrors };
    },
    webhookSubscriptionCreate: (a: Record<string, unknown>) => {
      const input = (a.webhookSubscription ?? {}) as Record<string, unknown>;
      const uri = String(input.uri ?? input.callbackUrl ?? '');
      const topic = String(a.topic ?? '');
      const userErrors: Array<{ __typename: string; field: string[]; message: string }> = [];
      if (!/^https?:\/\//.test(uri)) userErrors.push({ __typename: 'UserError', field: ['webhookSubscription', 'callbackUrl'], message: 'Address is invalid' });
      if (!/^[A-Z_]+$/.test(topic)) userErrors.push({ __typename: 'UserError', field: ['topic'], message: 'Topic is invalid' });
      if ([...shop.webhookSubscriptions.values()].some((s) => s.topic === topic && s.uri === uri)) {
        userErrors.push({ __typename: 'UserError', field: ['address'], message: 'Address for this topic has already been taken' });
      }
      if (userErrors.length > 0) return { __typename: 'WebhookSubscriptionCreatePayload', webhookSubscription: null, userErrors };
      const s: WebhookSubscription = { id: ctx.nextId(), topic, uri, format: String(input.format ?? 'JSON'), createdAt: ctx.now() };
      shop.webhookSubscriptions.set(s.id, s);
      return { __typename: 'WebhookSubscriptionCreatePayload', webhookSubscription: subscription(s), userErrors };
    },
    webhookSubscriptionDelete: (a: Record<string, unknown>) => {
      const id = gidNumber(a.id, 'WebhookSubscription');
      const found = id !== undefined && shop.webhookSubscriptions.delete(id);
      return {
        __typename: 'WebhookSubscriptionDeletePayload',
        deletedWebhookSubscriptionId: found ? a.id : null,
        userErrors: found ? [] : [{ __typename: 'UserError', field: ['id'], message: 'Webhook subscription does not exist' }],
      };
    },
  };

  return { query, mutation };
}

/** Mutations that take `@idempotent(key:)` from 2026-01 and require it from 2026-04. */
export const IDEMPOTENT_MUTATIONS = new Set(['inventorySetQuantities', 'inventoryAdjustQuantities', 'inventoryMoveQuantities', 'inventorySetOnHandQuantities', 'refundCreate']);
