import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { ErrorCode } from '../../runtime/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { CommitExtension } from '../../runtime/store.js';
import { ledgerType } from '../fixtures/machines.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

let database: Database;
let rt: Runtime;

/** Extra rows of a transition, in a table the engine has never heard of. */
const notes: CommitExtension = {
  name: 'notes',
  sql: (rows) => `INSERT INTO notes (actor_id, version, text)
    SELECT g.id, g.expected + 1, r.text FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r(text text)`,
};

/** Claims a unique name with the transition; a name already claimed refuses the transition. */
const claims: CommitExtension = {
  name: 'claims',
  sql: (rows) => `INSERT INTO claims (name, actor_id) SELECT r.name, g.id FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r(name text)`,
  refuse: (rows) => `EXISTS (SELECT 1 FROM jsonb_to_recordset(${rows}) AS r(name text) JOIN claims c ON c.name = r.name)`,
};

beforeAll(async () => {
  database = await freshDatabase();
  await database.pool.query(`CREATE TABLE notes (actor_id text, version int, text text); CREATE TABLE claims (name text PRIMARY KEY, actor_id text)`);
  rt = await testRuntime(database, { run: { timers: false, relay: false } });
  rt.host.extendCommit(notes);
  rt.host.extendCommit(claims);
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

const rows = async (sql: string, params: unknown[] = []) => (await database.pool.query(sql, params)).rows;
const handle = () => rt.host.actor(ledgerType);

describe('commit extensions (extra rows of a transition)', () => {
  it('writes a transition’s extra rows in its own statement, rendered from its outcome, once per applied message', async () => {
    const ledger = handle();
    const extras = (t: { version: number; context: { entries: Array<string | number> } }) => ({ notes: [{ text: `v${t.version}:${t.context.entries.join(',')}` }] });
    await ledger.send('x1', { type: 'ledger.append', seq: 1 }, { messageId: 'n1', extras });
    await ledger.send('x1', { type: 'ledger.append', seq: 2 }, { messageId: 'n2', extras });
    const dup = await ledger.send('x1', { type: 'ledger.append', seq: 2 }, { messageId: 'n2', extras });
    expect(dup.duplicate).toBe(true);
    expect(await rows(`SELECT version, text FROM notes WHERE actor_id = 'x1' ORDER BY version`)).toEqual([
      { version: 1, text: 'v1:1' },
      { version: 2, text: 'v2:1,2' },
    ]);
  });

  it('writes nothing for a rejected event', async () => {
    const ledger = handle();
    await ledger.send('x2', { type: 'ledger.close' });
    const err = await ledger.send('x2', { type: 'ledger.append', seq: 1 }, { extras: () => ({ notes: [{ text: 'never' }] }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.EventRejected });
    expect(await rows(`SELECT * FROM notes WHERE actor_id = 'x2'`)).toEqual([]);
  });

  it('lets an extension refuse a transition: nothing of it is written, and the send fails with CONFLICT naming the extension', async () => {
    const ledger = handle();
    await ledger.send('x3', { type: 'ledger.append', seq: 1 }, { extras: () => ({ claims: [{ name: 'only-once' }] }) });
    const err = await ledger.send('x4', { type: 'ledger.append', seq: 1 }, { extras: () => ({ claims: [{ name: 'only-once' }], notes: [{ text: 'never' }] }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.Conflict, details: { refusedBy: 'claims' } });
    expect(await rows(`SELECT count(*)::int AS n FROM actors WHERE id = 'x4'`)).toEqual([{ n: 0 }]);
    expect(await rows(`SELECT count(*)::int AS n FROM journal WHERE actor_id = 'x4'`)).toEqual([{ n: 0 }]);
    expect(await rows(`SELECT * FROM notes WHERE actor_id = 'x4'`)).toEqual([]);
    expect(await rows(`SELECT actor_id FROM claims`)).toEqual([{ actor_id: 'x3' }]);
    // the refusal left the actor able to take events
    expect((await ledger.send('x4', { type: 'ledger.append', seq: 2 })).version).toBe(1);
  });

  it('refuses extra rows of an extension that is not registered, and an extension registered after the first commit', async () => {
    const err = await handle().send('x5', { type: 'ledger.append', seq: 1 }, { extras: () => ({ unknown: [{}] }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidConfig });
    expect(() => rt.host.extendCommit({ name: 'late', sql: () => 'SELECT 1' })).toThrow(/after the first commit/);
  });
});
