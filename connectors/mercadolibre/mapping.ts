/**
 * Between MercadoLibre items/variations and our stock record. The SKU is the
 * `seller_custom_field`, or the `SELLER_SKU` attribute when that is empty.
 */
import type { RecordMapping } from '../kit/contract.js';
import type { MLAttribute, MLItem, MLVariation } from './client.js';

export interface StockRecord {
  sku: string;
  stock: number;
  externalIds: { itemId: string; variationId?: number };
  updatedAt: string;
}

export function skuOf(x: { seller_custom_field?: string | null; attributes?: MLAttribute[] }): string | undefined {
  if (x.seller_custom_field) return x.seller_custom_field;
  const a = x.attributes?.find((at) => at.id === 'SELLER_SKU');
  return a?.value_name ?? undefined;
}

/** Every SKU an item lists: one per variation, or the item itself. Entries without a SKU are skipped (they cannot be synced). */
export function itemToRecords(item: MLItem): StockRecord[] {
  const updatedAt = item.last_updated ?? new Date(0).toISOString();
  const variations: MLVariation[] = item.variations ?? [];
  if (variations.length > 0) {
    return variations.flatMap((v) => {
      const sku = skuOf(v);
      return sku ? [{ sku, stock: v.available_quantity, externalIds: { itemId: item.id, variationId: v.id }, updatedAt }] : [];
    });
  }
  const sku = skuOf(item);
  return sku ? [{ sku, stock: item.available_quantity, externalIds: { itemId: item.id }, updatedAt }] : [];
}

/** Our record to the setStock input that writes it. */
export function recordToStockInput(r: StockRecord, expected?: number | null): { itemId: string; variationId?: number; quantity: number; expected?: number | null } {
  return { itemId: r.externalIds.itemId, ...(r.externalIds.variationId === undefined ? {} : { variationId: r.externalIds.variationId }), quantity: r.stock, ...(expected === undefined ? {} : { expected }) };
}

export const itemMapping = { fromProvider: itemToRecords } satisfies RecordMapping<MLItem, StockRecord[]>;
