/** The MercadoLibre connector against the MercadoLibre fake. */
import { startMercadoLibreFake, type MercadoLibreFake } from '../../../simulator/fakes/mercadolibre.js';
import * as ml from '../../../connectors/mercadolibre/index.js';
import { ctxOf, playBrowser, Receiver, type Creds, type ProviderUnderTest } from './adapter.js';

export const ML_APP_ID = '5503910054141466';
const SELLER = 146322322;
const REDIRECT = 'https://concord.test/api/integrations/mercadolibre/callback';

export function mercadolibreAdapter(): ProviderUnderTest & { fake(): MercadoLibreFake; app(): ml.MercadoLibreAppSettings; settings(): ml.MercadoLibreSettings; persisted: ml.MercadoLibreGrant[] } {
  let fake: MercadoLibreFake;
  const receiver = new Receiver();
  let app: ml.MercadoLibreAppSettings;
  let settings: ml.MercadoLibreSettings;
  const persisted: ml.MercadoLibreGrant[] = [];
  const creds = (c: Creds) => c as unknown as ml.MercadoLibreCredentials;
  const refresh = async (c: Creds) =>
    (await ml.refreshGrant(app, {
      refreshToken: String(c.refreshToken),
      persist: async (next) => {
        persisted.push(next);
      },
      signal: AbortSignal.timeout(5_000),
    })) as unknown as Creds;

  return {
    name: 'mercadolibre',
    fake: () => fake,
    app: () => app,
    settings: () => settings,
    persisted,
    async setup() {
      await receiver.start();
      fake = await startMercadoLibreFake({ clientId: ML_APP_ID, clientSecret: 'contract-ml-secret', redirectUri: REDIRECT, notificationsUrl: `${receiver.url}/notifications?secret=ml-shared` });
      app = { clientId: ML_APP_ID, clientSecret: 'contract-ml-secret', apiBaseUrl: fake.url, authBaseUrl: fake.url };
      settings = { apiBaseUrl: fake.url, sellerId: SELLER };
    },
    async teardown() {
      await fake.close();
      await receiver.stop();
    },
    oauth: {
      async connect(o = {}) {
        const state = `st-${Math.random().toString(36).slice(2)}`;
        const verifier = ml.pkceVerifier();
        const callback = await playBrowser(ml.authorizationUrl(app, { redirectUri: REDIRECT, state, codeChallenge: ml.pkceChallenge(verifier), siteId: 'MLA' }));
        const q = callback.searchParams;
        o.tamper?.(q);
        if (q.get('state') !== state) return { callbackOk: false, reason: 'state does not match' };
        const grant = await ml.exchangeCode(app, { code: q.get('code') ?? '', redirectUri: REDIRECT, codeVerifier: verifier, signal: AbortSignal.timeout(5_000) });
        return { callbackOk: true, creds: grant as unknown as Creds };
      },
      expireAccess: () => fake.control.expireTokens(SELLER),
      refresh,
      refreshKind: 'single-use',
    },
    async credentials() {
      const t = fake.control.issueToken(SELLER);
      return { accessToken: t.access_token, refreshToken: t.refresh_token };
    },
    probe: (c, signal) => ml.getMe(settings, creds(c), {}, ctxOf(signal)),
    async listAll(c) {
      const seeded = fake.control.seed(
        SELLER,
        Array.from({ length: 45 }, (_, i) => ({ sku: `ML-PAGE-${String(i).padStart(2, '0')}`, quantity: i, status: 'paused' as const })),
      );
      const ids: string[] = [];
      let pages = 0;
      for await (const page of ml.allItemIds(settings, creds(c), { limit: 20, status: 'paused' }, ctxOf())) {
        pages++;
        ids.push(...page);
      }
      const { items } = await ml.multiget(settings, creds(c), { ids }, ctxOf());
      const keys = items.flatMap((it) => ml.itemToRecords(it).map((r) => r.sku));
      return { keys, expected: seeded.map((_, i) => `ML-PAGE-${String(i).padStart(2, '0')}`), pages };
    },
    async casWrite(c) {
      const [listing] = fake.control.seed(SELLER, [{ variations: [{ sku: 'CAS-RED', quantity: 10, color: 'Red' }, { sku: 'CAS-BLUE', quantity: 4, color: 'Blue' }] }]);
      const variationId = listing!.variationIds[0]!;
      await ml.setStock(settings, creds(c), { itemId: listing!.itemId, variationId, quantity: 7, expected: 10 }, ctxOf());
      const after = fake.control.stock(SELLER, 'CAS-RED')!;
      if (fake.control.stock(SELLER, 'CAS-BLUE') !== 4) throw new Error('the other variation was lost by the PUT');
      const stale = await ml.setStock(settings, creds(c), { itemId: listing!.itemId, variationId, quantity: 3, expected: 10 }, ctxOf()).catch((e: unknown) => e);
      return { after, expectedAfter: 7, stale, afterStale: fake.control.stock(SELLER, 'CAS-RED')! };
    },
    async throttled(c) {
      fake.control.throttle({ count: 1, retryAfterSeconds: 3 });
      const forced = await ml.getMe(settings, creds(c), {}, ctxOf()).catch((e: unknown) => e);
      fake.control.setRateLimit({ limit: 1, windowMs: 60_000 });
      await ml.getMe(settings, creds(c), {}, ctxOf()).catch(() => undefined);
      const limited = await ml.getMe(settings, creds(c), {}, ctxOf()).catch((e: unknown) => e);
      fake.control.setRateLimit(undefined);
      return [
        { what: '429 with Retry-After', error: forced, expectRetryAfterMs: 3000 },
        { what: 'rate limit 429', error: limited, expectRetryAfterMs: 60_000 },
      ];
    },
    async webhook() {
      receiver.received.length = 0;
      await fake.control.notify('items', '/items/MLA1', SELLER, { id: 'notif-1' });
      await fake.control.notify('items', '/items/MLA1', SELLER, { to: `${receiver.url}/notifications` }); // no secret
      await fake.control.notify('items', '/items/MLA1', SELLER, { to: `${receiver.url}/notifications?secret=guess` });
      const [good, ...bad] = receiver.received;
      const foreign = { ...good!, body: new TextEncoder().encode(Buffer.from(good!.body).toString('utf8').replace(ML_APP_ID, '999')) };
      return {
        webhooks: ml.mercadolibreWebhooks(ML_APP_ID) as never,
        secret: 'ml-shared',
        good: good!,
        bad: [...bad, foreign],
        expect: { id: 'notif-1', topic: 'items', resource: '/items/MLA1', userId: SELLER, applicationId: Number(ML_APP_ID) },
      };
    },
    readMissing: (c) => ml.getItem(settings, creds(c), { itemId: 'MLA404' }, ctxOf()),
    fail: (status, retryAfterSeconds) => fake.control.fail({ status, count: 1, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }),
    hang: () => fake.control.hang({ count: 1 }),
    clearFaults: () => fake.control.clearFaults(),
    revoke: () => fake.control.revoke(SELLER),
    recover: refresh,
  };
}
