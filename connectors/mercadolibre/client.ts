/**
 * The MercadoLibre API calls the connector makes: items and variations (`available_quantity`),
 * the seller's item search (offset, capped at 1000, and scan with `scroll_id`), multiget (20 ids
 * a call), and stock writes. `Authorization: Bearer` only (ML refuses `?access_token=`), and an
 * AbortSignal on every call.
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import { DEFAULT_API_BASE_URL } from './auth.js';
import { classifyMercadoLibre, classifyMercadoLibreAnswer } from './errors.js';

export interface MercadoLibreSettings {
  /** `https://api.mercadolibre.com` unless pointed at a fake. */
  apiBaseUrl?: string;
  /** The seller (the grant's `user_id`). */
  sellerId: number;
}

export type MercadoLibreCredentials = CredentialsOf<'oauth2'>;

export interface MLAttribute {
  id: string;
  value_name: string | null;
}

export interface MLVariation {
  id: number;
  available_quantity: number;
  seller_custom_field?: string | null;
  attributes?: MLAttribute[];
  attribute_combinations?: unknown[];
}

export interface MLItem {
  id: string;
  title?: string;
  seller_id?: number;
  status?: string;
  available_quantity: number;
  seller_custom_field?: string | null;
  attributes?: MLAttribute[];
  variations?: MLVariation[];
  last_updated?: string;
}

/** Offsets stop here; past it the search must scan. */
export const OFFSET_CAP = 1000;
/** Ids per multiget call. */
export const MULTIGET_MAX = 20;

export async function mlRequest<T>(
  s: MercadoLibreSettings,
  creds: MercadoLibreCredentials,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  o: { query?: Record<string, string | number | undefined>; body?: unknown; signal: AbortSignal },
): Promise<T> {
  const url = new URL(`${(s.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, '')}${path}`);
  for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${creds.accessToken}`, accept: 'application/json', ...(o.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      signal: o.signal,
    });
  } catch (err) {
    throw classifyMercadoLibre(err);
  }
  let body: unknown;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : undefined;
  } catch (err) {
    if (o.signal.aborted) throw classifyMercadoLibre(err);
    body = undefined;
  }
  if (!res.ok) throw classifyMercadoLibreAnswer(res.status, res.headers, body);
  return body as T;
}

export async function getItem(s: MercadoLibreSettings, creds: MercadoLibreCredentials, input: { itemId: string; attributes?: string[] }, ctx: Pick<CallContext, 'signal'>): Promise<MLItem> {
  return mlRequest<MLItem>(s, creds, 'GET', `/items/${encodeURIComponent(input.itemId)}`, { query: { attributes: input.attributes?.join(',') }, signal: ctx.signal });
}

/** Items by id, 20 per call; ids ML does not find are listed in `missing`. */
export async function multiget(
  s: MercadoLibreSettings,
  creds: MercadoLibreCredentials,
  input: { ids: string[]; attributes?: string[] },
  ctx: Pick<CallContext, 'signal'>,
): Promise<{ items: MLItem[]; missing: Array<{ id: string; code: number }> }> {
  const items: MLItem[] = [];
  const missing: Array<{ id: string; code: number }> = [];
  for (let i = 0; i < input.ids.length; i += MULTIGET_MAX) {
    const chunk = input.ids.slice(i, i + MULTIGET_MAX);
    const answers = await mlRequest<Array<{ code: number; body: MLItem }>>(s, creds, 'GET', '/items', {
      query: { ids: chunk.join(','), attributes: input.attributes?.join(',') },
      signal: ctx.signal,
    });
    answers.forEach((a, j) => (a.code === 200 ? items.push(a.body) : missing.push({ id: chunk[j]!, code: a.code })));
  }
  return { items, missing };
}

export interface SearchPage {
  ids: string[];
  total: number;
}

/** One offset page of the seller's items (offset + limit may not pass 1000: scan beyond). */
export async function searchItems(
  s: MercadoLibreSettings,
  creds: MercadoLibreCredentials,
  input: { offset?: number; limit?: number; status?: string; sellerSku?: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<SearchPage & { offset: number; limit: number }> {
  const offset = input.offset ?? 0;
  const limit = input.limit ?? 50;
  if (offset + limit > OFFSET_CAP) throw new ConnectorError(ConnectorCode.Validation, `mercadolibre: offset + limit past ${OFFSET_CAP}: use scanItems`);
  const r = await mlRequest<{ results: string[]; paging: { total: number } }>(s, creds, 'GET', `/users/${s.sellerId}/items/search`, {
    query: { offset, limit, status: input.status, seller_sku: input.sellerSku },
    signal: ctx.signal,
  });
  return { ids: r.results, total: r.paging.total, offset, limit };
}

/** One scan page (`search_type=scan`); pass the answer's `scrollId` for the next; `done` when ML answers no results. */
export async function scanItems(
  s: MercadoLibreSettings,
  creds: MercadoLibreCredentials,
  input: { scrollId?: string | null; limit?: number; status?: string },
  ctx: Pick<CallContext, 'signal'>,
): Promise<SearchPage & { scrollId: string; done: boolean }> {
  const r = await mlRequest<{ results: string[]; paging: { total: number }; scroll_id: string }>(s, creds, 'GET', `/users/${s.sellerId}/items/search`, {
    query: { search_type: 'scan', scroll_id: input.scrollId ?? undefined, limit: input.limit ?? 100, status: input.status },
    signal: ctx.signal,
  });
  return { ids: r.results, total: r.paging.total, scrollId: r.scroll_id, done: r.results.length === 0 };
}

/** Every item id of the seller: offset pages while the total fits under the cap, scan otherwise. */
export async function* allItemIds(s: MercadoLibreSettings, creds: MercadoLibreCredentials, input: { limit?: number; status?: string }, ctx: Pick<CallContext, 'signal'>): AsyncGenerator<string[]> {
  const limit = input.limit ?? 50;
  const first = await searchItems(s, creds, { offset: 0, limit, status: input.status }, ctx);
  if (first.total <= OFFSET_CAP) {
    if (first.ids.length > 0) yield first.ids;
    for (let offset = limit; offset < first.total; offset += limit) {
      const page = await searchItems(s, creds, { offset, limit: Math.min(limit, OFFSET_CAP - offset), status: input.status }, ctx);
      if (page.ids.length === 0) return;
      yield page.ids;
    }
    return;
  }
  let scrollId: string | null = null;
  for (;;) {
    const page: SearchPage & { scrollId: string; done: boolean } = await scanItems(s, creds, { scrollId, limit: Math.min(100, limit * 2), status: input.status }, ctx);
    if (page.done) return;
    yield page.ids;
    scrollId = page.scrollId;
  }
}

/** One notification ML could not deliver, as `/missed_feeds` lists it (the request it tried and what it got). */
export interface MLMissedFeed {
  id: string;
  resource: string;
  userId: number;
  topic: string;
  /** When ML received the change (ISO; `sent` when `received` is absent). */
  received: string;
  attempts: number;
}

/**
 * One page of the application's undelivered notifications (`GET /missed_feeds?app_id&topic&offset&limit`:
 * `{ messages: [{ _id, resource, user_id, topic, application_id, attempts, sent, received, request, response }], total, offset, limit }`),
 * kept by ML for 2 days. The list is the application's, for every seller: only this seller's are answered.
 */
export async function missedFeeds(
  s: MercadoLibreSettings & { applicationId: string | number },
  creds: MercadoLibreCredentials,
  input: { topic: string; offset?: number; limit?: number },
  ctx: Pick<CallContext, 'signal'>,
): Promise<{ messages: MLMissedFeed[]; total: number; offset: number; limit: number }> {
  const offset = input.offset ?? 0;
  const limit = input.limit ?? 50;
  const r = await mlRequest<{
    messages?: Array<{ _id: string; resource: string; user_id: number | string; topic: string; attempts?: number; sent?: string; received?: string }>;
    total?: number;
  }>(s, creds, 'GET', '/missed_feeds', { query: { app_id: String(s.applicationId), topic: input.topic, offset, limit }, signal: ctx.signal });
  const all = r.messages ?? [];
  const messages = all
    .filter((m) => Number(m.user_id) === s.sellerId)
    .map((m) => ({ id: m._id, resource: m.resource, userId: Number(m.user_id), topic: m.topic, received: m.received ?? m.sent ?? '', attempts: m.attempts ?? 1 }));
  return { messages, total: r.total ?? all.length, offset, limit };
}

/** The stock of an item, or of one variation of it. */
export function stockOf(item: MLItem, variationId?: number): number {
  if (variationId === undefined) return item.available_quantity;
  const v = item.variations?.find((x) => x.id === variationId);
  if (!v) throw new ConnectorError(ConnectorCode.NotFound, `mercadolibre: item ${item.id} has no variation ${variationId}`);
  return v.available_quantity;
}

/**
 * The PUT body that sets one stock: for a variation, every variation id of the item is sent
 * (ML deletes the ones a PUT leaves out), only the target with a new quantity.
 */
export function stockBody(item: MLItem, quantity: number, variationId?: number): Record<string, unknown> {
  if (variationId === undefined) {
    if ((item.variations?.length ?? 0) > 0) throw new ConnectorError(ConnectorCode.Validation, `mercadolibre: item ${item.id} has variations: name the variation`);
    return { available_quantity: quantity };
  }
  stockOf(item, variationId);
  return { variations: (item.variations ?? []).map((v) => (v.id === variationId ? { id: v.id, available_quantity: quantity } : { id: v.id })) };
}

/**
 * Sets an item's or a variation's `available_quantity`. With `expected`, the stock is read first
 * and a different value is a CONFLICT (nothing written). ML has no conditional write, so this is
 * check-then-write: a sale between the read and the PUT is not caught here (the `items`
 * notification that follows it is).
 */
export async function setStock(
  s: MercadoLibreSettings,
  creds: MercadoLibreCredentials,
  input: { itemId: string; variationId?: number; quantity: number; expected?: number | null },
  ctx: Pick<CallContext, 'signal'>,
): Promise<{ itemId: string; variationId?: number; before: number; quantity: number }> {
  const item = await getItem(s, creds, { itemId: input.itemId, attributes: ['id', 'available_quantity', 'variations'] }, ctx);
  const before = stockOf(item, input.variationId);
  if (input.expected !== undefined && input.expected !== null && input.expected !== before) {
    throw new ConnectorError(ConnectorCode.Conflict, `mercadolibre: stock of ${input.itemId}${input.variationId ? `/${input.variationId}` : ''} is ${before}, not the expected ${input.expected}`);
  }
  await mlRequest<unknown>(s, creds, 'PUT', `/items/${encodeURIComponent(input.itemId)}`, { body: stockBody(item, input.quantity, input.variationId), signal: ctx.signal });
  return { itemId: input.itemId, ...(input.variationId === undefined ? {} : { variationId: input.variationId }), before, quantity: input.quantity };
}

export async function getMe(s: MercadoLibreSettings, creds: MercadoLibreCredentials, _input: Record<string, never>, ctx: Pick<CallContext, 'signal'>): Promise<{ id: number; nickname: string; site_id: string }> {
  return mlRequest(s, creds, 'GET', '/users/me', { signal: ctx.signal });
}
