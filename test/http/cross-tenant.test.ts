import { afterAll, beforeAll, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

/**
 * Every route in the OpenAPI document, called by a vendor and a partner that are party to
 * nothing of the victim's, with the victim's ids: nothing of the victim's comes back (404 for
 * its objects, empty lists, 403 on platform functions and operator routes), and nothing changes.
 */
let h: Harness;
const MARK = 'victim-marker-7f3a';
const ids: Record<string, string> = {};

beforeAll(async () => {
  h = await harness();
  const victim = h.token('vendor', 'vendor-victim');
  const rel = await h.call('POST', `${BASE}/relationships`, {
    token: victim,
    body: { vendorId: 'vendor-victim', partnerId: 'partner-victim', relationshipType: 'RESELLER', metadata: { note: MARK } },
  });
  const res = await h.call('POST', `${BASE}/resources`, { token: victim, body: { resourceId: MARK, resourceType: 'WEBHOOK', name: MARK } });
  const grant = await h.call('POST', `${BASE}/resources/${res.body.id}/grants`, {
    token: victim,
    body: { grantedToId: 'partner-victim', grantedToType: 'partner', accessLevel: 'read', conditions: { note: MARK } },
  });
  const dep = await h.call('POST', `${BASE}/dependencies`, { token: h.token('operator'), body: { integrationId: 'int-v1', dependsOnIntegrationId: 'int-v2', dependencyType: 'REQUIRES' } });
  Object.assign(ids, { id: rel.body.id, resourceId: res.body.id, grantId: grant.body.id, integrationId: 'int-v1', type: 'relationship', depId: dep.body.id });
});
afterAll(async () => h.close());

const bodies: Record<string, unknown> = {
  [`POST ${BASE}/relationships`]: { vendorId: 'vendor-victim', partnerId: 'partner-victim', relationshipType: 'RESELLER' },
  [`PUT ${BASE}/relationships/{id}`]: { metadata: { hijacked: true } },
  [`POST ${BASE}/dependencies`]: { integrationId: 'int-v2', dependsOnIntegrationId: 'int-v3', dependencyType: 'REQUIRES' },
  [`POST ${BASE}/resources`]: { resourceId: 'x', resourceType: 'WEBHOOK', name: 'x', ownerId: 'vendor-victim', ownerType: 'vendor' },
  [`POST ${BASE}/resources/{resourceId}/grants`]: { grantedToId: 'vendor-attacker', grantedToType: 'vendor', accessLevel: 'admin' },
  [`PUT ${BASE}/integrations/{integrationId}/status`]: { status: 'inactive' },
};

/** What a foreign party may get back from each route. */
function allowed(op: string): number[] {
  if (op.includes('/api/v1/actors')) return [403];
  // routes of other modules (events, endpoints, workflows ...): their own rules; here only the no-leak check
  if (/\/(events|endpoint)|\/api\/v1\/workflows/.test(op)) return [200, 201, 400, 403, 404, 409];
  if (/^(POST|DELETE) .*\/dependencies|^PUT .*\/status$/.test(op)) return [403];
  if (op === `POST ${BASE}/relationships`) return [403]; // not a party to the body's relationship
  if (op === `POST ${BASE}/resources`) return [400]; // may not name another owner
  if (/^GET .*\/(relationships|resources)$/.test(op)) return [200]; // lists: filtered to its own
  if (/\/integrations\/\{integrationId\}\/(dependencies|dependents|analyze)$/.test(op)) return [200]; // platform graph, no tenant data
  if (/^GET .*\/(health|metrics)$/.test(op)) return [200]; // aggregate counts only
  if (op === `GET ${BASE}/audit`) return [403];
  return [404];
}

it('leaks nothing of another tenant on any route', async () => {
  const doc = (await h.call('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), template: p })));
  expect(ops.length).toBeGreaterThanOrEqual(27);
  const attackers = [h.token('vendor', 'vendor-attacker'), h.token('partner', 'partner-attacker')];
  let checked = 0;
  for (const token of attackers) {
    for (const { method, template } of ops) {
      const op = `${method} ${template}`;
      const path = template.replace('{id}', template.includes('/dependencies/') ? ids.depId! : ids.id!).replace(/\{(\w+)\}/g, (_, k: string) => ids[k] ?? k);
      const r = await h.call(method, path, { token, body: bodies[op] });
      expect(allowed(op), `${op} -> ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`).toContain(r.status);
      expect(JSON.stringify(r.body), op).not.toContain(MARK);
      if (r.status === 200 && Array.isArray(r.body?.data) && /relationships|resources/.test(template)) expect(r.body.data, op).toEqual([]);
      checked++;
    }
  }
  expect(checked).toBe(ops.length * 2);
  // and nothing changed
  const owner = h.token('vendor', 'vendor-victim');
  const rel = await h.call('GET', `${BASE}/relationships/${ids.id}`, { token: owner });
  expect(rel.body).toMatchObject({ version: 1, status: 'PENDING', metadata: { note: MARK } });
  const res = await h.call('GET', `${BASE}/resources/${ids.resourceId}`, { token: owner });
  expect(res.body).toMatchObject({ isActive: true, accessGrants: [expect.objectContaining({ isActive: true, grantedToId: 'partner-victim' })] });
  expect((await h.call('GET', `${BASE}/integrations/int-v1/dependencies`, { token: owner })).body.data).toHaveLength(1);
});
