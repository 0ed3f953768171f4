import { afterAll, beforeAll, expect, it } from 'vitest';
import { BASE, harness, type Harness } from './harness.js';

/**
 * Every route in the OpenAPI document, called by a vendor and a partner that are party to
 * nothing of the victim's, with the victim's ids: nothing of the victim's comes back (404 for
 * its objects, empty lists, 403 on platform functions, 404 on operator routes), and nothing changes.
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

/** What a foreign party gets from each route of this module (the others: no-leak check only). */
const EXPECTED: Record<string, number[]> = {
  [`GET ${BASE}/relationships`]: [200], // filtered to its own: empty
  [`POST ${BASE}/relationships`]: [403], // not a party to the body's relationship
  [`GET ${BASE}/relationships/{id}`]: [404],
  [`PUT ${BASE}/relationships/{id}`]: [404],
  [`POST ${BASE}/relationships/{id}/activate`]: [404],
  [`POST ${BASE}/relationships/{id}/suspend`]: [404],
  [`POST ${BASE}/relationships/{id}/terminate`]: [404],
  [`GET ${BASE}/integrations/{integrationId}/dependencies`]: [200], // the platform graph holds no tenant data
  [`GET ${BASE}/integrations/{integrationId}/dependents`]: [200],
  [`GET ${BASE}/integrations/{integrationId}/analyze`]: [200],
  [`PUT ${BASE}/integrations/{integrationId}/status`]: [403],
  [`POST ${BASE}/dependencies`]: [403],
  [`DELETE ${BASE}/dependencies/{id}`]: [403],
  [`GET ${BASE}/resources`]: [200], // filtered to its own: empty
  [`POST ${BASE}/resources`]: [400], // may not name another owner
  [`GET ${BASE}/resources/{id}`]: [404],
  [`POST ${BASE}/resources/{resourceId}/grants`]: [404],
  [`POST ${BASE}/resources/{resourceId}/deactivate`]: [404],
  [`GET ${BASE}/resources/{resourceId}/access`]: [404],
  [`DELETE ${BASE}/grants/{grantId}`]: [404],
  [`GET ${BASE}/health`]: [200], // aggregate counts only
  [`GET ${BASE}/metrics`]: [200],
  [`GET ${BASE}/audit`]: [403],
  // operator routes do not exist for a vendor or partner
  ['GET /api/v1/actors']: [404],
  ['GET /api/v1/actors/{type}/{id}']: [404],
  ['GET /api/v1/actors/{type}/{id}/history']: [404],
  ['GET /api/v1/actors/{type}/{id}/chart']: [404],
  ['POST /api/v1/actors/{type}/{id}/pause']: [404],
  ['POST /api/v1/actors/{type}/{id}/resume']: [404],
  ['POST /api/v1/actors/{type}/{id}/send']: [404],
  ['POST /api/v1/actors/{type}/{id}/fork']: [404],
  ['POST /api/v1/actors/bulk']: [404],
  ['GET /api/v1/timers']: [404],
  ['POST /api/v1/timers/{id}/fire']: [404],
  ['DELETE /api/v1/timers/{id}']: [404],
  // playbook templates and connections: the caller's own library and connections only
  ['GET /api/partnerships/templates']: [200],
  ['POST /api/partnerships/templates']: [400],
  ['GET /api/partnerships/templates/{id}']: [404],
  ['GET /api/partnerships/connections']: [200],
  ['PUT /api/partnerships/connections/{provider}/{account}']: [400],
  ['DELETE /api/partnerships/connections/{provider}/{account}']: [404],
  // the attacker's own secret; this harness has no credentials key, so the vault cannot store it
  ['POST /api/partnerships/webhook-secrets/{name}']: [201, 503],
};
const OTHERS = [200, 201, 202, 400, 403, 404, 409, 415, 422];
const allowed = (op: string): number[] => EXPECTED[op] ?? OTHERS;

it('leaks nothing of another tenant on any route', async () => {
  const doc = (await h.call('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), template: p })));
  for (const op of Object.keys(EXPECTED)) expect(ops.map((o) => `${o.method} ${o.template}`), op).toContain(op);
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
