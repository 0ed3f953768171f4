import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isDomainError } from '../../../services/common/errors.js';
import { compileSteps, cronOf, resolveInputs } from '../../../services/playbooks/compile.js';
import { nextTick, ticksToRun } from '../../../services/playbooks/cron.js';
import { playbookJsonSchema } from '../../../services/playbooks/schema.js';
import { createExpressions } from '../../../services/playbooks/steps/index.js';
import { parsePlaybook, type Issue } from '../../../services/playbooks/validate.js';

const EXAMPLE = readFileSync(new URL('../../fixtures/playbooks/partner-health-digest.yaml', import.meta.url), 'utf8');
const x = createExpressions();

function issuesOf(source: string, format: 'yaml' | 'json' = 'yaml'): Issue[] {
  try {
    parsePlaybook(source, format, x);
  } catch (err) {
    expect(isDomainError(err)).toBe(true);
    return (err as { details: { issues: Issue[] } }).details.issues;
  }
  throw new Error('the playbook was accepted');
}

describe('the playbook format', () => {
  it("accepts the issue's example exactly as written, and compiles it", () => {
    const def = parsePlaybook(EXAMPLE, 'yaml', x);
    expect(def.name).toBe('partner-health-digest');
    const steps = compileSteps(def);
    expect(steps.map((s) => [s.id, s.type, s.phase, s.dependencies])).toEqual([
      ['unhealthy', 'query', 'main', []],
      ['any', 'evaluate', 'main', [1]],
      ['message', 'template', 'main', [1]],
      ['notify', 'webhook', 'main', [2, 3]],
      ['audit', 'evaluate', 'finally', []],
    ]);
    const notify = steps[3]!;
    expect(notify).toMatchObject({ if: 'steps.any.output', timeoutMs: 10_000, onError: 'skip', retry: { maxAttempts: 3, initialMs: 1_000, factor: 2, maxMs: 30_000, on: null } });
    expect(cronOf(def)).toEqual({ schedule: '0 9 * * MON', timezone: 'Europe/Berlin', overlap: 'skip', catchUp: 'last', catchUpWindowMs: 86_400_000 });
    expect(resolveInputs(def, {})).toEqual({ channel: '#partners' });
  });

  it('accepts the same playbook as JSON', () => {
    const def = parsePlaybook(EXAMPLE, 'yaml', x);
    expect(parsePlaybook(JSON.stringify(def, null, 2), 'json', x)).toEqual(def);
  });

  it('names line, column and field of a schema error, an unknown field and a wrong type', () => {
    const src = ['name: p', 'steps:', '  - id: a', '    evaluate: "true"', '    timeout: soon', '  - id: b', '    evaluate: "true"', '    colour: red', 'parallelism: many'].join('\n');
    const issues = issuesOf(src);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'steps[0].timeout', line: 5, column: 14 }),
        expect.objectContaining({ field: 'steps[1].colour', line: 8, column: 5, message: "unknown field 'colour'" }),
        expect.objectContaining({ field: 'parallelism', line: 9, column: 14 }),
      ]),
    );
  });

  it('refuses a dependency cycle and an unknown id with their lines', () => {
    const src = [
      'name: p',
      'steps:',
      '  - id: a',
      '    dependsOn: [c]',
      '    evaluate: "1"',
      '  - id: b',
      '    dependsOn: [a]',
      '    evaluate: "1"',
      '  - id: c',
      '    dependsOn: [b, nope]',
      '    evaluate: "1"',
    ].join('\n');
    const issues = issuesOf(src);
    expect(issues.find((i) => i.message === "unknown step id 'nope'")).toMatchObject({ field: 'steps[2].dependsOn[1]', line: 10, column: 20 });
    const cycle = issues.filter((i) => i.code === 'DEPENDENCY_CYCLE');
    expect(cycle.map((i) => i.line).sort((a, b) => a - b)).toEqual([4, 7, 10]);
    expect(cycle[0]!.message).toMatch(/dependency cycle: .* -> /);
  });

  it('refuses a step with no or two type keys, a bad cron, an unknown time zone and a bad expression', () => {
    const src = [
      'name: p',
      'triggers:',
      '  - cron: { schedule: "61 * * * *" }',
      '  - cron: { schedule: "0 9 * * *", timezone: Mars/Olympus }',
      'steps:',
      '  - id: a',
      '  - id: b',
      '    evaluate: "1"',
      '    template: { source: "x" }',
      '  - id: c',
      '    if: "inputs.x ==="',
      '    evaluate: "1"',
    ].join('\n');
    const issues = issuesOf(src);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'steps[0]', line: 6, message: expect.stringMatching(/needs one type key/) }),
        expect.objectContaining({ field: 'steps[1]', line: 7, message: expect.stringMatching(/exactly one type key/) }),
        expect.objectContaining({ field: 'triggers[0].cron.schedule', line: 3 }),
        expect.objectContaining({ field: 'triggers[1].cron.timezone', line: 4 }),
        expect.objectContaining({ field: 'steps[2].if', line: 11, code: 'EXPRESSION' }),
      ]),
    );
  });

  it('names the line of a YAML syntax error and of a duplicate key', () => {
    expect(issuesOf('name: p\nsteps:\n  - id: a\n    evaluate: "1\n')[0]).toMatchObject({ line: expect.any(Number) });
    const dup = issuesOf('name: p\nname: q\nsteps:\n  - id: a\n    evaluate: "1"\n');
    expect(dup[0]).toMatchObject({ line: 2, column: 1 });
  });

  it('refuses a YAML alias bomb', () => {
    const bomb = ['name: p', 'a: &a ["x","x","x","x","x","x","x","x","x"]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'steps: []'].join('\n');
    expect(issuesOf(bomb).length).toBeGreaterThan(0);
  });

  it('publishes a JSON Schema naming every field of the format', () => {
    const s = playbookJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['name', 'inputs', 'triggers', 'steps', 'finally', 'parallelism']));
    expect(s.required).toEqual(expect.arrayContaining(['name', 'steps']));
    expect(JSON.stringify(s)).toContain('dependsOn');
  });

  it('checks inputs against the declared ones', () => {
    const def = parsePlaybook('name: p\ninputs:\n  n: { type: integer, required: true }\n  tag: { type: string, enum: [a, b] }\nsteps:\n  - id: a\n    evaluate: "1"\n', 'yaml', x);
    expect(resolveInputs(def, { n: 2, tag: 'a' })).toEqual({ n: 2, tag: 'a' });
    for (const bad of [{}, { n: 1.5 }, { n: 1, tag: 'c' }, { n: 1, other: true }]) expect(() => resolveInputs(def, bad)).toThrow(/invalid inputs/);
  });
});

describe('cron due times', () => {
  const daily = { schedule: '30 2 * * *', timezone: 'Europe/Berlin', overlap: 'skip' as const, catchUp: 'none' as const, catchUpWindowMs: 86_400_000 };
  const ticks = (fromIso: string, n: number) => {
    const out: string[] = [];
    for (let t = Date.parse(fromIso); out.length < n; ) {
      t = nextTick(daily, t)!;
      out.push(new Date(t).toISOString());
    }
    return out;
  };

  it('DST spring forward (Europe/Berlin, 29 March 2026): 02:30 does not exist, the day still has one tick', () => {
    expect(ticks('2026-03-27T12:00:00Z', 4)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
  });

  it('DST fall back (Europe/Berlin, 25 October 2026): 02:30 happens twice, the day has one tick', () => {
    expect(ticks('2026-10-23T12:00:00Z', 4)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
  });

  it("the example's Monday 09:00 Berlin", () => {
    const monday = { ...daily, schedule: '0 9 * * MON' };
    expect(new Date(nextTick(monday, Date.parse('2026-12-07T08:10:00Z'))!).toISOString()).toBe('2026-12-14T08:00:00.000Z');
  });

  it('catch-up: none skips missed ticks, last runs the newest, all runs each within the window', () => {
    const every5 = { schedule: '*/5 * * * *', timezone: 'UTC', overlap: 'allow' as const, catchUpWindowMs: 3_600_000 };
    const due = Date.parse('2026-01-01T10:00:00Z');
    const now = Date.parse('2026-01-01T10:17:00Z');
    expect(ticksToRun({ ...every5, catchUp: 'none' }, due, now)).toEqual({ run: [], missed: 4 });
    expect(ticksToRun({ ...every5, catchUp: 'last' }, due, now).run).toEqual([Date.parse('2026-01-01T10:15:00Z')]);
    expect(ticksToRun({ ...every5, catchUp: 'all' }, due, now).run).toHaveLength(4);
    expect(ticksToRun({ ...every5, catchUp: 'all', catchUpWindowMs: 600_000 }, due, now).run).toEqual([Date.parse('2026-01-01T10:10:00Z'), Date.parse('2026-01-01T10:15:00Z')]);
    // on time: it runs whatever the policy
    expect(ticksToRun({ ...every5, catchUp: 'none' }, due, due + 2_000).run).toEqual([due]);
  });
});
