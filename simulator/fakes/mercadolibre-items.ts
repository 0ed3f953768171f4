/**
 * MercadoLibre items: the item and variation JSON, `GET/PUT /items/{id}` (variations left out of a
 * PUT are deleted), multiget, and the seller's item search with its offset cap and scan mode.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Hono } from 'hono';
import type { FakeClock } from './common.js';
import { mlError, type MLItem, type MLVariation } from './mercadolibre-types.js';

const validationError = (code: string, message: string, references: string[]) =>
  mlError(400, 'Validation error', 'validation_error', [{ department: 'items', cause_id: 147, type: 'error', code, references, message }]);

/** The item as `GET /items/{id}` answers it. */
export function itemJson(it: MLItem): Record<string, unknown> {
  return {
    id: it.id,
    site_id: it.site_id,
    title: it.title,
    seller_id: it.seller_id,
    category_id: it.category_id,
    price: it.price,
    currency_id: it.currency_id,
    available_quantity: it.variations.length > 0 ? it.variations.reduce((s, v) => s + v.available_quantity, 0) : it.available_quantity,
    sold_quantity: it.sold_quantity + it.variations.reduce((s, v) => s + v.sold_quantity, 0),
    buying_mode: 'buy_it_now',
    listing_type_id: 'gold_special',
    condition: 'new',
    permalink: `https://articulo.mercadolibre.com.ar/${it.id.slice(0, 3)}-${it.id.slice(3)}-fake`,
    status: it.status,
    seller_custom_field: it.seller_custom_field,
    attributes: it.seller_custom_field ? [{ id: 'SELLER_SKU', name: 'SKU', value_id: null, value_name: it.seller_custom_field }] : [],
    variations: it.variations.map((v) => ({
      id: v.id,
      price: v.price,
      attribute_combinations: v.attribute_combinations,
      available_quantity: v.available_quantity,
      sold_quantity: v.sold_quantity,
      seller_custom_field: v.seller_custom_field,
      attributes: v.seller_custom_field ? [{ id: 'SELLER_SKU', name: 'SKU', value_id: null, value_name: v.seller_custom_field }] : [],
      picture_ids: [],
    })),
    date_created: it.date_created,
    last_updated: it.last_updated,
  };
}

/** Keeps the `attributes=a,b` fields of a body. */
export function pick(body: Record<string, unknown>, attributes: string | undefined) {
  if (!attributes) return body;
    const keep = attributes.split(',').map((s) => s.trim()).filter(Boolean);
    return Object.fromEntries(keep.filter((k) => k in body).map((k) => [k, body[k]]));
}

export interface ItemRouteDeps {
  items: Map<string, MLItem>;
  clock: FakeClock;
  putResponse: 'item' | 'empty';
  nextVariationId: () => number;
}

export function itemRoutes(api: Hono<{ Variables: { userId: number } }>, d: ItemRouteDeps): void {
  const { clock } = d;
  const state = { items: d.items };
  const scrolls = new Map<string, { ids: string[]; next: number; expiresAt: number }>();
  const notFound = (c: Context, id: string) => c.json(mlError(404, `Item with id ${id} not found`), 404);

  api.get('/users/:id/items/search', (c) => {
    const sellerId = Number(c.req.param('id'));
    if (sellerId !== c.get('userId')) return c.json(mlError(403, 'caller.id does not match the seller', 'forbidden'), 403);
    const q = new URL(c.req.url).searchParams;
    const limit = Number(q.get('limit') ?? 50);
    if (!Number.isInteger(limit) || limit < 0 || limit > 100) return c.json(mlError(400, 'Limit must be a lower or equal than 100'), 400);
    const status = q.get('status');
    const sku = q.get('seller_sku');
    const ids = [...state.items.values()]
      .filter((it) => it.seller_id === sellerId)
      .filter((it) => !status || it.status === status)
      .filter((it) => !sku || it.seller_custom_field === sku || it.variations.some((v) => v.seller_custom_field === sku))
      .map((it) => it.id);
    const base = { seller_id: String(sellerId), query: null, orders: [{ id: 'stop_time_asc', name: 'Order by stop time asc' }], available_orders: [] };
    if (q.get('search_type') === 'scan') {
      let scrollId = q.get('scroll_id');
      let scroll = scrollId ? scrolls.get(scrollId) : undefined;
      if (scrollId && (!scroll || scroll.expiresAt <= clock.now())) return c.json(mlError(400, 'Invalid scroll_id'), 400);
      if (!scroll) {
        scrollId = randomBytes(24).toString('base64url');
        scroll = { ids, next: 0, expiresAt: 0 };
        scrolls.set(scrollId, scroll);
      }
      scroll.expiresAt = clock.now() + 5 * 60_000;
      const results = scroll.ids.slice(scroll.next, scroll.next + limit);
      scroll.next += results.length;
      return c.json({ ...base, scroll_id: scrollId, paging: { total: scroll.ids.length, limit }, results });
    }
    const offset = Number(q.get('offset') ?? 0);
    if (!Number.isInteger(offset) || offset < 0 || offset + limit > 1000) {
      return c.json(mlError(400, 'Invalid limit and offset values: offset + limit must not exceed 1000, use search_type=scan'), 400);
    }
    return c.json({ ...base, paging: { total: ids.length, offset, limit }, results: ids.slice(offset, offset + limit) });
  });

  api.get('/items', (c) => {
    const q = new URL(c.req.url).searchParams;
    const ids = (q.get('ids') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) return c.json(mlError(400, 'ids is required'), 400);
    if (ids.length > 20) return c.json(mlError(400, 'The number of ids must be lower or equal to 20'), 400);
    const attributes = q.get('attributes') ?? undefined;
    return c.json(
      ids.map((id) => {
        const it = state.items.get(id);
        return it ? { code: 200, body: pick(itemJson(it), attributes) } : { code: 404, body: mlError(404, `Item with id ${id} not found`) };
      }),
    );
  });

  api.get('/items/:id', (c) => {
    const it = state.items.get(c.req.param('id'));
    if (!it) return notFound(c, c.req.param('id'));
    return c.json(pick(itemJson(it), new URL(c.req.url).searchParams.get('attributes') ?? undefined));
  });

  api.put('/items/:id', async (c) => {
    const it = state.items.get(c.req.param('id'));
    if (!it) return notFound(c, c.req.param('id'));
    if (it.seller_id !== c.get('userId')) return c.json(mlError(403, 'Caller is not the owner of the item', 'forbidden'), 403);
    let body: Record<string, unknown>;
    try {
      body = (await c.req.json()) as Record<string, unknown>;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch {
      return c.json(mlError(400, 'body must be a JSON object'), 400);
    }
    const validQty = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
    if ('available_quantity' in body) {
      if (!validQty(body.available_quantity)) return c.json(validationError('item.available_quantity.invalid', 'available_quantity must be a non-negative integer', ['item.available_quantity']), 400);
      if (it.variations.length > 0 && !('variations' in body)) {
        return c.json(validationError('item.available_quantity.invalid', 'the item has variations: set available_quantity on each variation', ['item.available_quantity']), 400);
      }
    }
    let nextVariations: MLVariation[] | undefined;
    if ('variations' in body) {
      if (!Array.isArray(body.variations)) return c.json(validationError('item.variations.invalid', 'variations must be a list', ['item.variations']), 400);
      nextVariations = [];
      for (const [i, raw] of (body.variations as Array<Record<string, unknown>>).entries()) {
        const ref = [`item.variations[${i}]`];
        if ('available_quantity' in raw && !validQty(raw.available_quantity)) {
          return c.json(validationError('item.variations.available_quantity.invalid', 'available_quantity must be a non-negative integer', ref), 400);
        }
        const sku = typeof raw.seller_custom_field === 'string' ? raw.seller_custom_field : skuAttribute(raw.attributes);
        if (raw.id !== undefined) {
          const existing = it.variations.find((v) => v.id === Number(raw.id));
          if (!existing) return c.json(validationError('item.variations.id.invalid', `Variation ${String(raw.id)} does not belong to item ${it.id}`, ref), 400);
          nextVariations.push({
            ...existing,
            available_quantity: (raw.available_quantity as number | undefined) ?? existing.available_quantity,
            price: typeof raw.price === 'number' ? raw.price : existing.price,
            seller_custom_field: sku ?? existing.seller_custom_field,
          });
        } else {
          if (!Array.isArray(raw.attribute_combinations) || raw.attribute_combinations.length === 0) {
            return c.json(validationError('item.variations.attribute_combinations.missing', 'a new variation needs attribute_combinations', ref), 400);
          }
          nextVariations.push({
            id: d.nextVariationId(),
            price: typeof raw.price === 'number' ? raw.price : it.price,
            attribute_combinations: raw.attribute_combinations as MLVariation['attribute_combinations'],
            available_quantity: (raw.available_quantity as number | undefined) ?? 0,
            sold_quantity: 0,
            seller_custom_field: sku ?? null,
          });
        }
      }
    }
    // every check passed: apply
    if (nextVariations) it.variations = nextVariations; // variations left out are deleted
    if ('available_quantity' in body && it.variations.length === 0) it.available_quantity = body.available_quantity as number;
    if (typeof body.price === 'number') it.price = body.price;
    if (typeof body.title === 'string') it.title = body.title;
    if (body.status === 'active' || body.status === 'paused' || body.status === 'closed') it.status = body.status;
    it.last_updated = clock.iso();
    return c.json(d.putResponse === 'empty' ? {} : itemJson(it));
  });

}

function skuAttribute(attributes: unknown): string | undefined {
  if (!Array.isArray(attributes)) return undefined;
  const a = (attributes as Array<{ id?: unknown; value_name?: unknown }>).find((x) => x.id === 'SELLER_SKU');
  return typeof a?.value_name === 'string' ? a.value_name : undefined;
}

