import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { DomainCode } from '../../../services/common/errors.js';
import type { Execution } from '../../../services/playbooks/service.js';
import { evaluateRunner } from '../../../services/playbooks/steps/evaluate.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { countingServer, operator, playbookSystem, TERMINAL, type CountingServer, type PlaybookSystem } from './kit.js';

/**
 * Instant step work (issue 19, speed): `evaluate` steps and every step's `if` run inside the
 * execution's own transition. Two systems side by side: `inline` (the default) and `calls`
 * (`playbooks.inline: false`, every attempt a call to the step runners, as before): what an
 * execution shows must be the same, only faster and in fewer commits.
 */

let inlineDb: Database;
let callsDb: Database;
let server: CountingServer;
let inline: PlaybookSystem;
let calls: PlaybookSystem;
beforeAll(async () => {
  [inlineDb, callsDb] = await Promise.all([freshDatabase(8), freshDatabase(8)]);
  server = await countingServer();
  // the real evaluate runner (the kit's stand-in logs nothing), the kit's webhook (the counting server)
  inline = await playbookSystem(inlineDb, { baseUrl: server.url, runners: { evaluate: evaluateRunner() } });
  calls = await playbookSystem(callsDb, { baseUrl: server.url, runners: { evaluate: evaluateRunner() }, inline: false });
});
afterAll(async () => {
  await inline?.close();
  await calls?.close();
  await server?.close();
  await inlineDb?.close();
  await callsDb?.close();
});

let n = 0;
async function start(sys: PlaybookSystem, lines: string[], inputs: Record<string, unknown> = {}): Promise<Execution> {
  const pb = await sys.services.playbooks.create({ principal: operator }, [`name: inline-${++n}`, ...lines].join('\n'), 'yaml');
  return sys.services.playbooks.execute({ principal: operator }, pb.id, inputs);
}

const finished = (sys: PlaybookSystem, id: string) =>
  waitFor(
    `execution ${id} to end`,
    async () => {
      const e = await sys.services.playbooks.getExecution(operator, id);
      return TERMINAL.includes(e.status) ? e : null;
    },
    20_000,
    20,
  );

/** What an execution shows, without times, ids and the actor's version. */
function shown(e: Execution) {
  return {
    status: e.status,
    error: e.error,
    steps: e.steps.map((s) => ({
      id: s.id,
      status: s.status,
      attempts: s.attempts,
      retryCount: s.retryCount,
      output: s.output,
      error: s.error,
      skipReason: s.skipReason,
      logs: s.logs.map((l) => ({ attempt: l.attempt, message: l.message, fields: l.fields })),
    })),
  };
}

/** Runs the playbook on both systems; both must show the same. */
async function both(lines: string[], inputs: Record<string, unknown> = {}): Promise<Execution> {
  const [a, b] = await Promise.all([start(inline, lines, inputs), start(calls, lines, inputs)]);
  const [ea, eb] = await Promise.all([finished(inline, a.id), finished(calls, b.id)]);
  expect(shown(ea)).toEqual(shown(eb));
  return ea;
}

const stepOf = (e: Execution, id: string) => e.steps.find((s) => s.id === id)!;

const outboxSeq = async (db: Database) => {
  const { rows } = await db.pool.query<{ v: string }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS v FROM outbox_id_seq`);
  return Number(rows[0]!.v);
};

describe('instant steps', () => {
  it('a chain of evaluate steps ends in the request that started it: one transition, one commit, no call', async () => {
    const chain = ['inputs:', '  n: { type: integer, default: 1 }', 'steps:', '  - id: s0', '    evaluate: "inputs.n + 1"'];
    for (let i = 1; i < 10; i++) chain.push(`  - id: s${i}`, `    dependsOn: [s${i - 1}]`, `    evaluate: "steps.s${i - 1}.output * 2"`);
    const seq = await outboxSeq(inlineDb);
    const e = await start(inline, chain, { n: 3 });
    // the answer of POST execute is the committed transition: it is over already
    expect(e.status).toBe('succeeded');
    expect(e.version).toBe(1);
    expect(stepOf(e, 's9').output).toBe(4 * 2 ** 9);
    expect(e.steps.every((s) => s.status === 'succeeded' && s.attempts === 1)).toBe(true);
    expect(stepOf(e, 's0').logs).toEqual([{ at: e.createdAt, attempt: 1, message: 'evaluated', fields: { type: 'number' } }]);
    const { rows } = await inlineDb.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal WHERE actor_type = 'playbook-execution' AND actor_id = $1`, [e.id]);
    expect(rows[0]!.n).toBe(1);
    // no outbox row at all: no call, no publish
    expect(await outboxSeq(inlineDb)).toBe(seq);
    const { rows: timers } = await inlineDb.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM timers WHERE actor_id = $1`, [e.id]);
    expect(timers[0]!.n).toBe(0);
    // through the step runners: a commit per answer
    const c = await finished(calls, (await start(calls, chain, { n: 3 })).id);
    expect(shown(c)).toEqual(shown(e));
    expect(c.version).toBeGreaterThan(10);
  });

  it('a false if skips any step with no call (a webhook too); a true one still calls', async () => {
    const e = await both([
      'steps:',
      '  - id: no',
      '    if: "1 > 2"',
      '    webhook: { path: /ok/inline-never }',
      '  - id: notbool',
      '    if: "\'yes\'"',
      '    evaluate: "1"',
      '  - id: after',
      '    dependsOn: [no, notbool]',
      '    evaluate: "[steps.no.status, steps.notbool.status]"',
    ]);
    expect(e.status).toBe('succeeded');
    expect(stepOf(e, 'no')).toMatchObject({ status: 'skipped', skipReason: 'condition', attempts: 1 });
    expect(stepOf(e, 'no').logs.map((l) => l.message)).toEqual(['skipped: its condition is false']);
    expect(stepOf(e, 'notbool').logs.map((l) => l.message)).toEqual(['skipped: its condition is "yes"']);
    expect(stepOf(e, 'after').output).toEqual(['skipped', 'skipped']);
    expect(server.count('/ok/inline-never')).toBe(0);
    expect(e.version).toBe(1);
  });

  it('a CEL error fails the step with the runner\'s code; onError skip, continue and abort as before', async () => {
    const failing = (onError: string) => ['steps:', '  - id: bad', '    evaluate: "inputs.missing.deeper"', `    onError: ${onError}`, '  - id: next', '    dependsOn: [bad]', '    evaluate: "steps.bad.status"', 'finally:', '  - id: fin', '    evaluate: "true"'];
    const retry = await both(failing('retry'));
    expect(retry.status).toBe('failed');
    expect(stepOf(retry, 'bad')).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'EXPRESSION_FAILED' } });
    expect(stepOf(retry, 'next').status).toBe('cancelled');
    expect(stepOf(retry, 'fin').status).toBe('succeeded');
    expect(retry.error).toMatch(/^step bad failed: /);
    const skip = await both(failing('skip'));
    expect(skip.status).toBe('succeeded');
    expect(stepOf(skip, 'bad')).toMatchObject({ status: 'skipped', skipReason: 'error' });
    expect(stepOf(skip, 'next').output).toBe('skipped');
    const cont = await both(failing('continue'));
    expect(cont.status).toBe('succeeded');
    expect(stepOf(cont, 'next').output).toBe('failed');
    const abort = await both(failing('abort'));
    expect(abort.status).toBe('failed');
    expect(stepOf(abort, 'next').status).toBe('cancelled');
    expect(stepOf(abort, 'fin').status).toBe('succeeded');
    for (const e of [retry, skip, cont, abort]) expect(e.version).toBe(1);
  });

  it('forEach, its errors, a broken if and an output over 256 KB: the runner\'s outcomes', async () => {
    const e = await both([
      'inputs:',
      '  xs: { type: array, default: [1, 2, 3] }',
      'steps:',
      '  - id: each',
      '    forEach: "inputs.xs.filter(x, x < 50)"',
      '    evaluate: "item * 10 + index"',
      '  - id: notalist',
      '    forEach: "inputs.xs[0]"',
      '    evaluate: "item"',
      '    onError: continue',
      '  - id: brokenif',
      '    if: "inputs.nope.x"',
      '    evaluate: "1"',
      '    onError: continue',
      '  - id: huge',
      '    evaluate: "inputs.xs.map(i, \'' + 'y'.repeat(300) + '\')"',
      '    onError: continue',
    ], { xs: Array.from({ length: 1000 }, (_, i) => i) });
    expect(stepOf(e, 'each').output).toEqual(Array.from({ length: 50 }, (_, i) => i * 10 + i));
    expect(stepOf(e, 'each').logs.filter((l) => l.message === 'evaluated')).toHaveLength(50);
    expect(stepOf(e, 'notalist')).toMatchObject({ status: 'failed', error: { code: 'FOREACH_NOT_A_LIST' } });
    expect(stepOf(e, 'brokenif')).toMatchObject({ status: 'failed', error: { code: 'EXPRESSION_FAILED' } });
    expect(stepOf(e, 'huge')).toMatchObject({ status: 'failed', error: { code: 'OUTPUT_TOO_LARGE' } });
    expect(e.version).toBe(1);
  });

  it('mixed with steps that call: instant steps around a webhook finish in the transitions of its call and answer', async () => {
    const e = await both([
      'steps:',
      '  - id: pre',
      '    evaluate: "\'/ok/inline-mixed\'"',
      '  - id: call',
      '    dependsOn: [pre]',
      '    webhook: { path: /ok/inline-mixed }',
      '  - id: post',
      '    dependsOn: [call]',
      '    evaluate: "steps.call.status"',
    ]);
    expect(e.status).toBe('succeeded');
    expect(stepOf(e, 'post').output).toBe('succeeded');
    expect(server.count('/ok/inline-mixed')).toBe(2);
    // create (pre ran inline, call went out), the call's answer (post ran inline): two commits
    expect(e.version).toBe(2);
  });

  it('execute reads the current version every time (an update or a delete counts at once); an idempotency key still dedupes', async () => {
    const pbs = inline.services.playbooks;
    const v1 = ['name: inline-versions', 'steps:', '  - id: v', '    evaluate: "1"'].join('\n');
    const pb = await pbs.create({ principal: operator }, v1, 'yaml');
    expect((await pbs.execute({ principal: operator }, pb.id, {})).steps[0]!.output).toBe(1);
    await pbs.update({ principal: operator }, pb.id, v1.replace('"1"', '"2"'), 'yaml');
    const e2 = await pbs.execute({ principal: operator }, pb.id, {});
    expect(e2).toMatchObject({ playbookVersion: 2, status: 'succeeded' });
    expect(e2.steps[0]!.output).toBe(2);
    const k1 = await pbs.execute({ principal: operator }, pb.id, {}, 'key-1');
    const k2 = await pbs.execute({ principal: operator }, pb.id, {}, 'key-1');
    expect(k2.id).toBe(k1.id);
    expect(k2.version).toBe(1);
    await pbs.delete({ principal: operator }, pb.id);
    await expect(pbs.execute({ principal: operator }, pb.id, {})).rejects.toMatchObject({ code: DomainCode.NotFound });
  });
});
