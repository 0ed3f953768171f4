import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { integrationType, type IntegrationContext } from '../../../machines/integration/index.js';
import type { Database } from '../../../runtime/db.js';
import type { InProcessBus } from '../../../runtime/bus.js';
import { createServices } from '../../../services/index.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../simulator/fakes/index.js';
import { spawnTs, type Child } from '../../helpers/child.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

const WORKER = fileURLToPath(new URL('../../fixtures/integration-worker.ts', import.meta.url));
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const PUBLIC = 'http://concord.test';
const SELLER = '146322322';

let fakes: MarketplaceFakes;
let database: Database;
const children: Child[] = [];
const stops: Array<() => Promise<void>> = [];
const env = () => ({ ...fakes.env, PUBLIC_BASE_URL: PUBLIC, CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url });

async function node(o: { relay: boolean; beforeStart?: (bus: InProcessBus) => void }) {
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await testRuntime(database, { types: [integrationType], env: env(), connectors, run: { timers: o.relay, relay: o.relay } });
  const services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  o.beforeStart?.(runtime.bus);
  await runtime.start();
  await services.start();
  stops.push(async () => {
    await services.stop();
    await runtime.stop();
  });
  return { runtime, services };
}

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  for (const stop of stops.reverse()) await stop();
  await database?.close();
  await fakes?.close();
});

describe('a refresh killed between the token answer and the vault write', () => {
  it('ends in reauthorization_required with a published IntegrationReauthorizationRequired event, and the grant is never used half-stored', async () => {
    // connect (no relay here: the child process carries out the refresh)
    const edge = await node({ relay: false });
    const a = await edge.services.integrations.authorize({ sub: 'v', role: 'vendor', tenantId: 'v1' }, 'mercadolibre', {});
    const res = await fetch(a.authorizationUrl, { redirect: 'manual' });
    const query = Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
    await edge.services.integrations.callback('mercadolibre', query);
    const id = `v1:mercadolibre:${SELLER}`;
    const ref = { tenantId: 'v1', service: 'mercadolibre', connectionId: SELLER };
    const stored = await edge.services.vault.get(ref);
    const issued = fakes.mercadolibre.state.refreshTokens.size;

    const child = spawnTs(WORKER, env());
    children.push(child);
    await child.waitLine('ready');
    await edge.services.integrations.requestRefresh('v1', 'mercadolibre', SELLER, '401');
    await child.waitLine('token-received');
    await child.kill('SIGKILL');

    // ML rotated the grant (the old refresh token is spent) but the vault still holds the old one
    expect(fakes.mercadolibre.state.refreshTokens.size).toBe(issued + 1);
    expect(fakes.mercadolibre.state.refreshTokens.get(stored.secret.refresh_token!)!.dead).toBe(true);
    expect((await edge.services.vault.get(ref)).version).toBe(stored.version);

    // another process takes the partitions over and retries the call: invalid_grant
    const published: unknown[] = [];
    await node({ relay: true, beforeStart: (bus) => void bus.subscribe('concord.events.IntegrationReauthorizationRequired', (m) => void published.push(m.data)) });
    const actor = await waitFor('reauthorization_required', async () => {
      const s = await edge.runtime.host.actor(integrationType).get(id);
      return s.value === 'reauthorization_required' ? s : null;
    });
    expect((actor.context as IntegrationContext).lastError).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED' });
    await waitFor('the event published', () => (published.length > 0 ? published : null));
    expect(published[0]).toMatchObject({ connectionId: id, tenantId: 'v1', provider: 'mercadolibre', account: SELLER, reason: 'REAUTHORIZATION_REQUIRED' });
    // nothing stored the half-received grant, and no further refresh reached the provider
    expect((await edge.services.vault.get(ref)).version).toBe(stored.version);
    expect(fakes.mercadolibre.state.refreshTokens.size).toBe(issued + 1);

    // the operator-visible way out: a new authorization reconnects the same connection
    const again = await edge.services.integrations.authorize({ sub: 'v', role: 'vendor', tenantId: 'v1' }, 'mercadolibre', {});
    const res2 = await fetch(again.authorizationUrl, { redirect: 'manual' });
    const r = await edge.services.integrations.callback('mercadolibre', Object.fromEntries(new URL(res2.headers.get('location')!).searchParams));
    expect(r.connection.state).toBe('connected');
  });
});
