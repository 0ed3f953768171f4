import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.js';
import type { Database } from '../../runtime/db.js';
import { ErrorCode, isConcordError } from '../../runtime/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';
import type { LedgerContext } from '../fixtures/machines.js';

let database: Database;
let rt: Runtime;
const clock = new ManualClock();

beforeAll(async () => {
  database = await freshDatabase();
  rt = await testRuntime(database, { clock, run: { timers: false, relay: false } });
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

const count = async (sql: string, params: unknown[] = []) => Number((await database.pool.query(sql, params)).rows[0].n);

describe('actor host', () => {
  it('creates an actor on its first event, persists it, and reads it back from Postgres', async () => {
    const ref = { type: 'ledger', id: 'a1' };
    const r = await rt.host.send(ref, { type: 'ledger.append', seq: 1 }, { messageId: 'm1' });
    expect(r).toMatchObject({ version: 1, value: 'open', status: 'OPEN', duplicate: false });
    const view = await rt.host.get(ref);
    expect(view.version).toBe(1);
    expect((view.context as unknown as LedgerContext).entries).toEqual([1]);
    expect(view.accepts).toEqual(['ledger.append', 'ledger.arm', 'ledger.close', 'ledger.ping']);
    expect(await count(`SELECT count(*) n FROM outbox WHERE source_id = 'a1'`)).toBe(1);
    expect(await count(`SELECT count(*) n FROM journal WHERE actor_id = 'a1'`)).toBe(1);
  });

  it('applies the same message id delivered 5 times exactly once, answering as the first time', async () => {
    const ref = { type: 'ledger', id: 'dup' };
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await rt.host.send(ref, { type: 'ledger.append', seq: 7 }, { messageId: 'same' }));
    // and five concurrent deliveries of another id
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => rt.host.send(ref, { type: 'ledger.append', seq: 8 }, { messageId: 'same-2' })));
    expect(answers.map((a) => a.duplicate)).toEqual([false, true, true, true, true]);
    expect(answers.every((a) => a.version === 1)).toBe(true);
    expect(concurrent.filter((a) => !a.duplicate)).toHaveLength(1);
    const view = await rt.host.get(ref);
    expect((view.context as unknown as LedgerContext).entries).toEqual([7, 8]);
    expect(await count(`SELECT count(*) n FROM outbox WHERE source_id = 'dup'`)).toBe(2);
  });

  it('recognizes a duplicate from the inbox in a process that never saw the first delivery', async () => {
    const ref = { type: 'ledger', id: 'dup-elsewhere' };
    await rt.host.send(ref, { type: 'ledger.append', seq: 1 }, { messageId: 'once' });
    const other = await testRuntime(database, { clock, run: { timers: false, relay: false } });
    try {
      const again = await other.host.send(ref, { type: 'ledger.append', seq: 1 }, { messageId: 'once' });
      expect(again).toMatchObject({ duplicate: true, version: 1, value: 'open' });
      expect(other.host.stats.duplicates).toBe(1);
      expect((await other.host.get(ref)).version).toBe(1);
    } finally {
      await other.stop();
    }
  });

  it('expectNew: an actor that exists after all is read after the refused insert, and the event is decided on its stored state', async () => {
    const created = await rt.host.send({ type: 'ledger', id: 'en-new' }, { type: 'ledger.append', seq: 1 }, { messageId: 'en-1', expectNew: true });
    expect(created).toMatchObject({ version: 1, duplicate: false });
    await rt.host.send({ type: 'ledger', id: 'en-closed' }, { type: 'ledger.close' }, { messageId: 'en-c' });
    // another process has none of them cached: it guesses "new" and is wrong each time
    const other = await testRuntime(database, { clock, run: { timers: false, relay: false } });
    try {
      const moved = await other.host.send({ type: 'ledger', id: 'en-new' }, { type: 'ledger.append', seq: 2 }, { messageId: 'en-2', expectNew: true });
      expect(moved).toMatchObject({ version: 2, duplicate: false });
      expect(((await other.host.get({ type: 'ledger', id: 'en-new' })).context as unknown as LedgerContext).entries).toEqual([1, 2]);
      const again = await other.host.send({ type: 'ledger', id: 'en-new' }, { type: 'ledger.append', seq: 1 }, { messageId: 'en-1', expectNew: true });
      expect(again).toMatchObject({ duplicate: true, version: 1 });
      // the initial state would accept it; the stored (closed) one does not
      const refused = await other.host.send({ type: 'ledger', id: 'en-closed' }, { type: 'ledger.append', seq: 3 }, { messageId: 'en-3', expectNew: true }).catch((e: unknown) => e);
      expect(isConcordError(refused, ErrorCode.EventRejected)).toBe(true);
      expect(await count(`SELECT count(*) n FROM journal WHERE actor_id = 'en-closed'`)).toBe(1);
      expect(other.host.stats.conflicts).toBeGreaterThanOrEqual(1);
    } finally {
      await other.stop();
    }
  });

  it('two processes alternating on one actor, each keeping it started between transitions, lose and reorder nothing', async () => {
    const ref = { type: 'ledger', id: 'live-two' };
    const other = await testRuntime(database, { clock, run: { timers: false, relay: false } });
    try {
      // each host touches the actor twice in a row (so both keep it started), then the other one
      // moves it on behind their backs: every started copy is stale by then and must not be used
      for (let seq = 1; seq <= 20; seq++) {
        const host = Math.floor((seq - 1) / 2) % 2 === 0 ? rt.host : other.host;
        const r = await host.send(ref, { type: 'ledger.append', seq }, { messageId: `live-two-${seq}` });
        expect(r.version).toBe(seq);
      }
      const view = await rt.host.get(ref);
      expect((view.context as unknown as LedgerContext).entries).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(rt.host.stats.conflicts + other.host.stats.conflicts).toBeGreaterThan(0);
    } finally {
      await other.stop();
    }
  });

  it('refuses an event the current state does not accept before any write, naming state and accepted events', async () => {
    const ref = { type: 'ledger', id: 'closed1' };
    await rt.host.send(ref, { type: 'ledger.close' });
    const before = await count(`SELECT count(*) n FROM journal WHERE actor_id = 'closed1'`);
    const err = await rt.host.send(ref, { type: 'ledger.append', seq: 1 }, { messageId: 'x' }).catch((e: unknown) => e);
    expect(isConcordError(err, ErrorCode.EventRejected)).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ value: 'closed', accepts: [] });
    expect(await count(`SELECT count(*) n FROM journal WHERE actor_id = 'closed1'`)).toBe(before);
    expect(await count(`SELECT count(*) n FROM inbox WHERE actor_id = 'closed1' AND message_id = 'x'`)).toBe(0);
  });

  it('answers unknown types, bad ids and bad events with typed errors', async () => {
    await expect(rt.host.send({ type: 'nope', id: 'x' }, { type: 'a' })).rejects.toMatchObject({ code: ErrorCode.UnknownActorType });
    await expect(rt.host.send({ type: 'ledger', id: 'bad id!' }, { type: 'a' })).rejects.toMatchObject({ code: ErrorCode.InvalidEvent });
    await expect(rt.host.send({ type: 'ledger', id: 'ok' }, { type: 'xstate.init' })).rejects.toMatchObject({ code: ErrorCode.InvalidEvent });
    await expect(rt.host.get({ type: 'ledger', id: 'never' })).rejects.toMatchObject({ code: ErrorCode.ActorNotFound });
  });

  it('keeps tenants apart: another tenant neither sees nor changes an actor', async () => {
    const ref = { type: 'ledger', id: 'tenanted' };
    await rt.host.send(ref, { type: 'ledger.append', seq: 1 }, { tenant: 'acme' });
    await expect(rt.host.get(ref, { tenant: 'globex' })).rejects.toMatchObject({ code: ErrorCode.ActorNotFound });
    await expect(rt.host.send(ref, { type: 'ledger.append', seq: 2 }, { tenant: 'globex' })).rejects.toMatchObject({ code: ErrorCode.ActorNotFound });
    expect((await rt.host.get(ref, { tenant: 'acme' })).version).toBe(1);
  });

  it('applies events to one actor one at a time in arrival order, and to many actors concurrently', async () => {
    const sends = [];
    for (let a = 0; a < 20; a++) for (let s = 1; s <= 25; s++) sends.push(rt.host.send({ type: 'ledger', id: `order-${a}` }, { type: 'ledger.append', seq: s }, { messageId: `o${s}` }));
    await Promise.all(sends);
    for (let a = 0; a < 20; a++) {
      const v = await rt.host.get({ type: 'ledger', id: `order-${a}` });
      expect((v.context as unknown as LedgerContext).entries).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(v.version).toBe(25);
    }
  });

  it('replaying the journal from the initial state reproduces the stored snapshot', async () => {
    const ref = { type: 'ledger', id: 'replay' };
    await rt.host.send(ref, { type: 'ledger.append', seq: 1 });
    await rt.host.send(ref, { type: 'ledger.arm', ms: 1000 });
    await rt.host.send(ref, { type: 'ledger.append', seq: 2 });
    clock.advance(1000);
    const res = await rt.host.fireTimer(ref, '#xstate.after.armDelay.ledger.armed', clock.now());
    expect(res?.value).toBe('open');
    await rt.host.send(ref, { type: 'ledger.append', seq: 3 });
    const { matches, replayed, stored } = await rt.host.verifyReplay(ref);
    expect(replayed.context).toEqual(stored.context);
    expect(matches).toBe(true);
    expect((stored.context as unknown as LedgerContext).fired).toBe(1);
    const history = await rt.host.history(ref);
    expect(history.map((h) => h.kind)).toEqual(['event', 'event', 'event', 'timer', 'event']);
  });
});
