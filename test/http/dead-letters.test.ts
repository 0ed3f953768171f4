import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from './harness.js';

let h: Harness;
let op: string;

beforeAll(async () => {
  h = await harness();
  op = h.token('operator');
  // two messages no actor accepted: one for an actor type nobody runs, one that will be replayable
  await h.runtime.database.pool.query(
    `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, error, attempts) VALUES
     ('outbox', 'unroutable', 'concord.actor.nobody.x1', 'relationship', 'src-1', 'm-1', '{"type":"ping"}', 'unknown actor type', 1),
     ('outbox', 'rejected', 'concord.actor.relationship.r-1', 'relationship', 'src-2', 'm-2', '{"type":"relationship.activate"}', 'does not accept', 1)`,
  );
});
afterAll(async () => h.close());

describe('dead letters over HTTP (operators)', () => {
  it('lists open dead letters, filtered and paged', async () => {
    const all = await h.call('GET', '/api/v1/dead-letters', { token: op });
    expect(all.status).toBe(200);
    expect(all.body.data.map((d: { messageId: string }) => d.messageId)).toEqual(['m-1', 'm-2']);
    const rejected = await h.call('GET', '/api/v1/dead-letters?reason=rejected', { token: op });
    expect(rejected.body.data).toHaveLength(1);
    const page = await h.call('GET', '/api/v1/dead-letters?limit=1', { token: op });
    expect(page.body.pagination.nextAfterId).toBe(page.body.data[0].id);
  });

  it('filters by actor (actorId within an actorType); an actorId without actorType is a 400 naming actorType', async () => {
    const one = await h.call('GET', '/api/v1/dead-letters?actorType=relationship&actorId=src-2', { token: op });
    expect(one.status).toBe(200);
    expect(one.body.data.map((d: { messageId: string }) => d.messageId)).toEqual(['m-2']);
    expect((await h.call('GET', '/api/v1/dead-letters?actorType=relationship', { token: op })).body.data).toHaveLength(2);
    // an actor id is only unique within its type: alone it is refused, not silently dropped (which listed everything)
    const alone = await h.call('GET', '/api/v1/dead-letters?actorId=src-2', { token: op });
    expect(alone.status).toBe(400);
    expect(alone.headers.get('content-type')).toBe('application/problem+json');
    expect(alone.body).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', target: 'query' });
    expect(alone.body.issues).toEqual([expect.objectContaining({ path: ['actorType'], message: expect.stringContaining('actorId') })]);
  });

  it('replays one through the outbox with its original message id, once', async () => {
    const list = await h.call('GET', '/api/v1/dead-letters?reason=rejected', { token: op });
    const id = list.body.data[0].id;
    const r = await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body: { reason: 'state fixed' } });
    expect(r.status).toBe(200);
    expect(r.body.replayedAt).not.toBeNull();
    const { rows } = await h.runtime.database.pool.query(`SELECT count(*)::int AS n FROM outbox WHERE payload->>'type' = 'relationship.activate'`);
    const relayed = await h.runtime.database.pool.query(`SELECT count(*)::int AS n FROM dead_letters WHERE id = $1 AND replayed_at IS NOT NULL`, [id]);
    expect(relayed.rows[0].n).toBe(1);
    expect(rows[0].n).toBeLessThanOrEqual(1); // written once (the relay may already have taken it)
    const again = await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body: { reason: 'state fixed' } });
    expect(again.status).toBe(200);
    const open = await h.call('GET', '/api/v1/dead-letters', { token: op });
    expect(open.body.data.map((d: { messageId: string }) => d.messageId)).toEqual(['m-1']);
  });

  it('is for operators only, and an unknown id is 404', async () => {
    const vendor = h.token('vendor', 'vendor-1');
    expect((await h.call('GET', '/api/v1/dead-letters', { token: vendor })).status).toBe(404); // operator routes do not exist for tenants
    expect((await h.call('POST', '/api/v1/dead-letters/1/replay', { token: h.token('service'), body: { reason: 'x' } })).status).toBe(403);
    const missing = await h.call('POST', '/api/v1/dead-letters/999999/replay', { token: op, body: { reason: 'x' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/problem\+json/);
    // ids past what a bigint holds are a validation problem, not a database error
    expect((await h.call('POST', '/api/v1/dead-letters/1e30/replay', { token: op, body: { reason: 'x' } })).status).toBe(400);
    expect((await h.call('GET', '/api/v1/dead-letters/999999', { token: op })).status).toBe(404);
    expect((await h.call('GET', '/api/v1/dead-letters?afterId=1e30', { token: op })).status).toBe(400);
  });

  it('replays with an edited payload: the event sent is the edit, the row keeps the original, the audit has both', async () => {
    const { rows } = await h.runtime.database.pool.query<{ id: string }>(
      `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, error, attempts)
       VALUES ('outbox', 'rejected', 'concord.actor.relationship.r-9', 'relationship', 'src-9', 'm-9', '{"type":"relationship.activat"}', 'does not accept', 1) RETURNING id`,
    );
    const id = Number(rows[0]!.id);
    // validated: a message for an actor stays an event; a missing reason or a non-object payload is a 400
    for (const body of [{ payload: { kind: 'x' }, reason: 'typo' }, { payload: { type: 'relationship.activate' } }, { payload: ['x'], reason: 'typo' }]) {
      const bad = await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('VALIDATION_FAILED');
    }
    expect((await h.call('GET', `/api/v1/dead-letters/${id}`, { token: op })).body.replayedAt).toBeNull(); // nothing happened

    const edited = { type: 'relationship.activate', note: 'fixed typo' };
    const r = await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body: { payload: edited, reason: 'typo in event type' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id, payload: { type: 'relationship.activat' } });
    expect(r.body.replayedAt).not.toBeNull();
    const out = await h.runtime.database.pool.query(`SELECT payload, message_id FROM outbox WHERE headers->>'Concord-Nats-Msg-Id' = $1`, [`replay:${id}`]);
    expect(out.rows).toEqual([{ payload: edited, message_id: 'm-9' }]);
    const audit = await h.runtime.database.pool.query(`SELECT subject, reason, before, after FROM audit_log WHERE action = 'dead_letter.replay' AND object_id = $1`, [String(id)]);
    expect(audit.rows).toEqual([
      {
        subject: 'operator-user',
        reason: 'typo in event type',
        before: { replayedAt: null, payload: { type: 'relationship.activat' } },
        after: { replayedAt: r.body.replayedAt, payload: edited, edited: true },
      },
    ]);
    // replayed already: an edit would not be sent, so it is refused; a plain replay answers the row
    const twice = await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body: { payload: edited, reason: 'again' } });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('CONFLICT');
    expect((await h.call('POST', `/api/v1/dead-letters/${id}/replay`, { token: op, body: { reason: 'again' } })).status).toBe(200);
    expect((await h.runtime.database.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'dead_letter.replay' AND object_id = $1`, [String(id)])).rows[0].n).toBe(1);
  });
});
