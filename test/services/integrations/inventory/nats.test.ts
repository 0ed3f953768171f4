import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../../helpers/nats.js';
import { connectShopify, startNode, token, type Node } from './support.js';

const nats = await natsForTests();
const SHOP = 'nats.myshopify.com';
const TENANT = 't-nats';

describe.skipIf(!nats)('svc.inventory.changed over NATS JetStream', () => {
  const prefix = testPrefix();
  let fakes: MarketplaceFakes;
  let database: Database;
  let node: Node;
  let nc: NatsConnection;

  beforeAll(async () => {
    fakes = await startMarketplaceFakes();
    database = await freshDatabase();
    node = await startNode(database, fakes, { env: natsEnv(nats!.url, prefix, { SAGA_SERVICE_PREFIX: `${prefix}svc` }), run: { relay: true, timers: true }, intake: true });
    nc = await connect({ servers: nats!.url });
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await node?.close();
    await database?.close();
    await fakes?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('a change of our stock from a service reaches the channel; its Nats-Msg-Id is applied once', async () => {
    await connectShopify(node.services, TENANT, SHOP);
    fakes.shopify.control.seed(SHOP, [{ sku: 'N1', quantity: 10 }]);
    await node.services.inventory.setStock(TENANT, 'N1', 10, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    const sync = await node.call('POST', '/api/integrations/shopify/sync', { token: token('vendor', TENANT), body: { mode: 'full', direction: 'both' } });
    await waitFor('the sync', async () => (await node.call('GET', `/api/integrations/shopify/syncs/${sync.body.syncId}`, { token: token('vendor', TENANT) })).body.status === 'completed');

    const js = jetstream(nc);
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    await js.publish(`${prefix}svc.inventory.changed`, enc({ tenantId: TENANT, sku: 'N1', stock: 4, changedAt: new Date().toISOString() }), { msgID: 'inv-change-1' });
    await waitFor('the channel to take it', () => fakes.shopify.control.level(SHOP, 'N1')?.available === 4);
    const item = (await node.call('GET', '/api/integrations/inventory/N1', { token: token('vendor', TENANT) })).body;
    expect(item).toMatchObject({ stock: 4, source: 'nats' });
    // the same message id again (a redelivery past JetStream's duplicate window): nothing changes
    await node.services.inventory.changed({ tenantId: TENANT, sku: 'N1', stock: 99, changedAt: new Date().toISOString() }, 'inv-change-1');
    expect((await node.call('GET', '/api/integrations/inventory/N1', { token: token('vendor', TENANT) })).body).toMatchObject({ stock: 4, version: item.version });
    // a malformed message is dropped (acked), never retried forever
    await js.publish(`${prefix}svc.inventory.changed`, enc({ tenantId: TENANT, sku: 'N1', stock: -5 }), { msgID: 'inv-change-bad' });
    await js.publish(`${prefix}svc.inventory.changed`, enc({ tenantId: TENANT, sku: 'N1', stock: 6, changedAt: new Date().toISOString() }), { msgID: 'inv-change-2' });
    await waitFor('the next one applied', () => fakes.shopify.control.level(SHOP, 'N1')?.available === 6);
  });
});
