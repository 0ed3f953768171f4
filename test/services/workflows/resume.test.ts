import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { spawnTs, type Child } from '../../helpers/child.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
let database: Database;
const children: Child[] = [];
beforeAll(async () => {
  database = await freshDatabase(4);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await database.close();
});

const workflow = async (id: string) => {
  const { rows } = await database.pool.query<{ status: string; steps: Array<{ stepNumber: number; status: string; retryCount: number; attempt: number }> }>(
    `SELECT status, snapshot->'context'->'steps' AS steps FROM actors WHERE type = 'workflow' AND id = $1`,
    [id],
  );
  return rows[0]!;
};

describe('a workflow survives the runtime being killed mid-run', () => {
  it('SIGKILL with a retry backoff pending and a connector call in flight: a new process resumes both to COMPLETED', async () => {
    const calls: string[] = [];
    const first = spawnTs(WORKER, { DATABASE_URL: database.url, WORKER_MODE: 'start' }, (l) => l.startsWith('called') && calls.push(l));
    children.push(first);
    await first.waitLine('failed wf-timer 1', 60_000);
    await first.waitLine('called wf-call 2', 60_000);
    // a connector's answer reaches its workflow through the outbox: kill once both have landed
    await waitFor('the failure and the first call recorded', async () => (await workflow('wf-timer')).steps[0]?.status === 'FAILED' && (await workflow('wf-call')).steps[1]?.status === 'IN_PROGRESS', 30_000, 20);
    await first.kill('SIGKILL');

    const timer = await workflow('wf-timer');
    expect(timer.status).toBe('IN_PROGRESS');
    expect(timer.steps[0]).toMatchObject({ status: 'FAILED', retryCount: 1 });
    const { rows: pending } = await database.pool.query(`SELECT event->>'type' AS type FROM timers WHERE actor_type = 'workflow' AND actor_id = 'wf-timer'`);
    expect(pending.map((r) => r.type)).toContain('workflow.step.retryDue');
    expect((await workflow('wf-call')).steps.map((s) => s.status)).toEqual(['COMPLETED', 'IN_PROGRESS', 'NOT_STARTED']);

    const resumed: string[] = [];
    const second = spawnTs(WORKER, { DATABASE_URL: database.url, WORKER_MODE: 'resume' }, (l) => l.startsWith('called') && resumed.push(l));
    children.push(second);
    await second.waitLine('ready', 60_000);
    await waitFor('both workflows completed', async () => (await workflow('wf-timer')).status === 'COMPLETED' && (await workflow('wf-call')).status === 'COMPLETED', 60_000, 100);
    const done = await workflow('wf-timer');
    expect(done.steps.map((s) => [s.status, s.retryCount])).toEqual([['COMPLETED', 1], ['COMPLETED', 0], ['COMPLETED', 0]]);
    // the durable timer fired in the new process; the interrupted call was carried out again there
    expect(resumed).toContain('called wf-timer 1');
    expect(resumed).toContain('called wf-call 2');
    expect(resumed.filter((l) => l === 'called wf-call 1')).toHaveLength(0);
    await second.kill('SIGTERM');
  }, 180_000);
});
