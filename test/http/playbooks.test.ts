import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import type { Database } from '../../runtime/db.js';
import { webhookHeaders } from '../../services/events/signing.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testLog } from '../helpers/runtime.js';
import { countingServer, playbookSystem, type CountingServer, type PlaybookSystem } from '../services/playbooks/kit.js';

const SECRET = 'test-secret-0123456789-0123456789-abcdef';
const P = '/api/partnerships';
const EXAMPLE = readFileSync(new URL('../fixtures/playbooks/partner-health-digest.yaml', import.meta.url), 'utf8');

let database: Database;
let server: CountingServer;
let sys: PlaybookSystem;
let app: ReturnType<typeof createApp>;
beforeAll(async () => {
  database = await freshDatabase(8);
  server = await countingServer();
  sys = await playbookSystem(database, { baseUrl: server.url });
  app = createApp({ services: sys.services, log: testLog, jwtSecret: SECRET });
});
afterAll(async () => {
  await sys?.close();
  await server?.close();
  await database?.close();
});

const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}-user`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
const OP = token('operator');
const VENDOR = token('vendor', 'vendor-1');
const OTHER = token('vendor', 'vendor-2');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, path: string, o: { token?: string; body?: string; type?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) {
    headers['content-type'] = o.type ?? 'application/json';
    headers['content-length'] = String(Buffer.byteLength(o.body));
  }
  const res = await app.request(path, { method, headers, body: o.body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const simple = (name: string, extra: string[] = []) =>
  [`name: ${name}`, 'inputs:', '  who: { type: string, required: true }', 'triggers:', '  - manual: {}', '  - webhook: {}', 'steps:', '  - id: hello', '    template: { source: "hi {{ inputs.who }}" }', ...extra].join('\n');

describe('playbooks over HTTP', () => {
  it("creates the issue's example from YAML: 201 with the webhook secret once, then GET without it", async () => {
    const r = await call('POST', `${P}/playbooks`, { token: OP, body: EXAMPLE, type: 'application/yaml' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'partner-health-digest', version: 1, format: 'yaml', triggers: ['manual', 'cron', 'webhook'], tenantId: 'platform' });
    expect(r.body.webhookSecret).toMatch(/^whsec_/);
    const got = await call('GET', `${P}/playbooks/${r.body.id}`, { token: OP });
    expect(got.status).toBe(200);
    expect(got.body.webhookSecret).toBeUndefined();
    expect(got.body.source).toBe(EXAMPLE);
    const schedule = await sys.services.playbooks.schedule({ sub: 'op', role: 'operator', tenantId: null }, r.body.id);
    expect(schedule?.cron).toMatchObject({ schedule: '0 9 * * MON', timezone: 'Europe/Berlin' });
  });

  it('is in the OpenAPI document', async () => {
    const r = await call('GET', '/openapi.json', { token: OP });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.paths)).toEqual(expect.arrayContaining(['/api/partnerships/playbooks', '/api/partnerships/playbooks/{id}/execute', '/api/partnerships/executions/{id}/retry', '/api/partnerships/playbooks/{id}/webhook']));
  });

  it('publishes the JSON Schema', async () => {
    const r = await call('GET', `${P}/playbooks/schema`, { token: VENDOR });
    expect(r.status).toBe(200);
    expect(r.body.properties.steps).toBeDefined();
  });

  it('answers a YAML error as a 400 problem naming line, column and field', async () => {
    const r = await call('POST', `${P}/playbooks`, { token: OP, body: 'name: broken\nsteps:\n  - id: a\n    evaluate: "1"\n    dependsOn: [ghost]\n', type: 'application/yaml' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('VALIDATION_FAILED');
    expect(r.body.issues[0]).toMatchObject({ field: 'steps[0].dependsOn[0]', line: 5, column: 17, message: "unknown step id 'ghost'" });
    expect((await call('POST', `${P}/playbooks`, { token: OP, body: 'name: x', type: 'text/plain' })).status).toBe(415);
    expect((await call('POST', `${P}/playbooks`, { token: OP, body: '{"name": ', type: 'application/json' })).status).toBe(400);
  });

  it('versions on update, lists, deletes; audits each', async () => {
    const created = await call('POST', `${P}/playbooks`, { token: VENDOR, body: simple('versioned'), type: 'application/yaml' });
    expect(created.body.tenantId).toBe('vendor-1');
    const id = created.body.id;
    const put = await call('PUT', `${P}/playbooks/${id}`, { token: VENDOR, body: JSON.stringify({ name: 'versioned', steps: [{ id: 'x', evaluate: '1 + 1' }] }) });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ version: 2, format: 'json' });
    const list = await call('GET', `${P}/playbooks`, { token: VENDOR });
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([id]);
    expect((await call('DELETE', `${P}/playbooks/${id}`, { token: VENDOR })).status).toBe(204);
    expect((await call('GET', `${P}/playbooks/${id}`, { token: VENDOR })).status).toBe(404);
    const { rows } = await database.pool.query(`SELECT action FROM audit_log WHERE object_id = $1 ORDER BY id`, [id]);
    expect(rows.map((r) => r.action)).toEqual(['playbook.create', 'playbook.update', 'playbook.delete']);
  });

  it('a vendor sees only its own playbooks and executions (another answers 404)', async () => {
    const mine = await call('POST', `${P}/playbooks`, { token: VENDOR, body: simple('mine'), type: 'application/yaml' });
    const id = mine.body.id;
    expect((await call('GET', `${P}/playbooks/${id}`, { token: OTHER })).status).toBe(404);
    expect((await call('PUT', `${P}/playbooks/${id}`, { token: OTHER, body: simple('mine'), type: 'application/yaml' })).status).toBe(404);
    expect((await call('DELETE', `${P}/playbooks/${id}`, { token: OTHER })).status).toBe(404);
    expect((await call('POST', `${P}/playbooks/${id}/execute`, { token: OTHER, body: '{"inputs":{"who":"x"}}' })).status).toBe(404);
    const ex = await call('POST', `${P}/playbooks/${id}/execute`, { token: VENDOR, body: '{"inputs":{"who":"x"}}' });
    expect(ex.status).toBe(202);
    expect((await call('GET', `${P}/executions/${ex.body.id}`, { token: OTHER })).status).toBe(404);
    expect((await call('POST', `${P}/executions/${ex.body.id}/cancel`, { token: OTHER })).status).toBe(404);
    expect((await call('GET', `${P}/executions?playbookId=${id}`, { token: OTHER })).body.data).toEqual([]);
    expect((await call('GET', `${P}/playbooks`, { token: OTHER })).body.data).toEqual([]);
  });

  it('execute: inputs checked (400), 202 with the execution id; the execution is listed, filtered and shown with its steps', async () => {
    const pb = (await call('POST', `${P}/playbooks`, { token: OP, body: simple('runnable'), type: 'application/yaml' })).body;
    expect((await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP, body: '{"inputs":{}}' })).status).toBe(400);
    expect((await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP, body: '{"inputs":{"who":1}}' })).status).toBe(400);
    expect((await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP, body: '{"inputs":{"who":"a","extra":1}}' })).status).toBe(400);
    expect((await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP, body: '{"inputs":' })).status).toBe(400);
    const r = await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP, body: '{"inputs":{"who":"ada"}}' });
    expect(r.status).toBe(202);
    const id = r.body.id;
    const done = await waitFor('succeeded', async () => ((await call('GET', `${P}/executions/${id}`, { token: OP })).body.status === 'succeeded' ? (await call('GET', `${P}/executions/${id}`, { token: OP })).body : null));
    expect(done.steps[0]).toMatchObject({ id: 'hello', status: 'succeeded', attempts: 1, output: 'hi ada' });
    const listed = await call('GET', `${P}/executions?playbookId=${pb.id}&status=succeeded&trigger=manual`, { token: OP });
    expect(listed.body.data.map((e: { id: string }) => e.id)).toEqual([id]);
    // the list is a summary: step counts, no inputs, outputs nor logs
    expect(listed.body.data[0]).toMatchObject({ id, status: 'succeeded', trigger: 'manual', stepCounts: { total: 1, succeeded: 1, failed: 0 } });
    expect(listed.body.data[0]).not.toHaveProperty('steps');
    expect(listed.body.data[0]).not.toHaveProperty('inputs');
    expect((await call('GET', `${P}/executions?playbookId=${pb.id}&trigger=cron`, { token: OP })).body.data).toEqual([]);
    expect((await call('GET', `${P}/executions?playbookId=${pb.id}&from=2999-01-01T00:00:00Z`, { token: OP })).body.data).toEqual([]);
    expect((await call('GET', `${P}/executions?status=bogus`, { token: OP })).status).toBe(400);
    expect((await call('GET', `${P}/executions/not-a-uuid`, { token: OP })).status).toBe(404);
    const { rows } = await database.pool.query(`SELECT action FROM audit_log WHERE object_id = $1`, [id]);
    expect(rows.map((x) => x.action)).toContain('playbook.execute');
  });

  it('webhook trigger: a signed call starts an execution with the body as inputs; bad signature, stale timestamp and a reused webhook-id are refused', async () => {
    const created = (await call('POST', `${P}/playbooks`, { token: OP, body: simple('hooked'), type: 'application/yaml' })).body;
    const url = `${P}/playbooks/${created.id}/webhook`;
    const body = JSON.stringify({ who: 'webhook' });
    const now = Math.floor(Date.now() / 1000);
    const ok = await call('POST', url, { body, headers: webhookHeaders(created.webhookSecret, 'msg_1', now, body) });
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ trigger: 'webhook', inputs: { who: 'webhook' } });
    expect((await call('POST', url, { body, headers: webhookHeaders(created.webhookSecret, 'msg_1', now, body) })).status).toBe(409);
    expect((await call('POST', url, { body, headers: webhookHeaders(created.webhookSecret, 'msg_2', now - 301, body) })).status).toBe(401);
    expect((await call('POST', url, { body, headers: webhookHeaders('whsec_' + Buffer.alloc(24, 1).toString('base64'), 'msg_3', now, body) })).status).toBe(401);
    expect((await call('POST', url, { body })).status).toBe(401);
    const bad = JSON.stringify({ who: 5 });
    expect((await call('POST', url, { body: bad, headers: webhookHeaders(created.webhookSecret, 'msg_4', now, bad) })).status).toBe(400);
  });

  it('cancel and retry over HTTP', async () => {
    const pb = (await call('POST', `${P}/playbooks`, { token: OP, body: ['name: http-cancel', 'steps:', '  - id: w', '    webhook: { path: /hang/http-cancel }'].join('\n'), type: 'application/yaml' })).body;
    const ex = (await call('POST', `${P}/playbooks/${pb.id}/execute`, { token: OP })).body;
    await waitFor('running', () => server.count('/hang/http-cancel') === 1);
    const c = await call('POST', `${P}/executions/${ex.id}/cancel`, { token: OP, body: '{"reason":"enough"}' });
    expect(c.status).toBe(200);
    await waitFor('cancelled', async () => (await call('GET', `${P}/executions/${ex.id}`, { token: OP })).body.status === 'cancelled');
    expect((await call('POST', `${P}/executions/${ex.id}/cancel`, { token: OP })).status).toBe(409);
    server.releaseHung();
    const r = await call('POST', `${P}/executions/${ex.id}/retry`, { token: OP });
    expect(r.status).toBe(202);
    expect(r.body.triggerInfo).toEqual({ kind: 'retry', retryOf: ex.id });
    await waitFor('retried call', () => server.count('/hang/http-cancel') === 2);
    server.releaseHung();
    const { rows } = await database.pool.query(`SELECT action FROM audit_log WHERE object_id = $1`, [ex.id]);
    expect(rows.map((x) => x.action)).toEqual(expect.arrayContaining(['playbook.execute', 'execution.cancel']));
  });
});
