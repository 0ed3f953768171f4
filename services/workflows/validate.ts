import type { StepInit } from '../../machines/workflow/index.js';
import { ConditionSyntaxError, parseCondition, pathsOf, type ConditionNode } from '../../machines/workflow/condition.js';
import { WORKFLOW_TEMPLATES, type WorkflowType } from '../../machines/workflow/templates.js';
import { DomainCode, DomainError } from '../common/errors.js';

/** A step as a client gives it (the spec's WorkflowStep minus server-owned fields). */
export interface StepInput {
  stepNumber: number;
  name: string;
  description?: string | null;
  estimatedDuration?: number | null;
  maxRetries?: number | null;
  dependencies?: number[];
  configuration?: Record<string, unknown> | null;
}

type Issue = { path: string[]; message: string };

const fail = (issues: Issue[]): never => {
  throw new DomainError(DomainCode.ValidationFailed, issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), { issues });
};

/** The cycle through `start`, if any, as step numbers (`[1, 3, 1]`). */
function findCycle(steps: Map<number, number[]>): number[] | null {
  const state = new Map<number, 'visiting' | 'done'>();
  const path: number[] = [];
  const visit = (n: number): number[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'visiting') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'visiting');
    path.push(n);
    for (const d of steps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of [...steps.keys()].sort((a, b) => a - b)) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

/**
 * The steps a new workflow gets: the given ones (checked: unique numbers, dependencies that
 * exist and form a DAG, parseable conditions, well-formed actions) or the template's. Each
 * gets its `id` from `newId`. Errors are one 400 naming every problem.
 */
/** The longest step timeout or retry backoff: a durable timer, but not a date past any sense. */
const MAX_STEP_MS = 7 * 24 * 3_600_000;

/**
 * A condition is evaluated when its step's dependencies are done, so it may read the workflow
 * and the steps upstream of it (direct or transitive dependencies) and nothing else: another
 * step's output may or may not be there yet, and the answer would depend on timing.
 */
function conditionIssues(input: StepInput[], conditions: Map<number, ConditionNode>): Issue[] {
  const deps = new Map(input.map((s) => [s.stepNumber, s.dependencies ?? []]));
  const upstream = (n: number, seen = new Set<number>()): Set<number> => {
    for (const d of deps.get(n) ?? []) if (!seen.has(d)) upstream(d, seen.add(d));
    return seen;
  };
  const issues: Issue[] = [];
  for (const [i, node] of conditions) {
    const step = input[i]!.stepNumber;
    const before = upstream(step);
    const path = ['steps', String(i), 'configuration', 'condition'];
    for (const p of pathsOf(node)) {
      const name = p.join('.');
      if (p[0] === 'workflow') continue;
      if (p[0] !== 'steps') issues.push({ path, message: `condition reads '${name}': a path starts with workflow or steps.<step number>` });
      else if (p[1] === undefined || !/^\d+$/.test(p[1])) issues.push({ path, message: `condition reads '${name}': name a step, as steps.<step number>` });
      else if (!before.has(Number(p[1]))) {
        issues.push({ path, message: `condition of step ${step} reads '${name}', but step ${p[1]} is not among its dependencies (direct or transitive)` });
      }
    }
  }
  return issues;
}

export function resolveSteps(
  workflowType: WorkflowType,
  given: StepInput[] | undefined,
  newId: () => string,
  /** The runtime's own first subject token (`NATS_PREFIX`): a step may not publish under it. */
  reservedPrefix: string,
): StepInit[] {
  const input: StepInput[] = given && given.length > 0 ? given : WORKFLOW_TEMPLATES[workflowType];
  const issues: Issue[] = [];
  const seen = new Map<number, number>();
  input.forEach((s, i) => {
    if (seen.has(s.stepNumber)) issues.push({ path: ['steps', String(i), 'stepNumber'], message: `step number ${s.stepNumber} is used twice` });
    seen.set(s.stepNumber, i);
  });
  const conditions = new Map<number, ConditionNode>();
  input.forEach((s, i) => {
    for (const d of s.dependencies ?? []) {
      if (!seen.has(d)) issues.push({ path: ['steps', String(i), 'dependencies'], message: `step ${s.stepNumber} depends on step ${d}, which does not exist` });
      if (d === s.stepNumber) issues.push({ path: ['steps', String(i), 'dependencies'], message: `step ${s.stepNumber} depends on itself` });
    }
    const cond = s.configuration?.condition;
    if (cond !== undefined) {
      if (typeof cond !== 'string') issues.push({ path: ['steps', String(i), 'configuration', 'condition'], message: 'condition must be a string expression' });
      else {
        try {
          conditions.set(i, parseCondition(cond));
        } catch (err) {
          if (!(err instanceof ConditionSyntaxError)) throw err;
          issues.push({ path: ['steps', String(i), 'configuration', 'condition'], message: `invalid condition: ${err.message}` });
        }
      }
    }
    const action = s.configuration?.action as Record<string, unknown> | undefined;
    if (action !== undefined) {
      const ok =
        action && typeof action === 'object' &&
        ((action.type === 'publish' && typeof action.subject === 'string' && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(action.subject)) ||
          (action.type === 'connector' && typeof action.connector === 'string' && action.connector !== '' && typeof action.operation === 'string' && action.operation !== ''));
      if (ok && action.type === 'publish' && (action.subject as string).split('.')[0] === reservedPrefix) {
        // actor subjects, dead letters and Concord's own events live there: a step could impersonate them
        issues.push({ path: ['steps', String(i), 'configuration', 'action', 'subject'], message: `a step may not publish under '${reservedPrefix}.', the runtime's own subjects` });
      } else if (!ok) {
        issues.push({
          path: ['steps', String(i), 'configuration', 'action'],
          message: 'action must be {"type":"publish","subject":"svc.x.y","data"?} or {"type":"connector","connector":"…","operation":"…","input"?}',
        });
      }
    }
    for (const key of ['timeoutMs', 'retryBackoffMs'] as const) {
      const v = s.configuration?.[key];
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_STEP_MS)) {
        issues.push({ path: ['steps', String(i), 'configuration', key], message: `${key} must be a number of milliseconds from 0 to ${MAX_STEP_MS} (7 days)` });
      }
    }
  });
  if (issues.length === 0) {
    const cycle = findCycle(new Map(input.map((s) => [s.stepNumber, s.dependencies ?? []])));
    if (cycle) issues.push({ path: ['steps'], message: `step dependencies form a cycle: ${cycle.join(' -> ')}` });
    else issues.push(...conditionIssues(input, conditions));
  }
  if (issues.length) fail(issues);
  return [...input]
    .sort((a, b) => a.stepNumber - b.stepNumber)
    .map(
      (s): StepInit => ({
        id: newId(),
        stepNumber: s.stepNumber,
        name: s.name,
        description: s.description ?? null,
        estimatedDuration: s.estimatedDuration ?? null,
        maxRetries: s.maxRetries ?? null,
        dependencies: [...(s.dependencies ?? [])],
        configuration: s.configuration ?? null,
      }),
    );
}
