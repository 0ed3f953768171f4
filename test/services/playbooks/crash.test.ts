import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { spawnTs, type Child } from '../../helpers/child.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { countingServer, type CountingServer } from './kit.js';

const WORKER = fileURLToPath(new URL('./crash-worker.ts', import.meta.url));
let database: Database;
let server: CountingServer;
const children: Child[] = [];
beforeAll(async () => {
  database = await freshDatabase(4);
  server = await countingServer();
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await server.close();
  await database.close();
});

const execution = async (id: string) => {
  const { rows } = await database.pool.query<{ status: string; steps: Array<{ id: string; status: string; attempt: number }> }>(
    `SELECT snapshot->'context'->>'status' AS status, snapshot->'context'->'steps' AS steps FROM actors WHERE type = 'playbook-execution' AND id = $1`,
    [id],
  );
  return rows[0]!;
};

describe('a playbook execution survives kill -9', () => {
  it('killed with a step in flight: a new process resumes it; the finished step is not called again, the one in flight is repeated with the same idempotency key', async () => {
    let id = '';
    const first = spawnTs(WORKER, { DATABASE_URL: database.url, COUNTING_URL: server.url, WORKER_MODE: 'start' }, (l) => {
      if (l.startsWith('execution ')) id = l.slice('execution '.length);
    });
    children.push(first);
    await waitFor('step two in flight', () => server.count('/hangonce/crash-2') === 1, 60_000);
    await waitFor('the execution id', () => id !== '');
    expect((await execution(id)).steps.map((s) => s.status)).toEqual(['COMPLETED', 'IN_PROGRESS', 'NOT_STARTED']);
    await first.kill('SIGKILL');

    const second = spawnTs(WORKER, { DATABASE_URL: database.url, COUNTING_URL: server.url, WORKER_MODE: 'resume' });
    children.push(second);
    await second.waitLine('ready', 60_000);
    await waitFor('the execution to succeed', async () => (await execution(id)).status === 'succeeded', 60_000, 100);
    const done = await execution(id);
    expect(done.steps.map((s) => [s.id, s.status, s.attempt])).toEqual([
      ['one', 'COMPLETED', 1],
      ['two', 'COMPLETED', 1],
      ['three', 'COMPLETED', 1],
    ]);
    expect(server.count('/ok/crash-1')).toBe(1);
    expect(server.count('/ok/crash-3')).toBe(1);
    const keys = server.keys('/hangonce/crash-2');
    expect(keys).toHaveLength(2);
    expect(new Set(keys)).toEqual(new Set([`playbook-execution/${id}/two`]));
    await second.kill('SIGTERM');
  }, 180_000);
});
