import { z } from '@hono/zod-openapi';
import { router, routes } from '../env.js';
import { conflict, errors, json, jsonBody } from '../schemas.js';

const Service = z.object({ service: z.enum(['shopify', 'mercadolibre']).openapi({ description: 'The marketplace' }) });
const SkuParam = z.object({ sku: z.string().min(1).max(100).openapi({ example: 'SKU-1' }) });
const TenantId = z.string().min(1).max(200).optional().openapi({ description: 'Operators and services name the tenant; a vendor acts for itself' });
const Account = z.string().min(1).max(200).optional().openapi({ description: "The connection's account (shop or seller) when the tenant has several; default the first" });

const Channel = z
  .object({
    service: z.string(),
    account: z.string(),
    externalIds: z.record(z.string(), z.unknown()),
    mappedBy: z.enum(['sync', 'manual']),
    lastKnownStock: z.number().int().nullable(),
    lastKnownAt: z.string().nullable(),
    syncedStock: z.number().int().nullable(),
    lastSyncedAt: z.string().nullable(),
    openConflict: z.string().nullable(),
  })
  .openapi('InventoryChannel');

const Item = z
  .object({ tenantId: z.string(), sku: z.string(), stock: z.number().int(), version: z.number().int(), changedAt: z.string(), source: z.string(), channels: z.array(Channel) })
  .openapi('InventoryItem');

const Progress = z
  .object({
    syncId: z.string(),
    service: z.string(),
    account: z.string(),
    mode: z.enum(['full', 'delta']),
    direction: z.enum(['inbound', 'outbound', 'both']),
    status: z.enum(['running', 'completed', 'failed']),
    total: z.number().int(),
    synced: z.number().int(),
    unchanged: z.number().int(),
    failed: z.number().int(),
    conflicts: z.number().int(),
    unmapped: z.number().int(),
    pages: z.number().int(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('SyncProgress');

const Conflict = z
  .object({
    id: z.string(),
    service: z.string(),
    account: z.string(),
    sku: z.string(),
    ourStock: z.number().int(),
    channelStock: z.number().int(),
    ourChangedAt: z.string().nullable(),
    channelChangedAt: z.string().nullable(),
    status: z.enum(['open', 'resolved']),
    resolution: z.enum(['egdc', 'marketplace', 'custom']).nullable(),
    resolvedStock: z.number().int().nullable(),
    reason: z.string().nullable(),
    resolvedBy: z.string().nullable(),
    createdAt: z.string(),
    resolvedAt: z.string().nullable(),
  })
  .openapi('SyncConflict');

const Log = z
  .object({
    id: z.string(),
    account: z.string(),
    syncId: z.string().nullable(),
    sku: z.string(),
    direction: z.string(),
    outcome: z.string(),
    ourStock: z.number().int().nullable(),
    channelStock: z.number().int().nullable(),
    resolvedStock: z.number().int().nullable(),
    action: z.string().nullable(),
    reason: z.string().nullable(),
    errorCode: z.string().nullable(),
    at: z.string(),
  })
  .openapi('SyncLog');

const Config = z.object({ service: z.string(), tenantId: z.string(), conflictStrategy: z.enum(['egdc_wins', 'marketplace_wins', 'most_recent', 'manual']) }).openapi('SyncConfig');
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

const route = routes('Inventory sync');

/**
 * `/api/integrations/inventory/...`: our stock (the tenant catalog); `/api/integrations/:service/...`:
 * mappings, conflict strategy and conflicts, sync runs and their logs. Mounted before the
 * connection routes, so `inventory` is never taken for a service.
 */
export function inventoryRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'put',
      path: '/inventory/{sku}',
      summary: "Set our stock of a SKU; each connected channel of the tenant is then written (compare-and-set, by the connection's conflict strategy)",
      request: {
        params: SkuParam,
        body: jsonBody(
          z
            .object({
              stock: z.number().int().min(0).max(1_000_000_000),
              tenantId: TenantId,
              changedAt: z.iso.datetime({ offset: true }).optional().openapi({ description: 'When the change happened (default now); an older change than the stored one is ignored' }),
            })
            .strict(),
        ),
      },
      responses: { 200: json(Item, 'The item, with each channel it is mapped to'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.put(c.get('principal'), c.req.valid('param').sku, c.req.valid('json')), 200),
  );

  app.openapi(
    route({
      method: 'get',
      path: '/inventory/{sku}',
      summary: 'Our stock of a SKU and, per channel, its last known stock, external ids and last sync',
      request: { params: SkuParam, query: z.object({ tenantId: TenantId }) },
      responses: { 200: json(Item, 'The item'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.get(c.get('principal'), c.req.valid('param').sku, c.req.valid('query').tenantId), 200),
  );

  app.openapi(
    route({
      method: 'get',
      path: '/inventory',
      summary: 'Our items by SKU, with filters',
      request: {
        query: z.object({
          tenantId: TenantId,
          sku: z.string().min(1).max(100).optional().openapi({ description: 'SKU prefix' }),
          service: z.enum(['shopify', 'mercadolibre']).optional().openapi({ description: 'Mapped to this channel (with unmapped=true: not mapped to it)' }),
          unmapped: bool.optional(),
          conflicts: bool.optional().openapi({ description: 'true: only SKUs with an open conflict' }),
          after: z.string().max(100).optional().openapi({ description: '`next` of the previous page' }),
          limit: z.coerce.number().int().min(1).max(500).optional(),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(Item), next: z.string().nullable() }).openapi('InventoryPage'), 'A page of items'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.list(c.get('principal'), c.req.valid('query')), 200),
  );

  app.openapi(
    route({
      method: 'put',
      path: '/{service}/mappings/{sku}',
      summary: 'Map a SKU to a channel record by hand (Shopify inventory item + location, MercadoLibre item + variation); a full sync never replaces it',
      request: {
        params: Service.extend(SkuParam.shape),
        body: jsonBody(
          z
            .object({
              tenantId: TenantId,
              account: Account,
              externalIds: z
                .object({ inventoryItemId: z.string().max(200).optional(), locationId: z.string().max(200).optional(), itemId: z.string().max(50).optional(), variationId: z.number().int().positive().optional() })
                .strict()
                .openapi({ example: { inventoryItemId: 'gid://shopify/InventoryItem/1', locationId: 'gid://shopify/Location/1' } }),
            })
            .strict(),
        ),
      },
      responses: { 200: json(Channel, 'The mapping'), ...errors },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await c.get('services').inventory.putMapping(c.get('principal'), p.service, p.sku, c.req.valid('json')), 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{service}/config',
      summary: "The connection's sync settings (conflict strategy)",
      request: { params: Service, query: z.object({ tenantId: TenantId }) },
      responses: { 200: json(Config, 'The settings'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.getConfig(c.get('principal'), c.req.valid('param').service, c.req.valid('query').tenantId), 200),
  );

  app.openapi(
    route({
      method: 'put',
      path: '/{service}/config',
      summary: 'Set the conflict strategy: egdc_wins, marketplace_wins, most_recent (by the change times each side reports) or manual (a conflict task)',
      request: { params: Service, body: jsonBody(z.object({ tenantId: TenantId, conflictStrategy: z.enum(['egdc_wins', 'marketplace_wins', 'most_recent', 'manual']) }).strict()) },
      responses: { 200: json(Config, 'The settings'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.setConfig(c.get('principal'), c.req.valid('param').service, c.req.valid('json')), 200),
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{service}/conflicts',
      summary: 'Conflicts the manual strategy left to a person (both sides changed since the last sync)',
      request: { params: Service, query: z.object({ tenantId: TenantId, status: z.enum(['open', 'resolved']).optional(), limit: z.coerce.number().int().min(1).max(500).optional() }) },
      responses: { 200: json(z.object({ data: z.array(Conflict) }).openapi('SyncConflicts'), 'The conflicts, newest first'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.conflicts(c.get('principal'), c.req.valid('param').service, c.req.valid('query')), 200),
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{service}/conflicts/{id}/resolve',
      summary: "Close a conflict: egdc (ours stands), marketplace (the channel's stands) or custom (stock on both); the SKU syncs again",
      request: {
        params: Service.extend({ id: z.string().min(1).max(20) }),
        body: jsonBody(
          z
            .object({ tenantId: TenantId, resolution: z.enum(['egdc', 'marketplace', 'custom']), stock: z.number().int().min(0).max(1_000_000_000).optional(), reason: z.string().max(1000).optional() })
            .strict(),
        ),
      },
      responses: { 200: json(Conflict, 'The resolved conflict'), ...errors, ...conflict },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await c.get('services').inventory.resolve(c.get('principal'), p.service, p.id, c.req.valid('json')), 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{service}/sync',
      summary: 'Start a sync of the connection: full (every record, mappings built by SKU) or delta (changes since the last sync), inbound, outbound or both. One at a time per connection',
      request: {
        params: Service,
        body: jsonBody(z.object({ tenantId: TenantId, account: Account, mode: z.enum(['full', 'delta']), direction: z.enum(['inbound', 'outbound', 'both']) }).strict()),
      },
      responses: { 202: json(z.object({ syncId: z.string(), status: z.literal('running') }).openapi('SyncStarted'), 'Started'), ...errors, ...conflict },
    }),
    async (c) => c.json(await c.get('services').inventory.startSync(c.get('principal'), c.req.valid('param').service, c.req.valid('json')), 202),
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{service}/syncs/{syncId}',
      summary: "A sync's progress: total, synced, unchanged, failed, conflicts, unmapped, status",
      request: { params: Service.extend({ syncId: z.string().min(1).max(100) }), query: z.object({ tenantId: TenantId }) },
      responses: { 200: json(Progress, 'The progress'), ...errors },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await c.get('services').inventory.getSync(c.get('principal'), p.service, p.syncId, c.req.valid('query').tenantId), 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{service}/logs',
      summary: 'The sync log (integration_sync_logs): every item outcome, newest first',
      request: {
        params: Service,
        query: z.object({
          tenantId: TenantId,
          syncId: z.string().max(100).optional(),
          sku: z.string().max(100).optional(),
          outcome: z.enum(['synced', 'unchanged', 'conflict', 'failed', 'unmapped', 'skipped', 'resolved']).optional(),
          before: z.string().max(20).optional().openapi({ description: '`next` of the previous page' }),
          limit: z.coerce.number().int().min(1).max(1000).optional(),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(Log), next: z.string().nullable() }).openapi('SyncLogs'), 'A page of the log'), ...errors },
    }),
    async (c) => c.json(await c.get('services').inventory.logs(c.get('principal'), c.req.valid('param').service, c.req.valid('query')), 200),
  );

  return app;
}
