import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort } from '../../runtime/db.js';

/** A nats-server this test started: its own port and store directory; stop and start it again. */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it and removes its store. */
  dispose(): Promise<void>;
}

export function findNatsServer(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  for (const p of ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server']) if (existsSync(p)) return p;
  return null;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts a JetStream-enabled nats-server on a free port with a temporary store directory. */
export async function startNatsServer(binary = findNatsServer()): Promise<NatsServer> {
  if (!binary) throw new Error('nats-server not found on PATH');
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(os.tmpdir(), 'concord-nats-'));
  let child: ChildProcess | undefined;
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async start() {
      if (child) return;
      // a watchdog shell runs the server and stops it when this test process is gone, however
      // it ended (vitest may kill a worker without an 'exit' event)
      const script = `"$0" "$@" & srv=$!; trap 'kill $srv; wait $srv; exit 0' TERM; while kill -0 ${process.pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; kill $srv 2>/dev/null; wait $srv`;
      const c = spawn('sh', ['-c', script, binary, '-js', '-sd', storeDir, '-p', String(port), '-a', '127.0.0.1'], { stdio: 'ignore' });
      child = c;
      c.once('exit', () => {
        if (child === c) child = undefined;
      });
      await until(`nats-server on port ${port}`, () => portOpen(port), 15_000);
    },
    async stop() {
      const c = child;
      if (!c) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      await exited;
      child = undefined;
      await until(`port ${port} to close`, async () => !(await portOpen(port)), 15_000);
    },
    async dispose() {
      await server.stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  process.once('exit', () => rmSync(storeDir, { recursive: true, force: true }));
  await server.start();
  return server;
}

let shared: Promise<{ url: string; dispose(): Promise<void> } | null> | undefined;

/**
 * The NATS the suites run against: NATS_URL when set (CI: a missing server is a failure);
 * otherwise a nats-server from PATH on a free port with a temporary store; otherwise null,
 * with a loud message, and the NATS suites skip.
 */
export function natsForTests(): Promise<{ url: string; dispose(): Promise<void> } | null> {
  shared ??= (async () => {
    const url = process.env.NATS_URL;
    if (url) {
      await checkReachable(url);
      return { url, dispose: async () => undefined };
    }
    if (process.env.CI === 'true') throw new Error('CI=true but NATS_URL is not set: the NATS suites need a real nats-server');
    const bin = findNatsServer();
    if (!bin) {
      console.warn('\n**********\n[concord tests] NATS_URL is not set and no nats-server is on PATH: SKIPPING the NATS suites\n**********\n');
      return null;
    }
    const s = await startNatsServer(bin);
    console.warn(`[concord tests] NATS_URL not set: using nats-server ${bin} on port ${s.port}`);
    return { url: s.url, dispose: () => s.dispose() };
  })();
  return shared;
}

async function checkReachable(url: string): Promise<void> {
  const nc = await connect({ servers: url, timeout: 5_000 }).catch((err: Error) => {
    throw new Error(`NATS_URL=${url} is not reachable: ${err.message}`);
  });
  try {
    await jetstreamManager(nc); // fails when JetStream is off
  } finally {
    await nc.close();
  }
}

/** A subject/stream prefix unique to one test file. */
export function testPrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

/** Deletes the streams of a test prefix. */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const up = prefix.toUpperCase();
    for await (const s of jsm.streams.list()) if (s.config.name.startsWith(`${up}_`)) await jsm.streams.delete(s.config.name).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

/** Environment for a runtime using the NATS transport under `prefix`. */
export function natsEnv(url: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: url,
    NATS_PREFIX: prefix,
    NATS_SERVICE_SUBJECTS: `${prefix}svc.>`,
    NATS_SERVICE_EVENTS: `${prefix}svc.events.>`,
    NATS_SERVICE_ROUTER_SKIP: `${prefix}svc.events.OrderCreatedEvent`,
    // the services' own subjects (sagas, svc.inventory.changed) live under the same prefix as their stream
    SAGA_SERVICE_PREFIX: `${prefix}svc`,
    NATS_ACK_WAIT_MS: '3000',
    NATS_RETRY_BACKOFF_MS: '50',
    ...extra,
  };
}
