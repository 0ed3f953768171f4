/**
 * The Shopify GraphQL Admin API calls the connector makes: products and variants (SKU, inventory
 * item) with cursor pagination, locations, inventory levels, `inventorySetQuantities` with
 * compare-and-set, `inventoryAdjustQuantities`, `webhookSubscriptionCreate`. Every call takes
 * the access token and an AbortSignal, and answers the cost Shopify reported
 * (`extensions.cost`) so a budget can pace on `throttleStatus`.
 */
import { createHash } from 'node:crypto';
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import { shopUrl } from './auth.js';
import { classifyGraphQLErrors, classifyShopify, classifyShopifyAnswer, classifyUserErrors, type QueryCost, type ShopifyUserError } from './errors.js';

/** The newest version whose rules the connector (and the local fake) implement. */
export const DEFAULT_API_VERSION = '2026-04';

/** One shop's connection settings (the caller passes them in; connectors read no configuration). */
export interface ShopifySettings {
  /** `example.myshopify.com`. */
  shop: string;
  /** `YYYY-MM` (default `DEFAULT_API_VERSION`). */
  apiVersion?: string;
  /** `https://{shop}` unless pointed at a fake. */
  shopUrlTemplate?: string;
  /** Told the cost of every answer that reports one (the budget's pacing signal). */
  onCost?: (cost: QueryCost) => void;
}

export type ShopifyCredentials = CredentialsOf<'oauth2'>;

/** Every answer of a call: its data and the cost Shopify reported for it. */
export interface Costed {
  cost: QueryCost | undefined;
}

export const versionAtLeast = (version: string, min: string): boolean => version === 'unstable' || version >= min;

/** Runs one GraphQL operation; answers `data` or throws a classified ConnectorError. */
export async function graphql<T>(s: ShopifySettings, creds: ShopifyCredentials, query: string, variables: Record<string, unknown>, signal: AbortSignal): Promise<{ data: T; cost: QueryCost | undefined }> {
  const version = s.apiVersion ?? DEFAULT_API_VERSION;
  let res: Response;
  try {
    res = await fetch(`${shopUrl(s.shop, s.shopUrlTemplate)}/admin/api/${version}/graphql.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-shopify-access-token': creds.accessToken },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (err) {
    throw classifyShopify(err);
  }
  let body: { data?: T; errors?: unknown; extensions?: { cost?: QueryCost } } | undefined;
  try {
    const text = await res.text();
    body = text ? (JSON.parse(text) as typeof body) : undefined;
  } catch (err) {
    if (signal.aborted) throw classifyShopify(err);
    body = undefined; // an HTML 502 page: the status decides
  }
  const cost = body?.extensions?.cost;
  if (cost) s.onCost?.(cost);
  if (!res.ok) throw classifyShopifyAnswer(res.status, res.headers, body);
  if (Array.isArray(body?.errors) && body.errors.length > 0) throw classifyGraphQLErrors(body.errors as Array<{ message?: string; extensions?: { code?: string } }>, cost);
  if (!body || body.data === undefined || body.data === null) throw new ConnectorError(ConnectorCode.Unknown, 'shopify: answer without data', { status: res.status });
  return { data: body.data, cost };
}

interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

// --- products and variants ---------------------------------------------------------------------

export interface ShopifyVariant {
  id: string;
  sku: string | null;
  updatedAt: string;
  product: { id: string };
  inventoryItem: { id: string; inventoryLevel: ShopifyInventoryLevel | null };
}

export interface ShopifyInventoryLevel {
  id: string;
  updatedAt: string;
  location: { id: string };
  quantities: Array<{ name: string; quantity: number }>;
}

const LEVEL = 'id updatedAt location { id } quantities(names: ["available"]) { name quantity }';

/** A page of variants with SKU, inventory item and the level at one location. */
export async function listVariants(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { locationId: string; first?: number; after?: string | null; query?: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<Costed & { variants: ShopifyVariant[]; pageInfo: PageInfo }> {
  const q = `query Variants($first: Int!, $after: String, $query: String, $locationId: ID!) {
    productVariants(first: $first, after: $after, query: $query, sortKey: ID) {
      nodes { id sku updatedAt product { id } inventoryItem { id inventoryLevel(locationId: $locationId) { ${LEVEL} } } }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  const r = await graphql<{ productVariants: { nodes: ShopifyVariant[]; pageInfo: PageInfo } }>(
    s,
    creds,
    q,
    { first: input.first ?? 100, after: input.after ?? null, query: input.query ?? null, locationId: input.locationId },
    ctx.signal,
  );
  return { variants: r.data.productVariants.nodes, pageInfo: r.data.productVariants.pageInfo, cost: r.cost };
}

export interface ShopifyProduct {
  id: string;
  title: string;
  updatedAt: string;
  variants: { nodes: Array<{ id: string; sku: string | null; inventoryItem: { id: string } }> };
}

/** A page of products with their variants (SKU, inventory item id). */
export async function listProducts(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { first?: number; after?: string | null; query?: string; variantsPerProduct?: number },
  ctx: Pick<CallContext, 'signal'>,
): Promise<Costed & { products: ShopifyProduct[]; pageInfo: PageInfo }> {
  const q = `query Products($first: Int!, $after: String, $query: String, $variants: Int!) {
    products(first: $first, after: $after, query: $query, sortKey: ID) {
      nodes { id title updatedAt variants(first: $variants) { nodes { id sku inventoryItem { id } } } }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  const r = await graphql<{ products: { nodes: ShopifyProduct[]; pageInfo: PageInfo } }>(
    s,
    creds,
    q,
    { first: input.first ?? 10, after: input.after ?? null, query: input.query ?? null, variants: input.variantsPerProduct ?? 20 },
    ctx.signal,
  );
  return { products: r.data.products.nodes, pageInfo: r.data.products.pageInfo, cost: r.cost };
}

/** Follows the cursor to the end, one page at a time: `pages((after) => listVariants(s, creds, { locationId, after }, ctx))`. */
export async function* pages<O extends { pageInfo: PageInfo }>(call: (after: string | null) => Promise<O>, after: string | null = null): AsyncGenerator<O> {
  for (;;) {
    const page = await call(after);
    yield page;
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return;
    after = page.pageInfo.endCursor;
  }
}

export interface ShopifyInventoryItem {
  id: string;
  sku: string | null;
  updatedAt: string;
  variant: { id: string; product: { id: string } } | null;
  inventoryLevel: ShopifyInventoryLevel | null;
}

/**
 * A page of inventory items with their level at one location; with `query: "updated_at:>'<ISO>'"`
 * the items whose stock changed since then (a level change bumps its item's `updatedAt`): the
 * incremental poll for changes a webhook missed.
 */
export async function listInventoryItems(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { locationId: string; first?: number; after?: string | null; query?: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<Costed & { items: ShopifyInventoryItem[]; pageInfo: PageInfo }> {
  const q = `query Items($first: Int!, $after: String, $query: String, $locationId: ID!) {
    inventoryItems(first: $first, after: $after, query: $query) {
      nodes { id sku updatedAt variant { id product { id } } inventoryLevel(locationId: $locationId) { ${LEVEL} } }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  const r = await graphql<{ inventoryItems: { nodes: ShopifyInventoryItem[]; pageInfo: PageInfo } }>(
    s,
    creds,
    q,
    { first: input.first ?? 100, after: input.after ?? null, query: input.query ?? null, locationId: input.locationId },
    ctx.signal,
  );
  return { items: r.data.inventoryItems.nodes, pageInfo: r.data.inventoryItems.pageInfo, cost: r.cost };
}

// --- locations and levels --------------------------------------------------------------------

export interface ShopifyLocation {
  id: string;
  name: string;
  isActive: boolean;
}

export async function listLocations(s: ShopifySettings, creds: ShopifyCredentials, input: { first?: number; after?: string | null }, ctx: Pick<CallContext, 'signal'>): Promise<Costed & { locations: ShopifyLocation[]; pageInfo: PageInfo }> {
  const q = `query Locations($first: Int!, $after: String) { locations(first: $first, after: $after) { nodes { id name isActive } pageInfo { hasNextPage endCursor } } }`;
  const r = await graphql<{ locations: { nodes: ShopifyLocation[]; pageInfo: PageInfo } }>(s, creds, q, { first: input.first ?? 50, after: input.after ?? null }, ctx.signal);
  return { locations: r.data.locations.nodes, pageInfo: r.data.locations.pageInfo, cost: r.cost };
}

/** The level of one inventory item at one location (null when the item is not stocked there). */
export async function getInventoryLevel(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { inventoryItemId: string; locationId: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<Costed & { sku: string | null; variantId: string | null; productId: string | null; level: ShopifyInventoryLevel | null }> {
  const q = `query Level($id: ID!, $locationId: ID!) { inventoryItem(id: $id) { id sku variant { id product { id } } inventoryLevel(locationId: $locationId) { ${LEVEL} } } }`;
  const r = await graphql<{ inventoryItem: { sku: string | null; variant: { id: string; product: { id: string } } | null; inventoryLevel: ShopifyInventoryLevel | null } | null }>(
    s,
    creds,
    q,
    { id: input.inventoryItemId, locationId: input.locationId },
    ctx.signal,
  );
  const item = r.data.inventoryItem;
  if (!item) throw new ConnectorError(ConnectorCode.NotFound, `shopify: inventory item ${input.inventoryItemId} not found`, { status: 200 });
  return { sku: item.sku, variantId: item.variant?.id ?? null, productId: item.variant?.product.id ?? null, level: item.inventoryLevel, cost: r.cost };
}

// --- inventory mutations ----------------------------------------------------------------------

/** Shopify's `@idempotent(key:)` wants a UUID-like key: derive one from the call's stable key. */
export function idempotencyUuid(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

export interface SetQuantity {
  inventoryItemId: string;
  locationId: string;
  quantity: number;
  /** The quantity we believe is there now (compare-and-set); null writes whatever is there. */
  changeFromQuantity: number | null;
}

export interface InventoryChange {
  name: string;
  delta: number;
  quantityAfterChange: number | null;
  item: { id: string };
  location: { id: string };
}

const GROUP = 'inventoryAdjustmentGroup { id createdAt reason changes { name delta quantityAfterChange item { id } location { id } } }';

/**
 * Sets quantities with compare-and-set: a quantity that moved since `changeFromQuantity` fails
 * the whole call with a CONFLICT (nothing applied). From 2026-01 it sends `changeFromQuantity`
 * and `@idempotent(key:)` (required from 2026-04; the key is the call's, so a retry is answered
 * the first answer); before, `compareQuantity`.
 */
export async function setQuantities(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { name?: 'available' | 'on_hand'; reason?: string; referenceDocumentUri?: string; quantities: SetQuantity[] },
  ctx: CallContext,
): Promise<Costed & { changes: InventoryChange[]; adjustmentGroupId: string | null }> {
  const version = s.apiVersion ?? DEFAULT_API_VERSION;
  const modern = versionAtLeast(version, '2026-01');
  const quantities = input.quantities.map((q) =>
    modern
      ? { inventoryItemId: q.inventoryItemId, locationId: q.locationId, quantity: q.quantity, changeFromQuantity: q.changeFromQuantity }
      : { inventoryItemId: q.inventoryItemId, locationId: q.locationId, quantity: q.quantity, ...(q.changeFromQuantity === null ? {} : { compareQuantity: q.changeFromQuantity }) },
  );
  const legacyIgnore = !modern && input.quantities.some((q) => q.changeFromQuantity === null);
  if (legacyIgnore && input.quantities.some((q) => q.changeFromQuantity !== null)) {
    throw new ConnectorError(ConnectorCode.Validation, `shopify: before 2026-01 (version ${version}) a set either compares every quantity or none`);
  }
  const directive = modern ? ' @idempotent(key: $key)' : '';
  const q = `mutation Set($input: InventorySetQuantitiesInput!${modern ? ', $key: String!' : ''}) {
    inventorySetQuantities(input: $input)${directive} { ${GROUP} userErrors { code field message } }
  }`;
  const r = await graphql<{ inventorySetQuantities: { inventoryAdjustmentGroup: { id: string; changes: InventoryChange[] } | null; userErrors: ShopifyUserError[] } }>(
    s,
    creds,
    q,
    {
      input: { name: input.name ?? 'available', reason: input.reason ?? 'correction', ...(input.referenceDocumentUri ? { referenceDocumentUri: input.referenceDocumentUri } : {}), quantities, ...(legacyIgnore ? { ignoreCompareQuantity: true } : {}) },
      ...(modern ? { key: idempotencyUuid(ctx.idempotencyKey) } : {}),
    },
    ctx.signal,
  );
  const p = r.data.inventorySetQuantities;
  if (p.userErrors.length > 0) throw classifyUserErrors('inventorySetQuantities', p.userErrors, r.cost);
  return { changes: p.inventoryAdjustmentGroup?.changes ?? [], adjustmentGroupId: p.inventoryAdjustmentGroup?.id ?? null, cost: r.cost };
}

/** Adjusts quantities by deltas, with `@idempotent(key:)` where the version takes it. */
export async function adjustQuantities(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { name?: 'available' | 'on_hand'; reason?: string; changes: Array<{ inventoryItemId: string; locationId: string; delta: number; changeFromQuantity?: number | null }> },
  ctx: CallContext,
): Promise<Costed & { changes: InventoryChange[]; adjustmentGroupId: string | null }> {
  const version = s.apiVersion ?? DEFAULT_API_VERSION;
  const modern = versionAtLeast(version, '2026-01');
  const changes = input.changes.map((c) => ({
    inventoryItemId: c.inventoryItemId,
    locationId: c.locationId,
    delta: c.delta,
    ...(versionAtLeast(version, '2026-04') || (modern && c.changeFromQuantity !== undefined) ? { changeFromQuantity: c.changeFromQuantity ?? null } : {}),
  }));
  const q = `mutation Adjust($input: InventoryAdjustQuantitiesInput!${modern ? ', $key: String!' : ''}) {
    inventoryAdjustQuantities(input: $input)${modern ? ' @idempotent(key: $key)' : ''} { ${GROUP} userErrors { code field message } }
  }`;
  const r = await graphql<{ inventoryAdjustQuantities: { inventoryAdjustmentGroup: { id: string; changes: InventoryChange[] } | null; userErrors: ShopifyUserError[] } }>(
    s,
    creds,
    q,
    { input: { name: input.name ?? 'available', reason: input.reason ?? 'correction', changes }, ...(modern ? { key: idempotencyUuid(ctx.idempotencyKey) } : {}) },
    ctx.signal,
  );
  const p = r.data.inventoryAdjustQuantities;
  if (p.userErrors.length > 0) throw classifyUserErrors('inventoryAdjustQuantities', p.userErrors, r.cost);
  return { changes: p.inventoryAdjustmentGroup?.changes ?? [], adjustmentGroupId: p.inventoryAdjustmentGroup?.id ?? null, cost: r.cost };
}

// --- webhooks subscriptions ------------------------------------------------------------------

export async function createWebhookSubscription(
  s: ShopifySettings,
  creds: ShopifyCredentials,
  input: { topic: string; callbackUrl: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<Costed & { id: string; topic: string; callbackUrl: string }> {
  const q = `mutation Sub($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
    webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) { webhookSubscription { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } userErrors { field message } }
  }`;
  const r = await graphql<{ webhookSubscriptionCreate: { webhookSubscription: { id: string; topic: string; endpoint: { callbackUrl: string } } | null; userErrors: ShopifyUserError[] } }>(
    s,
    creds,
    q,
    { topic: input.topic, sub: { callbackUrl: input.callbackUrl, format: 'JSON' } },
    ctx.signal,
  );
  const p = r.data.webhookSubscriptionCreate;
  if (p.userErrors.length > 0 || !p.webhookSubscription) throw classifyUserErrors('webhookSubscriptionCreate', p.userErrors, r.cost);
  return { id: p.webhookSubscription.id, topic: p.webhookSubscription.topic, callbackUrl: p.webhookSubscription.endpoint.callbackUrl, cost: r.cost };
}

/**
 * Revokes the app's access to the shop (REST `DELETE /admin/api_permissions/current.json`, the
 * one REST call left for it): the access token and its refresh token stop working. A token
 * already dead answers 401 (UNAUTHORIZED): the access is gone either way.
 */
export async function revoke(s: ShopifySettings, creds: ShopifyCredentials, ctx: Pick<CallContext, 'signal'>): Promise<{ revoked: true }> {
  let res: Response;
  try {
    res = await fetch(`${shopUrl(s.shop, s.shopUrlTemplate)}/admin/api_permissions/current.json`, {
      method: 'DELETE',
      headers: { accept: 'application/json', 'x-shopify-access-token': creds.accessToken },
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifyShopify(err);
  }
  let body: unknown;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : undefined;
  } catch (err) {
    if (ctx.signal.aborted) throw classifyShopify(err);
    body = undefined;
  }
  if (res.status < 200 || res.status >= 300) throw classifyShopifyAnswer(res.status, res.headers, body);
  return { revoked: true };
}
