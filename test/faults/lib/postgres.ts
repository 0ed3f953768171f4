import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../../runtime/db.js';

const run = promisify(execFile);

/** The newest PostgreSQL server binaries of the machine (`/usr/lib/postgresql/<v>/bin`), or null. */
export function findPgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : null;
}

/**
 * A PostgreSQL server of the test's own (never the shared one): `initdb` in a temporary folder,
 * `pg_ctl` on a free loopback port, trust authentication. As root the server runs as the
 * `postgres` user (PostgreSQL refuses root), which owns the folder.
 */
export class OwnPostgres {
  #running = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  /** The URL of database `db` on this server. */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  get running(): boolean {
    return this.#running;
  }

  static async start(bin = findPgBin()): Promise<OwnPostgres> {
    if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'concord-own-pg-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const s = new OwnPostgres(dir, await freePort(), bin);
    if (process.getuid?.() === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await chmod(dir, 0o700);
    await s.#as(path.join(bin, 'initdb'), ['-D', path.join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await s.startServer();
    return s;
  }

  /** Runs a PostgreSQL program, as the `postgres` user when this process is root. */
  async #as(program: string, args: string[]): Promise<void> {
    if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', program, ...args], { cwd: '/' });
    else await run(program, args);
  }

  async startServer(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    await this.#as(path.join(this.bin, 'pg_ctl'), ['-D', path.join(this.dir, 'data'), '-o', opts, '-l', path.join(this.dir, 'log'), '-w', '-t', '60', 'start']);
    this.#running = true;
  }

  /** `immediate`: as a crash (no checkpoint, every connection cut); `fast`: a clean stop that also cuts connections. */
  async stopServer(mode: 'immediate' | 'fast' = 'fast'): Promise<void> {
    this.#running = false;
    await this.#as(path.join(this.bin, 'pg_ctl'), ['-D', path.join(this.dir, 'data'), '-m', mode, '-w', '-t', '60', 'stop']);
  }

  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  async dispose(): Promise<void> {
    if (this.#running) await this.stopServer('immediate').catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
