import { CelCode, evaluateCel } from './cel.js';
import { StepError, type StepRunner } from './types.js';

/**
 * The `evaluate` step: a CEL expression over the scope; its value (JSON) is the step's output.
 *
 * ```yaml
 * evaluate: "size(steps.unhealthy.output) > 0"
 * evaluate: { expression: "steps.unhealthy.output.map(i, i.account)" }
 * ```
 */
export function evaluateRunner(): StepRunner {
  return async (spec, scope, ctx) => {
    const expression = typeof spec === 'string' ? spec : (spec as { expression?: unknown } | null)?.expression;
    if (typeof expression !== 'string') throw new StepError(CelCode.Invalid, 'evaluate must be a CEL expression, or { expression }', false);
    const value = evaluateCel(expression, scope);
    ctx.log('evaluated', { type: Array.isArray(value) ? 'list' : value === null ? 'null' : typeof value });
    return value;
  };
}
