/**
 * `npx tsx bench/playbook-steps.ts`: the cost of the playbook step types' own work, per call
 * (the engine's overhead is measured separately): an `if` condition, `evaluate` over a list,
 * the issue's template, a 100-row Markdown report, a 200-line PDF, and `query` for unhealthy
 * integrations among 1,000 (PostgreSQL from DATABASE_URL, else embedded).
 */
import { randomBytes } from 'node:crypto';
import { createPool } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { ManualClock } from '../runtime/clock.js';
import { credentialKey } from '../runtime/config.js';
import { CredentialVault, KeyRing } from '../services/integrations/vault.js';
import { TemplateStore } from '../services/playbooks/templates.js';
import { createExpressions, createStepRunners, type StepRunContext, type StepScope } from '../services/playbooks/steps/index.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const N = Number(process.env.N ?? 2000);

async function measure(name: string, n: number, fn: () => unknown): Promise<Array<string | number>> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(); // warm up
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return [name, n, fmt(percentile(times, 50), 3), fmt(percentile(times, 99), 3), fmt(times.at(-1)!, 3)];
}

const x = createExpressions();
const items = Array.from({ length: 100 }, (_, i) => ({ provider: i % 2 ? 'shopify' : 'generic', account: `acct-${i}`, state: i % 3 ? 'connected' : 'token_expired', health: i % 3 ? 'healthy' : 'unhealthy' }));
const scope: StepScope = { inputs: { channel: '#partners' }, steps: { unhealthy: { output: items, status: 'succeeded' }, any: { output: true, status: 'succeeded' } } };

const db = await benchDatabase('concord_bench_playbook_steps');
const pool = createPool(db.url, 4, 'concord-bench');
try {
  await migrate(pool, benchLog);
  await pool.query(
    `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
      SELECT 'integration', 't' || (i % 10) || ':shopify:' || i, 't' || (i % 10), 1, 1, to_jsonb(s), upper(s), jsonb_build_object('provider', 'shopify', 'account', i::text),
        jsonb_build_object('value', s, 'context', jsonb_build_object('provider', 'shopify', 'account', i::text, 'lastError', null)), now(), now()
      FROM generate_series(1, 1000) i, LATERAL (SELECT CASE WHEN i % 7 = 0 THEN 'token_expired' ELSE 'connected' END AS s) st`,
  );
  const runners = createStepRunners({
    pool,
    vault: new CredentialVault(pool, new KeyRing([credentialKey('k1', randomBytes(32))]), benchLog),
    templates: new TemplateStore(pool),
    clock: new ManualClock(),
    webhooks: { allowPrivateTargets: false },
  });
  const ctx: StepRunContext = { tenantId: 't3', executionId: 'e', stepId: 's', idempotencyKey: 'k', attempt: 1, signal: new AbortController().signal, log: () => undefined };
  const report = `# Partner health\n{% for i in steps.unhealthy.output %}- **{{ i.provider }}** {{ i.account }}: {{ i.state }} ({{ i.health | upcase }})\n{% endfor %}`;
  const pdfSource = `# Report\n${Array.from({ length: 200 }, (_, i) => `line ${i} {{ inputs.channel }}`).join('\n')}`;
  const rows = [
    await measure('if: steps.any.output', N, () => x.evaluateCel('steps.any.output', scope)),
    await measure('evaluate: filter+map over 100 items', N, () => x.evaluateCel('steps.unhealthy.output.filter(i, i.health == "unhealthy").map(i, i.account)', scope)),
    await measure("template: the issue's message", N, () => x.renderTemplate('{{ steps.unhealthy.output | size }} integrations need attention in {{ inputs.channel }}', scope)),
    await measure('template: 100-row markdown report', N / 4, () => runners.template({ source: report, format: 'markdown' }, scope, ctx)),
    await measure('template: 200-line PDF', N / 10, () => runners.template({ source: pdfSource, format: 'pdf' }, scope, ctx)),
    await measure('query: unhealthy of 1,000 integrations', N / 4, () => runners.query({ resource: 'integrations', filter: { health: 'unhealthy' } }, scope, ctx)),
  ];
  console.log(table(['step work', 'calls', 'p50 ms', 'p99 ms', 'max ms'], rows));
} finally {
  await pool.end();
  await db.stop();
}
