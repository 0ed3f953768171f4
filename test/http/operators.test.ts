import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relationshipType } from '../../machines/relationship.js';
import { canonical, replay } from '../../runtime/step.js';
import { ledgerType, type LedgerContext } from '../fixtures/machines.js';
import { waitFor } from '../helpers/db.js';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
const reason = 'incident 42: investigating';

beforeAll(async () => {
  h = await harness({ types: [relationshipType, ledgerType], timers: true });
  op = h.token('operator');
});
afterAll(async () => h.close());

const ledger = (id: string) => ({ type: 'ledger', id });
const audit = async (objectId: string) =>
  (
    await h.database.pool.query<{ action: string; subject: string; reason: string; before: { version: number }; after: { version: number } }>(
      `SELECT action, subject, reason, before, after FROM audit_log WHERE object_id = $1 AND action LIKE 'actor.%' OR object_id = $1 AND action LIKE 'timer.%' ORDER BY id`,
      [objectId],
    )
  ).rows;

describe('pause and resume', () => {
  it('a paused actor answers HTTP commands with 409 ACTOR_PAUSED, shows it in its snapshot and in lists, and runs again after resume', async () => {
    const vendor = h.token('vendor', 'vendor-p');
    const created = await h.call('POST', `${BASE}/relationships`, { token: vendor, body: { vendorId: 'vendor-p', partnerId: 'partner-p', relationshipType: 'REFERRAL' } });
    const id = created.body.id as string;

    const paused = await h.call('POST', `/api/v1/actors/relationship/${id}/pause`, { token: op, body: { reason } });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ type: 'relationship', id, version: 1, changed: true, paused: { by: 'operator-user', reason } });

    const refused = await h.call('POST', `${BASE}/relationships/${id}/activate`, { token: vendor });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'ACTOR_PAUSED', status: 409 });
    expect(refused.headers.get('content-type')).toContain('application/problem+json');

    expect((await h.call('GET', `/api/v1/actors/relationship/${id}`, { token: op })).body).toMatchObject({ version: 1, paused: { by: 'operator-user', reason } });
    const list = await h.call('GET', '/api/v1/actors?type=relationship&paused=true', { token: op });
    expect(list.body.data.map((a: { id: string }) => a.id)).toEqual([id]);
    expect(list.body.data[0].paused).toMatchObject({ reason });

    // a second pause changes nothing and records nothing
    expect((await h.call('POST', `/api/v1/actors/relationship/${id}/pause`, { token: op, body: { reason } })).body.changed).toBe(false);

    const resumed = await h.call('POST', `/api/v1/actors/relationship/${id}/resume`, { token: op, body: { reason: 'resolved' } });
    expect(resumed.body).toMatchObject({ changed: true, paused: null });
    expect((await h.call('POST', `${BASE}/relationships/${id}/activate`, { token: vendor })).body).toMatchObject({ status: 'ACTIVE', version: 2 });
    expect((await h.call('GET', '/api/v1/actors?type=relationship&paused=true', { token: op })).body.data).toEqual([]);

    expect(await audit(id)).toEqual([
      { action: 'actor.pause', subject: 'operator-user', reason, before: { version: 1, status: 'PENDING', paused: false }, after: { version: 1, status: 'PENDING', paused: true } },
      { action: 'actor.resume', subject: 'operator-user', reason: 'resolved', before: { version: 1, status: 'PENDING', paused: true }, after: { version: 1, status: 'PENDING', paused: false } },
    ]);
  });

  it('needs a reason', async () => {
    await h.runtime.host.send(ledger('r1'), { type: 'ledger.append', seq: 1 });
    for (const body of [{}, { reason: '' }, { reason: '   ' }]) {
      const r = await h.call('POST', '/api/v1/actors/ledger/r1/pause', { token: op, body });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
    expect((await h.call('POST', '/api/v1/actors/ledger/nope/pause', { token: op, body: { reason } })).status).toBe(404);
  });
});

describe('send', () => {
  it('applies an event the state accepts, with its reason audited in the same commit; refuses others with the accepted events', async () => {
    await h.runtime.host.send(ledger('s1'), { type: 'ledger.append', seq: 1 });
    const r = await h.call('POST', '/api/v1/actors/ledger/s1/send', { token: op, body: { event: { type: 'ledger.append', seq: 2 }, reason } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'ledger', id: 's1', version: 2, value: 'open', status: 'OPEN' });
    expect(await audit('s1')).toEqual([
      { action: 'actor.send', subject: 'operator-user', reason, before: { version: 1 }, after: { version: 2, status: 'OPEN', event: { type: 'ledger.append', seq: 2 } } },
    ]);

    const rejected = await h.call('POST', '/api/v1/actors/ledger/s1/send', { token: op, body: { event: { type: 'ledger.disarm' }, reason } });
    expect(rejected.status).toBe(409);
    expect(rejected.body).toMatchObject({ code: 'EVENT_REJECTED', accepts: ['ledger.append', 'ledger.arm', 'ledger.close', 'ledger.ping'] });
    expect((await h.call('POST', '/api/v1/actors/ledger/s1/send', { token: op, body: { event: { type: 'ledger.append', seq: 3 } } })).status).toBe(400);
    expect((await h.call('POST', '/api/v1/actors/ledger/s1/send', { token: op, body: { event: { type: 'xstate.init' }, reason } })).status).toBe(400);
    // never creates an actor
    expect((await h.call('POST', '/api/v1/actors/ledger/ghost/send', { token: op, body: { event: { type: 'ledger.append', seq: 1 }, reason } })).status).toBe(404);
    expect((await h.runtime.host.get(ledger('s1'))).version).toBe(2);
  });

  it('answers ACTOR_PAUSED for a paused actor', async () => {
    await h.runtime.host.send(ledger('s2'), { type: 'ledger.append', seq: 1 });
    await h.call('POST', '/api/v1/actors/ledger/s2/pause', { token: op, body: { reason } });
    const r = await h.call('POST', '/api/v1/actors/ledger/s2/send', { token: op, body: { event: { type: 'ledger.append', seq: 2 }, reason } });
    expect(r.body).toMatchObject({ status: 409, code: 'ACTOR_PAUSED' });
  });
});

describe('timers', () => {
  const timerOf = async (actorId: string) => {
    const r = await h.call('GET', '/api/v1/timers?type=ledger&limit=200', { token: op });
    return (r.body.data as Array<{ id: number; actorId: string; dueAt: string; event: string; actorPaused: boolean }>).find((t) => t.actorId === actorId);
  };
  const fires = async (id: string) =>
    (await h.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal WHERE actor_type = 'ledger' AND actor_id = $1 AND kind = 'timer'`, [id])).rows[0]!.n;

  it('lists pending timers with filters and pages', async () => {
    await h.runtime.host.send(ledger('t-list-1'), { type: 'ledger.arm', ms: 60_000 });
    await h.runtime.host.send(ledger('t-list-2'), { type: 'ledger.arm', ms: 120_000 });
    const soon = new Date(h.clock.now() + 90_000).toISOString();
    const r = await h.call('GET', `/api/v1/timers?type=ledger&dueBefore=${soon}`, { token: op });
    expect(r.status).toBe(200);
    expect(r.body.data.map((t: { actorId: string }) => t.actorId)).toContain('t-list-1');
    expect(r.body.data.map((t: { actorId: string }) => t.actorId)).not.toContain('t-list-2');
    expect(r.body.data.find((t: { actorId: string }) => t.actorId === 't-list-1')).toMatchObject({ actorType: 'ledger', event: 'xstate.after.armDelay.ledger.armed', actorPaused: false });
    const page1 = await h.call('GET', '/api/v1/timers?type=ledger&limit=1', { token: op });
    expect(page1.body.data).toHaveLength(1);
    const page2 = await h.call('GET', `/api/v1/timers?type=ledger&limit=1&cursor=${page1.body.pagination.nextCursor}`, { token: op });
    expect(page2.body.data[0].id).not.toBe(page1.body.data[0].id);
    expect((await h.call('GET', '/api/v1/timers?type=relationship', { token: op })).body.data).toEqual([]);
  });

  it('fires a timer now, through the normal path, exactly once', async () => {
    await h.runtime.host.send(ledger('t-fire'), { type: 'ledger.arm', ms: 3_600_000 });
    const t = (await timerOf('t-fire'))!;
    const r = await h.call('POST', `/api/v1/timers/${t.id}/fire`, { token: op, body: { reason } });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ id: t.id, dueAt: new Date(h.clock.now()).toISOString() });
    await waitFor('the timer fired', async () => (await h.runtime.host.get(ledger('t-fire'))).value === 'open');
    // the original due time passes and the pollers poll again: nothing fires a second time
    h.clock.advance(3_600_001);
    await h.runtime.timers.pollOnce();
    await h.runtime.timers.pollOnce();
    expect(await fires('t-fire')).toBe(1);
    expect(await h.runtime.host.get(ledger('t-fire'))).toMatchObject({ version: 2, context: { fired: 1 }, timers: [] });
    expect((await audit('t-fire')).map((a) => a.action)).toEqual(['timer.fire']);
    expect((await h.call('POST', `/api/v1/timers/${t.id}/fire`, { token: op, body: { reason } })).status).toBe(404);
  });

  it('does not fire a paused actor\'s timer now (409 ACTOR_PAUSED)', async () => {
    await h.runtime.host.send(ledger('t-paused'), { type: 'ledger.arm', ms: 3_600_000 });
    await h.call('POST', '/api/v1/actors/ledger/t-paused/pause', { token: op, body: { reason } });
    const t = (await timerOf('t-paused'))!;
    expect(t.actorPaused).toBe(true);
    expect((await h.call('POST', `/api/v1/timers/${t.id}/fire`, { token: op, body: { reason } })).body).toMatchObject({ status: 409, code: 'ACTOR_PAUSED' });
  });

  it('cancels a timer: it never fires', async () => {
    await h.runtime.host.send(ledger('t-cancel'), { type: 'ledger.arm', ms: 60_000 });
    await h.runtime.host.send(ledger('t-cancel'), { type: 'ledger.append', seq: 1 }); // cached and started in this process
    const t = (await timerOf('t-cancel'))!;
    const r = await h.call('DELETE', `/api/v1/timers/${t.id}`, { token: op, body: { reason } });
    expect(r.status).toBe(200);
    expect(await timerOf('t-cancel')).toBeUndefined();
    await h.runtime.host.send(ledger('t-cancel'), { type: 'ledger.append', seq: 2 }); // a transition after the cancel does not bring it back
    h.clock.advance(120_000);
    await h.runtime.timers.pollOnce();
    expect(await fires('t-cancel')).toBe(0);
    expect(await h.runtime.host.get(ledger('t-cancel'))).toMatchObject({ value: 'armed', timers: [] });
    expect((await audit('t-cancel')).map((a) => [a.action, a.reason])).toEqual([['timer.cancel', reason]]);
    expect((await h.call('DELETE', `/api/v1/timers/${t.id}`, { token: op, body: { reason } })).status).toBe(404);
  });
});

describe('fork', () => {
  it('makes a new actor from the replay of the journal up to N, marked as forked; the original is untouched', async () => {
    const src = ledger('f1');
    for (let seq = 1; seq <= 5; seq++) await h.runtime.host.send(src, { type: 'ledger.append', seq });
    await h.runtime.host.send(src, { type: 'ledger.arm', ms: 60_000 });
    const before = await h.runtime.host.get(src);

    const r = await h.call('POST', '/api/v1/actors/ledger/f1/fork', { token: op, body: { version: 3, reason, newId: 'f1-at-3' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ type: 'ledger', id: 'f1-at-3', version: 3, value: 'open', forkedFrom: { type: 'ledger', id: 'f1', version: 3 } });

    const journal = await h.runtime.host.history(src);
    const expected = replay(ledgerType.machine, journal[0]!.input, journal.slice(0, 3));
    const fork = await h.call('GET', '/api/v1/actors/ledger/f1-at-3', { token: op });
    expect(fork.body).toMatchObject({ version: 3, value: 'open', timers: [], forkedFrom: { type: 'ledger', id: 'f1', version: 3 }, paused: null });
    expect(canonical(fork.body.context)).toEqual(canonical(expected.context));
    expect((fork.body.context as LedgerContext).entries).toEqual([1, 2, 3]);
    expect((await h.runtime.host.verifyReplay(ledger('f1-at-3'))).matches).toBe(true);
    expect((await h.call('GET', '/api/v1/actors/ledger/f1-at-3/history', { token: op })).body.data).toHaveLength(3);

    // the original: same version, snapshot and timers
    const after = await h.runtime.host.get(src);
    expect(after).toEqual(before);
    // the fork runs on from there
    await h.runtime.host.send(ledger('f1-at-3'), { type: 'ledger.append', seq: 99 });
    expect((await h.runtime.host.get(ledger('f1-at-3'))).context).toMatchObject({ entries: [1, 2, 3, 99] });
    expect((await audit('f1-at-3')).map((a) => [a.action, a.reason])).toEqual([['actor.fork', reason]]);

    expect((await h.call('POST', '/api/v1/actors/ledger/f1/fork', { token: op, body: { version: 3, reason, newId: 'f1-at-3' } })).status).toBe(409);
    expect((await h.call('POST', '/api/v1/actors/ledger/f1/fork', { token: op, body: { version: 7, reason } })).status).toBe(400);
    const generated = await h.call('POST', '/api/v1/actors/ledger/f1/fork', { token: op, body: { version: 1, reason } });
    expect(generated.body.id).toMatch(/^f1\.fork-/);
  });
});

describe('bulk', () => {
  it('a dry run answers the count and a sample and changes nothing; a real run works through them with one audit record each', async () => {
    for (let i = 0; i < 5; i++) await h.runtime.host.send(ledger(`b${i}`), { type: 'ledger.arm', ms: 3_600_000 });
    await h.runtime.host.send(ledger('b-open'), { type: 'ledger.append', seq: 1 });
    const filter = { type: 'ledger', state: 'armed', status: 'ARMED' };

    const dry = await h.call('POST', '/api/v1/actors/bulk', { token: op, body: { action: 'pause', filter, dryRun: true, reason } });
    expect(dry.status).toBe(200);
    // t-paused, t-cancel and the bulk ones are armed (t-list-* too)
    expect(dry.body.matched).toBeGreaterThanOrEqual(5);
    expect(dry.body.sample.length).toBe(Math.min(10, dry.body.matched));
    expect(dry.body.sample.every((a: { type: string }) => a.type === 'ledger')).toBe(true);
    expect((await h.runtime.host.get(ledger('b0'))).paused).toBeNull();

    const run = await h.call('POST', '/api/v1/actors/bulk', { token: op, body: { action: 'pause', filter, dryRun: false, reason, ratePerSecond: 1000 } });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ action: 'pause', dryRun: false, matched: dry.body.matched, processed: dry.body.matched, failed: [], remaining: 0 });
    expect(run.body.done + run.body.unchanged).toBe(dry.body.matched);
    for (let i = 0; i < 5; i++) {
      expect((await h.runtime.host.get(ledger(`b${i}`))).paused).toMatchObject({ reason });
      expect((await audit(`b${i}`)).map((a) => [a.action, a.reason])).toEqual([['actor.pause', reason]]);
    }
    expect((await h.runtime.host.get(ledger('b-open'))).paused).toBeNull();

    // send to the paused ones: each fails with its reason, nothing is applied
    const send = await h.call('POST', '/api/v1/actors/bulk', {
      token: op,
      body: { action: 'send', event: { type: 'ledger.disarm' }, filter: { type: 'ledger', state: 'armed' }, dryRun: false, reason, ratePerSecond: 1000, limit: 3 },
    });
    expect(send.body).toMatchObject({ processed: 3, done: 0 });
    expect(send.body.failed).toHaveLength(3);
    expect(send.body.failed[0]).toMatchObject({ type: 'ledger', code: 'ACTOR_PAUSED' });
    expect(send.body.remaining).toBe(send.body.matched - 3);

    expect((await h.call('POST', '/api/v1/actors/bulk', { token: op, body: { action: 'pause', filter: {}, dryRun: true, reason } })).status).toBe(400);
    expect((await h.call('POST', '/api/v1/actors/bulk', { token: op, body: { action: 'pause', filter, dryRun: true } })).status).toBe(400);
    expect((await h.call('POST', '/api/v1/actors/bulk', { token: op, body: { action: 'send', event: { type: 'x' }, filter: { status: 'OPEN' }, dryRun: true, reason } })).status).toBe(400);
  });
});

describe('access', () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/api/v1/actors?type=ledger'],
    ['GET', '/api/v1/actors/ledger/s1'],
    ['GET', '/api/v1/actors/ledger/s1/history'],
    ['GET', '/api/v1/actors/ledger/s1/chart'],
    ['POST', '/api/v1/actors/ledger/s1/pause', { reason }],
    ['POST', '/api/v1/actors/ledger/s1/resume', { reason }],
    ['POST', '/api/v1/actors/ledger/s1/send', { event: { type: 'ledger.append', seq: 7 }, reason }],
    ['POST', '/api/v1/actors/ledger/s1/fork', { version: 1, reason }],
    ['POST', '/api/v1/actors/bulk', { action: 'pause', filter: { type: 'ledger' }, dryRun: false, reason }],
    ['GET', '/api/v1/timers'],
    ['POST', '/api/v1/timers/1/fire', { reason }],
    ['DELETE', '/api/v1/timers/1', { reason }],
  ];

  it('vendors and partners get 404 on every operator route, other roles 403; nothing changes', async () => {
    const before = await h.runtime.host.get(ledger('s1'));
    for (const token of [h.token('vendor', 'vendor-p'), h.token('partner', 'partner-p')]) {
      for (const [method, path, body] of routes) {
        const r = await h.call(method, path, { token, body });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.body.code).toBe('ROUTE_NOT_FOUND');
      }
    }
    for (const [method, path, body] of routes) expect((await h.call(method, path, { token: h.token('service'), body })).status, `${method} ${path}`).toBe(403);
    expect(await h.runtime.host.get(ledger('s1'))).toEqual(before);
    expect((await h.database.pool.query(`SELECT 1 FROM audit_log WHERE subject <> 'operator-user' AND action LIKE 'actor.%'`)).rowCount).toBe(0);
  });
});
