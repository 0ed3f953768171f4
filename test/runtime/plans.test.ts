import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import { loadActor } from '../../runtime/store.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

let database: Database;
beforeAll(async () => {
  database = await freshDatabase(2);
});
afterAll(async () => {
  await database.close();
});

/**
 * Prepared statements keep their generic plan until something invalidates it (an ANALYZE, DDL).
 * A deployment starts with empty tables, and a server with autovacuum off (or before its first
 * autoanalyze) never replans: the plans made against empty tables must stay point lookups.
 */
describe('plans made while the tables are empty', () => {
  it('the actor load stays a primary-key lookup after the table fills', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      // the plan cache settles on a generic plan after five executions
      for (let i = 0; i < 8; i++) expect(await loadActor(client, { type: 'plan', id: `p${i}` })).toBeNull();
      await client.query(`INSERT INTO actors (type, id, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
        SELECT 'plan', 'p' || g, 1, 1, '"running"', 'RUNNING', '{}', '{"value":"running","context":{}}', now(), now() FROM generate_series(1, 5000) g`);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE concord_load_actor('plan', 'p42')`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index Scan using actors_pkey on actors a/);
      expect(await loadActor(client, { type: 'plan', id: 'p42' })).toMatchObject({ version: 1, status: 'RUNNING' });
    } finally {
      await client.end();
    }
  });

  it('a runtime says at start when the server runs without autovacuum, and only then', async () => {
    const { rows } = await database.pool.query<{ on: boolean }>(`SELECT current_setting('autovacuum')::boolean AS on`);
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const rt = await testRuntime(database, { log: createLogger('info', out), run: { timers: false, relay: false } });
    await rt.start();
    await rt.stop();
    const warned = lines.map((l) => JSON.parse(l) as { level: number; setting?: string }).filter((l) => l.level === 40 && l.setting === 'autovacuum');
    expect(warned).toHaveLength(rows[0]!.on ? 0 : 1);
  });
});
