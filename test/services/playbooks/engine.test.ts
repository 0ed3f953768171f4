import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import type { Execution } from '../../../services/playbooks/service.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { countingServer, operator, playbookSystem, TERMINAL, type CountingServer, type PlaybookSystem } from './kit.js';

let database: Database;
let server: CountingServer;
let sys: PlaybookSystem;
beforeAll(async () => {
  database = await freshDatabase(8);
  server = await countingServer();
  sys = await playbookSystem(database, { baseUrl: server.url });
});
afterAll(async () => {
  await sys?.close();
  await server?.close();
  await database?.close();
});

let n = 0;
/** Creates a playbook from YAML lines and runs it by hand; resolves when the execution has ended. */
async function run(lines: string[], inputs: Record<string, unknown> = {}): Promise<Execution> {
  const name = `p${++n}`;
  const pb = await sys.services.playbooks.create({ principal: operator }, [`name: ${name}`, ...lines].join('\n'), 'yaml');
  const started = await sys.services.playbooks.execute({ principal: operator }, pb.id, inputs);
  return finished(started.id);
}

const finished = (id: string, timeoutMs = 20_000) =>
  waitFor(
    `execution ${id} to end`,
    async () => {
      const e = await sys.services.playbooks.getExecution(operator, id);
      return TERMINAL.includes(e.status) ? e : null;
    },
    timeoutMs,
    20,
  );

const step = (e: Execution, id: string) => e.steps.find((s) => s.id === id)!;
const FAST = 'retry: { maxAttempts: 3, backoff: { initial: PT0.05S, factor: 2, max: PT0.2S } }';

describe('the playbook engine', () => {
  it('runs a DAG: independent branches at once, a join after both, outputs committed before dependents start', async () => {
    const e = await run([
      'steps:',
      '  - id: a',
      '    webhook: { path: /ok/dag-a }',
      '  - id: b',
      '    dependsOn: [a]',
      '    webhook: { path: /slow300/dag-b }',
      '  - id: c',
      '    dependsOn: [a]',
      '    webhook: { path: /slow300/dag-c }',
      '  - id: d',
      '    dependsOn: [b, c]',
      '    evaluate: "steps.b.output.seen + steps.c.output.seen"',
    ]);
    expect(e.status).toBe('succeeded');
    expect(e.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const [b] = server.calls.filter((c) => c.path === '/slow300/dag-b');
    const [c] = server.calls.filter((c) => c.path === '/slow300/dag-c');
    const [a] = server.calls.filter((c) => c.path === '/ok/dag-a');
    // the branches overlapped, and neither started before a had answered
    expect(b!.startedAt).toBeLessThan(c!.endedAt!);
    expect(c!.startedAt).toBeLessThan(b!.endedAt!);
    expect(Math.min(b!.startedAt, c!.startedAt)).toBeGreaterThanOrEqual(a!.endedAt!);
    // CEL integers are BigInt: stored as JSON numbers
    expect(step(e, 'd').output).toBe(2);
  });

  it('parallelism: 1 runs the branches one after the other', async () => {
    const e = await run([
      'parallelism: 1',
      'steps:',
      '  - id: b',
      '    webhook: { path: /slow200/par-b }',
      '  - id: c',
      '    webhook: { path: /slow200/par-c }',
    ]);
    expect(e.status).toBe('succeeded');
    const [b] = server.calls.filter((x) => x.path === '/slow200/par-b');
    const [c] = server.calls.filter((x) => x.path === '/slow200/par-c');
    expect(c!.startedAt).toBeGreaterThanOrEqual(b!.endedAt!);
  });

  it('retry: a failing step runs again after its backoff with the same idempotency key, and succeeds', async () => {
    const e = await run(['steps:', '  - id: flaky', '    webhook: { path: /fail2/retry-ok }', `    ${FAST}`]);
    expect(e.status).toBe('succeeded');
    expect(step(e, 'flaky')).toMatchObject({ status: 'succeeded', attempts: 3, retryCount: 2 });
    const keys = server.keys('/fail2/retry-ok');
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(step(e, 'flaky').logs.map((l) => l.message)).toEqual(expect.arrayContaining(['POST /fail2/retry-ok -> 500', 'POST /fail2/retry-ok -> 200']));
  });

  it('onError retry (the default): attempts spent, the execution fails, dependents do not run, finally runs', async () => {
    const e = await run([
      'steps:',
      '  - id: broken',
      '    webhook: { path: /fail9/retry-fail }',
      `    ${FAST}`,
      '  - id: after',
      '    dependsOn: [broken]',
      '    webhook: { path: /ok/retry-fail-after }',
      'finally:',
      '  - id: cleanup',
      '    webhook: { path: /ok/retry-fail-finally }',
    ]);
    expect(e.status).toBe('failed');
    expect(e.error).toMatch(/step broken failed/);
    expect(step(e, 'broken')).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'HTTP_500' } });
    expect(step(e, 'after').status).toBe('cancelled');
    expect(step(e, 'cleanup').status).toBe('succeeded');
    expect(server.count('/ok/retry-fail-after')).toBe(0);
    expect(server.count('/ok/retry-fail-finally')).toBe(1);
  });

  it('retry.on: an error code not listed is not retried', async () => {
    const e = await run(['steps:', '  - id: s', '    webhook: { path: /fail9/retry-on }', '    retry: { maxAttempts: 5, on: [HTTP_503] }']);
    expect(e.status).toBe('failed');
    expect(step(e, 's').attempts).toBe(1);
  });

  it('onError skip: the step is skipped after its attempts, dependents run and see it skipped', async () => {
    const e = await run([
      'steps:',
      '  - id: s',
      '    webhook: { path: /bad/skip }',
      '    onError: skip',
      '  - id: after',
      '    dependsOn: [s]',
      '    evaluate: "steps.s.status"',
    ]);
    expect(e.status).toBe('succeeded');
    expect(step(e, 's')).toMatchObject({ status: 'skipped', skipReason: 'error', attempts: 1, error: { code: 'HTTP_400' } });
    expect(step(e, 'after').output).toBe('skipped');
  });

  it('onError continue: the step stays failed, dependents run, the execution succeeds', async () => {
    const e = await run([
      'steps:',
      '  - id: s',
      '    webhook: { path: /bad/continue }',
      '    onError: continue',
      '  - id: after',
      '    dependsOn: [s]',
      '    evaluate: "steps.s.status"',
    ]);
    expect(e.status).toBe('succeeded');
    expect(step(e, 's').status).toBe('failed');
    expect(step(e, 'after').output).toBe('failed');
  });

  it('onError abort: the execution fails at once, the running step is cancelled (its call aborted), finally runs', async () => {
    const e = await run([
      'steps:',
      '  - id: slow',
      '    webhook: { path: /hang/abort-slow }',
      '  - id: bad',
      '    webhook: { path: /bad/abort }',
      '    onError: abort',
      '  - id: later',
      '    dependsOn: [bad]',
      '    webhook: { path: /ok/abort-later }',
      'finally:',
      '  - id: cleanup',
      '    evaluate: "steps.slow.status"',
    ]);
    expect(e.status).toBe('failed');
    expect(step(e, 'slow').status).toBe('cancelled');
    expect(step(e, 'later').status).toBe('cancelled');
    expect(step(e, 'cleanup').output).toBe('cancelled');
    await waitFor('the hung call aborted', () => server.calls.find((c) => c.path === '/hang/abort-slow')?.aborted);
  });

  it('timeout: an attempt that takes longer than its timeout fails with TIMEOUT', async () => {
    const e = await run(['steps:', '  - id: s', '    webhook: { path: /slow3000/timeout }', '    timeout: PT0.2S', '    onError: abort']);
    expect(e.status).toBe('failed');
    expect(step(e, 's')).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' }, attempts: 1 });
  });

  it('if: a false condition skips the step; forEach runs it per item with its own idempotency key', async () => {
    const e = await run(
      [
        'inputs:',
        '  targets: { type: array, default: [x, y, z] }',
        'steps:',
        '  - id: never',
        '    if: "size(inputs.targets) > 10"',
        '    webhook: { path: /ok/if-never }',
        '  - id: each',
        '    forEach: "inputs.targets"',
        '    webhook: { path: /ok/foreach }',
        '  - id: after',
        '    dependsOn: [never]',
        '    evaluate: "steps.never.status"',
      ],
      {},
    );
    expect(e.status).toBe('succeeded');
    expect(step(e, 'never')).toMatchObject({ status: 'skipped', skipReason: 'condition' });
    expect(server.count('/ok/if-never')).toBe(0);
    expect(step(e, 'after').output).toBe('skipped');
    expect((step(e, 'each').output as unknown[]).length).toBe(3);
    expect(new Set(server.keys('/ok/foreach')).size).toBe(3);
  });

  it('cancel stops running steps, nothing new starts, finally runs; a second cancel is a 409', async () => {
    const pb = await sys.services.playbooks.create(
      { principal: operator },
      ['name: cancel-me', 'steps:', '  - id: wait', '    webhook: { path: /hang/cancel }', '  - id: next', '    dependsOn: [wait]', '    webhook: { path: /ok/cancel-next }', 'finally:', '  - id: f', '    webhook: { path: /ok/cancel-finally }'].join('\n'),
      'yaml',
    );
    const started = await sys.services.playbooks.execute({ principal: operator }, pb.id, {});
    await waitFor('the step running', () => server.count('/hang/cancel') === 1);
    await sys.services.playbooks.cancel({ principal: operator }, started.id, 'not today');
    const e = await finished(started.id);
    expect(e.status).toBe('cancelled');
    expect(e.error).toBe('cancelled: not today');
    expect(e.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'succeeded']);
    expect(server.count('/ok/cancel-next')).toBe(0);
    await expect(sys.services.playbooks.cancel({ principal: operator }, started.id)).rejects.toMatchObject({ code: 'EVENT_REJECTED' });
  });

  it('retry of an execution reuses the outputs of the steps that succeeded and runs from the first that did not', async () => {
    const pb = await sys.services.playbooks.create(
      { principal: operator },
      ['name: retry-me', 'steps:', '  - id: one', '    webhook: { path: /ok/rerun-one }', '  - id: two', '    dependsOn: [one]', '    webhook: { path: /flaky1/rerun-two }', '    retry: { maxAttempts: 1 }'].join('\n'),
      'yaml',
    );
    const first = await finished((await sys.services.playbooks.execute({ principal: operator }, pb.id, {})).id);
    expect(first.status).toBe('failed');
    const again = await sys.services.playbooks.retry({ principal: operator }, first.id);
    const e = await finished(again.id);
    expect(e.status).toBe('succeeded');
    expect(e.triggerInfo).toEqual({ kind: 'retry', retryOf: first.id });
    expect(step(e, 'one')).toMatchObject({ status: 'succeeded', reused: true, output: step(first, 'one').output });
    expect(server.count('/ok/rerun-one')).toBe(1);
    expect(server.count('/flaky1/rerun-two')).toBe(2);
  });

  it('an execution runs the version it started with, though the playbook is updated meanwhile', async () => {
    const v1 = ['name: versions', 'steps:', '  - id: s', '    webhook: { path: /hang/v1 }'].join('\n');
    const pb = await sys.services.playbooks.create({ principal: operator }, v1, 'yaml');
    const started = await sys.services.playbooks.execute({ principal: operator }, pb.id, {});
    await waitFor('v1 running', () => server.count('/hang/v1') === 1);
    const updated = await sys.services.playbooks.update({ principal: operator }, pb.id, v1.replace('/hang/v1', '/ok/v2'), 'yaml');
    expect(updated.version).toBe(2);
    server.releaseHung();
    const e = await finished(started.id);
    expect(e).toMatchObject({ status: 'succeeded', playbookVersion: 1 });
    const e2 = await finished((await sys.services.playbooks.execute({ principal: operator }, pb.id, {})).id);
    expect(e2.playbookVersion).toBe(2);
    expect(server.count('/ok/v2')).toBe(1);
  });

  it('nats trigger: a message on the subject pattern starts one execution per message id, its JSON the inputs', async () => {
    const pb = await sys.services.playbooks.create(
      { principal: operator },
      ['name: on-nats', 'inputs:', '  who: { type: string }', 'triggers:', '  - nats: { subject: "partners.signup.*" }', 'steps:', '  - id: s', '    evaluate: "inputs.who"'].join('\n'),
      'yaml',
    );
    await sys.services.playbookIntake.reload(); // subscribed once the reload the create asked for is done
    const msg = { subject: 'partners.signup.eu', data: { who: 'ada' }, headers: {}, messageId: 'signup-1' };
    await sys.runtime.bus.publish(msg);
    await sys.runtime.bus.publish(msg); // redelivered
    await sys.runtime.bus.publish({ ...msg, subject: 'partners.other.eu', messageId: 'other-1' });
    const list = await waitFor('the execution', async () => {
      const r = await sys.services.playbooks.listExecutions(operator, { playbookId: pb.id, limit: 10 });
      return r.data.length > 0 && r.data.every((e) => TERMINAL.includes(e.status)) ? r.data : null;
    });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ trigger: 'nats', triggerInfo: { subject: 'partners.signup.eu', messageId: 'signup-1' }, status: 'succeeded' });
    expect(list[0]!.stepCounts).toMatchObject({ total: 1, succeeded: 1 });
    expect((await sys.services.playbooks.getExecution(operator, list[0]!.id)).steps[0]!.output).toBe('ada');
  });

  it('deleting a playbook stops its cron schedule (its timer is gone)', async () => {
    const pb = await sys.services.playbooks.create({ principal: operator }, ['name: doomed', 'triggers:', '  - cron: { schedule: "0 9 * * MON" }', 'steps:', '  - id: s', '    evaluate: "1"'].join('\n'), 'yaml');
    const timers = async () => (await sys.runtime.database.pool.query(`SELECT count(*)::int AS n FROM timers WHERE actor_type = 'playbook-schedule' AND actor_id = $1`, [pb.id])).rows[0].n;
    expect(await timers()).toBe(1);
    await sys.services.playbooks.delete({ principal: operator }, pb.id);
    expect(await timers()).toBe(0);
    const { rows } = await sys.runtime.database.pool.query(`SELECT status FROM actors WHERE type = 'playbook-schedule' AND id = $1`, [pb.id]);
    expect(rows[0].status).toBe('STOPPED');
  });
});
