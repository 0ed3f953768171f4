import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

/**
 * The ops_* views are an interface operators script against in psql: their columns (names,
 * order, types) are pinned here. Add columns at the end; never rename or drop one.
 */
const PINNED: Record<string, string[]> = {
  ops_actors: [
    'type text', 'id text', 'tenant text', 'status text', 'state_value jsonb', 'version bigint', 'machine_version integer', 'attrs jsonb',
    'paused boolean', 'paused_at timestamp with time zone', 'paused_by text', 'paused_reason text', 'forked_from jsonb',
    'created_at timestamp with time zone', 'updated_at timestamp with time zone',
  ],
  ops_journal: [
    'actor_type text', 'actor_id text', 'version bigint', 'kind text', 'event_type text', 'event jsonb', 'target_path text', 'state_value jsonb',
    'message_id text', 'at timestamp with time zone', 'trace_id text',
  ],
  ops_timers: [
    'id bigint', 'actor_type text', 'actor_id text', 'timer_key text', 'event_type text', 'event jsonb', 'target_path text',
    'due_at timestamp with time zone', 'claimed_until timestamp with time zone', 'actor_paused boolean',
  ],
  ops_outbox_lag: ['partition integer', 'pending integer', 'oldest_at timestamp with time zone', 'lag interval', 'max_attempts integer', 'retrying integer'],
  ops_dead_letters: [
    'id bigint', 'origin text', 'reason text', 'subject text', 'actor_type text', 'actor_id text', 'message_id text', 'error text', 'attempts integer',
    'payload jsonb', 'created_at timestamp with time zone', 'replayed_at timestamp with time zone', 'open boolean',
  ],
  ops_inbox: ['actor_type text', 'actor_id text', 'message_id text', 'version bigint', 'created_at timestamp with time zone'],
};

let database: Database;
beforeAll(async () => {
  database = await freshDatabase(2);
});
afterAll(async () => database.close());

describe('SQL views for operators', () => {
  it('keep their pinned columns', async () => {
    const { rows } = await database.pool.query<{ table_name: string; col: string }>(
      `SELECT table_name, column_name || ' ' || data_type AS col FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name LIKE 'ops\\_%' ORDER BY table_name, ordinal_position`,
    );
    const actual: Record<string, string[]> = {};
    for (const r of rows) (actual[r.table_name] ??= []).push(r.col);
    expect(actual).toEqual(PINNED);
  });

  it('answer from the runtime tables', async () => {
    const rt = await testRuntime(database, { run: { timers: false, relay: false } });
    await rt.start();
    try {
      await rt.host.send({ type: 'ledger', id: 'v1' }, { type: 'ledger.append', seq: 1 }, { messageId: 'm-1' });
      await rt.host.send({ type: 'ledger', id: 'v1' }, { type: 'ledger.arm', ms: 60_000 });
      const one = async (sql: string) => (await database.pool.query(sql)).rows;
      expect(await one(`SELECT type, id, status, paused, version FROM ops_actors`)).toEqual([{ type: 'ledger', id: 'v1', status: 'ARMED', paused: false, version: 2 }]);
      expect(await one(`SELECT version, event_type FROM ops_journal ORDER BY version`)).toEqual([
        { version: 1, event_type: 'ledger.append' },
        { version: 2, event_type: 'ledger.arm' },
      ]);
      expect(await one(`SELECT actor_id, event_type, actor_paused FROM ops_timers`)).toEqual([{ actor_id: 'v1', event_type: 'xstate.after.armDelay.ledger.armed', actor_paused: false }]);
      expect(await one(`SELECT pending FROM ops_outbox_lag`)).toEqual([{ pending: 1 }]); // the append's publish, not relayed (relay off)
      expect(await one(`SELECT message_id, version FROM ops_inbox`)).toEqual([{ message_id: 'm-1', version: 1 }]);
      expect(await one(`SELECT count(*)::int AS n FROM ops_dead_letters WHERE open`)).toEqual([{ n: 0 }]);
    } finally {
      await rt.stop();
    }
  });
});
