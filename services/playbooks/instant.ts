import type { InstantAnswer, InstantCall, InstantSteps, LogLine, StepOutcome } from '../../machines/playbook/types.js';
import { jsonSafe, MAX_ITEMS, MAX_LOG_CHARS, MAX_LOG_LINES, MAX_OUTPUT_BYTES } from './runner.js';
import { CelCode, evaluateCelStatic } from './steps/cel.js';
import { StepError, type StepScope } from './steps/types.js';

/**
 * The step work the execution actor does inside its own transition (issue 19, speed): CEL over
 * the execution's own context, which is pure, synchronous and bounded.
 * - the `if` of every step: false (anything but `true`) skips it with no call, as the step
 *   runner would answer;
 * - `evaluate` steps, their `forEach` included: the value is the step's output.
 * Anything else (`query`, `template`, `communicate`, `webhook` whose `if` holds) answers null:
 * the step runners do it through the `playbook` connector (`./runner.ts`).
 *
 * Outcomes, codes, messages and log lines are the runner's (`StepWork`): the same `EXPRESSION*`
 * codes, `FOREACH_NOT_A_LIST`, `FOREACH_TOO_LONG`, `OUTPUT_TOO_LARGE` past 256 KB, CEL integers
 * as JSON numbers. What differs is what must, for a transition to be deterministic (the same
 * answer on every node, on replay): log lines carry the event's time `at`, not the clock, and CEL
 * runs without its wall-clock check (`evaluateCelStatic`; its static limits, checked before it
 * runs, bound the work of one expression).
 *
 * Work is counted in scope values converted for CEL (what dominates over a large scope: ~11 ms
 * for a `true` over 200,000 values). A `forEach` whose items times its scope would pass the
 * transition's budget answers null before its items run (the runner does it, with the step's
 * timeout and abort between items); a single expression is allowed past the budget (its static
 * limits bound it), after which the machine makes the next attempts calls.
 */
export function createInstantSteps(): InstantSteps {
  return { run: runInstant };
}

/** The step types whose work is instant. */
const INSTANT_TYPES = new Set(['evaluate']);

function runInstant(call: InstantCall, at: string): InstantAnswer {
  if (call.if === null && !INSTANT_TYPES.has(call.type)) return { outcome: null, spent: 0 };
  const spent = { values: 0 };
  const outcome = attempt(call, at, spent);
  return { outcome, spent: spent.values };
}

function attempt(call: InstantCall, at: string, spent: { values: number }): StepOutcome | null {
  const logs: LogLine[] = [];
  const log = (message: string, fields?: Record<string, unknown>) => {
    if (logs.length >= MAX_LOG_LINES) return;
    logs.push({ at, attempt: call.attempt, message: String(message).slice(0, MAX_LOG_CHARS), ...(fields ? { fields } : {}) });
  };
  try {
    if (call.if !== null) {
      const v = cel(call.if, call.scope, spent);
      if (v !== true) {
        log(`skipped: its condition is ${JSON.stringify(v)}`);
        return { skipped: true, reason: 'condition', logs };
      }
    }
    if (!INSTANT_TYPES.has(call.type)) return null;
    let output: unknown;
    if (call.forEach === null) output = evaluate(call.spec, call.scope, log, spent);
    else {
      const before = spent.values;
      const items = cel(call.forEach, call.scope, spent);
      if (!Array.isArray(items)) throw new StepError('FOREACH_NOT_A_LIST', `forEach gave ${typeof items}, not a list`, false);
      if (items.length > MAX_ITEMS) throw new StepError('FOREACH_TOO_LONG', `forEach gave ${items.length} items; at most ${MAX_ITEMS}`, false);
      // each item's expression converts at least the scope the list's did
      if (spent.values + items.length * (spent.values - before) > call.budget) return null;
      output = items.map((item: unknown, index) => evaluate(call.spec, { ...call.scope, item, index }, log, spent));
    }
    const text = JSON.stringify(output ?? null, jsonSafe);
    const size = Buffer.byteLength(text);
    if (size > MAX_OUTPUT_BYTES) throw new StepError('OUTPUT_TOO_LARGE', `the step's output is ${size} bytes; at most ${MAX_OUTPUT_BYTES}`, false);
    return { ok: true, output: JSON.parse(text) as unknown, logs };
  } catch (err) {
    const e = err instanceof StepError ? err : null;
    const error = e
      ? { code: e.code, message: e.message, retryable: e.retryable }
      : { code: 'STEP_FAILED', message: err instanceof Error ? err.message : String(err), retryable: true };
    log(`failed: ${error.code}: ${error.message}`);
    return { ok: false, error, logs };
  }
}

/** The `evaluate` runner's work (`./steps/evaluate.ts`), synchronous. */
function evaluate(spec: unknown, scope: StepScope, log: (m: string, f?: Record<string, unknown>) => void, spent: { values: number }): unknown {
  const expression = typeof spec === 'string' ? spec : (spec as { expression?: unknown } | null)?.expression;
  if (typeof expression !== 'string') throw new StepError(CelCode.Invalid, 'evaluate must be a CEL expression, or { expression }', false);
  const value = evaluateCelStatic(expression, scope, spent);
  log('evaluated', { type: Array.isArray(value) ? 'list' : value === null ? 'null' : typeof value });
  return value;
}

/** An `if` or `forEach` expression, as the runner evaluates them (`StepWork.#cel`). */
function cel(expression: string, scope: StepScope, spent: { values: number }): unknown {
  try {
    return evaluateCelStatic(expression, scope, spent);
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError('EXPRESSION', (err as Error).message, false);
  }
}
