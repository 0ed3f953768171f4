import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../helpers/db.js';
import { connectShopify, runSync, token, useInventoryNode } from './support.js';

/**
 * The stock webhook sweep: what the apply at acceptance missed (a crash, a failure) is found by
 * `applied_at IS NULL` on a partial index (migration 0020), applied once, published once, and
 * marked, so the next sweep does not take it again; a webhook whose apply changes nothing is
 * marked too (it was swept again every 10 s for a day).
 */

const TENANT = 't-sweep';
const SHOP = 'sweep.myshopify.com';
const published: Array<Record<string, unknown>> = [];
const h = useInventoryNode({ fakes: { shopify: { webhooksOnApiChanges: false } } });
beforeAll(() => void h.node.runtime.bus.subscribe('concord.events.InventoryUpdated', (m) => void published.push(m.data as Record<string, unknown>)));

const vendor = token('vendor', TENANT);

describe('the stock webhook sweep', () => {
  it('applies a stock webhook the apply at acceptance missed, once, marks it, and marks one that changes nothing', async () => {
    const { fakes, node } = h;
    await connectShopify(node.services, TENANT, SHOP);
    fakes.shopify.control.seed(SHOP, [{ sku: 'SW-1', quantity: 5 }]);
    await node.services.inventory.setStock(TENANT, 'SW-1', 5, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    expect(await runSync(node, TENANT, 'shopify', { mode: 'full', direction: 'both' })).toMatchObject({ status: 'completed' });
    const pool = node.runtime.database.pool;
    const { rows: map } = await pool.query<{ ids: { inventoryItemId: string; locationId: string } }>(`SELECT external_ids AS ids FROM integration_mappings WHERE tenant_id = $1 AND sku = 'SW-1'`, [TENANT]);
    const num = (gid: string) => Number(gid.split('/').pop());
    const level = (available: number | null) => ({ inventory_item_id: num(map[0]!.ids.inventoryItemId), location_id: num(map[0]!.ids.locationId), available, updated_at: new Date().toISOString() });
    // two rows as a crashed process left them: accepted 20 s ago, never applied
    const insert = (delivery: string, payload: unknown) =>
      pool.query<{ id: string }>(
        `INSERT INTO integration_webhooks (tenant_id, service, connection_id, topic, delivery_id, status, payload, received_at)
         VALUES ($1, 'shopify', $2, 'inventory_levels/update', $3, 'handed', $4, now() - interval '20 seconds') RETURNING id::text`,
        [TENANT, SHOP, delivery, JSON.stringify(payload)],
      );
    const sale = (await insert('missed-1', level(3))).rows[0]!.id;
    const nothing = (await insert('missed-2', level(null))).rows[0]!.id;

    expect(await node.services.inventory.sweepWebhooks()).toBe(2);
    await waitFor('the sale in our stock', async () => ((await node.call('GET', '/api/integrations/inventory/SW-1', { token: vendor })).body.stock === 3 ? true : null));
    const marked = async () => (await pool.query<{ id: string; applied: boolean }>('SELECT id::text, applied_at IS NOT NULL AS applied FROM integration_webhooks WHERE id = ANY($1::bigint[]) ORDER BY id', [[sale, nothing]])).rows;
    await waitFor('both marked applied', async () => ((await marked()).every((x) => x.applied) ? true : null));
    // the next sweep takes neither again
    expect(await node.services.inventory.sweepWebhooks()).toBe(0);
    expect(published.filter((p) => p.sku === 'SW-1' && p.via === 'webhook')).toHaveLength(1);
    // the sweep's predicate matches the partial index of unapplied stock webhooks (usable whatever the table's size)
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT id FROM integration_webhooks w WHERE w.applied_at IS NULL AND w.topic IN ('inventory_levels/update', 'items') AND w.status IN ('accepted', 'handed') ORDER BY w.id LIMIT 10`,
      );
      expect(plan.rows.map((p) => p['QUERY PLAN']).join('\n')).toContain('integration_webhooks_unapplied');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }, 60_000);

  it('publishes the change of an apply that wrote our stock and its log row but crashed before the publish', async () => {
    const { node } = h;
    const pool = node.runtime.database.pool;
    // as a process killed between the apply's commit and its publish left it: the row, our stock
    // and the log row written, no InventoryUpdated, no mark
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO integration_webhooks (tenant_id, service, connection_id, topic, delivery_id, status, payload, received_at)
       VALUES ($1, 'shopify', $2, 'inventory_levels/update', 'crashed-1', 'handed', '{}', now() - interval '20 seconds') RETURNING id::text`,
      [TENANT, SHOP],
    );
    const id = rows[0]!.id;
    await pool.query(`UPDATE inventory_items SET stock = 9, version = version + 1 WHERE tenant_id = $1 AND sku = 'SW-1'`, [TENANT]);
    await pool.query(
      `INSERT INTO integration_sync_logs (tenant_id, service, connection_id, op_key, sku, direction, outcome, our_stock, channel_stock, resolved_stock, action, reason, changed_at)
       VALUES ($1, 'shopify', $2, $3, 'SW-1', 'both', 'synced', 3, 9, 9, 'write_ours', 'the channel changed', now())`,
      [TENANT, SHOP, `webhook:${id}`],
    );
    const before = published.filter((p) => p.sku === 'SW-1' && p.stock === 9).length;
    // the old sweep looked for stock webhooks without a log row: this one has one, and was never taken again
    expect(await node.services.inventory.sweepWebhooks()).toBe(1);
    await waitFor('the change published', () => (published.filter((p) => p.sku === 'SW-1' && p.stock === 9 && p.via === 'webhook').length > before ? true : null));
    await waitFor('marked applied', async () => ((await pool.query('SELECT 1 FROM integration_webhooks WHERE id = $1 AND applied_at IS NOT NULL', [id])).rowCount === 1 ? true : null));
    expect(await node.services.inventory.sweepWebhooks()).toBe(0);
  }, 30_000);
});
