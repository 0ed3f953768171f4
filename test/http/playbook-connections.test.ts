import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../http/app.js';
import { signToken } from '../../http/auth/jwt.js';
import { ManualClock } from '../../runtime/clock.js';
import { credentialKey } from '../../runtime/config.js';
import type { Database } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import { sign, verify } from '../../services/events/signing.js';
import { createServices, type Services } from '../../services/index.js';
import { KeyRing } from '../../services/integrations/vault.js';
import { freshDatabase } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';
import { SECRET } from './harness.js';

const API = '/api/partnerships';
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const clock = new ManualClock(Date.now());
const tok = (role: 'operator' | 'vendor' | 'partner', tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? 'platform'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(clock.now() / 1000) + 3600 }, SECRET);
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await app.request(path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

beforeAll(async () => {
  database = await freshDatabase(6);
  runtime = await testRuntime(database, { clock, run: { timers: false, relay: false } });
  services = createServices({ runtime, log: testLog, clock, run: { sagaIntake: false, events: false }, credentialKeys: new KeyRing([credentialKey('k1', randomBytes(32))]) });
  await runtime.start();
  await services.start();
  app = createApp({ services, log: testLog, jwtSecret: SECRET });
});
afterAll(async () => {
  await services.stop();
  await runtime.stop();
  await database.close();
});

describe('playbook connections and webhook secrets', () => {
  it("stores a connection in the caller's tenant and never answers its secret", async () => {
    const v1 = tok('vendor', 'vendor-1');
    const put = await call('PUT', `${API}/connections/slack/default`, v1, { secret: { botToken: 'xoxb-secret-token-1' } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ provider: 'slack', account: 'default', tenantId: 'vendor-1', version: 1 });
    expect(JSON.stringify(put.body)).not.toContain('xoxb-secret-token-1');
    await call('PUT', `${API}/connections/twilio/default`, v1, { secret: { authToken: 'tw-secret' }, metadata: { accountSid: 'AC1', from: '+14155550199' } });
    const list = await call('GET', `${API}/connections`, v1);
    expect(list.body.data.map((c: { provider: string }) => c.provider).sort()).toEqual(['slack', 'twilio']);
    expect(JSON.stringify(list.body)).not.toMatch(/xoxb-secret-token-1|tw-secret/);
    expect((await services.vault.get({ tenantId: 'vendor-1', service: 'slack', connectionId: 'default' })).secret).toEqual({ botToken: 'xoxb-secret-token-1' });
    // another tenant sees none of them and cannot delete them
    const other = tok('partner', 'partner-2');
    expect((await call('GET', `${API}/connections`, other)).body.data).toEqual([]);
    expect((await call('DELETE', `${API}/connections/slack/default`, other)).status).toBe(404);
    expect((await call('DELETE', `${API}/connections/slack/default`, v1)).status).toBe(204);
  });

  it('refuses incomplete or unsafe connections with a problem', async () => {
    const v1 = tok('vendor', 'vendor-1');
    const bad: Array<[string, unknown]> = [
      ['mailgun/default', { secret: { apiKey: 'k' } }], // no domain
      ['slack/default', { secret: {} }],
      ['slack/default', { secret: { botToken: 'x', extra: 'y' } }],
      ['teams/default', { secret: { webhookUrl: 'http://10.0.0.1/hook' } }],
      ['salesforce/default', { secret: { clientId: 'a', clientSecret: 'b' }, metadata: { instanceUrl: 'https://evil.example.com' } }],
      ['twilio/bad%20name', { secret: { authToken: 'x' }, metadata: { accountSid: 'AC1' } }],
    ];
    for (const [path, body] of bad) {
      const r = await call('PUT', `${API}/connections/${path}`, v1, body);
      expect(r.status, path).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
    expect((await call('PUT', `${API}/connections/fax/default`, v1, { secret: { x: 'y' } })).status).toBe(404);
    expect((await call('PUT', `${API}/connections/slack/default`, v1, { secret: { botToken: 'x' }, tenantId: 'vendor-2' })).status).toBe(403);
  });

  it('answers a webhook signing secret once; the webhook step signs with it', async () => {
    const v1 = tok('vendor', 'vendor-1');
    const r = await call('POST', `${API}/webhook-secrets/default`, v1);
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toMatchObject({ name: 'default', secret: expect.stringMatching(/^whsec_/), version: 1 });
    const { secret } = await services.vault.get({ tenantId: 'vendor-1', service: 'playbook-webhook', connectionId: 'default' });
    expect(secret.secret).toBe(r.body.secret);
    const sig = verify(r.body.secret, { id: 'msg_1', timestamp: '100', signature: sign(secret.secret!, 'msg_1', 100, '{}') }, '{}', 100);
    expect(sig).toBe(true);
    const rotated = await call('POST', `${API}/webhook-secrets/default`, v1);
    expect(rotated.body.secret).not.toBe(r.body.secret);
    expect(rotated.body.version).toBe(2);
  });
});
