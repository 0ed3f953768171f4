import { checkCel, evaluateCel } from './cel.js';
import { checkTemplate, renderTemplate } from './liquid.js';
import type { Expressions } from './types.js';

/**
 * CEL and Liquid as the playbook engine uses them: `if` conditions and `evaluate` steps are CEL
 * (./cel.ts), `template` steps and `{{ }}` strings in step specs are Liquid (./liquid.ts). Both
 * see `inputs`, `steps.<id>.output`, `steps.<id>.status`, `item` and `index`; errors are
 * `StepError`s, never retryable (the same expression over the same data fails the same way).
 *
 * @example
 * const x = createExpressions();
 * x.checkCel('size(steps.unhealthy.output) > 0');          // at validation time
 * x.evaluateCel('steps.any.output', scope);                 // true
 * await x.renderTemplate('{{ steps.unhealthy.output | size }} need attention', scope);
 */
export function createExpressions(): Expressions {
  return {
    checkCel,
    evaluateCel,
    checkTemplate,
    renderTemplate: (source, scope, signal) => renderTemplate(source, scope, signal ? { signal } : {}),
  };
}
