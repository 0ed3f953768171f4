import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
});
afterAll(async () => h.close());

const problem = (r: { status: number; headers: Headers; body: { status?: number; code?: string } }) => {
  expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body.status).toBe(r.status);
};

describe('hostile input is a 4xx problem, never a 5xx', () => {
  it('a deeply nested JSON body (thousands of levels, about 30 KB)', async () => {
    const depth = 5000;
    const raw = `{"vendorId":"v","partnerId":"p","relationshipType":"INTEGRATION","agreementDetails":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, raw });
    problem(r);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('MALFORMED_JSON');
    // deep arrays too, on another route, and with an Idempotency-Key (fingerprinted)
    const arrays = `{"eventName":"e","sourceIntegrationId":"a","targetIntegrationIds":["b"],"payload":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    problem(await h.call('POST', `${BASE}/events`, { token: op, raw: arrays, headers: { 'idempotency-key': 'deep-1' } }));
  });

  it('nesting up to the limit is accepted', async () => {
    const raw = JSON.stringify({ vendorId: 'v', partnerId: 'p', relationshipType: 'INTEGRATION', agreementDetails: { commissionRate: 0.1, nested: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) } });
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, raw });
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(500);
  });

  it('a NUL byte or another control character in a path id', async () => {
    for (const id of ['%00', 'abc%00def', '%01', '%7F', 'a%0Ab']) {
      for (const [method, path] of [
        ['POST', `${BASE}/relationships/${id}/suspend`],
        ['GET', `${BASE}/relationships/${id}`],
        ['GET', `${BASE}/resources/${id}`],
        ['GET', `${BASE}/workflows/${id}`],
        ['GET', `${BASE}/events/${id}`],
        ['GET', `/api/v1/actors/relationship/${id}`],
        ['GET', `/api/v1/workflows/${id}/status`],
      ] as const) {
        const r = await h.call(method, path, { token: op });
        problem(r);
      }
    }
  });

  it('a NUL in a JSON string or a query parameter', async () => {
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, raw: '{"vendorId":"v\\u0000x","partnerId":"p","relationshipType":"INTEGRATION"}' });
    problem(r);
    expect(r.body.code).toBe('MALFORMED_JSON');
    problem(await h.call('GET', `${BASE}/relationships?vendorId=a%00b`, { token: op }));
    problem(await h.call('GET', `${BASE}/resources?cursor=%00`, { token: op }));
  });

  it('invalid UTF-8 in a body', async () => {
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, raw: '{"vendorId":"\udc00\ud800","partnerId":"p","relationshipType":"INTEGRATION"}' });
    expect(r.status).toBeLessThan(500);
  });
});
