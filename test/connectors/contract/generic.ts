/** The generic REST connector (client credentials) against the generic fake. */
import { createHmac } from 'node:crypto';
import { startGenericFake, type GenericFake } from '../../../simulator/fakes/generic.js';
import { GenericClient, genericWebhooks, type GenericAuth } from '../../../connectors/generic/index.js';
import { ctxOf, type Creds, type ProviderUnderTest } from './adapter.js';

type CC = Extract<GenericAuth, { pattern: 'client_credentials' }>;

export function genericAdapter(): ProviderUnderTest & { fake(): GenericFake } {
  let fake: GenericFake;
  let client: GenericClient<CC>;
  const creds = (c: Creds) => c as unknown as { clientId: string; clientSecret: string };
  const hooks = genericWebhooks({ header: 'x-signature', encoding: 'hex', prefix: 'sha256=' });

  return {
    name: 'generic',
    fake: () => fake,
    async setup() {
      fake = await startGenericFake({ auth: { clientCredentials: { clients: [{ id: 'svc', secret: 'svc-secret', scopes: ['read', 'write'] }] } } });
      client = new GenericClient({ baseUrl: `${fake.url}/v1`, auth: { pattern: 'client_credentials', tokenUrl: `${fake.url}/oauth/token` } });
    },
    teardown: () => fake.close(),
    credentials: async () => ({ clientId: 'svc', clientSecret: 'svc-secret' }),
    probe: (c, signal) => client.request(creds(c), { path: '/whoami' }, ctxOf(signal)),
    async listAll(c) {
      const seeded = fake.control.seed('products', Array.from({ length: 25 }, (_, i) => ({ id: `p${String(i).padStart(2, '0')}`, sku: `G-${i}` })));
      const keys: string[] = [];
      let pages = 0;
      let cursor: string | null = null;
      do {
        const page: { items: Array<Record<string, unknown>>; nextCursor: string | null } = await client.list(creds(c), { resource: 'products', limit: 10, cursor }, ctxOf());
        pages++;
        keys.push(...page.items.map((r) => String(r.id)));
        cursor = page.nextCursor;
      } while (cursor);
      return { keys, expected: seeded.map((r) => r.id), pages };
    },
    async casWrite(c) {
      fake.control.seed('stock', [{ id: 'sku-1', quantity: 10 }]);
      const read = await client.get<{ quantity: number }>(creds(c), { resource: 'stock', id: 'sku-1' }, ctxOf());
      await client.update(creds(c), { resource: 'stock', id: 'sku-1', body: { quantity: 7 }, ifMatch: read.etag! }, ctxOf());
      const after = Number(fake.control.records('stock')[0]!.quantity);
      const stale = await client.update(creds(c), { resource: 'stock', id: 'sku-1', body: { quantity: 3 }, ifMatch: read.etag! }, ctxOf()).catch((e: unknown) => e);
      return { after, expectedAfter: 7, stale, afterStale: Number(fake.control.records('stock')[0]!.quantity) };
    },
    async throttled(c) {
      fake.control.setRateLimit({ limit: 1, windowMs: 30_000 });
      await client.request(creds(c), { path: '/whoami' }, ctxOf());
      const error = await client.request(creds(c), { path: '/whoami' }, ctxOf()).catch((e: unknown) => e);
      fake.control.setRateLimit(undefined);
      return [{ what: '429 with Retry-After', error, expectRetryAfterMs: 30_000 }];
    },
    async webhook() {
      // the generic fake sends no webhooks: a fixture signed as such an API signs
      const body = new TextEncoder().encode(JSON.stringify({ id: 'evt-9', type: 'stock.changed', sku: 'G-1' }));
      const sign = (secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      return {
        webhooks: hooks as never,
        secret: 'generic-webhook-secret',
        good: { body, headers: { 'x-signature': sign('generic-webhook-secret') } },
        bad: [{ body, headers: { 'x-signature': sign('wrong') } }, { body, headers: {} }, { body: new TextEncoder().encode('{"id":"evt-9","type":"x"}'), headers: { 'x-signature': sign('generic-webhook-secret') } }],
        expect: { payload: { id: 'evt-9', type: 'stock.changed', sku: 'G-1' } },
      };
    },
    readMissing: (c) => client.get(creds(c), { resource: 'products', id: 'nope' }, ctxOf()),
    fail: (status, retryAfterSeconds) => fake.control.fail({ status, count: 1, path: '/v1', ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }),
    hang: () => fake.control.hang({ count: 1, path: '/v1' }),
    clearFaults: () => fake.control.clearFaults(),
    revoke: () => fake.control.revokeClient('svc'),
  };
}
