/**
 * `npx tsx bench/fairness.ts`: fairness between tenants on the write path. The server runs in its
 * own process (DATABASE_URL's PostgreSQL, or an embedded one). Tenant B updates its relationships
 * (a persisted transition each) open loop at BENCH_FAIR_B_RATE (default 50/s); tenant A floods
 * updates of its own with BENCH_FAIR_A_CONNECTIONS (default 256) connections in a closed loop, far
 * more than the machine commits. B's latency is measured alone, then under A's flood: with group
 * commit first come, first served (COMMIT_FAIR=false) and fair across tenants, both without fair
 * admission (ADMISSION_LIMIT=0); with fair admission (ADMISSION_LIMIT, default 16: the default
 * setup); and with A under a quota as well. Target: B's p99 under the flood within 2x of alone.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { signToken } from '../http/auth/jwt.js';
import { benchDatabase, fmt, percentile, table } from './lib.js';
import { serveConcord, spawnServer } from './serve.js';
import { openLoop } from './open-loop.js';

const BASE = '/api/v1/vendor-partner-coordination';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const B_RATE = Number(process.env.BENCH_FAIR_B_RATE ?? 50);
const A_CONNECTIONS = Number(process.env.BENCH_FAIR_A_CONNECTIONS ?? 256);
const ADMISSION = process.env.ADMISSION_LIMIT ?? '16';

/** A closed loop of `connections` clients, each sending the next request when its last is answered, until `stop()`. */
function flood(port: number, auth: string, ids: string[], connections: number): { stop: () => Promise<{ sent: number; ok: number; refused: number }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let running = true;
  let sent = 0;
  let ok = 0;
  let refused = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const body = JSON.stringify({ metadata: { n: sent } });
      const id = ids[sent++ % ids.length]!;
      const req = http.request({ agent, host: '127.0.0.1', port, method: 'PUT', path: `${BASE}/relationships/${id}`, headers: { authorization: auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode! < 300) ok++;
          else if (res.statusCode === 429) refused++;
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end(body);
    });
  const loops = Array.from({ length: connections }, async () => {
    while (running) await one();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { sent, ok, refused };
    },
  };
}

async function main(): Promise<void> {
  const secret = randomBytes(32).toString('hex');
  const exp = Math.floor(Date.now() / 1000) + 3_600;
  const tokenOf = (tenantId: string) => `Bearer ${signToken({ sub: `bench@${tenantId}`, role: 'vendor', tenantId, exp }, secret)}`;
  const rows: Array<Array<string | number>> = [];
  const scenarios = [
    { name: 'B alone', fair: 'true', admission: ADMISSION, quotas: 'off', flood: false },
    { name: 'B while A floods', fair: 'false', admission: '0', quotas: 'off', flood: true },
    { name: 'B while A floods', fair: 'true', admission: '0', quotas: 'off', flood: true },
    { name: 'B while A floods', fair: 'true', admission: ADMISSION, quotas: 'off', flood: true },
    { name: 'B while A floods', fair: 'true', admission: ADMISSION, quotas: 'vendor-a=200/s:200', flood: true },
  ];
  // BENCH_FAIR_ONLY=0,3: only those scenarios (by index)
  const only = process.env.BENCH_FAIR_ONLY?.split(',').map(Number);
  {
    for (const [i, sc] of scenarios.entries()) {
      if (only && !only.includes(i)) continue;
      // a fresh database per scenario: the shared server may run without autovacuum, and one
      // scenario's dead rows would slow the next
      const db = await benchDatabase(`concord_bench_fair_${process.pid}_${i}`);
      const server = await spawnServer(fileURLToPath(import.meta.url), { ...process.env, DATABASE_URL: db.url, JWT_SECRET: secret, COMMIT_FAIR: sc.fair, ADMISSION_LIMIT: sc.admission, TENANT_QUOTAS: sc.quotas });
      try {
        const make = async (tenant: string): Promise<string> => {
          const res = await fetch(`http://127.0.0.1:${server.port}${BASE}/relationships`, {
            method: 'POST',
            headers: { authorization: tokenOf(tenant), 'content-type': 'application/json' },
            body: JSON.stringify({ vendorId: tenant, partnerId: `partner-${randomBytes(4).toString('hex')}`, relationshipType: 'RESELLER' }),
          });
          if (res.status === 429) {
            await new Promise((r) => setTimeout(r, 1_000 * Number(res.headers.get('retry-after') ?? 1)));
            return make(tenant);
          }
          if (res.status !== 201) throw new Error(`create relationship: ${res.status} ${await res.text()}`);
          return ((await res.json()) as { id: string }).id;
        };
        const aIds = await Promise.all(Array.from({ length: 400 }, () => make('vendor-a')));
        const bIds = await Promise.all(Array.from({ length: 20 }, () => make('vendor-b')));
        let n = 0;
        const tenantB = (seconds: number) =>
          openLoop({
            port: server.port,
            headers: { authorization: tokenOf('vendor-b'), 'content-type': 'application/json' },
            connections: 16,
            rate: B_RATE,
            seconds,
            next: () => ({ method: 'PUT', path: `${BASE}/relationships/${bIds[n++ % bIds.length]}`, body: JSON.stringify({ metadata: { n } }) }),
          });
        await tenantB(2); // warm-up
        const a = sc.flood ? flood(server.port, tokenOf('vendor-a'), aIds, A_CONNECTIONS) : undefined;
        if (a) await new Promise((r) => setTimeout(r, 1_000)); // the flood builds up first
        const b = await tenantB(SECONDS);
        const af = await a?.stop();
        rows.push([sc.name, sc.fair === 'true' ? 'fair' : 'first come', sc.admission === '0' ? 'off' : `fair, ${sc.admission} at once`, sc.quotas, B_RATE, fmt(percentile(b.latencies, 50)), fmt(percentile(b.latencies, 99)), b.non2xx, af ? fmt(af.ok / (SECONDS + 1), 0) : '-', af ? fmt(af.refused / (SECONDS + 1), 0) : '-']);
        process.stderr.write(`${sc.name} (${sc.fair}, admission ${sc.admission}, ${sc.quotas}) done\n`);
      } finally {
        await server.stop();
        await db.stop();
      }
    }
    console.log(`\nFairness on the write path: tenant B's updates while tenant A floods with ${A_CONNECTIONS} connections (open loop for B, ${SECONDS} s; latency ms)\n`);
    console.log(table(['scenario', 'group commit', 'admission', 'quotas', 'B offered/s', 'B p50', 'B p99', 'B non-2xx', 'A committed/s', 'A refused/s'], rows));
  }
}

if (process.argv.includes('--serve')) await serveConcord();
else await main();
