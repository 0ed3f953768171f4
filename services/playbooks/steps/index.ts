/**
 * The playbook step types (issue 19): `createExpressions()` for CEL and Liquid, and (below) the
 * runners the execution actor calls, one per type key.
 */
export { createExpressions } from './expressions.js';
export { CEL_LIMITS, CelCode } from './cel.js';
export { LIQUID_LIMITS, TemplateCode } from './liquid.js';
export * from './types.js';
