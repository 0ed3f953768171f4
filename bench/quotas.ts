/**
 * `npx tsx bench/quotas.ts`: fairness at the edge under per-tenant quotas. The server runs in
 * its own process (DATABASE_URL's PostgreSQL, or an embedded one); the load generator sends
 * open loop (bench/open-loop.ts, latency from each request's due time):
 *   1. tenant B alone: GET of one of its relationships at BENCH_QUOTA_B_RATE (default 200/s);
 *   2. the same while tenant A offers ten times its quota (A's quota 200/s, so 2,000/s);
 *   3. the same flood with quotas off, to show what the quota buys.
 * The target: B's p99 in (2) within 2x of (1); A answered 429 beyond its quota.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { signToken } from '../http/auth/jwt.js';
import { benchDatabase, fmt, percentile, table } from './lib.js';
import { serveConcord, spawnServer } from './serve.js';
import { openLoop } from './open-loop.js';

const BASE = '/api/v1/vendor-partner-coordination';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const B_RATE = Number(process.env.BENCH_QUOTA_B_RATE ?? 200);
const A_QUOTA = 200;
const A_RATE = A_QUOTA * 10;

async function main(): Promise<void> {
  const db = await benchDatabase(`concord_bench_quotas_${process.pid}`);
  const secret = randomBytes(32).toString('hex');
  const exp = Math.floor(Date.now() / 1000) + 3_600;
  const tokenOf = (tenantId: string) => `Bearer ${signToken({ sub: `bench@${tenantId}`, role: 'vendor', tenantId, exp }, secret)}`;
  const rows: Array<Array<string | number>> = [];
  try {
    for (const quotas of ['on', 'off'] as const) {
      const server = await spawnServer(fileURLToPath(import.meta.url), { ...process.env, DATABASE_URL: db.url, JWT_SECRET: secret, TENANT_QUOTAS: quotas === 'on' ? `default=${A_QUOTA}/s:${A_QUOTA}` : 'off' });
      try {
        const make = async (tenant: string) => {
          const res = await fetch(`http://127.0.0.1:${server.port}${BASE}/relationships`, {
            method: 'POST',
            headers: { authorization: tokenOf(tenant), 'content-type': 'application/json' },
            body: JSON.stringify({ vendorId: tenant, partnerId: `partner-of-${tenant}`, relationshipType: 'RESELLER' }),
          });
          if (res.status !== 201) throw new Error(`create relationship: ${res.status} ${await res.text()}`);
          return ((await res.json()) as { id: string }).id;
        };
        const [aId, bId] = [await make('vendor-a'), await make('vendor-b')];
        const tenantB = () => openLoop({ port: server.port, headers: { authorization: tokenOf('vendor-b') }, connections: 16, rate: B_RATE, seconds: SECONDS, next: () => ({ method: 'GET', path: `${BASE}/relationships/${bId}` }) });
        const tenantA = () => openLoop({ port: server.port, headers: { authorization: tokenOf('vendor-a') }, connections: 32, rate: A_RATE, seconds: SECONDS, next: () => ({ method: 'GET', path: `${BASE}/relationships/${aId}` }) });
        await openLoop({ port: server.port, headers: { authorization: tokenOf('vendor-b') }, connections: 16, rate: B_RATE, seconds: 2, next: () => ({ method: 'GET', path: `${BASE}/relationships/${bId}` }) }); // warm-up
        if (quotas === 'on') {
          const alone = await tenantB();
          rows.push(['B alone', 'on', B_RATE, fmt(percentile(alone.latencies, 50)), fmt(percentile(alone.latencies, 99)), alone.non2xx, '-', '-', '-']);
        }
        const [b, a] = await Promise.all([tenantB(), tenantA()]);
        // A's answers came over its whole run (its own backlog included): served per second of that
        const aSeconds = (a.sent / a.achieved) || SECONDS;
        const aOk = a.sent - a.non2xx - a.errors;
        rows.push([`B while A offers ${A_RATE}/s`, quotas, B_RATE, fmt(percentile(b.latencies, 50)), fmt(percentile(b.latencies, 99)), b.non2xx, fmt(aOk / aSeconds, 0), fmt(a.non2xx / aSeconds, 0), fmt(percentile(a.latencies, 99))]);
        process.stderr.write(`quotas ${quotas} done\n`);
      } finally {
        await server.stop();
      }
    }
    console.log(`\nPer-tenant quotas: tenant B's reads while tenant A floods (A's quota ${A_QUOTA}/s; open loop, ${SECONDS} s each; latency ms)\n`);
    console.log(table(['scenario', 'quotas', 'B offered/s', 'B p50', 'B p99', 'B non-2xx', 'A served/s (over its run)', 'A refused/s', 'A p99 (from due time)'], rows));
    console.log('\nA sends over 32 connections: under its quota its requests wait for their tokens, so its own backlog grows (its p99) while B is untouched.');
  } finally {
    await db.stop();
  }
}

if (process.argv.includes('--serve')) await serveConcord();
else await main();
