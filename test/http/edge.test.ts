import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../http/auth/jwt.js';
import { BASE, harness, SECRET, type Harness } from './harness.js';

let h: Harness;
let op: string;

beforeAll(async () => {
  h = await harness({ bodyLimitBytes: 4096 });
  op = h.token('operator');
});
afterAll(async () => h.close());

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const exp = () => Math.floor(h.clock.now() / 1000) + 600;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
function expectProblem(r: { status: number; body: any; headers: Headers }, status: number, code?: string) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toBe('application/problem+json');
  expect(r.body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String), code: expect.any(String) });
  if (code) expect(r.body.code).toBe(code);
  expect(JSON.stringify(r.body)).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
}

describe('authentication', () => {
  const cases: Array<[string, () => Record<string, string>]> = [
    ['no Authorization header', () => ({})],
    ['not a Bearer scheme', () => ({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })],
    ['a malformed token', () => ({ authorization: 'Bearer not-a-jwt' })],
    ['an expired token', () => ({ authorization: `Bearer ${signToken({ sub: 'x', role: 'operator', exp: Math.floor(h.clock.now() / 1000) - 1 }, SECRET)}` })],
    ['a wrongly signed token', () => ({ authorization: `Bearer ${signToken({ sub: 'x', role: 'operator', exp: exp() }, 'another-secret-of-enough-length-000000')}` })],
    ['alg none', () => ({ authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', role: 'operator', exp: exp() })}.` })],
    [
      'HS512 signed with the right secret',
      () => {
        const body = `${b64({ alg: 'HS512', typ: 'JWT' })}.${b64({ sub: 'x', role: 'operator', exp: exp() })}`;
        return { authorization: `Bearer ${body}.${createHmac('sha512', SECRET).update(body).digest('base64url')}` };
      },
    ],
    ['no exp', () => ({ authorization: `Bearer ${signToken({ sub: 'x', role: 'operator' } as never, SECRET)}` })],
    ['an unknown role', () => ({ authorization: `Bearer ${signToken({ sub: 'x', role: 'admin' as never, exp: exp() }, SECRET)}` })],
    ['a vendor without tenantId', () => ({ authorization: `Bearer ${signToken({ sub: 'x', role: 'vendor', exp: exp() }, SECRET)}` })],
  ];
  for (const [name, headers] of cases) {
    it(`answers ${name} with 401, problem+json and WWW-Authenticate`, async () => {
      const r = await h.call('GET', `${BASE}/relationships`, { headers: headers() });
      expectProblem(r, 401, 'UNAUTHENTICATED');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="concord"/);
    });
  }

  it('guards every /api route, the operator routes included', async () => {
    for (const path of [`${BASE}/metrics`, `${BASE}/resources`, `${BASE}/integrations/a/analyze`, '/api/v1/actors', '/api/v1/actors/relationship/x']) {
      expectProblem(await h.call('GET', path), 401);
    }
  });
});

describe('bad input', () => {
  it('answers malformed JSON with 400', async () => {
    expectProblem(await h.call('POST', `${BASE}/relationships`, { token: op, raw: '{"vendorId": "v1",' }), 400, 'MALFORMED_JSON');
  });
  it('answers wrong types with 400 and the issues', async () => {
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 1, partnerId: null, relationshipType: 'INTEGRATION' } });
    expectProblem(r, 400, 'VALIDATION_FAILED');
    expect(r.body.issues.map((i: { path: string[] }) => i.path[0]).sort()).toEqual(['partnerId', 'vendorId']);
  });
  it('answers a body over the limit with 413', async () => {
    const big = { vendorId: 'v', partnerId: 'p', relationshipType: 'INTEGRATION', metadata: { blob: 'x'.repeat(5000) } };
    expectProblem(await h.call('POST', `${BASE}/relationships`, { token: op, body: big }), 413, 'PAYLOAD_TOO_LARGE');
  });
  it('answers a non-JSON body with 415', async () => {
    expectProblem(await h.call('POST', `${BASE}/relationships`, { token: op, raw: 'vendorId=v', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415);
  });
  it('takes a lifecycle POST with no body, an empty JSON body or a reason, and nothing else', async () => {
    const { body: rel } = await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'v', partnerId: 'p', relationshipType: 'INTEGRATION' } });
    const path = `${BASE}/relationships/${rel.id}`;
    expectProblem(await h.call('POST', `${path}/activate`, { token: op, raw: '{"reason":' }), 400, 'MALFORMED_JSON');
    expectProblem(await h.call('POST', `${path}/activate`, { token: op, body: { reason: 'ok', status: 'ACTIVE' } }), 400, 'VALIDATION_FAILED');
    expect((await h.call('POST', `${path}/activate`, { token: op, raw: '', headers: { 'content-type': 'application/json' } })).status).toBe(200);
    expect((await h.call('POST', `${path}/suspend`, { token: op, body: { reason: 'audit' } })).body.statusReason).toBe('audit');
    expect((await h.call('POST', `${path}/activate`, { token: op })).status).toBe(200);
  });
  it('answers an empty filter value on every list route with 400 naming the parameter (never an unfiltered list)', async () => {
    // one relationship and its audit record, so an unfiltered list would not be empty
    await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'v-empty', partnerId: 'p-empty', relationshipType: 'INTEGRATION' } });
    const empty: Array<[string, string]> = [
      [`${BASE}/relationships`, 'vendorId'], [`${BASE}/relationships`, 'partnerId'], [`${BASE}/relationships`, 'status'], [`${BASE}/relationships`, 'relationshipType'],
      [`${BASE}/resources`, 'ownerId'], [`${BASE}/resources`, 'resourceType'], [`${BASE}/resources`, 'ownerType'], [`${BASE}/resources`, 'isActive'],
      [`${BASE}/workflows`, 'vendorId'], [`${BASE}/workflows`, 'partnerId'], [`${BASE}/workflows`, 'integrationId'], [`${BASE}/workflows`, 'status'], [`${BASE}/workflows`, 'workflowType'],
      [`${BASE}/events`, 'sourceIntegrationId'], [`${BASE}/events`, 'targetIntegrationId'], [`${BASE}/events`, 'eventCategory'], [`${BASE}/events`, 'eventName'], [`${BASE}/events`, 'status'],
      [`${BASE}/events/dead-letters`, 'targetIntegrationId'], [`${BASE}/events/dead-letters`, 'sourceIntegrationId'],
      [`${BASE}/audit`, 'objectType'], [`${BASE}/audit`, 'objectId'], [`${BASE}/audit`, 'action'],
      ['/api/v1/actors', 'type'], ['/api/v1/actors', 'status'], ['/api/v1/actors', 'tenant'],
      ['/api/v1/dead-letters', 'reason'], ['/api/v1/dead-letters', 'actorType'],
    ];
    for (const [path, param] of empty) {
      const r = await h.call('GET', `${path}?${param}=`, { token: op });
      expectProblem(r, 400, 'VALIDATION_FAILED');
      expect(r.body.issues.map((i: { path: string[] }) => i.path[0]), `${path}?${param}=`).toEqual([param]);
    }
    // the access check's party too (a vendor asking for party '' is not asking for itself)
    const access = await h.call('GET', `${BASE}/resources/r-1/access?partyId=&partyType=vendor`, { token: h.token('vendor', 'v-empty') });
    expectProblem(access, 400, 'VALIDATION_FAILED');
    expect(access.body.issues[0].path).toEqual(['partyId']);
    // a value still filters, and leaving the parameter out still means no filter
    expect((await h.call('GET', `${BASE}/relationships?vendorId=v-empty`, { token: op })).body.data).toHaveLength(1);
    expect((await h.call('GET', `${BASE}/relationships`, { token: op })).body.data.length).toBeGreaterThan(0);
    expect((await h.call('GET', `${BASE}/audit?objectType=relationship`, { token: op })).status).toBe(200);
  });
  it('answers an unknown route with a 404 problem', async () => {
    expectProblem(await h.call('GET', `${BASE}/nothing-here`, { token: op }), 404, 'ROUTE_NOT_FOUND');
  });
  it('refuses a malformed Idempotency-Key', async () => {
    const r = await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'v', partnerId: 'p', relationshipType: 'INTEGRATION' }, headers: { 'idempotency-key': 'x'.repeat(300) } });
    expectProblem(r, 400, 'IDEMPOTENCY_KEY_INVALID');
  });
});

describe('observability', () => {
  it('echoes a well-formed X-Request-Id and makes one up otherwise, on errors too', async () => {
    const r = await h.call('GET', `${BASE}/relationships`, { token: op, headers: { 'x-request-id': 'trace-abc.1' } });
    expect(r.headers.get('x-request-id')).toBe('trace-abc.1');
    const e = await h.call('GET', `${BASE}/relationships/none`, { token: op, headers: { 'x-request-id': 'bad id with spaces' } });
    expect(e.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.body.requestId).toBe(e.headers.get('x-request-id'));
  });

  it('serves Prometheus text with request latency, transitions, outbox lag and timers', async () => {
    await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'v', partnerId: 'p', relationshipType: 'INTEGRATION' } });
    const r = await h.call('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = String(r.body);
    expect(text).toMatch(/concord_http_request_duration_seconds_bucket\{le="[\d.]+",method="POST",route="\/api\/v1\/vendor-partner-coordination\/relationships",status="201"\}/);
    expect(text).toMatch(/concord_actor_transitions_total\{outcome="applied"\} [1-9]/);
    for (const m of ['concord_outbox_lag_seconds', 'concord_timers_due', 'concord_timers_pending', 'concord_outbox_pending']) expect(text).toContain(`# TYPE ${m} gauge`);
  });

  it('answers health as a health document, public, with the spec components plus database and messaging', async () => {
    const r = await h.call('GET', `${BASE}/health`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(r.body.components).sort()).toEqual(['database', 'dependencyResolution', 'eventCoordination', 'messaging', 'resourceSharing', 'workflowEngine']);
    for (const c of Object.values(r.body.components) as Array<{ status: string }>) expect(['up', 'degraded', 'down']).toContain(c.status);
    expect(r.body.components.database.status).toBe('up');
    expect(['up', 'degraded']).toContain(r.body.status);
  });

  it('reports the spec metrics', async () => {
    const r = await h.call('GET', `${BASE}/metrics`, { token: op });
    expect(r.status).toBe(200);
    expect(r.body.relationships).toMatchObject({ total: expect.any(Number), active: expect.any(Number), pending: expect.any(Number), suspended: expect.any(Number), new: expect.any(Number) });
    expect(Object.keys(r.body).sort()).toEqual(['dependencies', 'events', 'relationships', 'resources', 'timestamp', 'workflows']);
    expect(Object.keys(r.body.dependencies).sort()).toEqual(['blocked', 'critical', 'resolved', 'total']);
  });

  it('publishes an OpenAPI 3.1 document covering every route', async () => {
    const r = await h.call('GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    const ops = Object.entries(r.body.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((verb) => `${verb.toUpperCase()} ${p}`));
    const expected = [
      'GET /relationships', 'POST /relationships', 'GET /relationships/{id}', 'PUT /relationships/{id}',
      'POST /relationships/{id}/activate', 'POST /relationships/{id}/suspend', 'POST /relationships/{id}/terminate',
      'GET /integrations/{integrationId}/dependencies', 'GET /integrations/{integrationId}/dependents', 'GET /integrations/{integrationId}/analyze',
      'PUT /integrations/{integrationId}/status', 'POST /dependencies', 'DELETE /dependencies/{id}',
      'GET /resources', 'POST /resources', 'GET /resources/{id}', 'POST /resources/{resourceId}/grants', 'DELETE /grants/{grantId}',
      'POST /resources/{resourceId}/deactivate', 'GET /resources/{resourceId}/access',
      'GET /health', 'GET /metrics', 'GET /audit',
    ].map((s) => s.replace(' /', ` ${BASE}/`));
    for (const op of [...expected, 'GET /api/v1/actors', 'GET /api/v1/actors/{type}/{id}', 'GET /api/v1/actors/{type}/{id}/history', 'GET /api/v1/actors/{type}/{id}/chart']) {
      expect(ops, op).toContain(op);
    }
    expect(r.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(r.body.components.schemas.VendorPartnerRelationship.properties.status.enum).toEqual(['PENDING', 'ACTIVE', 'SUSPENDED', 'TERMINATED']);
  });
});
