import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { StepError, type StepScope } from './types.js';

/**
 * CEL (Common Expression Language) for `evaluate` steps and `if` conditions, by
 * @marcbachmann/cel-js: a parser and tree-walking evaluator with no access to JavaScript (no
 * `eval`, no `Function`, property access only on a value's own data). What an expression sees:
 * `inputs`, `steps.<id>.output`, `steps.<id>.status`, `item` and `index` (inside a forEach).
 *
 * CEL has no loops, only comprehensions over finite lists, so every expression ends; what is
 * left to bound is how long and how big. Limits, checked before anything runs:
 * - the source: at most {@link CEL_LIMITS.sourceChars} characters, {@link CEL_LIMITS.astNodes}
 *   nodes, nesting depth {@link CEL_LIMITS.depth};
 * - comprehensions (`map`, `filter`, `all`, `exists`, `exists_one`) nested at most
 *   {@link CEL_LIMITS.comprehensionNesting} deep;
 * - the scope: at most {@link CEL_LIMITS.scopeValues} values in all;
 * - an estimated cost (nodes x the longest list in the scope to the power of the nesting, x 2 per
 *   `+` since a `+` can double a list) under {@link CEL_LIMITS.cost}, so a quadratic expression
 *   over a large output is refused before it starts, not after it has held the event loop.
 * Evaluation is synchronous and cannot be pre-empted; an evaluation that still took longer than
 * {@link CEL_LIMITS.timeMs} fails with `EXPRESSION_TIMEOUT` rather than passing its result on.
 *
 * Numbers: JSON numbers that are whole become CEL `int` (so `inputs.count + 1` works), others
 * `double`; CEL's `int` comes back from cel-js as a BigInt and leaves here as a JSON number (a
 * string when beyond 2^53), bytes as base64, timestamps as ISO strings, durations as `"3600s"`.
 */

export const CEL_LIMITS = Object.freeze({
  sourceChars: 4096,
  astNodes: 512,
  depth: 32,
  comprehensionNesting: 2,
  scopeValues: 200_000,
  cost: 5_000_000,
  timeMs: 250,
});

export const CelCode = {
  Invalid: 'EXPRESSION_INVALID',
  Failed: 'EXPRESSION_FAILED',
  TooCostly: 'EXPRESSION_TOO_COSTLY',
  Timeout: 'EXPRESSION_TIMEOUT',
} as const;

const COMPREHENSIONS = new Set(['map', 'filter', 'all', 'exists', 'exists_one']);

const env = new Environment({
  homogeneousAggregateLiterals: false,
  limits: { maxAstNodes: CEL_LIMITS.astNodes, maxDepth: CEL_LIMITS.depth, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 },
})
  .registerVariable('inputs', 'map')
  .registerVariable('steps', 'map')
  .registerVariable('item', 'dyn')
  .registerVariable('index', 'int');

type Compiled = ReturnType<typeof env.parse>;

interface Shape {
  nodes: number;
  nesting: number;
  pluses: number;
}

/** The first line of a cel-js message, and where in the source it points (its message repeats the source with a caret). */
function describe(err: unknown): string {
  const e = err as { message?: string; range?: { start: number } };
  const first = String(e.message ?? err).split('\n')[0]!;
  return e.range ? `${first} (at column ${e.range.start + 1})` : first;
}

function shapeOf(ast: ASTNode): Shape {
  const shape: Shape = { nodes: 0, nesting: 0, pluses: 0 };
  const walk = (node: unknown, depth: number): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n, depth);
      return;
    }
    const n = node as ASTNode;
    if (typeof n.op !== 'string') return;
    shape.nodes++;
    if (n.op === '+') shape.pluses++;
    if (n.op === 'rcall' && COMPREHENSIONS.has((n.args as unknown as [string])[0])) {
      const [, target, args] = n.args as [string, ASTNode, ASTNode[]];
      walk(target, depth);
      shape.nesting = Math.max(shape.nesting, depth + 1);
      for (const a of args) walk(a, depth + 1);
      return;
    }
    if (n.op === 'value' || n.op === 'id') return;
    walk(n.args, depth);
  };
  walk(ast, 0);
  return shape;
}

const cache = new Map<string, { compiled: Compiled; shape: Shape }>();
const CACHE_MAX = 2000;

function compile(expression: string): { compiled: Compiled; shape: Shape } {
  if (typeof expression !== 'string' || expression.trim() === '') throw new StepError(CelCode.Invalid, 'an expression must be a non-empty string', false);
  if (expression.length > CEL_LIMITS.sourceChars) {
    throw new StepError(CelCode.Invalid, `the expression is ${expression.length} characters long; at most ${CEL_LIMITS.sourceChars} are allowed`, false);
  }
  const hit = cache.get(expression);
  if (hit) return hit;
  let compiled: Compiled;
  try {
    compiled = env.parse(expression);
  } catch (err) {
    throw new StepError(CelCode.Invalid, `invalid expression: ${describe(err)}`, false);
  }
  const checked = compiled.check();
  if (!checked.valid) throw new StepError(CelCode.Invalid, `invalid expression: ${describe(checked.error)}`, false);
  const shape = shapeOf(compiled.ast);
  if (shape.nesting > CEL_LIMITS.comprehensionNesting) {
    throw new StepError(CelCode.TooCostly, `comprehensions (map, filter, all, exists) are nested ${shape.nesting} deep; at most ${CEL_LIMITS.comprehensionNesting} are allowed`, false);
  }
  const entry = { compiled, shape };
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(expression, entry);
  return entry;
}

/** Checks syntax, types against the scope's shape, and the static limits; throws `EXPRESSION_INVALID` or `EXPRESSION_TOO_COSTLY`. */
export function checkCel(expression: string): void {
  compile(expression);
}

interface Converted {
  values: number;
  longest: number;
}

/**
 * The scope as CEL values: fresh null-prototype-free plain data (own enumerable properties only,
 * so nothing reached through a getter or a prototype comes along), whole numbers as BigInt.
 */
function toCel(value: unknown, stats: Converted): unknown {
  if (++stats.values > CEL_LIMITS.scopeValues) {
    throw new StepError(CelCode.TooCostly, `the expression's scope holds more than ${CEL_LIMITS.scopeValues} values`, false);
  }
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'object': {
      if (Array.isArray(value)) {
        stats.longest = Math.max(stats.longest, value.length);
        return value.map((v) => toCel(v, stats));
      }
      if (value instanceof Date) return value;
      if (value instanceof Uint8Array) return value;
      const out: Record<string, unknown> = {};
      const keys = Object.keys(value);
      stats.longest = Math.max(stats.longest, keys.length);
      for (const k of keys) out[k] = toCel((value as Record<string, unknown>)[k], stats);
      return out;
    }
    default:
      return null; // functions and symbols never reach an expression
  }
}

/** A CEL result as JSON: BigInt to number (or string beyond 2^53), bytes to base64, timestamps to ISO. */
export function toJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'string':
    case 'boolean':
      return value;
    case 'object': {
      if (Array.isArray(value)) return value.map(toJson);
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toJson(v)]));
      const ctor = (value as object).constructor?.name;
      if (ctor === 'UnsignedInteger' && 'value' in value) return toJson((value as { value: unknown }).value);
      if (ctor === 'Duration' || String((value as object).constructor?.name).endsWith('Duration')) {
        const d = value as { seconds?: number | bigint; nanos?: number };
        if (d.seconds !== undefined) return `${Number(d.seconds) + (d.nanos ?? 0) / 1e9}s`;
      }
      if (ctor === 'Type' || ctor === 'TypeDeclaration') return String(value);
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(value)) out[k] = toJson((value as Record<string, unknown>)[k]);
      return out;
    }
    default:
      return null;
  }
}

/** Evaluates an expression over a step scope; the result is JSON. */
export function evaluateCel(expression: string, scope: StepScope): unknown {
  return evaluate(expression, scope, true);
}

/**
 * {@link evaluateCel} without the wall-clock check, for the execution actor's own transition
 * (`../instant.ts`), which must be deterministic: the same expression over the same scope gives
 * the same answer on every node and on replay. Nothing unbounded is lost: the static limits
 * (source length, AST nodes and depth, comprehension nesting, scope size, the estimated cost)
 * are all checked before anything runs, and they are what bounds the work; `timeMs` is only a
 * backstop for a misestimate. `spent.values` grows by the scope values converted for CEL (the
 * bulk of an evaluation's work over a large scope, and a count, so deterministic too).
 */
export function evaluateCelStatic(expression: string, scope: StepScope, spent?: { values: number }): unknown {
  return evaluate(expression, scope, false, spent);
}

function evaluate(expression: string, scope: StepScope, timed: boolean, spent?: { values: number }): unknown {
  const { compiled, shape } = compile(expression);
  const stats: Converted = { values: 0, longest: 1 };
  try {
    return run(compiled, shape, scope, stats, timed);
  } finally {
    if (spent) spent.values += stats.values;
  }
}

function run(compiled: Compiled, shape: Shape, scope: StepScope, stats: Converted, timed: boolean): unknown {
  const context = {
    inputs: toCel(scope.inputs ?? {}, stats),
    steps: toCel(scope.steps ?? {}, stats),
    item: toCel(scope.item, stats),
    index: BigInt(scope.index ?? 0),
  };
  const range = stats.longest * 2 ** Math.min(shape.pluses, 30);
  const cost = shape.nodes * range ** shape.nesting;
  if (cost > CEL_LIMITS.cost) {
    throw new StepError(
      CelCode.TooCostly,
      `the expression could take about ${cost.toExponential(1)} operations over this data (a list of ${stats.longest}, comprehensions nested ${shape.nesting} deep); the limit is ${CEL_LIMITS.cost.toExponential(0)}`,
      false,
    );
  }
  const started = timed ? performance.now() : 0;
  let result: unknown;
  try {
    result = compiled(context);
  } catch (err) {
    if (err instanceof RangeError) throw new StepError(CelCode.TooCostly, `the expression ran out of room: ${err.message}`, false);
    throw new StepError(CelCode.Failed, `the expression failed: ${describe(err)}`, false);
  }
  if (result instanceof Promise) throw new StepError(CelCode.Failed, 'the expression did not evaluate synchronously', false);
  const took = timed ? performance.now() - started : 0;
  if (took > CEL_LIMITS.timeMs) {
    throw new StepError(CelCode.Timeout, `the expression took ${Math.round(took)} ms; the limit is ${CEL_LIMITS.timeMs} ms`, false);
  }
  return toJson(result);
}
