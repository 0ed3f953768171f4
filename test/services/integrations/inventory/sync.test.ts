import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { connectShopify, startNode, token, type Node } from './support.js';

let fakes: MarketplaceFakes;
let database: Database;
let node: Node;
/** SKUs whose channel gets a sale between our read and our write (the hook below). */
const saleBeforeWrite = new Map<string, { shop: string; n: number }>();
const published: Array<{ subject: string; data: Record<string, unknown> }> = [];
/** A shop whose tokens expire right after the first page of the next sync. */
let expireAfterFirstPage: string | null = null;

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  node = await startNode(database, fakes, {
    hooks: {
      afterPage: ({ page }) => {
        if (page === 0 && expireAfterFirstPage) {
          fakes.shopify.control.expireTokens(expireAfterFirstPage);
          expireAfterFirstPage = null;
        }
      },
      beforeChannelWrite: async ({ skus }) => {
        for (const sku of skus) {
          const sale = saleBeforeWrite.get(sku);
          if (!sale) continue;
          saleBeforeWrite.delete(sku);
          await fakes.shopify.control.sell(sale.shop, sku, sale.n, { webhook: false });
        }
      },
    },
  });
  node.runtime.bus.subscribe('concord.events.InventoryUpdated', (m) => void published.push({ subject: m.subject, data: m.data as Record<string, unknown> }));
}, 60_000);

afterAll(async () => {
  await node?.close();
  await database?.close();
  await fakes?.close();
});

const shopLevel = (shop: string, sku: string) => fakes.shopify.control.level(shop, sku)?.available;
const ours = async (tenant: string, sku: string) => (await node.call('GET', `/api/integrations/inventory/${sku}`, { token: token('vendor', tenant) })).body as { stock: number; channels: Array<Record<string, unknown>> };
const put = (tenant: string, sku: string, stock: number, changedAt?: string) =>
  node.call('PUT', `/api/integrations/inventory/${sku}`, { token: token('vendor', tenant), body: { stock, ...(changedAt ? { changedAt } : {}) } });

async function fullSync(tenant: string, direction: 'inbound' | 'outbound' | 'both' = 'both') {
  const r = await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', tenant), body: { mode: 'full', direction } });
  expect(r.status).toBe(202);
  expect(r.body).toEqual({ syncId: expect.any(String), status: 'running' });
  return waitFor('the sync to end', async () => {
    const s = await node.call('GET', `/api/integrations/shopify/syncs/${r.body.syncId}`, { token: token('vendor', tenant) });
    return s.body.status !== 'running' ? s.body : null;
  });
}

/** A tenant with a shop, our stock and the channel's seeded, a strategy set and a first full sync done (both sides agree). */
async function synced(tenant: string, shop: string, strategy: string, items: Array<{ sku: string; quantity: number }>) {
  await connectShopify(node.services, tenant, shop);
  fakes.shopify.control.seed(shop, items);
  for (const it of items) expect((await put(tenant, it.sku, it.quantity, '2026-01-01T00:00:00Z')).status).toBe(200);
  expect((await node.call('PUT', '/api/integrations/shopify/config', { token: token('vendor', tenant), body: { conflictStrategy: strategy } })).body).toMatchObject({ conflictStrategy: strategy });
  const s = await fullSync(tenant);
  expect(s).toMatchObject({ status: 'completed', failed: 0 });
}

describe('inventory sync with Shopify (real PostgreSQL, the fake over real HTTP, webhooks to a real port)', () => {
  it('a full sync builds the mappings by SKU, settles the differences, reports unmapped SKUs on both sides, and logs every item', async () => {
    const tenant = 't-full';
    const shop = 'full.myshopify.com';
    await connectShopify(node.services, tenant, shop);
    fakes.shopify.control.seed(shop, [
      { sku: 'A', quantity: 5 },
      { sku: 'B', quantity: 7 },
      { sku: 'C-CHANNEL-ONLY', quantity: 9 },
    ]);
    await put(tenant, 'A', 5);
    await put(tenant, 'B', 3);
    await put(tenant, 'D-OURS-ONLY', 4);
    await node.call('PUT', '/api/integrations/shopify/config', { token: token('vendor', tenant), body: { conflictStrategy: 'egdc_wins' } });
    const s = await fullSync(tenant);
    expect(s).toMatchObject({ status: 'completed', mode: 'full', direction: 'both', total: 4, synced: 0, unchanged: 1, conflicts: 1, unmapped: 2, failed: 0 });
    // first sync, both ways, sides differ: the strategy (egdc_wins) decides
    expect(shopLevel(shop, 'B')).toBe(3);
    const b = await ours(tenant, 'B');
    expect(b.stock).toBe(3);
    expect(b.channels).toEqual([expect.objectContaining({ service: 'shopify', account: shop, mappedBy: 'sync', syncedStock: 3, externalIds: expect.objectContaining({ inventoryItemId: expect.stringMatching(/^gid:\/\/shopify\/InventoryItem\//) }) })]);
    const logs = await node.call('GET', `/api/integrations/shopify/logs?syncId=${s.syncId}`, { token: token('vendor', tenant) });
    expect(logs.body.data.map((l: { sku: string; outcome: string }) => `${l.sku}:${l.outcome}`).sort()).toEqual(['A:unchanged', 'B:conflict', 'C-CHANNEL-ONLY:unmapped', 'D-OURS-ONLY:unmapped']);
    // listed by filters: unmapped to shopify
    const unmapped = await node.call('GET', '/api/integrations/inventory?service=shopify&unmapped=true', { token: token('vendor', tenant) });
    expect(unmapped.body.data.map((i: { sku: string }) => i.sku)).toEqual(['D-OURS-ONLY']);
    // the status shows the sync
    const status = await node.call('GET', '/api/integrations/shopify/status', { token: token('vendor', tenant) });
    expect(status.body.connections[0].sync).toMatchObject({ conflictStrategy: 'egdc_wins', lastSync: { syncId: s.syncId, status: 'completed' }, syncSuccessRate: 1, openConflicts: 0 });
  });

  it('our change (PUT) reaches the channel; a sale on the channel (webhook) reaches our stock and is published as InventoryUpdated', async () => {
    const tenant = 't-flow';
    const shop = 'flow.myshopify.com';
    await synced(tenant, shop, 'most_recent', [{ sku: 'F1', quantity: 10 }]);
    expect((await put(tenant, 'F1', 14)).status).toBe(200);
    await waitFor('the push to reach the shop', () => shopLevel(shop, 'F1') === 14);
    await fakes.shopify.control.webhooksIdle();
    const before = published.length;
    await fakes.shopify.control.sell(shop, 'F1', 3);
    await waitFor('the sale to reach our stock', async () => (await ours(tenant, 'F1')).stock === 11);
    const ev = await waitFor('InventoryUpdated', () => published.slice(before).find((p) => p.data.sku === 'F1' && p.data.stock === 11));
    expect(ev.data).toMatchObject({ tenantId: tenant, sku: 'F1', stock: 11, previousStock: 14, provider: 'shopify', account: shop, via: 'webhook' });
    expect(shopLevel(shop, 'F1')).toBe(11);
  });

  it('two syncs of one connection never run at once: the second is a 409 problem', async () => {
    const tenant = 't-409';
    const shop = 'busy.myshopify.com';
    await connectShopify(node.services, tenant, shop);
    fakes.shopify.control.seed(shop, Array.from({ length: 150 }, (_, i) => ({ sku: `B${i}`, quantity: i })));
    fakes.shopify.control.hang({ count: 1, path: '/graphql.json' });
    const first = await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', tenant), body: { mode: 'full', direction: 'inbound' } });
    expect(first.status).toBe(202);
    const second = await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', tenant), body: { mode: 'delta', direction: 'both' } });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ status: 409, code: 'CONFLICT', id: first.body.syncId });
    fakes.shopify.control.clearFaults();
    await waitFor('the first to end', async () => (await node.call('GET', `/api/integrations/shopify/syncs/${first.body.syncId}`, { token: token('vendor', tenant) })).body.status === 'completed', 60_000);
  });

  describe('each conflict strategy on a scripted race: a sale on the channel while our stock changes', () => {
    it('egdc_wins: our stock is written over the sale (compare-and-set against what we read), logged as a conflict', async () => {
      const tenant = 't-egdc';
      const shop = 'egdc.myshopify.com';
      await synced(tenant, shop, 'egdc_wins', [{ sku: 'R', quantity: 10 }]);
      await fakes.shopify.control.sell(shop, 'R', 3, { webhook: false });
      await put(tenant, 'R', 15);
      await waitFor('ours on the channel', () => shopLevel(shop, 'R') === 15);
      expect((await ours(tenant, 'R')).stock).toBe(15);
      const log = await waitFor('the conflict logged', async () => (await node.call('GET', '/api/integrations/shopify/logs?sku=R&outcome=conflict', { token: token('vendor', tenant) })).body.data[0]);
      expect(log).toMatchObject({ ourStock: 15, channelStock: 7, resolvedStock: 15, action: 'write_channel', reason: expect.stringContaining('egdc_wins') });
    });

    it('marketplace_wins: the sale stands and our stock takes it', async () => {
      const tenant = 't-mkt';
      const shop = 'mkt.myshopify.com';
      await synced(tenant, shop, 'marketplace_wins', [{ sku: 'R', quantity: 10 }]);
      await fakes.shopify.control.sell(shop, 'R', 3, { webhook: false });
      await put(tenant, 'R', 15);
      await waitFor('ours to take the channel', async () => (await ours(tenant, 'R')).stock === 7);
      expect(shopLevel(shop, 'R')).toBe(7);
    });

    it('most_recent: the later change wins, by the times each side reports', async () => {
      const tenant = 't-recent';
      const shop = 'recent.myshopify.com';
      await synced(tenant, shop, 'most_recent', [
        { sku: 'OLD', quantity: 10 },
        { sku: 'NEW', quantity: 10 },
      ]);
      // OLD: our change is dated before the sale: the sale wins
      await fakes.shopify.control.sell(shop, 'OLD', 2, { webhook: false });
      await put(tenant, 'OLD', 20, new Date(Date.now() - 60_000).toISOString());
      await waitFor('OLD: ours takes the sale', async () => (await ours(tenant, 'OLD')).stock === 8);
      expect(shopLevel(shop, 'OLD')).toBe(8);
      // NEW: our change comes after the sale: ours wins
      await fakes.shopify.control.sell(shop, 'NEW', 2, { webhook: false });
      await new Promise((r) => setTimeout(r, 5));
      await put(tenant, 'NEW', 20);
      await waitFor('NEW: the channel takes ours', () => shopLevel(shop, 'NEW') === 20);
      expect((await ours(tenant, 'NEW')).stock).toBe(20);
    });

    it('manual: a conflict task; the SKU is not synced while it is open; resolving it syncs both sides and logs the reason', async () => {
      const tenant = 't-manual';
      const shop = 'manual.myshopify.com';
      await synced(tenant, shop, 'manual', [{ sku: 'M', quantity: 10 }]);
      await fakes.shopify.control.sell(shop, 'M', 4, { webhook: false });
      await put(tenant, 'M', 15);
      const open = await waitFor('the conflict', async () => {
        const r = await node.call('GET', '/api/integrations/shopify/conflicts?status=open', { token: token('vendor', tenant) });
        return r.body.data[0];
      });
      expect(open).toMatchObject({ sku: 'M', ourStock: 15, channelStock: 6, status: 'open' });
      expect(shopLevel(shop, 'M')).toBe(6);
      // while open: another change of ours is not pushed
      await put(tenant, 'M', 16);
      await waitFor('the skip to be logged', async () => (await node.call('GET', '/api/integrations/shopify/logs?sku=M&outcome=skipped', { token: token('vendor', tenant) })).body.data.length > 0);
      expect(shopLevel(shop, 'M')).toBe(6);
      expect((await ours(tenant, 'M')).channels[0]).toMatchObject({ openConflict: open.id });
      // bad input is a 400 problem, another tenant's conflict a 404
      expect((await node.call('POST', `/api/integrations/shopify/conflicts/${open.id}/resolve`, { token: token('vendor', tenant), body: { resolution: 'custom' } })).status).toBe(400);
      expect((await node.call('POST', `/api/integrations/shopify/conflicts/${open.id}/resolve`, { token: token('vendor', 't-other'), body: { resolution: 'egdc' } })).status).toBe(404);
      const r = await node.call('POST', `/api/integrations/shopify/conflicts/${open.id}/resolve`, { token: token('vendor', tenant), body: { resolution: 'custom', stock: 12, reason: 'counted the shelf' } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'resolved', resolution: 'custom', resolvedStock: 12, reason: 'counted the shelf', resolvedBy: `vendor@${tenant}` });
      await waitFor('both sides at 12', async () => shopLevel(shop, 'M') === 12 && (await ours(tenant, 'M')).stock === 12);
      expect((await node.call('POST', `/api/integrations/shopify/conflicts/${open.id}/resolve`, { token: token('vendor', tenant), body: { resolution: 'egdc' } })).status).toBe(409);
      const logged = await node.call('GET', '/api/integrations/shopify/logs?sku=M&outcome=resolved', { token: token('vendor', tenant) });
      expect(logged.body.data[0]).toMatchObject({ resolvedStock: 12, action: 'resolution:custom', reason: 'counted the shelf' });
    });

    it('a sale between our read and our write is refused by the compare-and-set and becomes a conflict, never an overwrite', async () => {
      const tenant = 't-cas';
      const shop = 'cas.myshopify.com';
      await synced(tenant, shop, 'manual', [{ sku: 'CAS', quantity: 10 }]);
      saleBeforeWrite.set('CAS', { shop, n: 1 });
      await put(tenant, 'CAS', 15); // read 10, baseline 10: ours moved only; the write is compare-and-set from 10; the sale lands first
      const open = await waitFor('the conflict', async () => (await node.call('GET', '/api/integrations/shopify/conflicts?status=open', { token: token('vendor', tenant) })).body.data[0]);
      expect(open).toMatchObject({ sku: 'CAS', ourStock: 15, channelStock: 9 });
      expect(open.reason).toContain('compare-and-set refused');
      expect(shopLevel(shop, 'CAS')).toBe(9);
      expect(saleBeforeWrite.has('CAS')).toBe(false);
    });
  });

  it('a token expiring mid-sync is refreshed once (the door, on the 401) and the sync continues', async () => {
    const tenant = 't-token';
    const shop = 'token.myshopify.com';
    await connectShopify(node.services, tenant, shop);
    const n = 250;
    const sku = (i: number) => `T${String(i).padStart(3, '0')}`;
    fakes.shopify.control.seed(shop, Array.from({ length: n }, (_, i) => ({ sku: sku(i), quantity: i })));
    for (let i = 0; i < n; i++) await node.services.inventory.setStock(tenant, sku(i), 500 + i, { source: 'api' });
    const refreshes = () => [...fakes.shopify.state.tokens.refresh.values()].filter((r) => r.shop === shop && r.parent).length;
    expect(refreshes()).toBe(0);
    expireAfterFirstPage = shop;
    const s = await fullSync(tenant, 'outbound');
    expect(expireAfterFirstPage).toBeNull();
    expect(s).toMatchObject({ status: 'completed', total: n, synced: n, failed: 0, pages: 3 });
    expect(refreshes()).toBe(1);
    for (let i = 0; i < n; i++) expect(shopLevel(shop, sku(i))).toBe(500 + i);
    const status = await node.call('GET', '/api/integrations/shopify/status', { token: token('vendor', tenant) });
    expect(status.body.connections[0]).toMatchObject({ state: 'connected' });
    expect(status.body.connections[0].lastRefreshAt).not.toBeNull();
  });

  it('tenants are isolated: another vendor sees 404 for our items, syncs and conflicts, and an empty log', async () => {
    const s = await fullSync('t-full');
    expect((await node.call('GET', '/api/integrations/inventory/A', { token: token('vendor', 't-intruder') })).status).toBe(404);
    expect((await node.call('GET', `/api/integrations/shopify/syncs/${s.syncId}`, { token: token('vendor', 't-intruder') })).status).toBe(404);
    expect((await node.call('GET', '/api/integrations/inventory/A?tenantId=t-full', { token: token('vendor', 't-intruder') })).status).toBe(404);
    expect((await node.call('GET', '/api/integrations/shopify/logs', { token: token('vendor', 't-intruder') })).body.data).toEqual([]);
    expect((await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', 't-intruder'), body: { mode: 'full', direction: 'both' } })).status).toBe(404);
    // an operator names the tenant
    expect((await node.call('GET', '/api/integrations/inventory/A?tenantId=t-full', { token: token('operator') })).body).toMatchObject({ sku: 'A', stock: 5 });
    // bad input: problems, not 500s
    expect((await put('t-full', 'A', -1)).status).toBe(400);
    expect((await node.call('PUT', '/api/integrations/shopify/config', { token: token('vendor', 't-full'), body: { conflictStrategy: 'coin_toss' } })).status).toBe(400);
    expect((await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', 't-full'), body: { mode: 'sometimes', direction: 'both' } })).status).toBe(400);
  });
});
