import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { CommitRecord } from '../../runtime/store.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';
import { callerType, ledgerType } from '../fixtures/machines.js';

let database: Database;
let rt: Runtime;
const commits: CommitRecord[] = [];
const calls: string[] = [];
let failNextAnswer = false;

beforeAll(async () => {
  database = await freshDatabase();
  const connectors = new Map([['fake', async (op: string, _input: unknown, ctx: { idempotencyKey: string }) => (calls.push(`${op} ${ctx.idempotencyKey}`), { op })]]);
  rt = await testRuntime(database, {
    types: [ledgerType, callerType],
    connectors,
    hooks: {
      beforeCommit: (rec) => {
        if (failNextAnswer && rec.messageId?.endsWith(':reply')) {
          failNextAnswer = false;
          throw new Error('commit hiccup');
        }
      },
      afterCommit: (rec) => void commits.push(rec),
    },
  });
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

const answers = async (id: string) => ((await rt.host.get({ type: 'caller', id })).context as { answers: Array<{ type: string }> }).answers;
const outboxRows = async () => (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).rows[0]!.n;

describe("a connector call's answer (in-process)", () => {
  it('is applied to its actor by the commit that deletes the call row: no follow-up outbox row', async () => {
    await rt.host.send({ type: 'caller', id: 'd1' }, { type: 'caller.call', op: 'quick' });
    await waitFor('the answer', async () => ((await answers('d1')).length === 1 ? true : null));
    const answer = commits.find((c) => c.id === 'd1' && c.messageId?.endsWith(':reply'))!;
    expect(answer.extras).toHaveProperty('outbox_retire');
    expect((answer.extras.outbox_retire as Array<{ id: number }>)).toHaveLength(1);
    await waitFor('the outbox empty', async () => ((await outboxRows()) === 0 ? true : null));
    expect(calls.filter((c) => c.startsWith('quick'))).toHaveLength(1);
  });

  it('takes the follow-up row when the direct commit fails, and arrives once', async () => {
    failNextAnswer = true;
    await rt.host.send({ type: 'caller', id: 'd2' }, { type: 'caller.call', op: 'again' });
    await waitFor('the answer', async () => ((await answers('d2')).length === 1 ? true : null));
    await waitFor('the outbox empty', async () => ((await outboxRows()) === 0 ? true : null));
    await new Promise((r) => setTimeout(r, 200));
    expect((await answers('d2')).map((a) => a.type)).toEqual(['fake.again.done']);
    const applied = commits.filter((c) => c.id === 'd2' && c.messageId?.endsWith(':reply'));
    expect(applied).toHaveLength(1);
    expect(applied[0]!.extras).not.toHaveProperty('outbox_retire'); // it came through the relay's follow-up row
    expect(calls.filter((c) => c.startsWith('again'))).toHaveLength(1);
  });
});
