import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGenericFake, type GenericFake } from '../../../simulator/fakes/generic.js';
import { generateTestPki, hasOpenssl, type KeyPair, type TestPki } from '../../../simulator/fakes/tls.js';
import { connectError } from './receiver.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('generic REST fake', () => {
  let fake: GenericFake;
  beforeAll(async () => {
    fake = await startGenericFake({
      clock: 'manual',
      auth: { apiKey: { keys: ['key-1'], header: 'x-api-key', query: 'api_key' }, clientCredentials: { clients: [{ id: 'svc', secret: 's3cret', scopes: ['read', 'write'] }], tokenTtlSeconds: 600 } },
    });
  });
  afterAll(() => fake.close());

  it('takes an API key in the header or the query parameter', async () => {
    expect((await fetch(`${fake.url}/v1/whoami`, { headers: { 'x-api-key': 'key-1' } })).status).toBe(200);
    expect((await fetch(`${fake.url}/v1/whoami?api_key=key-1`)).status).toBe(200);
    const bad = await fetch(`${fake.url}/v1/whoami`, { headers: { 'x-api-key': 'nope' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await fetch(`${fake.url}/v1/whoami`)).status).toBe(401);
  });

  it('issues expiring client-credentials tokens with Basic or form client authentication', async () => {
    const viaBasic = await fetch(`${fake.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic('svc', 's3cret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=read',
    });
    expect(viaBasic.status).toBe(200);
    const t = (await viaBasic.json()) as { access_token: string; token_type: string; expires_in: number; scope: string };
    expect(t).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'read' });

    const viaForm = await fetch(`${fake.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=svc&client_secret=s3cret',
    });
    expect(viaForm.status).toBe(200);

    const wrong = await fetch(`${fake.url}/oauth/token`, { method: 'POST', headers: { authorization: basic('svc', 'x') }, body: 'grant_type=client_credentials' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Basic');
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    const scope = await fetch(`${fake.url}/oauth/token`, { method: 'POST', headers: { authorization: basic('svc', 's3cret') }, body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }) });
    expect(await scope.json()).toMatchObject({ error: 'invalid_scope' });

    const who = await fetch(`${fake.url}/v1/whoami`, { headers: { authorization: `Bearer ${t.access_token}` } });
    expect(await who.json()).toMatchObject({ caller: 'client:svc', method: 'client' });
    fake.control.advance(600_000);
    const expired = await fetch(`${fake.url}/v1/whoami`, { headers: { authorization: `Bearer ${t.access_token}` } });
    expect(expired.status).toBe(401);
    expect(await expired.json()).toMatchObject({ detail: 'token expired' });
  });

  it('pages records by cursor and refuses a stale If-Match', async () => {
    fake.control.seed('products', Array.from({ length: 5 }, (_, i) => ({ id: `p${i}`, sku: `SKU-${i}`, stock: i })));
    const h = { 'x-api-key': 'key-1' };
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (await fetch(`${fake.url}/v1/products?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: h })).json()) as { data: Array<{ id: string }>; next_cursor: string | null };
      ids.push(...page.data.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(ids).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);

    const put = (ifMatch: string) => fetch(`${fake.url}/v1/products/p1`, { method: 'PATCH', headers: { ...h, 'content-type': 'application/json', 'if-match': ifMatch }, body: '{"stock":9}' });
    const ok = await put('"1"');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('"2"');
    expect((await put('"1"')).status).toBe(412);
    expect(fake.control.records('products').find((r) => r.id === 'p1')).toMatchObject({ stock: 9, sku: 'SKU-1', version: 2 });
  });

  it('health answers the status and latency it is told to', async () => {
    expect(await (await fetch(`${fake.url}/health`)).json()).toMatchObject({ status: 'ok' });
    fake.control.setHealth({ status: 503, latencyMs: 300 });
    await expect(fetch(`${fake.url}/health`, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'TimeoutError' });
    fake.control.setHealth({ latencyMs: 0 });
    const down = await fetch(`${fake.url}/health`);
    expect(down.status).toBe(503);
    fake.control.setHealth({ status: 200 });
  });

  it('rate-limits a caller with 429 + Retry-After, and goes down and up', async () => {
    fake.control.setRateLimit({ limit: 2, windowMs: 10_000 });
    const h = { 'x-api-key': 'key-1' };
    const s = [];
    for (let i = 0; i < 3; i++) s.push(await fetch(`${fake.url}/v1/whoami`, { headers: h }));
    expect(s.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(Number(s[2]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    fake.control.setRateLimit(undefined);

    fake.control.fail({ status: 500, count: 1 });
    expect((await fetch(`${fake.url}/v1/whoami`, { headers: h })).status).toBe(500);
    const port = fake.port;
    await fake.control.down();
    expect(await connectError(port)).toBe('ECONNREFUSED');
    await fake.control.up();
    expect((await fetch(`${fake.url}/v1/whoami`, { headers: h })).status).toBe(200);
  });
});

describe.skipIf(!hasOpenssl())('generic REST fake over mutual TLS', () => {
  let pki: TestPki;
  let fake: GenericFake;
  beforeAll(async () => {
    pki = generateTestPki();
    fake = await startGenericFake({ auth: { mtls: true }, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } });
  });
  afterAll(() => fake?.close());

  const call = (client: KeyPair | undefined) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${fake.url}/v1/whoami`, { ca: pki.ca.cert, ...(client ?? {}) }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers a client with a certificate from the trusted CA, and names it', async () => {
    expect(fake.url).toMatch(/^https:/);
    const r = await call(pki.client);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ caller: 'cert:concord-client', certificate: { cn: 'concord-client' } });
  });

  it('fails the handshake without a certificate or with one from another CA', async () => {
    await expect(call(undefined)).rejects.toThrow();
    await expect(call(pki.rogue)).rejects.toThrow();
  });
});
