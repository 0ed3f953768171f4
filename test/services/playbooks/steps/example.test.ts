import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import { createExpressions, STEP_TYPES, type StepScope, type StepType } from '../../../../services/playbooks/steps/index.js';
import { freshDatabase } from '../../../helpers/db.js';
import { ctxOf, stepsOver } from './support.js';

/**
 * The example playbook, as written, run step by step through the runners in its
 * dependency order (the engine's job, done by hand here): what each step type makes of the
 * example's own specs.
 */
const EXAMPLE = `
name: partner-health-digest
description: Tell the partner team which integrations need attention
inputs:
  channel: { type: string, default: "#partners" }
triggers:
  - manual: {}
  - cron: { schedule: "0 9 * * MON", timezone: Europe/Berlin, overlap: skip, catchUp: last }
  - webhook: {}
steps:
  - id: unhealthy
    query: { resource: integrations, filter: { health: unhealthy } }
  - id: any
    dependsOn: [unhealthy]
    evaluate: "size(steps.unhealthy.output) > 0"
  - id: message
    dependsOn: [unhealthy]
    template: { source: "{{ steps.unhealthy.output | size }} integrations need attention in {{ inputs.channel }}" }
  - id: notify
    dependsOn: [any, message]
    if: "steps.any.output"
    webhook: { url: "https://hooks.example.com/partners", method: POST, body: { text: "{{ steps.message.output }}" } }
    timeout: PT10S
    retry: { maxAttempts: 3, backoff: { initial: PT1S, factor: 2, max: PT30S } }
    onError: skip
finally:
  - id: audit
    evaluate: "true"
`;

let database: Database;
let server: Server;
let hook = '';
const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];

beforeAll(async () => {
  database = await freshDatabase(4);
  for (const [account, state] of [['a.myshopify.com', 'reauthorization_required'], ['146322322', 'token_expired'], ['b.myshopify.com', 'connected']] as const) {
    const context = { tenantId: 'vendor-1', provider: account.includes('shopify') ? 'shopify' : 'mercadolibre', account, lastError: null };
    await database.pool.query(
      `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
        VALUES ('integration', $1, 'vendor-1', 1, 1, $2, $3, $4, $5, now(), now())`,
      [`vendor-1:${context.provider}:${account}`, JSON.stringify(state), state.toUpperCase(), JSON.stringify({ provider: context.provider, account }), JSON.stringify({ value: state, context })],
    );
  }
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/partners`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await database.close();
});

it("runs the issue's example: query, evaluate, template, the if condition and the signed webhook", async () => {
  const doc = parse(EXAMPLE) as { inputs: Record<string, { default: unknown }>; steps: Array<Record<string, unknown> & { id: string; if?: string }>; finally: Array<Record<string, unknown> & { id: string }> };
  const { runners } = stepsOver(database);
  const x = createExpressions();
  const scope: StepScope = { inputs: Object.fromEntries(Object.entries(doc.inputs).map(([k, v]) => [k, v.default])), steps: {} };
  for (const step of [...doc.steps, ...doc.finally]) {
    if (step.if) x.checkCel(String(step.if));
    const type = STEP_TYPES.find((t) => t in step) as StepType;
    let spec = step[type];
    // the example's hook is on the internet; the test's receiver stands in for it
    if (type === 'webhook') spec = { ...(spec as object), url: hook };
    if (step.if && x.evaluateCel(String(step.if), scope) !== true) {
      scope.steps[step.id] = { output: null, status: 'skipped' };
      continue;
    }
    const output = await runners[type](spec, scope, ctxOf('vendor-1', { stepId: step.id, idempotencyKey: `playbook-execution/x/${step.id}#0` }));
    scope.steps[step.id] = { output, status: 'succeeded' };
  }
  expect((scope.steps.unhealthy!.output as Array<{ account: string }>).map((i) => i.account).sort()).toEqual(['146322322', 'a.myshopify.com']);
  expect(scope.steps.any!.output).toBe(true);
  expect(scope.steps.message!.output).toBe('2 integrations need attention in #partners');
  expect(scope.steps.notify).toEqual({ output: { status: 204, webhookId: expect.stringMatching(/^msg_/) }, status: 'succeeded' });
  expect(scope.steps.audit!.output).toBe(true);
  expect(received).toHaveLength(1);
  expect(JSON.parse(received[0]!.body)).toEqual({ text: '2 integrations need attention in #partners' });
  expect(received[0]!.headers['webhook-signature']).toMatch(/^v1,/);
});
