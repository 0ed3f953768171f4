/**
 * Between Shopify's inventory records and ours: a variant with its inventory item's level at a
 * location <-> `{ sku, stock, externalIds, updatedAt }`.
 */
import type { RecordMapping } from '../kit/contract.js';
import type { SetQuantity, ShopifyInventoryLevel, ShopifyVariant } from './client.js';

/** Our record of one SKU's stock at one channel location. */
export interface StockRecord {
  sku: string;
  stock: number;
  externalIds: { inventoryItemId: string; locationId: string; variantId: string; productId: string };
  updatedAt: string;
}

/** What `inventory_levels/update` carries (REST-shaped: numeric ids). */
export interface InventoryLevelPayload {
  inventory_item_id: number;
  location_id: number;
  available: number | null;
  updated_at: string;
}

const available = (lv: ShopifyInventoryLevel): number => lv.quantities.find((q) => q.name === 'available')?.quantity ?? 0;

/** A variant read with its level at a location. Throws for a variant without SKU or level: it cannot be synced. */
export function variantToRecord(v: ShopifyVariant): StockRecord {
  const lv = v.inventoryItem.inventoryLevel;
  if (!v.sku) throw new TypeError(`shopify variant ${v.id} has no SKU`);
  if (!lv) throw new TypeError(`shopify variant ${v.id} is not stocked at the location`);
  return {
    sku: v.sku,
    stock: available(lv),
    externalIds: { inventoryItemId: v.inventoryItem.id, locationId: lv.location.id, variantId: v.id, productId: v.product.id },
    updatedAt: lv.updatedAt,
  };
}

/** Our record to the `inventorySetQuantities` quantity that writes it (compare-and-set against `changeFrom`). */
export function recordToSetQuantity(r: StockRecord, changeFrom: number | null): SetQuantity {
  return { inventoryItemId: r.externalIds.inventoryItemId, locationId: r.externalIds.locationId, quantity: r.stock, changeFromQuantity: changeFrom };
}

/** The webhook's REST ids to GIDs (the payload names neither the SKU nor the variant: look them up). */
export function levelPayloadIds(p: InventoryLevelPayload): { inventoryItemId: string; locationId: string; available: number | null; updatedAt: string } {
  return { inventoryItemId: `gid://shopify/InventoryItem/${p.inventory_item_id}`, locationId: `gid://shopify/Location/${p.location_id}`, available: p.available, updatedAt: p.updated_at };
}

export const stockMapping = { fromProvider: variantToRecord } satisfies RecordMapping<ShopifyVariant, StockRecord>;
