import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../runtime/clock.js';
import type { Database } from '../../../runtime/db.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { countingServer, operator, playbookSystem, TERMINAL, type CountingServer, type PlaybookSystem } from './kit.js';

/**
 * The cron trigger on the runtime's injected clock: timers are polled by hand (`pollOnce`) after
 * the clock moves, so each tick is exactly where the test puts it.
 */

let server: CountingServer;
const open: PlaybookSystem[] = [];
const dbs: Database[] = [];
beforeAll(async () => {
  server = await countingServer();
});
afterAll(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  for (const d of dbs) await d.close();
  await server.close();
});

async function system(database: Database, clock: ManualClock): Promise<PlaybookSystem> {
  const s = await playbookSystem(database, { baseUrl: server.url, clock, runTimers: false });
  open.push(s);
  return s;
}

async function stop(s: PlaybookSystem): Promise<void> {
  open.splice(open.indexOf(s), 1);
  await s.close();
}

const cronPlaybook = (name: string, cron: string, extra: string[] = []) =>
  [`name: ${name}`, 'triggers:', `  - cron: { ${cron} }`, 'steps:', '  - id: s', `    webhook: { path: /ok/${name} }`, ...extra].join('\n');

async function executions(database: Database, playbookId: string) {
  const { rows } = await database.pool.query<{ id: string; status: string; at: string | null }>(
    `SELECT id, status, snapshot->'context'->'trigger'->>'scheduledAt' AS at FROM actors WHERE type = 'playbook-execution' AND attrs->>'playbookId' = $1 ORDER BY 3`,
    [playbookId],
  );
  return rows;
}

/** Polls due timers until the tick calls have been answered (their answers re-arm the schedules). */
async function fire(s: PlaybookSystem[], database: Database, until: () => Promise<boolean>): Promise<void> {
  await waitFor(
    'the ticks to be carried out',
    async () => {
      await Promise.all(s.map((x) => x.runtime.timers.pollOnce()));
      return until();
    },
    20_000,
    50,
  );
  void database;
}

describe('the cron trigger', () => {
  it('across a restart: catch-up none skips the missed ticks, last runs the newest, all runs each within the window', async () => {
    const database = await freshDatabase(8);
    dbs.push(database);
    const clock = new ManualClock(Date.parse('2026-01-01T10:00:30Z'));
    const a = await system(database, clock);
    const ids: Record<string, string> = {};
    for (const policy of ['none', 'last', 'all']) {
      const pb = await a.services.playbooks.create({ principal: operator }, cronPlaybook(`catch-${policy}`, `schedule: "*/5 * * * *", timezone: UTC, overlap: allow, catchUp: ${policy}, catchUpWindow: PT1H`), 'yaml');
      ids[policy] = pb.id;
      expect((await a.services.playbooks.schedule(operator, pb.id))?.nextAt).toBe('2026-01-01T10:05:00.000Z');
    }
    await stop(a);
    // down from 10:00:30 to 10:22: the ticks of 10:05, 10:10, 10:15 and 10:20 were missed
    clock.set(Date.parse('2026-01-01T10:22:00Z'));
    const b = await system(database, clock);
    const next = async (p: string) => (await b.services.playbooks.schedule(operator, ids[p]!))?.nextAt;
    await fire([b], database, async () => (await next('none')) === '2026-01-01T10:25:00.000Z' && (await next('last')) === '2026-01-01T10:25:00.000Z' && (await next('all')) === '2026-01-01T10:25:00.000Z');
    expect((await executions(database, ids.none!)).map((e) => e.at)).toEqual([]);
    expect((await executions(database, ids.last!)).map((e) => e.at)).toEqual(['2026-01-01T10:20:00.000Z']);
    expect((await executions(database, ids.all!)).map((e) => e.at)).toEqual(['2026-01-01T10:05:00.000Z', '2026-01-01T10:10:00.000Z', '2026-01-01T10:15:00.000Z', '2026-01-01T10:20:00.000Z']);
    // the schedule goes on: the next tick, on time, runs whatever the policy
    clock.set(Date.parse('2026-01-01T10:25:01Z'));
    await fire([b], database, async () => (await next('none')) === '2026-01-01T10:30:00.000Z' && (await next('all')) === '2026-01-01T10:30:00.000Z' && (await next('last')) === '2026-01-01T10:30:00.000Z');
    expect((await executions(database, ids.none!)).map((e) => e.at)).toEqual(['2026-01-01T10:25:00.000Z']);
    await waitFor('the executions to succeed', async () => (await executions(database, ids.all!)).every((e) => e.status === 'succeeded'));
  }, 60_000);

  it('two processes over one database fire each tick once', async () => {
    const database = await freshDatabase(12);
    dbs.push(database);
    const clock = new ManualClock(Date.parse('2026-02-01T08:00:10Z'));
    const a = await system(database, clock);
    const b = await system(database, clock);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await a.services.playbooks.create({ principal: operator }, cronPlaybook(`twice-${i}`, 'schedule: "* * * * *", overlap: allow'), 'yaml')).id);
    for (const minute of [1, 2, 3]) {
      clock.set(Date.parse(`2026-02-01T08:0${minute}:01Z`));
      const expected = `2026-02-01T08:0${minute + 1}:00.000Z`;
      await fire([a, b], database, async () => {
        const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = 'playbook-schedule' AND attrs->>'nextAt' = $1`, [expected]);
        return rows[0]!.n === 20;
      });
    }
    for (const id of ids) expect((await executions(database, id)).map((e) => e.at)).toEqual(['2026-02-01T08:01:00.000Z', '2026-02-01T08:02:00.000Z', '2026-02-01T08:03:00.000Z']);
    // each execution's step called (a partition changing hands while a call runs may repeat it: with the same key)
    await waitFor('every execution to run its step', () => new Set(server.calls.filter((c) => c.path.startsWith('/ok/twice-')).map((c) => c.key)).size === 60);
    const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = 'playbook-execution'`);
    expect(rows[0]!.n).toBe(60);
  }, 60_000);

  it('overlap: skip drops a tick while an execution runs; queue holds it and starts it when the running one ends', async () => {
    const database = await freshDatabase(8);
    dbs.push(database);
    const clock = new ManualClock(Date.parse('2026-03-01T00:00:10Z'));
    const s = await system(database, clock);
    const hang = ['steps:', '  - id: s', '    webhook: { path: /hang/overlap }', '    timeout: PT1H'];
    const skip = await s.services.playbooks.create({ principal: operator }, ['name: ov-skip', 'triggers:', '  - cron: { schedule: "* * * * *", overlap: skip }', ...hang].join('\n'), 'yaml');
    const queue = await s.services.playbooks.create({ principal: operator }, ['name: ov-queue', 'triggers:', '  - cron: { schedule: "* * * * *", overlap: queue }', ...hang].join('\n'), 'yaml');
    for (const minute of [1, 2]) {
      clock.set(Date.parse(`2026-03-01T00:0${minute}:01Z`));
      const expected = `2026-03-01T00:0${minute + 1}:00.000Z`;
      await fire([s], database, async () => (await s.services.playbooks.schedule(operator, skip.id))?.nextAt === expected && (await s.services.playbooks.schedule(operator, queue.id))?.nextAt === expected);
    }
    expect((await executions(database, skip.id)).map((e) => e.status)).toEqual(['running']);
    expect((await executions(database, queue.id)).map((e) => e.status)).toEqual(['running', 'queued']);
    expect((await s.services.playbooks.schedule(operator, skip.id))?.skipped).toBe(1);
    await waitFor('both first executions calling', () => server.count('/hang/overlap') === 2);
    server.releaseHung();
    // the queued one starts when the first ends, and hangs in its turn
    await waitFor('the queued execution to start', () => server.count('/hang/overlap') === 3);
    server.releaseHung();
    await waitFor('all done', async () => (await executions(database, queue.id)).every((e) => TERMINAL.includes(e.status)));
    expect((await executions(database, queue.id)).map((e) => e.status)).toEqual(['succeeded', 'succeeded']);
  }, 60_000);
});
