import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { verify } from '../../../../services/events/signing.js';
import { PLATFORM_TENANT, WEBHOOK_VAULT_SERVICE, type StepScope } from '../../../../services/playbooks/steps/index.js';
import type { Principal } from '../../../../services/common/principal.js';
import { freshDatabase } from '../../../helpers/db.js';
import { ctxOf, emptyScope, failure, stepsOver } from './support.js';

let database: Database;
let steps: ReturnType<typeof stepsOver>;

/** A connection actor row as the runtime writes it (the integration machine's projection). */
async function integration(tenant: string, provider: string, account: string, state: string, lastError: { code: string; message: string } | null = null) {
  const id = `${tenant}:${provider}:${account}`;
  const context = { tenantId: tenant, provider, account, lastError, tokenExpiresAt: null, lastWebhook: null };
  await database.pool.query(
    `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
      VALUES ('integration', $1, $2, 1, 1, $3, $4, $5, $6, now(), now())`,
    [id, tenant, JSON.stringify(state), state.toUpperCase(), JSON.stringify({ provider, account }), JSON.stringify({ value: state, context })],
  );
}

async function relationship(id: string, vendorId: string, partnerId: string, status: string) {
  const context = { vendorId, partnerId, relationshipType: 'INTEGRATION' };
  await database.pool.query(
    `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
      VALUES ('relationship', $1, $2, 1, 1, '"active"', $3, $4, $5, now(), now())`,
    [id, vendorId, status, JSON.stringify(context), JSON.stringify({ value: 'active', context })],
  );
}

beforeAll(async () => {
  database = await freshDatabase(6);
  steps = stepsOver(database);
  await integration('vendor-1', 'shopify', 'a.myshopify.com', 'connected');
  await integration('vendor-1', 'shopify', 'b.myshopify.com', 'reauthorization_required', { code: 'REAUTHORIZATION_REQUIRED', message: 'invalid_grant' });
  await integration('vendor-1', 'mercadolibre', '146322322', 'token_expired');
  await integration('vendor-1', 'generic', 'crm.example.com', 'disconnected');
  await integration('vendor-2', 'shopify', 'c.myshopify.com', 'paused');
  await relationship('rel-1', 'vendor-1', 'partner-1', 'ACTIVE');
  await relationship('rel-2', 'vendor-2', 'partner-1', 'PENDING');
  await relationship('rel-3', 'vendor-2', 'partner-2', 'ACTIVE');
});
afterAll(async () => {
  await database.close();
});

describe('query', () => {
  it("finds a tenant's unhealthy integrations (the issue's example), never another tenant's", async () => {
    const out = (await steps.runners.query({ resource: 'integrations', filter: { health: 'unhealthy' } }, emptyScope, ctxOf('vendor-1'))) as Array<Record<string, unknown>>;
    expect(out.map((i) => i.account).sort()).toEqual(['146322322', 'b.myshopify.com']);
    expect(out.find((i) => i.account === 'b.myshopify.com')).toMatchObject({ tenantId: 'vendor-1', provider: 'shopify', state: 'reauthorization_required', health: 'unhealthy', lastError: { code: 'REAUTHORIZATION_REQUIRED' } });
    const healthy = (await steps.runners.query({ resource: 'integrations', filter: { health: 'healthy' } }, emptyScope, ctxOf('vendor-1'))) as unknown[];
    expect(healthy).toHaveLength(1);
    const other = (await steps.runners.query({ resource: 'integrations', filter: { health: 'unhealthy' } }, emptyScope, ctxOf('vendor-2'))) as Array<Record<string, unknown>>;
    expect(other.map((i) => i.account)).toEqual(['c.myshopify.com']);
    // an operator's playbook sees every tenant's
    const all = (await steps.runners.query({ resource: 'integrations', filter: { health: 'unhealthy', provider: 'shopify' } }, emptyScope, ctxOf(PLATFORM_TENANT))) as unknown[];
    expect(all).toHaveLength(2);
  });

  it('scopes relationships to the parties: the vendor and the partner see theirs', async () => {
    const asPartner = (await steps.runners.query({ resource: 'relationships' }, emptyScope, ctxOf('partner-1'))) as Array<{ id: string }>;
    expect(asPartner.map((r) => r.id).sort()).toEqual(['rel-1', 'rel-2']);
    const active = (await steps.runners.query({ resource: 'relationships', filter: { status: 'active' } }, emptyScope, ctxOf('vendor-2'))) as Array<{ id: string }>;
    expect(active.map((r) => r.id)).toEqual(['rel-3']);
    expect(await steps.runners.query({ resource: 'relationships' }, emptyScope, ctxOf('vendor-9'))).toEqual([]);
  });

  it('refuses what is not whitelisted: unknown resources, fields, values and options; platform records for tenants', async () => {
    const ctx = ctxOf('vendor-1');
    expect(await failure(steps.runners.query({ resource: 'pg_user' }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID', retryable: false });
    expect(await failure(steps.runners.query({ resource: 'integrations', filter: { tenant: 'vendor-2' } }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID', message: expect.stringContaining('can be filtered by health, state, provider, account') });
    expect(await failure(steps.runners.query({ resource: 'integrations', filter: { health: 'sick' } }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID' });
    expect(await failure(steps.runners.query({ resource: 'integrations', sql: 'select 1' }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID' });
    expect(await failure(steps.runners.query({ resource: 'integrations', filter: { provider: { $ne: 1 } } }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID' });
    expect(await failure(steps.runners.query({ resource: 'integrations', limit: 100_000 }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_INVALID' });
    expect(await failure(steps.runners.query({ resource: 'sagas' }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_FORBIDDEN' });
    expect(await failure(steps.runners.query({ resource: 'events' }, emptyScope, ctx))).toMatchObject({ code: 'QUERY_FORBIDDEN' });
    expect(await steps.runners.query({ resource: 'sagas' }, emptyScope, ctxOf(PLATFORM_TENANT))).toEqual([]);
    // a value is only ever a bound parameter
    expect(await steps.runners.query({ resource: 'integrations', filter: { provider: "shopify' OR '1'='1" } }, emptyScope, ctx)).toEqual([]);
    expect(await steps.runners.query({ resource: 'executions', filter: { status: 'running' } }, emptyScope, ctx)).toEqual([]);
  });
});

describe('query: inventory and the partner registry', () => {
  it("reads a tenant's stock (low stock with stockBelow) and its registered partners, never another tenant's", async () => {
    await database.pool.query(
      `INSERT INTO inventory_items (tenant_id, sku, stock, changed_at, source) VALUES ('vendor-1', 'SKU-1', 2, now(), 'api'), ('vendor-1', 'SKU-2', 50, now(), 'api'), ('vendor-2', 'SKU-9', 1, now(), 'api')`,
    );
    const low = (await steps.runners.query({ resource: 'inventory', filter: { stockBelow: 5 } }, emptyScope, ctxOf('vendor-1'))) as Array<{ sku: string; stock: number }>;
    expect(low.map((i) => [i.sku, i.stock])).toEqual([['SKU-1', 2]]);
    expect(((await steps.runners.query({ resource: 'inventory' }, emptyScope, ctxOf('vendor-1'))) as unknown[]).length).toBe(2);
    expect(await failure(steps.runners.query({ resource: 'inventory', filter: { stockBelow: 'a lot' } }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'QUERY_INVALID' });
    await database.pool.query(
      `INSERT INTO ecosystem_integrations (id, tenant_id, name, platform, template, tier, auth_pattern, auth, credentials_set_at, credentials_version)
        VALUES ('p1', 'vendor-1', 'acme-crm', 'salesforce', 'crm', 'gold', 'oauth2', '{"clientSecretRef":"x"}', now(), 1), ('p2', 'vendor-2', 'other', 'hubspot', 'crm', 'gold', 'api_key', '{}', now(), 1)`,
    );
    const partners = (await steps.runners.query({ resource: 'partners', filter: { tier: 'gold' } }, emptyScope, ctxOf('vendor-1'))) as Array<Record<string, unknown>>;
    expect(partners.map((p) => p.name)).toEqual(['acme-crm']);
    expect(partners[0]).not.toHaveProperty('auth');
    expect(((await steps.runners.query({ resource: 'partners' }, emptyScope, ctxOf(PLATFORM_TENANT))) as unknown[]).length).toBe(2);
  });
});

describe('evaluate', () => {
  it('answers the expression over earlier outputs, as JSON', async () => {
    const scope: StepScope = { inputs: {}, steps: { unhealthy: { output: [{ account: 'a' }, { account: 'b' }], status: 'succeeded' } } };
    expect(await steps.runners.evaluate('size(steps.unhealthy.output) > 0', scope, ctxOf('vendor-1'))).toBe(true);
    expect(await steps.runners.evaluate({ expression: 'size(steps.unhealthy.output) * 10' }, scope, ctxOf('vendor-1'))).toBe(20);
    expect(await failure(steps.runners.evaluate({ nope: 1 }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'EXPRESSION_INVALID' });
    expect(await failure(steps.runners.evaluate('steps.unhealthy.constructor', scope, ctxOf('vendor-1')))).toMatchObject({ code: 'EXPRESSION_FAILED', retryable: false });
  });
});

describe('template', () => {
  const scope: StepScope = { inputs: { channel: '#partners' }, steps: { unhealthy: { output: [{ account: 'a<b>' }, { account: 'c' }], status: 'succeeded' } } };
  const operator: Principal = { sub: 'op', role: 'operator', tenantId: null };
  const vendor = (id: string): Principal => ({ sub: `u@${id}`, role: 'vendor', tenantId: id });

  it("renders inline Liquid with the size filter (the issue's example)", async () => {
    const out = await steps.runners.template({ source: '{{ steps.unhealthy.output | size }} integrations need attention in {{ inputs.channel }}' }, scope, ctxOf('vendor-1'));
    expect(out).toBe('2 integrations need attention in #partners');
  });

  it("renders from the library: the tenant's own and the platform's, never another tenant's", async () => {
    const own = await steps.templates.create(vendor('vendor-1'), { name: 'digest', format: 'markdown', source: '# Digest\n{% for i in steps.unhealthy.output %}- {{ i.account }}\n{% endfor %}' });
    const shared = await steps.templates.create(operator, { name: 'shared-html', format: 'html', source: '<ul>{% for i in steps.unhealthy.output %}<li>{{ i.account }}</li>{% endfor %}</ul>' });
    const theirs = await steps.templates.create(vendor('vendor-2'), { name: 'digest', source: 'secret layout of vendor-2' });
    expect(await steps.runners.template({ templateId: own.id }, scope, ctxOf('vendor-1'))).toBe('# Digest\n- a<b>\n- c\n');
    // html escapes every output
    expect(await steps.runners.template({ templateId: shared.id }, scope, ctxOf('vendor-1'))).toBe('<ul><li>a&lt;b&gt;</li><li>c</li></ul>');
    expect(await failure(steps.runners.template({ templateId: theirs.id }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'TEMPLATE_NOT_FOUND', retryable: false });
    expect(await failure(steps.runners.template({ source: 'x', templateId: own.id }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'TEMPLATE_INVALID' });
    // a second post of a name is its next version, under a new id; the first still renders as it was
    const v2 = await steps.templates.create(vendor('vendor-1'), { name: 'digest', source: 'v2' });
    expect(v2).toMatchObject({ version: 2, name: 'digest' });
    expect(v2.id).not.toBe(own.id);
    expect(await steps.runners.template({ templateId: own.id }, scope, ctxOf('vendor-1'))).toContain('# Digest');
  });

  it('writes a PDF report whose cross-reference table points at its objects', async () => {
    const lines = Array.from({ length: 120 }, (_, i) => `- integration ${i} (Grüße, (paren) \\ back)`).join('\n');
    const out = (await steps.runners.template({ source: `# Weekly report\n**{{ steps.unhealthy.output | size }} need attention**\n${lines}`, format: 'pdf', title: 'Weekly report' }, scope, ctxOf('vendor-1'))) as {
      contentType: string;
      filename: string;
      bytes: number;
      base64: string;
    };
    expect(out).toMatchObject({ contentType: 'application/pdf', filename: 'Weekly-report.pdf' });
    const pdf = Buffer.from(out.base64, 'base64');
    expect(pdf.length).toBe(out.bytes);
    const text = pdf.toString('latin1');
    expect(text.startsWith('%PDF-1.4')).toBe(true);
    expect(text.trimEnd().endsWith('%%EOF')).toBe(true);
    const startxref = Number(/startxref\n(\d+)\n/.exec(text)![1]);
    expect(text.slice(startxref, startxref + 4)).toBe('xref');
    const entries = [...text.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
    entries.forEach((offset, i) => expect(text.slice(offset, offset + `${i + 1} 0 obj`.length)).toBe(`${i + 1} 0 obj`));
    expect(Number(/\/Count (\d+)/.exec(text)![1])).toBeGreaterThan(1); // 120 lines take more than one page
    expect(text).toContain('(2 need attention) Tj');
    expect(text).toContain('Gr\\374\\337e, \\(paren\\) \\\\ back'); // Windows-1252, escaped
  });
});

describe('webhook', () => {
  let server: Server;
  let url = '';
  const received: Array<{ headers: Record<string, string>; body: string }> = [];
  let answer = { status: 200, headers: {} as Record<string, string> };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(answer.status, answer.headers).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/partners`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("posts the rendered body signed with the tenant's secret; the webhook-id is the same on a retry", async () => {
    received.length = 0;
    answer = { status: 200, headers: {} };
    const scope: StepScope = { inputs: {}, steps: { message: { output: '2 integrations need attention', status: 'succeeded' } } };
    const ctx = ctxOf('vendor-1');
    const spec = { url, method: 'POST', body: { text: '{{ steps.message.output }}' } };
    const out = (await steps.runners.webhook(spec, scope, ctx)) as { status: number; webhookId: string };
    await steps.runners.webhook(spec, scope, { ...ctx, attempt: 2 });
    expect(out.status).toBe(200);
    expect(received).toHaveLength(2);
    const [first, second] = received;
    expect(JSON.parse(first!.body)).toEqual({ text: '2 integrations need attention' });
    expect(first!.headers['webhook-id']).toBe(out.webhookId);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(first!.headers['idempotency-key']).toBe(ctx.idempotencyKey);
    const { secret } = await steps.vault.get({ tenantId: 'vendor-1', service: WEBHOOK_VAULT_SERVICE, connectionId: 'default' });
    expect(secret.secret).toMatch(/^whsec_/);
    const h = first!.headers;
    expect(verify(secret.secret!, { id: h['webhook-id']!, timestamp: h['webhook-timestamp']!, signature: h['webhook-signature']! }, first!.body, Math.floor(steps.clock.now() / 1000))).toBe(true);
    // another tenant signs with its own secret
    await steps.runners.webhook(spec, scope, ctxOf('vendor-2'));
    const other = received[2]!.headers;
    expect(verify(secret.secret!, { id: other['webhook-id']!, timestamp: other['webhook-timestamp']!, signature: other['webhook-signature']! }, received[2]!.body, Math.floor(steps.clock.now() / 1000))).toBe(false);
    // the secret is in no log line and no step output
    expect(JSON.stringify(ctx.lines)).not.toContain(secret.secret!);
    expect(JSON.stringify(out)).not.toContain(secret.secret!);
  });

  it('classifies failures: 503 with Retry-After retryable, 400 terminal, reserved headers and other methods refused', async () => {
    answer = { status: 503, headers: { 'retry-after': '7' } };
    expect(await failure(steps.runners.webhook({ url }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'UNAVAILABLE', retryable: true, retryAfterMs: 7000 });
    answer = { status: 400, headers: {} };
    expect(await failure(steps.runners.webhook({ url }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'VALIDATION', retryable: false });
    expect(await failure(steps.runners.webhook({ url, method: 'DELETE' }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'WEBHOOK_INVALID' });
    expect(await failure(steps.runners.webhook({ url, headers: { 'webhook-signature': 'v1,forged' } }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'WEBHOOK_INVALID' });
    expect(await failure(steps.runners.webhook({ url, headers: { 'x-a': 'b\r\nx-injected: 1' } }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'WEBHOOK_INVALID' });
    expect(await failure(steps.runners.webhook({ url: 'file:///etc/passwd' }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ retryable: false });
  });

  it('refuses loopback and private targets unless WEBHOOK_ALLOW_PRIVATE_TARGETS', async () => {
    const strict = stepsOver(database, { allowPrivateTargets: false });
    received.length = 0;
    answer = { status: 200, headers: {} };
    for (const target of [url, 'http://10.1.2.3/x', 'http://[::1]:9/x', 'http://169.254.169.254/latest/meta-data', 'http://localhost:1/x']) {
      expect(await failure(strict.runners.webhook({ url: target }, emptyScope, ctxOf('vendor-1')))).toMatchObject({ code: 'WEBHOOK_REFUSED', retryable: false });
    }
    expect(received).toHaveLength(0);
  });
});
