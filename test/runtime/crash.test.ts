import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { freshDatabase } from '../helpers/db.js';
import { spawnTs, WORKER, type Child } from '../helpers/child.js';

let database: Database;
const children: Child[] = [];
beforeAll(async () => {
  database = await freshDatabase(4);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await database.close();
});

const entriesOf = async (prefix: string) => {
  const { rows } = await database.pool.query<{ id: string; entries: Array<number | string>; version: number }>(
    `SELECT id, snapshot->'context'->'entries' AS entries, version FROM actors WHERE type = 'ledger' AND id LIKE $1`,
    [`${prefix}%`],
  );
  return new Map(rows.map((r) => [r.id, r]));
};

describe('crash safety (a runtime process killed with SIGKILL)', () => {
  it('applies every resolved send exactly once and in order per actor across 20+ random SIGKILLs', async () => {
    const ACTORS = 500;
    const COUNT = 20;
    const acked = new Array<number>(ACTORS).fill(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-crash-'));
    const resumeFile = path.join(dir, 'resume.json');
    let kills = 0;
    let appliedUnacked = 0;
    let finished = false;
    for (let run = 0; !finished; run++) {
      writeFileSync(resumeFile, JSON.stringify(acked.map((n) => n + 1)));
      let ackedThisRun = 0;
      const killAt = 100 + Math.floor(Math.random() * 400); // acks into the run: sends are surely in flight then
      let reached: () => void = () => undefined;
      const reachedKillPoint = new Promise<void>((r) => (reached = r));
      const child = spawnTs(WORKER, { DATABASE_URL: database.url, WORKER_MODE: 'load', ACTORS: String(ACTORS), COUNT: String(COUNT), ACTOR_PREFIX: 'c', RESUME_FILE: resumeFile }, (line) => {
        if (line.startsWith('ack ')) {
          const [, a, seq] = line.split(' ');
          // every ack is the next seq for its actor: the worker resumes after the last ack
          expect(Number(seq)).toBe(acked[Number(a)]! + 1);
          acked[Number(a)] = Number(seq);
          if (++ackedThisRun === killAt) reached();
        }
      });
      children.push(child);
      await child.waitLine('ready', 60_000);
      if (kills < 22) {
        // kill at a random moment while sends are in flight
        await Promise.race([reachedKillPoint, child.exited]);
        await child.kill('SIGKILL');
        kills++;
        // applied but never acknowledged to the sender: the next run re-sends these, and the inbox must absorb them
        const { rows } = await database.pool.query(`SELECT coalesce(sum(version), 0)::int AS n FROM actors WHERE id LIKE 'c%'`);
        appliedUnacked += rows[0].n - acked.reduce((x, y) => x + y, 0);
      } else {
        await child.waitLine('done', 120_000);
        expect(await child.exited).toBe(0);
        finished = true;
      }
    }
    expect(kills).toBeGreaterThanOrEqual(20);
    expect(appliedUnacked).toBeGreaterThan(0); // the kills really landed between commit and ack
    const actors = await entriesOf('c');
    expect(actors.size).toBe(ACTORS);
    for (let a = 0; a < ACTORS; a++) {
      const row = actors.get(`c${a}`)!;
      // exactly once and in order: 1..COUNT, no gap, no duplicate
      expect(row.entries).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
      expect(row.version).toBe(COUNT);
    }
    const { rows } = await database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id LIKE 'c%'`);
    expect(rows[0].n).toBe(ACTORS * COUNT);
  }, 600_000);

  it('two runtime processes sending to the same 50 actors at once lose no update and apply nothing twice', async () => {
    const common = { DATABASE_URL: database.url, WORKER_MODE: 'contend', ACTORS: '50', COUNT: '40', ACTOR_PREFIX: 'two' };
    const a = spawnTs(WORKER, { ...common, WORKER_NAME: 'p1' });
    const b = spawnTs(WORKER, { ...common, WORKER_NAME: 'p2' });
    children.push(a, b);
    await Promise.all([a.waitLine('done', 120_000), b.waitLine('done', 120_000)]);
    const actors = await entriesOf('two');
    expect(actors.size).toBe(50);
    for (const [, row] of actors) {
      const by = (src: string) => row.entries.filter((e) => String(e).startsWith(`${src}:`)).map((e) => Number(String(e).split(':')[1]));
      expect(by('p1')).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(by('p2')).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      // the shared ids were sent by both processes and applied once
      expect(by('shared')).toEqual([10, 20, 30, 40]);
      expect(row.entries).toHaveLength(84);
      expect(row.version).toBe(84);
    }
  }, 180_000);

  it('a 2 s timer whose process was killed at 1 s fires once, within 1 s of the restart at 3 s', async () => {
    const common = { DATABASE_URL: database.url, ACTOR_PREFIX: 'tm', ARM_MS: '2000' };
    const first = spawnTs(WORKER, { ...common, WORKER_MODE: 'arm' });
    children.push(first);
    await first.waitLine('armed', 60_000);
    const armedAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() - armedAt)));
    await first.kill('SIGKILL');
    const { rows: pending } = await database.pool.query(`SELECT count(*)::int AS n FROM timers WHERE actor_id = 'tm0'`);
    expect(pending[0].n).toBe(1);
    await new Promise((r) => setTimeout(r, 3000 - (Date.now() - armedAt)));
    const second = spawnTs(WORKER, { ...common, WORKER_MODE: 'idle' });
    children.push(second);
    await second.waitLine('ready', 60_000);
    const readyAt = Date.now();
    let firedAt = 0;
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      const { rows } = await database.pool.query(`SELECT at FROM journal WHERE actor_id = 'tm0' AND kind = 'timer'`);
      if (rows.length) {
        firedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(firedAt).toBeGreaterThan(0);
    expect(firedAt - readyAt).toBeLessThan(1000);
    // once: give it more poll cycles, then count
    await new Promise((r) => setTimeout(r, 500));
    const { rows: fired } = await database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id = 'tm0' AND kind = 'timer'`);
    expect(fired[0].n).toBe(1);
    const { rows: snap } = await database.pool.query(`SELECT snapshot->'context'->>'fired' AS fired, state_value FROM actors WHERE id = 'tm0'`);
    expect(snap[0]).toEqual({ fired: '1', state_value: 'open' });
    await second.kill('SIGTERM');
  }, 120_000);
});
