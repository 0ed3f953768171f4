/**
 * `npx tsx bench/console.ts`: the operator console's two figures.
 *  1. Page server time with 100,000 actors in the database: `app.request` (no network) for the
 *     search page (unfiltered and with each filter), an actor page, timers, dead letters and
 *     integrations; p50/p99 over BENCH_PAGE_RUNS runs after warm-up. Target < 100 ms.
 *  2. Live journal: a live page's SSE stream open over a real port; an operator event is sent
 *     BENCH_LIVE_SAMPLES times; time from the commit (the send resolving) and from the request's
 *     start to the journal entry arriving on the stream. Target < 200 ms after the commit.
 * Against DATABASE_URL's server, or an embedded PostgreSQL.
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { actorTypes } from '../machines/index.js';
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const ACTORS = Number(process.env.BENCH_ACTORS ?? 100_000);
const SEEDS = 20;
const RUNS = Number(process.env.BENCH_PAGE_RUNS ?? 30);
const SAMPLES = Number(process.env.BENCH_LIVE_SAMPLES ?? 30);
const SECRET = 'bench-console-secret-0123456789-0123456789';

const db = await benchDatabase('concord_bench_console');
const config = loadConfig({ ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log: benchLog });
const services = createServices({ runtime, log: benchLog, run: { sagaIntake: false } });
await runtime.start();
await services.start();
const app = createApp({ services, log: benchLog, jwtSecret: SECRET });
const exp = Math.floor(Date.now() / 1000) + 3600;
const op = signToken({ sub: 'bench-operator', role: 'operator', exp }, SECRET);
const vendor = signToken({ sub: 'bench-vendor', role: 'vendor', tenantId: 'vendor-1', exp }, SECRET);
const cookie = `concord_console=${op}`;

// seed: real relationships through the API, then copies of their rows up to ACTORS (what a page reads)
const ids: string[] = [];
for (let i = 0; i < SEEDS; i++) {
  const r = await app.request('/api/v1/vendor-partner-coordination/relationships', {
    method: 'POST',
    headers: { authorization: `Bearer ${vendor}`, 'content-type': 'application/json' },
    body: JSON.stringify({ vendorId: 'vendor-1', partnerId: `partner-${i}`, relationshipType: 'INTEGRATION' }),
  });
  const id = ((await r.json()) as { id: string }).id;
  ids.push(id);
  if (i % 2 === 0) await app.request(`/api/v1/vendor-partner-coordination/relationships/${id}/activate`, { method: 'POST', headers: { authorization: `Bearer ${vendor}` } });
}
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
const t0 = performance.now();
await admin.query(
  `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
   SELECT a.type, a.id || '-' || g, 'vendor-' || (g % 500), a.machine_version, a.version, a.state_value, a.status, a.attrs, a.snapshot,
          now() - g * interval '1 second', now() - g * interval '1 second'
     FROM actors a, generate_series(1, $1::int) g WHERE a.type = 'relationship'`,
  [Math.ceil((ACTORS - SEEDS) / SEEDS)],
);
await admin.query('VACUUM ANALYZE actors');
const { rows: n } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM actors');
console.log(`seeded ${n[0]!.n} actors in ${fmt((performance.now() - t0) / 1000, 1)} s`);

const pages: Array<[string, string]> = [
  ['search, no filter', '/console/actors'],
  ['search, type + status', '/console/actors?type=relationship&status=ACTIVE'],
  ['search, state path (half match)', '/console/actors?state=active.open'],
  ['search, state path matching none (worst case: whole table)', '/console/actors?state=terminated'],
  ['search, tenant', '/console/actors?tenant=vendor-7'],
  ['search, type + id prefix', `/console/actors?type=relationship&id=${ids[3]!.slice(0, 6)}`],
  ['search, id prefix alone', `/console/actors?id=${ids[3]!.slice(0, 6)}`],
  ['actor page (chart, journal, timers)', `/console/actors/relationship/${ids[0]}`],
  ['timers', '/console/timers'],
  ['dead letters', '/console/dead-letters'],
  ['integrations', '/console/integrations'],
];
const rows: Array<Array<string | number>> = [];
for (const [name, path] of pages) {
  const times: number[] = [];
  for (let i = 0; i < 5 + RUNS; i++) {
    const start = performance.now();
    const res = await app.request(path, { headers: { cookie } });
    await res.text();
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    if (i >= 5) times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  rows.push([name, fmt(percentile(times, 50), 1), fmt(percentile(times, 99), 1), fmt(times[times.length - 1]!, 1)]);
}
console.log(`\nConsole page server time, ${n[0]!.n} actors (ms, ${RUNS} runs each)\n`);
console.log(table(['page', 'p50', 'p99', 'max'], rows));

// live: the SSE stream of one actor's page over a real port
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((resolve) => server.once('listening', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const ref = { type: 'relationship', id: ids[0]! };
const start = await services.actors.view(ref.type, ref.id);
const res = await fetch(`${url}/console/actors/relationship/${ref.id}/live?after=${start.version}`, { headers: { cookie } });
const reader = res.body!.getReader();
const decoder = new TextDecoder();
let buffer = '';
async function nextJournal(version: number): Promise<number> {
  for (;;) {
    const i = buffer.indexOf(`data-version="${version}"`);
    if (i >= 0) {
      buffer = buffer.slice(i + 10);
      return performance.now();
    }
    const chunk = await reader.read();
    if (chunk.done) throw new Error('the live stream ended');
    buffer += decoder.decode(chunk.value, { stream: true });
  }
}
const fromCommit: number[] = [];
const fromRequest: number[] = [];
const cx = { principal: { sub: 'bench-operator', role: 'operator' as const, tenantId: null }, requestId: null, idempotency: null, reason: 'bench' };
for (let i = 0; i < SAMPLES; i++) {
  const v = await services.actors.view(ref.type, ref.id);
  const type = v.accepts.includes('relationship.suspend') ? 'relationship.suspend' : 'relationship.activate';
  const sent = performance.now();
  const arrived = nextJournal(v.version + 1);
  await services.operators.send({ ...cx, requestId: `bench-${i}-${Date.now()}` }, ref, { type });
  const committed = performance.now();
  const at = await arrived;
  fromCommit.push(at - committed);
  fromRequest.push(at - sent);
  await new Promise((r) => setTimeout(r, 100 + Math.random() * 100)); // spread samples over the poll phase
}
fromCommit.sort((a, b) => a - b);
fromRequest.sort((a, b) => a - b);
console.log(`\nLive journal update reaching an SSE client (ms, ${SAMPLES} events, poll every 50 ms)\n`);
console.log(
  table(
    ['measured from', 'p50', 'p99', 'max'],
    [
      ['the commit', fmt(percentile(fromCommit, 50), 1), fmt(percentile(fromCommit, 99), 1), fmt(fromCommit[fromCommit.length - 1]!, 1)],
      ['the send request', fmt(percentile(fromRequest, 50), 1), fmt(percentile(fromRequest, 99), 1), fmt(fromRequest[fromRequest.length - 1]!, 1)],
    ],
  ),
);
await reader.cancel().catch(() => undefined);
services.watch.stop();
server.close();
await admin.end();
await services.stop();
await runtime.stop();
await db.stop();
