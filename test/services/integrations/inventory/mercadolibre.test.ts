import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { DEMO_ML_SELLER, startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { connectMercadoLibre, startNode, token, type Node } from './support.js';

const TENANT = 't-ml';
let fakes: MarketplaceFakes;
let database: Database;
let node: Node;

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  // the incremental poll every second (INVENTORY_POLL_MS; 5 minutes by default)
  node = await startNode(database, fakes, { env: { INVENTORY_POLL_MS: '1000' } });
}, 60_000);

afterAll(async () => {
  await node?.close();
  await database?.close();
  await fakes?.close();
});

const mlStock = (sku: string) => fakes.mercadolibre.control.stock(DEMO_ML_SELLER, sku);
const ours = async (sku: string) => (await node.call('GET', `/api/integrations/inventory/${sku}`, { token: token('vendor', TENANT) })).body;

describe('inventory sync with MercadoLibre (items and variations)', () => {
  it('a full sync maps items and variations by SKU; our change is written (check-then-write); a notification is fetched and applied to ours', async () => {
    await connectMercadoLibre(node.services, TENANT);
    fakes.mercadolibre.control.seed(DEMO_ML_SELLER, [{ sku: 'ML-A', quantity: 5 }, { variations: [{ sku: 'ML-V1', quantity: 2 }, { sku: 'ML-V2', quantity: 8 }] }]);
    await node.services.inventory.setStock(TENANT, 'ML-A', 5, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    await node.services.inventory.setStock(TENANT, 'ML-V1', 3, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    await node.services.inventory.setStock(TENANT, 'ML-V2', 8, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    const r = await node.call('POST', '/api/integrations/mercadolibre/sync', { token: token('vendor', TENANT), body: { mode: 'full', direction: 'outbound' } });
    expect(r.status).toBe(202);
    const s = await waitFor('the sync', async () => {
      const b = (await node.call('GET', `/api/integrations/mercadolibre/syncs/${r.body.syncId}`, { token: token('vendor', TENANT) })).body;
      return b.status === 'completed' ? b : null;
    });
    expect(s).toMatchObject({ total: 3, synced: 1, unchanged: 2, failed: 0 });
    expect(mlStock('ML-V1')).toBe(3);
    expect(mlStock('ML-V2')).toBe(8); // the other variation kept (ML deletes variations a PUT leaves out)
    expect((await ours('ML-V1')).channels[0]).toMatchObject({ service: 'mercadolibre', account: String(DEMO_ML_SELLER), externalIds: { itemId: expect.stringMatching(/^MLA\d+$/), variationId: expect.any(Number) } });

    await node.call('PUT', '/api/integrations/inventory/ML-A', { token: token('vendor', TENANT), body: { stock: 9 } });
    await waitFor('ML to take ours', () => mlStock('ML-A') === 9);

    await fakes.mercadolibre.control.sell(DEMO_ML_SELLER, 'ML-V2', 3, { to: `${node.url}/api/integrations/mercadolibre/webhook` });
    await waitFor('the sale in our stock', async () => (await ours('ML-V2')).stock === 5);
    // the item's log row is written after our stock (the step's rows go in together at its end)
    const log = await waitFor('the log row', async () => (await node.call('GET', '/api/integrations/mercadolibre/logs?sku=ML-V2&outcome=synced', { token: token('vendor', TENANT) })).body.data[0]);
    expect(log).toMatchObject({ outcome: 'synced', action: 'write_ours', ourStock: 8, resolvedStock: 5 });
  });

  it('a notification ML could not deliver is read back from /missed_feeds by the incremental poll and applied to ours', async () => {
    expect((await ours('ML-A')).stock).toBe(9);
    // the notification goes nowhere (our callback down): ML lists it in its missed feeds
    const d = await fakes.mercadolibre.control.sell(DEMO_ML_SELLER, 'ML-A', 4, { to: 'http://127.0.0.1:9/down' });
    expect(d?.ok).toBe(false);
    await waitFor('the missed sale in our stock', async () => (await ours('ML-A')).stock === 5, 15_000);
    const feeds = fakes.mercadolibre.state.calls.filter((c) => c.path === '/missed_feeds');
    expect(feeds.length).toBeGreaterThan(0);
    expect(feeds.every((c) => c.status === 200)).toBe(true);
    // applied once: later polls start after it (the cursor), so no second log row for it
    await new Promise((r) => setTimeout(r, 2_500));
    const rows = await database.pool.query(`SELECT count(*)::int AS n FROM integration_sync_logs WHERE sku = 'ML-A' AND resolved_stock = 5 AND outcome = 'synced'`);
    expect(rows.rows[0].n).toBe(1);
  }, 30_000);
});
