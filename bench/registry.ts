/**
 * `npx tsx bench/registry.ts`: the partner registry's figures, on a real port against Postgres
 * (DATABASE_URL's server, or an embedded one).
 *
 * 1. 10,000 registered integrations (50 owners, three tiers, four platforms); `GET
 *    /api/v1/ecosystem/integrations` (first pages, filtered pages, a vendor's own, a second page
 *    by cursor) and `GET .../{name}`, one request at a time: p50/p99 with no health checks running.
 * 2. 1,000 of them start their health checks (registry actors registered, the health monitor
 *    checking each every BENCH_CHECK_INTERVAL_MS, default 60 s, for every tier: 1,000 checks a
 *    minute) against a generic fake in its own process; the same requests are measured again
 *    while the checks run; the checks done per minute are counted from `ecosystem_health_hourly`,
 *    and the actor transitions (journal entries) the checks cost from `journal`.
 *
 * The target: list p99 under 10 ms with 10,000 integrations, and the API's latency not moving
 * while 1,000 integrations are checked per minute.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { actorTypes } from '../machines/index.js';
import { ecosystemType } from '../machines/ecosystem/index.js';
import { credentialKey, loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { KeyRing } from '../services/integrations/vault.js';
import { startGenericFake } from '../simulator/fakes/generic.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const TOTAL = Number(process.env.BENCH_INTEGRATIONS ?? 10_000);
const CHECKED = Number(process.env.BENCH_CHECKED ?? 1_000);
const INTERVAL_MS = Number(process.env.BENCH_CHECK_INTERVAL_MS ?? 60_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 30_000);
const API_KEY = `bench-${randomBytes(8).toString('hex')}`;
const PLATFORMS = ['databricks', 'snowflake', 'bigquery', 'redshift'];
const TIERS = ['enterprise', 'professional', 'community'];
const OWNERS = 50;
const JWT = 'bench-secret-0123456789-0123456789-abcdef';

/** The generic fake in its own process, so its work is not counted against the API's latency. */
async function fakeMode(): Promise<void> {
  const fake = await startGenericFake({ auth: { apiKey: { keys: [process.env.BENCH_API_KEY!] } } });
  process.stdout.write(`READY ${fake.url}\n`);
  process.once('SIGTERM', async () => {
    await fake.close();
    process.exit(0);
  });
}

async function startFake(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--fake'], { env: { ...process.env, BENCH_API_KEY: API_KEY }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      const m = /READY (\S+)/.exec(b.toString());
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`fake exited ${code}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const db = await benchDatabase('concord_bench_registry');
  const fake = await startFake();
  // every tier checked every INTERVAL_MS (the bench's rate), the rest as the built-in table
  const tiers = JSON.parse(readFileSync(fileURLToPath(new URL('../services/ecosystem/tiers.json', import.meta.url)), 'utf8')) as { tiers: Record<string, { healthCheckIntervalMs: number }> };
  for (const t of Object.values(tiers.tiers)) t.healthCheckIntervalMs = INTERVAL_MS;
  const tiersFile = path.join(os.tmpdir(), `concord-bench-tiers-${process.pid}.json`);
  writeFileSync(tiersFile, JSON.stringify(tiers));
  const config = loadConfig({ ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', JWT_SECRET: JWT, ECOSYSTEM_TIERS_FILE: tiersFile });
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log: benchLog, connectors });
  const services = createServices({ runtime, log: benchLog, connectors, credentialKeys: new KeyRing([credentialKey('bench', randomBytes(32))]), run: { sagaIntake: false } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log: benchLog, jwtSecret: JWT });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/ecosystem`;
  const pool = runtime.database.pool;

  const seeded = performance.now();
  await pool.query(
    `INSERT INTO ecosystem_integrations (id, tenant_id, name, platform, template, tier, features, auth_pattern, auth, config, credentials_set_at, credentials_version)
     SELECT 'bench-' || (i % $2) || ':int-' || lpad(i::text, 5, '0'), 'bench-' || (i % $2), 'int-' || lpad(i::text, 5, '0'), ($3::text[])[1 + i % 4], 'data-platform',
            ($4::text[])[1 + i % 3], CASE WHEN i % 5 = 0 THEN ARRAY['data_processing', 'ml_training'] ELSE ARRAY['data_processing'] END, 'api_key',
            '{"in": "header", "name": "x-api-key"}', jsonb_build_object('baseUrl', $5::text, 'healthCheck', jsonb_build_object('path', '/whoami', 'expectStatus', 200)), now(), 1
       FROM generate_series(1, $1) AS i`,
    [TOTAL, OWNERS, PLATFORMS, TIERS, `${fake.url}/v1`],
  );
  const { rows: checkedRows } = await pool.query<{ id: string; tenant_id: string; name: string }>(`SELECT id, tenant_id, name FROM ecosystem_integrations ORDER BY name LIMIT $1`, [CHECKED]);
  for (const r of checkedRows) await services.vault.put({ tenantId: r.tenant_id, service: 'ecosystem', connectionId: r.name }, { apiKey: API_KEY });
  await pool.query('ANALYZE ecosystem_integrations');
  console.log(`seeded ${TOTAL} integrations (${CHECKED} with credentials) in ${fmt((performance.now() - seeded) / 1000, 1)} s`);

  const operator = signToken({ sub: 'bench-operator', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, JWT);
  const vendor = signToken({ sub: 'bench-vendor', role: 'vendor', tenantId: 'bench-7', exp: Math.floor(Date.now() / 1000) + 3600 }, JWT);
  const second = (await (await fetch(`${base}/integrations?limit=50`, { headers: { authorization: `Bearer ${operator}` } })).json()) as { pagination: { nextCursor: string } };
  const requests: Array<{ kind: string; url: string; token: string }> = [
    { kind: 'list', url: `${base}/integrations?limit=50`, token: operator },
    { kind: 'list', url: `${base}/integrations?tier=enterprise&limit=50`, token: operator },
    { kind: 'list', url: `${base}/integrations?platform=snowflake&status=active&limit=50`, token: operator },
    { kind: 'list', url: `${base}/integrations?feature=ml_training&limit=50`, token: operator },
    { kind: 'list', url: `${base}/integrations?limit=50`, token: vendor },
    { kind: 'list', url: `${base}/integrations?limit=50&cursor=${second.pagination.nextCursor}`, token: operator },
    { kind: 'get', url: `${base}/integrations/int-00007`, token: vendor },
    { kind: 'get', url: `${base}/integrations/int-04242?ownerId=bench-42`, token: operator },
  ];

  const measure = async (label: string, ms: number) => {
    const lat: Record<string, number[]> = { list: [], get: [] };
    const until = performance.now() + ms;
    let i = 0;
    while (performance.now() < until) {
      const r = requests[i++ % requests.length]!;
      const t = performance.now();
      const res = await fetch(r.url, { headers: { authorization: `Bearer ${r.token}` } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${r.url}: ${res.status}`);
      lat[r.kind]!.push(performance.now() - t);
    }
    return Object.entries(lat).map(([kind, xs]) => {
      const s = xs.sort((a, b) => a - b);
      return [label, kind, s.length, fmt(percentile(s, 50)), fmt(percentile(s, 99)), fmt(s.at(-1) ?? NaN)];
    });
  };

  await measure('warm-up', 2_000);
  const quiet = await measure('no health checks', MEASURE_MS);

  // 1,000 registry actors start checking: registrations spread over one interval, so the checks spread too
  const actors = runtime.host.actor(ecosystemType);
  const settings = { tier: 'enterprise', intervalMs: INTERVAL_MS, degradedLatencyMs: 1000, unhealthyAfter: 3 };
  const t0 = performance.now();
  const spread = (async () => {
    for (const [k, r] of checkedRows.entries()) {
      const due = t0 + (k * INTERVAL_MS) / checkedRows.length;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      await actors.send(r.id, { type: 'ecosystem.register', tenantId: r.tenant_id, name: r.name, settings, events: 'concord.events', at: new Date().toISOString() }, { tenant: r.tenant_id });
    }
  })();
  await spread; // one interval: every integration registered
  await services.ecosystem.monitor.refresh(checkedRows.map((r) => r.id)); // as the registry does after a registration
  const checksSoFar = async () => {
    await services.ecosystem.meter.flush(); // the check counters are flushed every ECOSYSTEM_USAGE_FLUSH_MS: count them all
    const { rows } = await pool.query<{ checks: string; ok: string }>(`SELECT coalesce(sum(checks), 0) AS checks, coalesce(sum(ok), 0) AS ok FROM ecosystem_health_hourly`);
    return { checks: Number(rows[0]!.checks), ok: Number(rows[0]!.ok) };
  };
  const atStart = await checksSoFar();
  const from = new Date();
  const busy = await measure('1,000 checked per interval', MEASURE_MS);
  const atEnd = await checksSoFar();
  const done = [{ checks: atEnd.checks - atStart.checks, ok: atEnd.ok - atStart.ok }];
  const { rows: summary } = await pool.query(`SELECT attrs->>'health' AS health, count(*)::int AS n FROM actors WHERE type = 'ecosystem' GROUP BY 1`);
  const elapsedMin = (Date.now() - from.getTime()) / 60_000; // the first checks fall due from here on
  const { rows: journal } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal WHERE actor_type = 'ecosystem' AND at >= $1`, [from]);

  console.log(`\nregistry: ${TOTAL} integrations, ${CHECKED} health-checked every ${INTERVAL_MS / 1000} s (target ${fmt((CHECKED * 60_000) / INTERVAL_MS, 0)} checks/min), one request at a time over a real port`);
  console.log(table(['phase', 'request', 'n', 'p50 ms', 'p99 ms', 'max ms'], [...quiet, ...busy]));
  console.log(`checks done while measuring: ${done[0]!.checks} (${done[0]!.ok} as expected) in about ${fmt(elapsedMin, 1)} min = ${fmt(Number(done[0]!.checks) / elapsedMin, 0)} checks/min; ecosystem actor transitions meanwhile (first checks of actors registered without one: unknown → healthy): ${journal[0]!.n}; actors by health: ${JSON.stringify(summary)}`);

  await new Promise<void>((r) => server.close(() => r()));
  await services.stop();
  await runtime.stop();
  fake.stop();
  await db.stop();
}

if (process.argv.includes('--fake')) void fakeMode();
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
