/**
 * `npx tsx bench/http.ts`: the HTTP edge on a real port against Postgres (DATABASE_URL's server,
 * or an embedded one). Closed loop: autocannon with 50 connections (throughput at saturation).
 * Open loop (bench/open-loop.ts): requests at fixed offered rates (BENCH_GET_RATES,
 * BENCH_POST_RATES), latency counted from each request's due time, so a stalled server is not
 * hidden by coordinated omission. GET reads a relationship; POST runs persisted transitions
 * (activate/suspend). Request logs are on (info, written to /dev/null) so their cost is counted.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import pg from 'pg';
import { pino } from 'pino';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { actorTypes } from '../machines/index.js';
import { loadConfig } from '../runtime/config.js';
import { REDACT_PATHS } from '../runtime/logger.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';
import { openLoop, type OpenLoopOptions, type OpenLoopResult } from './open-loop.js';

interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; p90: number; average: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
type Cannon = (opts: Record<string, unknown>) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

const CONNECTIONS = 50;
const GET_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RELATIONSHIPS = 2_000;
const ROUNDS = 4; // activate, suspend, activate, suspend (saturated), then the open-loop rounds
/** open-loop rates (requests/s, evenly spaced): the latency a client sees at a given load */
const rates = (v: string | undefined, d: string) => (v ?? d).split(',').map(Number).filter((n) => n > 0);
const GET_RATES = rates(process.env.BENCH_GET_RATES, '1000,3000');
const POST_RATES = rates(process.env.BENCH_POST_RATES, '250,500,1000');

/** The server under test, in its own process so the load generator does not share its event loop. */
async function serveMode(): Promise<void> {
  const secret = process.env.JWT_SECRET!;
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
  const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log: benchLog });
  const services = createServices({ runtime, log: benchLog });
  await runtime.start();
  await services.start();
  const requestLog = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination('/dev/null'));
  const app = createApp({ services, log: requestLog, jwtSecret: secret });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
  // the parent asks for the server's CPU time around each scenario: CPU per request does not
  // depend on how loaded the machine is as much as latency does
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  process.on('SIGUSR2', () => {
    const u = process.cpuUsage();
    process.stdout.write(`CPU ${u.user + u.system}\n`);
    if (process.env.BENCH_LOOP_DELAY) process.stderr.write(`server event-loop delay since last: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} max ${(loopDelay.max / 1e6).toFixed(1)} ms\n`);
    loopDelay.reset();
  });
  process.once('SIGTERM', async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await services.stop();
    await runtime.stop();
    process.exit(0);
  });
}

/**
 * The floor of this machine for the same load: a bare node:http server, in its own process,
 * answering every request with a fixed relationship-sized JSON body (no routing, auth, logs or
 * database). What autocannon measures against it bounds what any server written on Node's http
 * module can reach here.
 */
async function bareMode(): Promise<void> {
  const http = await import('node:http');
  const body = JSON.stringify({ id: randomBytes(16).toString('hex'), filler: 'x'.repeat(600) });
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

/** This script again as a child in `mode`; resolves with the child, its output so far and its port. */
async function startChild(mode: '--serve' | '--bare', env: NodeJS.ProcessEnv = process.env, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', fileURLToPath(import.meta.url), mode], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const io = { out: '' };
  child.stdout!.on('data', (d: Buffer) => (io.out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const check = setInterval(() => {
      const m = /READY (\d+)/.exec(io.out);
      if (m) {
        clearInterval(check);
        resolve(Number(m[1]));
      }
    }, 20);
    child.once('exit', (code) => reject(new Error(`${mode} child exited with ${code}`)));
  });
  return { child, io, port };
}

async function bareFloor(headers: Record<string, string>): Promise<CannonResult> {
  const { child, port } = await startChild('--bare');
  const opts = { url: `http://127.0.0.1:${port}/api/v1/vendor-partner-coordination/relationships/x`, connections: CONNECTIONS, headers };
  await autocannon({ ...opts, duration: 2 });
  const r = await autocannon({ ...opts, duration: GET_SECONDS });
  child.kill('SIGTERM');
  await new Promise((r2) => child.once('exit', r2));
  return r;
}

/** `n` relationships created through the API, 50 at a time; answers their ids. */
export async function createRelationships(base: string, headers: Record<string, string>, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const res = await fetch(`${base}/relationships`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ vendorId: `vendor-${(i + j) % 100}`, partnerId: `partner-${i + j}`, relationshipType: 'INTEGRATION', agreementDetails: { commissionRate: 0.15 } }),
        });
        if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

/** POST path `n` of a sequence of legal transitions over `ids`: activate all, suspend all, activate all... */
export const transitionPath = (ids: string[], n: number) =>
  `/api/v1/vendor-partner-coordination/relationships/${ids[n % ids.length]}/${Math.floor(n / ids.length) % 2 === 0 ? 'activate' : 'suspend'}`;

async function main(): Promise<void> {
  const db = await benchDatabase(`concord_bench_http_${process.pid}`);
  const secret = randomBytes(32).toString('hex');
  const { child, io, port } = await startChild(
    '--serve',
    { ...process.env, DATABASE_URL: db.url, JWT_SECRET: secret },
    process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [],
  );
  /** The server process's CPU time so far, in microseconds. */
  const serverCpu = async (): Promise<number> => {
    const seen = (io.out.match(/CPU \d+/g) ?? []).length;
    child.kill('SIGUSR2');
    for (;;) {
      const all = io.out.match(/CPU (\d+)/g) ?? [];
      if (all.length > seen) return Number(all[all.length - 1]!.slice(4));
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const measured = async (run: () => Promise<CannonResult>) => {
    const before = await serverCpu();
    const r = await run();
    return { ...r, cpuUs: ((await serverCpu()) - before) / Math.max(1, r.requests.total) };
  };
  const measuredOpen = async (o: Omit<OpenLoopOptions, 'port' | 'headers' | 'connections' | 'seconds'>) => {
    const before = await serverCpu();
    const r = await openLoop({ ...o, port, headers, connections: CONNECTIONS, seconds: GET_SECONDS });
    return { ...r, cpuUs: ((await serverCpu()) - before) / Math.max(1, r.sent) };
  };
  const base = `http://127.0.0.1:${port}/api/v1/vendor-partner-coordination`;
  const token = signToken({ sub: 'bench', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  // relationships to work on, created through the API
  const ids = await createRelationships(base, headers, RELATIONSHIPS);

  // warm-up, then GET relationship round-robin over all of them
  let g = 0;
  const getOpts = (duration: number) => ({
    url: base,
    connections: CONNECTIONS,
    duration,
    headers,
    requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/api/v1/vendor-partner-coordination/relationships/${ids[g++ % ids.length]}` }) }],
  });
  const only = process.env.BENCH_ONLY; // 'get' or 'post': one saturated scenario, for profiling
  const short = (name: string, r: CannonResult & { cpuUs: number }) =>
    console.log(`${name}: ${fmt(r.requests.average, 0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${fmt(r.cpuUs, 0)} µs server CPU/req`);
  let get: CannonResult & { cpuUs: number } = undefined as never;
  const openRows: Array<Array<string | number>> = [];
  const openRow = (name: string, r: OpenLoopResult & { cpuUs: number }) => {
    const p = (q: number) => fmt(percentile(r.latencies, q));
    openRows.push([name, r.rate, fmt(r.achieved, 0), p(50), p(90), p(99), fmt(r.latencies.at(-1) ?? NaN), r.non2xx, r.errors, fmt(r.cpuUs, 0), fmt(r.maxSendLagMs, 1)]);
  };
  if (only !== 'post') {
    await autocannon(getOpts(2));
    get = await measured(() => autocannon(getOpts(GET_SECONDS)));
    if (only === 'get') {
      short('GET relationship', get);
      if (process.env.BENCH_FLOOR) short('floor: bare node:http', { ...(await bareFloor(headers)), cpuUs: NaN });
    }
    else
      for (const rate of GET_RATES) {
        const r = await measuredOpen({ rate, next: () => ({ method: 'GET', path: `/api/v1/vendor-partner-coordination/relationships/${ids[g++ % ids.length]}` }) });
        openRow('GET relationship', r);
      }
  }

  // persisted transitions: request k works on relationship k % N, round k / N decides the action,
  // so every request is a legal transition as long as rounds do not overtake each other
  let k = 0;
  const postOpts = (rounds: number) => ({
    url: base,
    connections: CONNECTIONS,
    amount: RELATIONSHIPS * rounds,
    headers,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: Record<string, unknown>) => {
          const n = k++;
          const action = Math.floor(n / RELATIONSHIPS) % 2 === 0 ? 'activate' : 'suspend';
          return { ...req, path: `/api/v1/vendor-partner-coordination/relationships/${ids[n % RELATIONSHIPS]}/${action}` };
        },
      },
    ],
  });
  const post = only === 'get' ? undefined : await measured(() => autocannon(postOpts(ROUNDS)));
  if (only) {
    if (post) short('POST activate/suspend', post);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await db.stop();
    return;
  }
  if (!post) throw new Error('unreachable: the POST scenario ran');
  // open loop: the same sequence of legal transitions, k carrying on where the closed loop ended
  for (const rate of POST_RATES) {
    const r = await measuredOpen({
      rate,
      next: () => {
        const n = k++;
        const action = Math.floor(n / RELATIONSHIPS) % 2 === 0 ? 'activate' : 'suspend';
        return { method: 'POST', path: `/api/v1/vendor-partner-coordination/relationships/${ids[n % RELATIONSHIPS]}/${action}` };
      },
    });
    openRow('POST activate/suspend', r);
  }
  const floor = await bareFloor(headers);

  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(
    table(
      ['scenario', 'connections', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'server CPU µs/req'],
      [
        ['GET relationship', CONNECTIONS, get.requests.total, fmt(get.requests.average, 0), fmt(get.latency.p50), fmt(get.latency.p90), fmt(get.latency.p99), fmt(get.latency.max), get.non2xx, get.errors + get.timeouts, fmt(get.cpuUs, 0)],
        ['POST activate/suspend', CONNECTIONS, post.requests.total, fmt(post.requests.average, 0), fmt(post.latency.p50), fmt(post.latency.p90), fmt(post.latency.p99), fmt(post.latency.max), post.non2xx, post.errors + post.timeouts, fmt(post.cpuUs, 0)],
        ['floor: bare node:http, fixed body', CONNECTIONS, floor.requests.total, fmt(floor.requests.average, 0), fmt(floor.latency.p50), fmt(floor.latency.p90), fmt(floor.latency.p99), fmt(floor.latency.max), floor.non2xx, floor.errors + floor.timeouts, '-'],
      ],
    ),
  );
  console.log(`\nopen loop (${CONNECTIONS} keep-alive connections, requests evenly spaced, latency from each request's due time):`);
  console.log(table(['scenario', 'offered req/s', 'completed req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'server CPU µs/req', 'generator lag max ms'], openRows));
  console.log(`\n${os.cpus().length} cores, load average ${load}; Postgres: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'}; server and load generator in separate processes`);
  const check = new pg.Client({ connectionString: db.url });
  await check.connect();
  const stored = await check.query(`SELECT status, count(*)::int AS n FROM actors WHERE type = 'relationship' GROUP BY status ORDER BY status`);
  await check.end();
  console.log(`relationships after the run: ${stored.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);

  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await db.stop();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  (process.argv.includes('--serve') ? serveMode() : process.argv.includes('--bare') ? bareMode() : main()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
