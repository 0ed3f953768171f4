import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { ErrorCode } from '../../runtime/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import { auditExtension, auditExtras } from '../../services/common/audit.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

let database: Database;
let rt: Runtime;
const published: string[] = [];

beforeAll(async () => {
  database = await freshDatabase();
  // a real commit failure: Postgres itself refuses the transaction's journal row for this actor
  await database.pool.query(`
    CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.actor_id = 'boom' AND NEW.version > 1 THEN RAISE EXCEPTION 'disk on fire'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_boom BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_boom();`);
  rt = await testRuntime(database);
  rt.host.extendCommit(auditExtension); // the audit record rides the commit as extra rows of the transition
  rt.bus.subscribe('test.ledger.>', (m) => void published.push(`${m.subject}:${JSON.stringify(m.data)}`));
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

describe('a transition whose commit fails', () => {
  it('publishes nothing and leaves the snapshot unchanged', async () => {
    const ref = { type: 'ledger', id: 'boom' };
    await rt.host.send(ref, { type: 'ledger.append', seq: 1 });
    await waitFor('first publish', () => published.length === 1);
    const err = await rt.host.send(ref, { type: 'ledger.append', seq: 2 }, { messageId: 'm2' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.CommitFailed });
    const view = await rt.host.get(ref);
    expect(view.version).toBe(1);
    expect(view.context).toMatchObject({ entries: [1] });
    // (the first event's row may still be there: the relay deletes a published batch with its next read)
    const { rows } = await database.pool.query(`SELECT count(*)::int AS n FROM outbox WHERE source_id = 'boom' AND payload->>'seq' = '2'`);
    expect(rows[0].n).toBe(0);
    const { rows: inbox } = await database.pool.query(`SELECT count(*)::int AS n FROM inbox WHERE actor_id = 'boom' AND message_id = 'm2'`);
    expect(inbox[0].n).toBe(0);
    // the in-memory copy was not advanced either: a later successful event builds on version 1
    await database.pool.query('DROP TRIGGER refuse_boom ON journal');
    const r = await rt.host.send(ref, { type: 'ledger.append', seq: 3 });
    expect(r.version).toBe(2);
    expect(r.context).toMatchObject({ entries: [1, 3] });
    await waitFor('second publish', () => published.length === 2);
    expect(published).toEqual(['test.ledger.boom:{"seq":1}', 'test.ledger.boom:{"seq":3}']);
  });

  it('writes the audit record carried by a transition in its own statement: none when the commit fails, at once when it succeeds', async () => {
    await database.pool.query(`DROP TRIGGER IF EXISTS refuse_boom ON journal; CREATE TRIGGER refuse_boom BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_boom()`);
    const audit = (t: { version: number }) => ({
      at: new Date().toISOString(),
      subject: 'tester',
      role: 'operator',
      tenant: null,
      action: 'ledger.append',
      objectType: 'ledger',
      objectId: 'audited',
      before: null,
      after: { version: t.version },
      requestId: null,
      dedupeKey: `ledger/audited@${t.version}`,
    });
    const count = async () => (await database.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE object_id = 'audited'`)).rows[0].n as number;
    // 'audited' commits with its record; the trigger refuses every later version of 'boom'
    const ok = await rt.host.send({ type: 'ledger', id: 'audited' }, { type: 'ledger.append', seq: 1 }, { extras: (t) => auditExtras(audit(t)) });
    expect(await count()).toBe(1);
    const { rows } = await database.pool.query(`SELECT after, dedupe_key FROM audit_log WHERE object_id = 'audited'`);
    expect(rows[0]).toEqual({ after: { version: ok.version }, dedupe_key: 'ledger/audited@1' });
    const boomVersion = (await rt.host.get({ type: 'ledger', id: 'boom' })).version;
    const err = await rt.host
      .send({ type: 'ledger', id: 'boom' }, { type: 'ledger.append', seq: 9 }, { extras: (t) => auditExtras({ ...audit(t), objectId: 'boom-audit', dedupeKey: `ledger/boom@${t.version}` }) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.CommitFailed });
    expect((await database.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE object_id = 'boom-audit'`)).rows[0].n).toBe(0);
    expect((await rt.host.get({ type: 'ledger', id: 'boom' })).version).toBe(boomVersion);
  });

  it('an actor kept started between transitions is not advanced by a transition whose commit failed', async () => {
    await database.pool.query(`DROP TRIGGER IF EXISTS refuse_boom ON journal`);
    const ref = { type: 'ledger', id: 'boom-live' };
    for (let seq = 1; seq <= 3; seq++) await rt.host.send(ref, { type: 'ledger.append', seq }); // kept started from the second on
    await database.pool.query(`
      CREATE OR REPLACE FUNCTION refuse_live() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.actor_id = 'boom-live' THEN RAISE EXCEPTION 'disk on fire'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_live BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_live();`);
    const err = await rt.host.send(ref, { type: 'ledger.append', seq: 4 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.CommitFailed });
    await database.pool.query('DROP TRIGGER refuse_live ON journal');
    const r = await rt.host.send(ref, { type: 'ledger.append', seq: 5 });
    expect(r.version).toBe(4);
    expect(r.context).toMatchObject({ entries: [1, 2, 3, 5] });
  });

  it('a failure in one transition of a group commit does not fail its neighbours', async () => {
    await database.pool.query(`DROP TRIGGER IF EXISTS refuse_boom ON journal; CREATE TRIGGER refuse_boom BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_boom()`);
    const sends = [rt.host.send({ type: 'ledger', id: 'boom' }, { type: 'ledger.append', seq: 4 })];
    for (let i = 0; i < 40; i++) sends.push(rt.host.send({ type: 'ledger', id: `n${i}` }, { type: 'ledger.append', seq: 1 }));
    const results = await Promise.allSettled(sends);
    expect(results[0]!.status).toBe('rejected');
    expect(results.slice(1).every((r) => r.status === 'fulfilled')).toBe(true);
  });
});
