import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from './harness.js';

const API = '/api/partnerships/templates';
let h: Harness;
let op: string;
let v1: string;
let v2: string;

beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
  v1 = h.token('vendor', 'vendor-1');
  v2 = h.token('partner', 'partner-2');
});
afterAll(async () => h.close());

describe('the playbook template library', () => {
  it("creates a template in the caller's library and lists it; the same name again is its next version", async () => {
    const r = await h.call('POST', API, { token: v1, body: { name: 'digest', format: 'markdown', source: '{{ steps.unhealthy.output | size }} need attention' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: expect.stringMatching(/^tpl_/), tenantId: 'vendor-1', name: 'digest', version: 1, format: 'markdown', createdBy: 'vendor-user@vendor-1' });
    expect(r.headers.get('location')).toBe(`${API}/${r.body.id}`);
    const again = await h.call('POST', API, { token: v1, body: { name: 'digest', source: 'v2 {{ inputs.channel }}' } });
    expect(again.body).toMatchObject({ version: 2, format: 'text' });
    const list = await h.call('GET', `${API}?name=digest`, { token: v1 });
    expect(list.status).toBe(200);
    expect(list.body.data.map((t: { version: number }) => t.version)).toEqual([2, 1]);
    expect((await h.call('GET', `${API}/${r.body.id}`, { token: v1 })).body.source).toBe('{{ steps.unhealthy.output | size }} need attention');
  });

  it("shows the platform's library to every tenant and another tenant's to nobody (404)", async () => {
    const shared = (await h.call('POST', API, { token: op, body: { name: 'platform-report', format: 'pdf', source: '# Report' } })).body;
    expect(shared.tenantId).toBeNull();
    const own = (await h.call('POST', API, { token: v1, body: { name: 'private', source: 'vendor-1 only' } })).body;
    expect((await h.call('GET', `${API}/${shared.id}`, { token: v2 })).status).toBe(200);
    const other = await h.call('GET', `${API}/${own.id}`, { token: v2 });
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
    const seen = (await h.call('GET', API, { token: v2 })).body.data.map((t: { id: string }) => t.id);
    expect(seen).toContain(shared.id);
    expect(seen).not.toContain(own.id);
    // operators see every library, and may write a tenant's
    expect((await h.call('GET', `${API}/${own.id}`, { token: op })).status).toBe(200);
    const forTenant = await h.call('POST', API, { token: op, body: { name: 'given', source: 'x', tenantId: 'partner-2' } });
    expect(forTenant.body.tenantId).toBe('partner-2');
    expect((await h.call('POST', API, { token: v1, body: { name: 'sneaky', source: 'x', tenantId: 'partner-2' } })).status).toBe(403);
  });

  it('answers bad input with a problem, never a 500: bad Liquid, bad names, unknown formats and fields, no token', async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'x', source: '{% if %}' }, 'invalid template'],
      [{ name: 'x', source: '{{ a | nosuchfilter }}' }, 'invalid template'],
      [{ name: 'has space', source: 'x' }, ''],
      [{ name: 'x', source: 'x', format: 'docx' }, ''],
      [{ name: 'x', source: 'x', extra: 1 }, ''],
      [{ name: 'x' }, ''],
    ];
    for (const [body, detail] of cases) {
      const r = await h.call('POST', API, { token: v1, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED' });
      if (detail) expect(JSON.stringify(r.body)).toContain(detail);
    }
    expect((await h.call('POST', API, { token: v1, raw: '{"name":' })).status).toBe(400);
    expect((await h.call('GET', `${API}?cursor=garbage`, { token: v1 })).status).toBe(400);
    expect((await h.call('GET', API)).status).toBe(401);
  });

  it('audits every create', async () => {
    const t = (await h.call('POST', API, { token: v1, body: { name: 'audited', source: 'x' } })).body;
    const { rows } = await h.database.pool.query('SELECT action, object_id, subject FROM audit_log WHERE object_type = $1 AND object_id = $2', ['playbook_template', t.id]);
    expect(rows).toEqual([{ action: 'template.create', object_id: t.id, subject: 'vendor-user@vendor-1' }]);
  });
});
