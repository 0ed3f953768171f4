import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort } from '../../../runtime/db.js';
import { findNatsServer } from '../../helpers/nats.js';

/** One node of a cluster this test started: its own client port, route port and store. */
export interface ClusterNode {
  name: string;
  port: number;
  url: string;
  /** The nats-server process id while it runs (signals go to it, not to its watchdog). */
  pid: number | undefined;
  running: boolean;
}

/**
 * Three (or n) `nats-server` processes clustered on loopback, JetStream on, each with its own
 * store directory under one temporary folder. Faults: `kill` (SIGKILL), `pause` (SIGSTOP, then
 * SIGCONT), `restart` (SIGTERM and start again), `start` (after a kill).
 */
export class NatsCluster {
  readonly nodes: ClusterNode[] = [];
  readonly #procs = new Map<string, ChildProcess>();
  readonly #routePorts: number[] = [];

  private constructor(
    private readonly dir: string,
    private readonly binary: string,
  ) {}

  /** The client URL list, comma-separated, as NATS_URL takes it. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  static async start(size = 3, binary = findNatsServer()): Promise<NatsCluster> {
    if (!binary) throw new Error('nats-server not found');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'concord-cluster-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const c = new NatsCluster(dir, binary);
    for (let i = 0; i < size; i++) {
      const port = await freePort();
      c.nodes.push({ name: `n${i + 1}`, port, url: `nats://127.0.0.1:${port}`, pid: undefined, running: false });
      c.#routePorts.push(await freePort());
    }
    for (const [i, n] of c.nodes.entries()) {
      const routes = c.#routePorts.filter((_, j) => j !== i).map((p) => `"nats-route://127.0.0.1:${p}"`);
      await mkdir(path.join(dir, n.name), { recursive: true });
      await writeFile(
        path.join(dir, `${n.name}.conf`),
        [
          `server_name: ${n.name}`,
          `listen: "127.0.0.1:${n.port}"`,
          `jetstream { store_dir: "${path.join(dir, n.name)}", max_memory_store: 64MB, max_file_store: 1GB }`,
          `cluster { name: concord-faults, listen: "127.0.0.1:${c.#routePorts[i]}", routes: [${routes.join(', ')}] }`,
          '',
        ].join('\n'),
      );
    }
    await Promise.all(c.nodes.map((n) => c.startNode(n.name)));
    await c.waitForMeta();
    return c;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Starts a stopped node and waits for its client port. */
  async startNode(name: string): Promise<void> {
    const n = this.node(name);
    if (n.running) return;
    // a watchdog shell runs the server and ends it when this test process is gone; it prints the
    // server's pid so faults signal the server itself
    const script = `"$0" "$@" & srv=$!; echo $srv; trap 'kill $srv; wait $srv; exit 0' TERM; while kill -0 ${process.pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; kill -CONT $srv 2>/dev/null; kill $srv 2>/dev/null; wait $srv`;
    const child = spawn('sh', ['-c', script, this.binary, '-c', path.join(this.dir, `${n.name}.conf`)], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.#procs.set(name, child);
    n.pid = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim().split('\n')[0])));
      child.once('exit', (code) => reject(new Error(`nats-server ${name} exited (${code}) at start`)));
    });
    n.running = true;
    child.once('exit', () => {
      if (this.#procs.get(name) === child) {
        this.#procs.delete(name);
        n.running = false;
        n.pid = undefined;
      }
    });
    await until(`nats-server ${name} on port ${n.port}`, () => portOpen(n.port), 15_000);
  }

  /** SIGKILL: the node dies without a word; its store stays for the restart. */
  async kill(name: string): Promise<void> {
    const n = this.node(name);
    const child = this.#procs.get(name);
    if (!n.pid || !child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(n.pid, 'SIGKILL');
    await exited;
  }

  /** SIGSTOP for `ms`, then SIGCONT: the node is alive to the kernel and silent to its peers and clients. */
  async pause(name: string, ms: number): Promise<void> {
    const n = this.node(name);
    if (!n.pid) return;
    process.kill(n.pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      if (n.pid) process.kill(n.pid, 'SIGCONT');
    }
  }

  /** SIGTERM (a clean stop: JetStream flushes its store), then start again. */
  async restart(name: string): Promise<void> {
    await this.stopNode(name);
    await this.startNode(name);
  }

  async stopNode(name: string): Promise<void> {
    const n = this.node(name);
    const child = this.#procs.get(name);
    if (!n.pid || !child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(n.pid, 'SIGCONT');
    process.kill(n.pid, 'SIGTERM');
    await exited;
  }

  /** Waits until JetStream answers through the cluster (a meta leader is elected). */
  async waitForMeta(timeoutMs = 30_000): Promise<void> {
    await until(
      'a JetStream meta leader',
      async () => {
        const nc = await connect({ servers: this.url, timeout: 2_000 }).catch(() => null);
        if (!nc) return false;
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2_000 });
          const info = await jsm.getAccountInfo();
          return info !== undefined;
        } catch {
          return false;
        } finally {
          await nc.close().catch(() => undefined);
        }
      },
      timeoutMs,
    );
  }

  async dispose(): Promise<void> {
    for (const n of this.nodes) await this.stopNode(n.name).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
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
    await new Promise((r) => setTimeout(r, 100));
  }
}
