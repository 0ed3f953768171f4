/**
 * `npm run bench:saga`: order-fulfillment sagas end to end, the simulated services at zero latency.
 *
 * Black box over NATS (mode `blackbox`, the default; the figures issue 22 asks for): Concord runs
 * as `npm start` does (app/main.ts, its own process, DATABASE_URL and NATS_URL set, PostgreSQL and
 * NATS on loopback), the simulator runs in a second process and this script, the load generator,
 * in a third. Sagas are started with `POST /api/v1/workflows/order/start` and counted done when
 * their WorkflowCompletedEvent reaches a plain NATS subscription here. BENCH_SAGA_RUNS (default 3)
 * runs, each with a fresh database, streams and processes:
 *
 * 1. Latency at a fixed 100 sagas/s (open loop) for BENCH_SAGA_SECONDS (default 10), after
 *    BENCH_SAGA_WARMUP seconds (default 5) at the same rate, unmeasured: start -> completed p50/p99.
 *    The same subscription sees every command and answer on the service subjects, so each saga is
 *    timed hop by hop (start -> first command, command -> answer in the simulator, answer -> next
 *    command in Concord, last answer -> completed): the hops' p50/p99 and the slowest sagas'
 *    breakdowns are printed.
 * 2. Max sustained sagas/s: closed loop, BENCH_SAGA_INFLIGHT (default 64) sagas in flight (a new
 *    start as each completes) for BENCH_SAGA_MAX_SECONDS (default 10) after 2 s unmeasured.
 *
 * Mode `embedded` (BENCH_SAGA_MODES=embedded,blackbox) is the in-process comparison: runtime,
 * simulator and load generator in this process on the in-process bus; throughput is a burst of
 * BENCH_SAGAS (default 2,000) sagas, 64 starts in flight.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { signToken } from '../http/auth/jwt.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { sagaType } from '../machines/saga/index.js';
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { createServices, type Services } from '../services/index.js';
import { orderData } from '../services/saga/order.js';
import { workflowIdFor } from '../services/saga/plan.js';
import pg from 'pg';
import { BusLink, NatsServiceLink } from '../simulator/links.js';
import { ServiceSimulator } from '../simulator/services.js';
import { benchDatabase, benchLog, dropNatsStreams, fmt, percentile, table } from './lib.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SAGAS = Number(process.env.BENCH_SAGAS ?? 2_000);
const SECONDS = Number(process.env.BENCH_SAGA_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_SAGA_WARMUP ?? 5);
const RATE = Number(process.env.BENCH_SAGA_RATE ?? 100);

let orderSeq = 0;
const order = () => ({
  orderId: `bench-${process.pid}-${++orderSeq}`,
  customerId: 'c-1',
  items: [{ productId: 'p-1', quantity: 2, price: 29.99 }],
  paymentMethod: { type: 'CREDIT_CARD', token: 'tok_1' },
  shippingAddress: { street: '1 Main St', city: 'New York', state: 'NY', zipCode: '10001', country: 'US' },
});

interface Setup {
  runtime: Runtime;
  services: Services;
  completed: Map<string, number>;
  onComplete: Set<() => void>;
  stop(): Promise<void>;
}

async function setUp(mode: 'embedded' | 'nats'): Promise<Setup> {
  const db = await benchDatabase(`bench_saga_${mode}`);
  const prefix = mode === 'nats' ? `bs${randomBytes(3).toString('hex')}` : 'concord';
  const servicePrefix = mode === 'nats' ? `${prefix}svc` : 'svc';
  const config = loadConfig({
    ...process.env, // runtime knobs (OUTBOX_POLL_MS, COMMIT_CONCURRENCY, ...) pass through
    DATABASE_URL: db.url,
    LOG_LEVEL: 'silent',
    PARTITIONS: '8',
    DB_POOL_SIZE: '24',
    SAGA_SERVICE_PREFIX: servicePrefix,
    ...(mode === 'nats' ? { NATS_URL, NATS_PREFIX: prefix, NATS_SERVICE_SUBJECTS: `${servicePrefix}.>`, NATS_SERVICE_EVENTS: `${servicePrefix}.events.>` } : { NATS_URL: undefined }),
  });
  const runtime = await createRuntime({ config, registry: new Registry([sagaType]), log: benchLog });
  const services = createServices({ runtime, log: benchLog, run: { events: false } });
  await runtime.start();
  await services.start();
  const completed = new Map<string, number>();
  const onComplete = new Set<() => void>();
  const record = (workflowId: string) => {
    completed.set(workflowId, performance.now());
    for (const f of onComplete) f();
  };
  const subject = `${prefix}.events.WorkflowCompletedEvent`;
  let link;
  let unsubscribe: () => void;
  if (mode === 'nats') {
    const nc = runtime.nats!.link!.nc;
    const sub = nc.subscribe(subject, { callback: (_err, m) => record((m.json() as { workflowId: string }).workflowId) });
    unsubscribe = () => sub.unsubscribe();
    link = new NatsServiceLink(nc, { natsPrefix: prefix, servicePrefix, log: benchLog });
  } else {
    unsubscribe = runtime.bus.subscribe(subject, (m) => record((m.data as { workflowId: string }).workflowId));
    link = new BusLink(runtime.bus, servicePrefix, benchLog);
  }
  const sim = new ServiceSimulator({ link, servicePrefix, log: benchLog, latencyMs: 0 });
  await sim.start();
  return {
    runtime,
    services,
    completed,
    onComplete,
    async stop() {
      unsubscribe();
      await sim.stop();
      await services.stop();
      await runtime.stop();
      if (mode === 'nats') await dropNatsStreams(NATS_URL, prefix);
      await db.stop();
    },
  };
}

function waitAll(s: Setup, ids: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (ids.every((id) => s.completed.has(id))) {
        s.onComplete.delete(check);
        clearTimeout(t);
        resolve();
      }
    };
    const t = setTimeout(() => {
      s.onComplete.delete(check);
      reject(new Error(`${ids.filter((id) => !s.completed.has(id)).length} of ${ids.length} sagas did not complete in ${timeoutMs} ms`));
    }, timeoutMs);
    s.onComplete.add(check);
    check();
  });
}

async function throughput(s: Setup): Promise<{ sagasPerSec: number; ms: number }> {
  const sagas = s.services.sagas;
  const ids: string[] = [];
  const t0 = performance.now();
  const queue = Array.from({ length: SAGAS }, () => order());
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let o = queue.pop(); o; o = queue.pop()) ids.push((await sagas.start('ORDER_FULFILLMENT', orderData(o))).workflowId);
    }),
  );
  await waitAll(s, ids, 300_000);
  const last = Math.max(...ids.map((id) => s.completed.get(id)!));
  return { sagasPerSec: SAGAS / ((last - t0) / 1000), ms: last - t0 };
}

async function latency(s: Setup, seconds: number): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const sagas = s.services.sagas;
  const started = new Map<string, number>();
  const total = RATE * seconds;
  const t0 = performance.now();
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const at = performance.now();
    pending.push(sagas.start('ORDER_FULFILLMENT', orderData(order())).then((r) => void started.set(r.workflowId, at)));
  }
  await Promise.all(pending);
  const ids = [...started.keys()];
  await waitAll(s, ids, 120_000);
  const lat = ids.map((id) => s.completed.get(id)! - started.get(id)!).sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1]!, n: lat.length };
}

// ---- black box: three processes ----

const RUNS = Number(process.env.BENCH_SAGA_RUNS ?? 3);
const INFLIGHT = Number(process.env.BENCH_SAGA_INFLIGHT ?? 64);
const MAX_SECONDS = Number(process.env.BENCH_SAGA_MAX_SECONDS ?? 10);
/** Which runs time each saga hop by hop (`first`, `all`, `none`): the tracing subscription costs CPU. */
const HOPS = process.env.BENCH_SAGA_HOPS ?? 'first';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Names shared by the three processes of a run. */
function names(prefix: string) {
  const svc = `${prefix}svc`;
  return {
    NATS_URL,
    NATS_PREFIX: prefix,
    SAGA_SERVICE_PREFIX: svc,
    NATS_SERVICE_SUBJECTS: `${svc}.>`,
    NATS_SERVICE_EVENTS: `${svc}.events.>`,
    NATS_SERVICE_ROUTER_SKIP: `${svc}.events.OrderCreatedEvent`,
  };
}

/** `--simulator`: the four services over NATS in their own process, until SIGTERM. */
async function simulatorProcess(): Promise<void> {
  const nc = await connect({ servers: NATS_URL, name: 'saga-bench-simulator' });
  const natsPrefix = process.env.NATS_PREFIX!;
  const servicePrefix = process.env.SAGA_SERVICE_PREFIX!;
  const link = new NatsServiceLink(nc, { natsPrefix, servicePrefix, log: benchLog });
  const sim = new ServiceSimulator({ link, servicePrefix, log: benchLog, latencyMs: 0 });
  await sim.start();
  process.stdout.write('READY 0\n');
  process.once('SIGTERM', async () => {
    await sim.stop();
    await nc.close();
    process.exit(0);
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function child(args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): { proc: ChildProcess; stop: () => Promise<void> } {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  // BENCH_SERVER_LOG: the children's output (e.g. `--trace-gc` in BENCH_SERVER_NODE_ARGS) goes to that file
  if (process.env.BENCH_SERVER_LOG) proc.stdout!.pipe(createWriteStream(process.env.BENCH_SERVER_LOG, { flags: 'a' }));
  else proc.stdout!.resume();
  return {
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One saga as this process saw it: when it was started, and each message about it, in arrival order. */
interface Seen {
  at: number;
  hops: Array<[label: string, at: number]>;
  done?: number;
}

/** CPU seconds used so far: by a process (user + system, /proc/<pid>/stat), or by the whole machine (/proc/stat, busy jiffies). */
/** CPU seconds used so far by every live process whose command name is `comm` (postgres: the server and its backends). */
function cpuOfAll(comm: string): number {
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm) sum += cpuOf(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

function cpuOf(pid: number | 'machine'): number {
  const tick = 100; // USER_HZ
  if (pid === 'machine') {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / tick; // all but idle and iowait
  }
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / tick;
  } catch {
    return NaN;
  }
}

interface BlackBox {
  /** CPU seconds so far: Concord, the simulator, this process, the whole machine. */
  cpu(): { concord: number; simulator: number; load: number; postgres: number; nats: number; machine: number };
  start(): Promise<string>;
  sagas: Map<string, Seen>;
  onDone: Set<() => void>;
  stop(): Promise<void>;
}

async function blackBoxUp(hops: boolean): Promise<BlackBox> {
  const prefix = `bs${randomBytes(3).toString('hex')}`;
  const n = names(prefix);
  const db = await benchDatabase(`bench_saga_bb_${process.pid}`);
  const secret = randomBytes(32).toString('hex');
  const port = await freePort();
  const server = child(['app/main.ts'], {
    ...process.env,
    ...n,
    DATABASE_URL: db.url,
    JWT_SECRET: secret,
    CREDENTIALS_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  }, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])]);
  const base = `http://127.0.0.1:${port}`;
  let sim: ReturnType<typeof child> | undefined;
  let nc: NatsConnection | undefined;
  try {
    await until('concord', async () => (await fetch(`${base}/health`)).status < 500);
    sim = child([fileURLToPath(import.meta.url), '--simulator'], { ...process.env, ...n });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      sim!.proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY')) resolve();
      });
      sim!.proc.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    });
    nc = await connect({ servers: NATS_URL, name: 'saga-bench-load' });
  } catch (err) {
    await sim?.stop();
    await server.stop();
    throw err;
  }
  const sagas = new Map<string, Seen>();
  const onDone = new Set<() => void>();
  const decoder = new TextDecoder();
  const svc = n.SAGA_SERVICE_PREFIX;
  // every command (svc.<service>.<command>) and answer (svc.events.<Event>) about a saga: its hops
  // (this subscription costs the load generator and nats-server some CPU: BENCH_SAGA_HOPS)
  if (hops) nc.subscribe(`${svc}.>`, {
    callback: (_e, m) => {
      const at = performance.now();
      const wf = (JSON.parse(decoder.decode(m.data)) as { workflowId?: string }).workflowId;
      const s = wf ? sagas.get(wf) : undefined;
      if (s) s.hops.push([m.subject.slice(svc.length + 1), at]);
    },
  });
  nc.subscribe(`${prefix}.events.WorkflowCompletedEvent`, {
    callback: (_e, m) => {
      const at = performance.now();
      const s = sagas.get((m.json() as { workflowId: string }).workflowId);
      if (s && s.done === undefined) {
        s.done = at;
        for (const f of onDone) f();
      }
    },
  });
  await nc.flush();
  const token = signToken({ sub: 'bench', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  // `npm start`'s process is the one node child of the server spawn (tsx's loader runs in it)
  const serverPid = server.proc.pid!;
  const simPid = sim!.proc.pid!;
  return {
    sagas,
    onDone,
    cpu: () => ({ concord: cpuOf(serverPid), simulator: cpuOf(simPid), load: cpuOf(process.pid), postgres: cpuOfAll('postgres'), nats: cpuOfAll('nats-server'), machine: cpuOf('machine') }),
    async start() {
      const o = order();
      const wf = workflowIdFor('ORDER_FULFILLMENT', o.orderId);
      sagas.set(wf, { at: performance.now(), hops: [] });
      // node:http with kept-alive connections: fetch (undici) costs the load generator several times the CPU per request
      const body = JSON.stringify(o);
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(`${base}/api/v1/workflows/order/start`, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
      if (status !== 201) throw new Error(`start answered ${status}: ${text}`);
      return wf;
    },
    async stop() {
      await nc!.drain().catch(() => undefined);
      await sim!.stop();
      await server.stop();
      await dropNatsStreams(NATS_URL, prefix);
      if (process.env.DATABASE_URL) {
        const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${new URL(db.url).pathname.slice(1)} WITH (FORCE)`).catch(() => undefined);
        await admin.end();
      }
      await db.stop();
    },
  };
}

function waitDone(b: BlackBox, ids: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (ids.every((id) => b.sagas.get(id)!.done !== undefined)) {
        b.onDone.delete(check);
        clearTimeout(t);
        resolve();
      }
    };
    const t = setTimeout(() => {
      b.onDone.delete(check);
      reject(new Error(`${ids.filter((id) => b.sagas.get(id)!.done === undefined).length} of ${ids.length} sagas did not complete in ${timeoutMs} ms`));
    }, timeoutMs);
    b.onDone.add(check);
    check();
  });
}

/** Open loop at RATE for `seconds`: the ids started. */
async function fixedRate(b: BlackBox, seconds: number): Promise<string[]> {
  const total = RATE * seconds;
  const t0 = performance.now();
  const starts: Array<Promise<string>> = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    starts.push(b.start());
  }
  const ids = await Promise.all(starts);
  await waitDone(b, ids, 120_000);
  return ids;
}

/** Closed loop, INFLIGHT sagas at a time: completions per second over `seconds` after 2 s unmeasured. */
async function maxRate(b: BlackBox, seconds: number): Promise<{ rate: number; p99: number }> {
  const t0 = performance.now();
  const from = t0 + 2_000;
  const end = from + seconds * 1000;
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (performance.now() < end) {
        const id = await b.start();
        ids.push(id);
        await waitDone(b, [id], 60_000);
      }
    }),
  );
  const counted = ids.map((id) => b.sagas.get(id)!).filter((s) => s.done! >= from && s.done! < end);
  const lat = counted.map((s) => s.done! - s.at).sort((x, y) => x - y);
  return { rate: counted.length / seconds, p99: percentile(lat, 99) };
}

/** Hop labels: a command's and an answer's subject tell which hop a message ends. */
function hopsOf(s: Seen): Array<{ hop: string; ms: number }> {
  const out: Array<{ hop: string; ms: number }> = [];
  let prev = s.at;
  let prevKind = 'start';
  for (const [subject, at] of s.hops) {
    const answer = subject.startsWith('events.');
    out.push({ hop: answer ? 'command -> answer (simulator)' : prevKind === 'start' ? 'start -> first command (Concord)' : 'answer -> next command (Concord)', ms: at - prev });
    prev = at;
    prevKind = answer ? 'answer' : 'command';
  }
  if (s.done !== undefined) out.push({ hop: 'last answer -> completed (Concord)', ms: s.done - prev });
  return out;
}

function hopTable(list: Seen[]): string {
  const by = new Map<string, number[]>();
  for (const s of list) for (const h of hopsOf(s)) by.set(h.hop, [...(by.get(h.hop) ?? []), h.ms]);
  const rows = [...by].map(([hop, v]) => {
    v.sort((x, y) => x - y);
    return [hop, v.length, fmt(percentile(v, 50), 1), fmt(percentile(v, 99), 1), fmt(v.at(-1)!, 1)];
  });
  return table(['hop', 'n', 'p50 ms', 'p99 ms', 'max ms'], rows);
}

const short = (subject: string) => subject.replace(/^events\./, '').replace(/Event$/, '');

const cpuRows: Array<Array<string | number>> = [];

async function blackBoxRun(run: number): Promise<Array<string | number>> {
  const b = await blackBoxUp(HOPS === 'all' || (HOPS === 'first' && run === 1));
  try {
    if (WARMUP_SECONDS > 0) await fixedRate(b, WARMUP_SECONDS);
    const c0 = b.cpu();
    const ids = await fixedRate(b, SECONDS);
    const c1 = b.cpu();
    const us = (k: keyof typeof c0) => fmt(((c1[k] - c0[k]) * 1e6) / ids.length, 0);
    const named = (['concord', 'simulator', 'load', 'postgres', 'nats'] as const).reduce((a, k) => a + c1[k] - c0[k], 0);
    const other = ((c1.machine - c0.machine - named) * 1e6) / ids.length;
    cpuRows.push([run, us('concord'), us('postgres'), us('nats'), us('simulator'), us('load'), fmt(other, 0), us('machine'), `${fmt(((c1.machine - c0.machine) / SECONDS / os.cpus().length) * 100, 0)}%`]);
    const list = ids.map((id) => b.sagas.get(id)!);
    const lat = list.map((s) => s.done! - s.at).sort((x, y) => x - y);
    const traced = list.some((x) => x.hops.length > 0);
    const slow = [...list].sort((x, y) => y.done! - y.at - (x.done! - x.at)).slice(0, 3);
    if (traced) console.log(`\nrun ${run}: hops at ${RATE} sagas/s (${list.length} sagas; the load generator's clock)\n`);
    if (traced) console.log(hopTable(list));
    if (traced) console.log(`\nrun ${run}: the slowest sagas, ms per hop (the message that ends it)`);
    for (const s of traced ? slow : []) {
      const hs = hopsOf(s);
      const labels = [...s.hops.map(([subj]) => short(subj)), 'Completed'];
      console.log(`  ${fmt(s.done! - s.at, 1)} ms: ${hs.map((h, i) => `${labels[i]} +${fmt(h.ms, 1)}`).join(', ')}`);
    }
    const max = MAX_SECONDS > 0 ? await maxRate(b, MAX_SECONDS) : { rate: NaN, p99: NaN };
    return [run, `${RATE}/s x ${SECONDS} s (after ${WARMUP_SECONDS} s)`, fmt(percentile(lat, 50), 1), fmt(percentile(lat, 99), 1), fmt(lat.at(-1)!, 1), fmt(max.rate, 0), fmt(max.p99, 1)];
  } finally {
    await b.stop();
  }
}

async function main(): Promise<void> {
  const load = os.loadavg()[0]!;
  const modes = (process.env.BENCH_SAGA_MODES ?? 'blackbox').split(',');
  if (modes.includes('embedded')) {
    const rows: Array<Array<string | number>> = [];
    const s = await setUp('embedded');
    try {
      if (WARMUP_SECONDS > 0) await latency(s, WARMUP_SECONDS);
      const lat = await latency(s, SECONDS);
      const tp = await throughput(s);
      rows.push(['embedded (one process)', SAGAS, fmt(tp.sagasPerSec, 0), `${RATE}/s x ${SECONDS} s (after ${WARMUP_SECONDS} s)`, fmt(lat.p50, 1), fmt(lat.p99, 1), fmt(lat.max, 1)]);
    } finally {
      await s.stop();
    }
    console.log(`\nSagas in process (ORDER_FULFILLMENT: 4 steps, simulator at 0 ms latency)\n`);
    console.log(table(['transport', 'sagas', 'sagas/s (max)', 'fixed rate', 'p50 ms', 'p99 ms', 'max ms'], rows));
  }
  if (modes.includes('blackbox')) {
    const rows: Array<Array<string | number>> = [];
    for (let r = 1; r <= RUNS; r++) rows.push(await blackBoxRun(r));
    const col = (i: number) => rows.map((r) => Number(r[i]));
    const range = (i: number) => `${fmt(Math.min(...col(i)), i === 5 ? 0 : 1)}-${fmt(Math.max(...col(i)), i === 5 ? 0 : 1)}`;
    console.log(
      `\nSagas over NATS, black box (npm start with NATS_URL; simulator and load generator in their own processes; ORDER_FULFILLMENT: 4 steps, 8 JetStream hops, simulator at 0 ms); ` +
        `${os.cpus().length} cores, load average ${fmt(load, 2)} at start, ${fmt(os.loadavg()[0]!, 2)} at end\n`,
    );
    console.log(table(['run', 'fixed rate', 'p50 ms', 'p99 ms', 'max ms', `max sagas/s (${INFLIGHT} in flight)`, 'p99 ms there'], [...rows, ['range', '', range(2), range(3), range(4), range(5), range(6)]]));
    console.log(`\nCPU per saga at ${RATE} sagas/s, µs (from /proc: PostgreSQL is every postgres process, backends of anyone else's databases included; "rest": anything else on the machine)\n`);
    console.log(table(['run', 'Concord', 'PostgreSQL', 'nats-server', 'simulator', 'load generator', 'rest', 'machine', 'machine busy'], cpuRows));
  }
}

if (process.argv.includes('--simulator')) {
  simulatorProcess().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
