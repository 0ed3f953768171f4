import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { spawnTs, type Child } from '../../../helpers/child.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { connectShopify, KEYS, startNode, token, type Node } from './support.js';

const WORKER = fileURLToPath(new URL('../../../fixtures/sync-worker.ts', import.meta.url));
const SHOP = 'crash.myshopify.com';
const TENANT = 't-crash';
const N = 450;

let fakes: MarketplaceFakes;
let database: Database;
const nodes: Node[] = [];
const children: Child[] = [];

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  for (const n of nodes.reverse()) await n.close();
  await database?.close();
  await fakes?.close();
});

describe('a process killed mid-sync', () => {
  it('resumes where it was after a SIGKILL and ends with both sides equal, each item counted once', async () => {
    // the edge takes requests and commits the sync actor's steps; it carries out no calls (no relay)
    const edge = await startNode(database, fakes, { env: { PUBLIC_BASE_URL: 'http://concord.test' }, run: { relay: false, timers: false } });
    nodes.push(edge);
    await connectShopify(edge.services, TENANT, SHOP);
    fakes.shopify.control.seed(SHOP, Array.from({ length: N }, (_, i) => ({ sku: `K${String(i).padStart(4, '0')}`, quantity: i })));
    for (let i = 0; i < N; i++) await edge.services.inventory.setStock(TENANT, `K${String(i).padStart(4, '0')}`, 1000 + i, { source: 'api' });

    const env = { ...fakes.env, PUBLIC_BASE_URL: 'http://concord.test', CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url };
    const child = spawnTs(WORKER, env);
    children.push(child);
    await child.waitLine('ready');
    const r = await edge.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', TENANT), body: { mode: 'full', direction: 'outbound' } });
    expect(r.status).toBe(202);
    await child.waitLine('page-2', 60_000);
    await child.kill('SIGKILL');
    const mid = (await edge.call('GET', `/api/integrations/shopify/syncs/${r.body.syncId}`, { token: token('vendor', TENANT) })).body;
    expect(mid.status).toBe('running');
    expect(mid.pages).toBeLessThan(5);
    await edge.close();
    nodes.splice(nodes.indexOf(edge), 1);

    // another process takes over: the page in flight runs again (its items are not written twice), then the rest
    const next = await startNode(database, fakes, { env: { PUBLIC_BASE_URL: 'http://concord.test' } });
    nodes.push(next);
    const done = await waitFor(
      'the sync to complete',
      async () => {
        const s = (await next.call('GET', `/api/integrations/shopify/syncs/${r.body.syncId}`, { token: token('vendor', TENANT) })).body;
        return s.status === 'completed' ? s : null;
      },
      60_000,
    );
    expect(done).toMatchObject({ total: N, synced: N, failed: 0, conflicts: 0, pages: 5 });
    for (let i = 0; i < N; i++) expect(fakes.shopify.control.level(SHOP, `K${String(i).padStart(4, '0')}`)?.available).toBe(1000 + i);
    // one log row per item: nothing done twice
    const { rows } = await database.pool.query<{ n: number; skus: number }>('SELECT count(*)::int AS n, count(DISTINCT sku)::int AS skus FROM integration_sync_logs WHERE sync_id = $1', [r.body.syncId]);
    expect(rows[0]).toEqual({ n: N, skus: N });
  });
});
