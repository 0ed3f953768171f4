import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneIdempotencyKeys } from '../../services/common/idempotency.js';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
let svc: string;

beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
  svc = h.token('service');
});
afterAll(async () => h.close());

const dep = (integrationId: string, dependsOnIntegrationId: string, dependencyType = 'REQUIRES', token = op, headers: Record<string, string> = {}) =>
  h.call('POST', `${BASE}/dependencies`, { token, body: { integrationId, dependsOnIntegrationId, dependencyType }, headers });
const status = (id: string, s: 'active' | 'inactive' | 'degraded') => h.call('PUT', `${BASE}/integrations/${id}/status`, { token: svc, body: { status: s } });

describe('integration dependencies', () => {
  it('accepts the spec example verbatim, and lists dependencies and dependents', async () => {
    const r = await h.call('POST', `${BASE}/dependencies`, {
      token: op,
      body: {
        integrationId: 'integration-a',
        dependsOnIntegrationId: 'integration-b',
        dependencyType: 'REQUIRES',
        condition: 'when integration-b is active',
      },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ integrationId: 'integration-a', dependsOnIntegrationId: 'integration-b', dependencyType: 'REQUIRES', condition: 'when integration-b is active' });
    const deps = await h.call('GET', `${BASE}/integrations/integration-a/dependencies`, { token: h.token('partner', 'p1') });
    expect(deps.body.data.map((d: { id: string }) => d.id)).toEqual([r.body.id]);
    const dependents = await h.call('GET', `${BASE}/integrations/integration-b/dependents`, { token: op });
    expect(dependents.body.data.map((d: { id: string }) => d.id)).toEqual([r.body.id]);
    expect((await dep('integration-a', 'integration-b')).status).toBe(409); // the same edge twice
  });

  it('is a platform function: vendor and partner tokens get 403 on writes', async () => {
    for (const token of [h.token('vendor', 'v1'), h.token('partner', 'p1')]) {
      expect((await dep('x1', 'x2', 'REQUIRES', token)).status).toBe(403);
      expect((await h.call('DELETE', `${BASE}/dependencies/anything`, { token })).status).toBe(403);
      expect((await h.call('PUT', `${BASE}/integrations/x1/status`, { token, body: { status: 'active' } })).status).toBe(403);
    }
    expect((await dep('x1', 'x2', 'REQUIRES', svc)).status).toBe(201);
  });

  it('refuses an edge that would close a requirement cycle, naming the cycle; CONFLICTS/ENHANCES edges may point back', async () => {
    expect((await dep('c1', 'c2')).status).toBe(201);
    expect((await dep('c2', 'c3', 'DEPENDS_ON_DATA')).status).toBe(201);
    const cyc = await dep('c3', 'c1');
    expect(cyc.status).toBe(409);
    expect(cyc.headers.get('content-type')).toBe('application/problem+json');
    expect(cyc.body).toMatchObject({ code: 'DEPENDENCY_CYCLE', cycle: ['c3', 'c1', 'c2', 'c3'] });
    expect((await dep('c3', 'c1', 'ENHANCES')).status).toBe(201);
    expect((await dep('c3', 'c1', 'CONFLICTS')).status).toBe(201);
    expect((await dep('c9', 'c9')).status).toBe(409);
  });

  it('refuses two concurrent edges that together would close a cycle', async () => {
    const [a, b] = await Promise.all([dep('r1', 'r2'), dep('r2', 'r1')]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
  });

  it('deletes an edge (404 after), recorded in the audit log', async () => {
    const { body } = await dep('d1', 'd2');
    const del = await h.call('DELETE', `${BASE}/dependencies/${body.id}`, { token: op });
    expect(del.status).toBe(200);
    expect((await h.call('DELETE', `${BASE}/dependencies/${body.id}`, { token: op })).status).toBe(404);
    const audit = await h.call('GET', `${BASE}/audit?objectType=dependency&objectId=${body.id}`, { token: op });
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(['dependency.delete', 'dependency.create']);
  });

  it('stores an Idempotency-Key in the transaction that made the edge', async () => {
    const key = { 'idempotency-key': 'dep-key-1' };
    const a = await dep('k1', 'k2', 'REQUIRES', op, key);
    const b = await dep('k1', 'k2', 'REQUIRES', op, key);
    expect(b.status).toBe(201);
    expect(b.body).toEqual(a.body);
    expect((await dep('k1', 'k3', 'REQUIRES', op, key)).status).toBe(422);
    // a failed request stores no key: the same key works once the request is valid
    const c1 = await dep('k5', 'k5', 'REQUIRES', op, { 'idempotency-key': 'dep-key-2' });
    expect(c1.status).toBe(409);
    expect((await dep('k5', 'k6', 'REQUIRES', op, { 'idempotency-key': 'dep-key-2' })).status).toBe(201);
    // keys outlive nothing: past the inbox retention they are forgotten
    await h.database.pool.query(`UPDATE idempotency_keys SET created_at = now() - interval '200 hours' WHERE key = 'dep-key-1'`);
    expect(await pruneIdempotencyKeys(h.database.pool, 168)).toBe(1);
    expect((await dep('k1', 'k3', 'REQUIRES', op, key)).status).toBe(201);
  });

  describe('analyze', () => {
    it('finds transitive requirements, missing and inactive ones, conflicts with active integrations, and the impact set', async () => {
      // app -> api (REQUIRES) -> db (REQUIRES) ; app -> feed (DEPENDS_ON_DATA) ; app CONFLICTS legacy ; ui, report depend on app
      await dep('app', 'api');
      await dep('api', 'db');
      await dep('app', 'feed', 'DEPENDS_ON_DATA');
      await dep('app', 'legacy', 'CONFLICTS');
      await dep('ui', 'app');
      await dep('report', 'ui', 'DEPENDS_ON_DATA');
      await dep('widget', 'app', 'ENHANCES');
      await status('app', 'active');
      await status('api', 'active');
      await status('feed', 'inactive');
      await status('legacy', 'active');
      const r = await h.call('GET', `${BASE}/integrations/app/analyze`, { token: h.token('vendor', 'v1') });
      expect(r.status).toBe(200);
      const a = r.body;
      expect(a.requirements.map((q: { integrationId: string; depth: number }) => [q.integrationId, q.depth])).toEqual([
        ['api', 1],
        ['feed', 1],
        ['db', 2],
      ]);
      expect(a.missingRequirements).toEqual(['db']);
      expect(a.inactiveRequirements).toEqual(['feed']);
      expect(a.conflicts).toEqual([expect.objectContaining({ integrationId: 'legacy', status: 'active' })]);
      expect(a.issues.map((i: { kind: string }) => i.kind).sort()).toEqual(['ACTIVE_CONFLICT', 'INACTIVE_REQUIREMENT', 'MISSING_REQUIREMENT']);
      expect(a.riskLevel).toBe('critical'); // active while conflicting with an active integration
      expect(a.recommendations.length).toBeGreaterThanOrEqual(3);
      expect(a.impact).toEqual([
        { integrationId: 'ui', dependencyType: 'REQUIRES', depth: 1, effect: 'breaks' },
        { integrationId: 'widget', dependencyType: 'ENHANCES', depth: 1, effect: 'degrades' },
        { integrationId: 'report', dependencyType: 'DEPENDS_ON_DATA', depth: 2, effect: 'breaks' },
      ]);
    });

    it('grades risk: low when everything is present and active, high for a missing transitive requirement', async () => {
      await dep('ok-1', 'ok-2');
      await status('ok-1', 'active');
      await status('ok-2', 'active');
      const low = (await h.call('GET', `${BASE}/integrations/ok-1/analyze`, { token: op })).body;
      expect(low).toMatchObject({ riskLevel: 'low', issues: [] });
      await dep('ok-2', 'ok-3');
      const high = (await h.call('GET', `${BASE}/integrations/ok-1/analyze`, { token: op })).body;
      expect(high.riskLevel).toBe('high');
      expect(high.issues[0]).toMatchObject({ kind: 'MISSING_REQUIREMENT', integrationIds: ['ok-1', 'ok-2', 'ok-3'] });
      await status('ok-3', 'degraded');
      expect((await h.call('GET', `${BASE}/integrations/ok-1/analyze`, { token: op })).body.riskLevel).toBe('medium');
    });

    it('reports cycles already in the graph as critical', async () => {
      // written past the API's guard, as an older import might have
      await h.database.pool.query(
        `INSERT INTO integration_dependencies (id, integration_id, depends_on_integration_id, dependency_type, created_by, created_at, updated_at)
         VALUES ('raw-1', 'y1', 'y2', 'REQUIRES', 'import', now(), now()), ('raw-2', 'y2', 'y1', 'REQUIRES', 'import', now(), now())`,
      );
      const a = (await h.call('GET', `${BASE}/integrations/y1/analyze`, { token: op })).body;
      expect(a.cycles).toEqual([['y1', 'y2', 'y1']]);
      expect(a.riskLevel).toBe('critical');
    });
  });
});
