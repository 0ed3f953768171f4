import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let server: ServerType;
let url: string;

beforeAll(async () => {
  h = await harness();
  await new Promise<void>((resolve) => {
    server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await h.close();
});

it('runs a relationship through its lifecycle over a real port against the real Postgres', async () => {
  const auth = { authorization: `Bearer ${h.token('vendor', 'vendor-123')}`, 'content-type': 'application/json' };
  const created = await fetch(`${url}${BASE}/relationships`, {
    method: 'POST',
    headers: { ...auth, 'idempotency-key': 'e2e-1' },
    body: JSON.stringify({ vendorId: 'vendor-123', partnerId: 'partner-456', relationshipType: 'API_CONSUMPTION' }),
  });
  expect(created.status).toBe(201);
  const rel = (await created.json()) as { id: string };
  const activated = await fetch(`${url}${BASE}/relationships/${rel.id}/activate`, { method: 'POST', headers: { authorization: auth.authorization } });
  expect(activated.status).toBe(200);
  expect(((await activated.json()) as { status: string }).status).toBe('ACTIVE');
  const again = await fetch(`${url}${BASE}/relationships/${rel.id}/activate`, { method: 'POST', headers: { authorization: auth.authorization } });
  expect(again.status).toBe(409);
  expect(again.headers.get('content-type')).toBe('application/problem+json');
  const other = await fetch(`${url}${BASE}/relationships/${rel.id}`, { headers: { authorization: `Bearer ${h.token('partner', 'partner-000')}` } });
  expect(other.status).toBe(404);
  const stored = await h.database.pool.query(`SELECT status, version FROM actors WHERE type = 'relationship' AND id = $1`, [rel.id]);
  expect(stored.rows[0]).toEqual({ status: 'ACTIVE', version: 2 });
  const metrics = await (await fetch(`${url}/metrics`)).text();
  expect(metrics).toContain('concord_http_request_duration_seconds_count{method="POST",route="/api/v1/vendor-partner-coordination/relationships/:id/activate",status="409"} 1');
});
