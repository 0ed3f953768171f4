import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, harness, type Harness } from '../../http/harness.js';

/**
 * What one HTTP command costs PostgreSQL. The server has no `pg_stat_statements` loaded, so the
 * statements are counted at the client: every `query` a pg client sends while serving the
 * request (its async context), whatever the pool, and nothing the background loops send. The
 * wrapper observes and calls through.
 */
const request = new AsyncLocalStorage<string[]>();
const sent = pg.Client.prototype.query;

let h: Harness;
let op: string;

beforeAll(async () => {
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const seen = request.getStore();
    if (seen) {
      const q = args[0] as string | { name?: string; text: string };
      seen.push(typeof q === 'string' ? q : (q.name ?? q.text));
    }
    return (sent as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof sent;
  h = await harness();
  op = h.token('operator');
});
afterAll(async () => {
  await h.close();
  pg.Client.prototype.query = sent;
});

/** The request's answer and the statements it sent. */
async function counted(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}) {
  const statements: string[] = [];
  const res = await request.run(statements, () => h.call(method, path, { token: op, ...opts }));
  return { ...res, statements };
}

const relationship = { vendorId: 'vendor-s', partnerId: 'partner-s', relationshipType: 'INTEGRATION' };

describe('statements per HTTP command', () => {
  it('activates a cached relationship with an Idempotency-Key in ONE statement, and replays the answer to a retry', async () => {
    const created = await h.call('POST', `${BASE}/relationships`, { token: op, body: relationship }); // cached from here on
    const path = `${BASE}/relationships/${created.body.id}/activate`;
    const key = { 'idempotency-key': 'activate-once' };

    const first = await counted('POST', path, { headers: key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'ACTIVE', version: 2 });
    expect(first.statements).toHaveLength(1);
    expect(first.statements[0]).toMatch(/^concord_commit_/);
    // the audit record and the stored answer rode that statement
    const stored = await h.database.pool.query(`SELECT status, body FROM idempotency_keys WHERE key = 'activate-once'`);
    expect(stored.rows).toEqual([{ status: 200, body: first.body }]);
    const audit = await h.database.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE dedupe_key = $1`, [`relationship/${created.body.id}@2`]);
    expect(audit.rows[0].n).toBe(1);

    const retry = await counted('POST', path, { headers: key });
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const journal = await h.database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id = $1`, [created.body.id]);
    expect(journal.rows[0].n).toBe(2);
  });

  it('refuses the same key for another command (422) without applying it, on another actor too', async () => {
    const a = await h.call('POST', `${BASE}/relationships`, { token: op, body: relationship });
    const b = await h.call('POST', `${BASE}/relationships`, { token: op, body: relationship });
    const key = { 'idempotency-key': 'one-command-only' };
    expect((await h.call('POST', `${BASE}/relationships/${a.body.id}/activate`, { token: op, headers: key })).status).toBe(200);
    const other = await h.call('POST', `${BASE}/relationships/${b.body.id}/activate`, { token: op, headers: key });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await h.call('GET', `${BASE}/relationships/${b.body.id}`, { token: op })).body).toMatchObject({ status: 'PENDING', version: 1 });
    // and the actor still takes the command under a key of its own
    expect((await h.call('POST', `${BASE}/relationships/${b.body.id}/activate`, { token: op, headers: { 'idempotency-key': 'b-activate' } })).body).toMatchObject({ status: 'ACTIVE', version: 2 });
  });

  it('answers concurrent retries with one key with the same body, applied once', async () => {
    const created = await h.call('POST', `${BASE}/relationships`, { token: op, body: relationship });
    const path = `${BASE}/relationships/${created.body.id}/suspend`;
    await h.call('POST', `${BASE}/relationships/${created.body.id}/activate`, { token: op });
    const key = { 'idempotency-key': 'suspend-race' };
    const answers = await Promise.all(Array.from({ length: 6 }, () => h.call('POST', path, { token: op, headers: key, body: { reason: 'audit' } })));
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual(answers[0]!.body);
    }
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    const journal = await h.database.pool.query(`SELECT count(*)::int AS n FROM journal WHERE actor_id = $1`, [created.body.id]);
    expect(journal.rows[0].n).toBe(3);
  });
});
