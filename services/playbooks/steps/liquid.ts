import { Liquid, type Template } from 'liquidjs';
import { StepError, type StepScope } from './types.js';

/**
 * Liquid for `template` steps, by liquidjs: an interpreter (templates are parsed to a tree and
 * walked, never compiled to JavaScript). Configured so a template reaches only the data it is
 * given: `ownPropertyOnly` (no `constructor`, `__proto__` or anything inherited),
 * `strictVariables` and `strictFilters` (an unknown name is an error, not an empty string), and
 * an empty in-memory template map, so `include`, `render` and `layout` never touch the disk.
 * The scope is copied to plain JSON data first, so no getter or class instance comes along.
 *
 * Limits: {@link LIQUID_LIMITS}: the source's length (liquidjs `parseLimit`), render time
 * (`renderLimit`), the objects a render may create (`memoryLimit`, which counts joins, concats,
 * string building) and the output's length.
 */

export const LIQUID_LIMITS = Object.freeze({
  sourceChars: 65_536,
  renderMs: 1_000,
  memory: 10_000_000,
  outputChars: 1_048_576,
});

export const TemplateCode = {
  Invalid: 'TEMPLATE_INVALID',
  Failed: 'TEMPLATE_FAILED',
  TooLarge: 'TEMPLATE_TOO_LARGE',
  Timeout: 'TEMPLATE_TIMEOUT',
  Aborted: 'TEMPLATE_ABORTED',
} as const;

export type Escape = 'none' | 'html';

const engineOptions = {
  ownPropertyOnly: true,
  strictVariables: true,
  strictFilters: true,
  templates: {} as Record<string, string>,
  relativeReference: false,
  dynamicPartials: false,
  jsTruthy: false,
  parseLimit: LIQUID_LIMITS.sourceChars,
  renderLimit: LIQUID_LIMITS.renderMs,
  memoryLimit: LIQUID_LIMITS.memory,
  cache: false,
  timezoneOffset: 'UTC',
} as const;

const engines: Record<Escape, Liquid> = {
  none: new Liquid({ ...engineOptions }),
  html: new Liquid({ ...engineOptions, outputEscape: 'escape' }),
};

function message(err: unknown): string {
  const e = err as { message?: string; name?: string };
  return String(e.message ?? err).split('\n')[0]!;
}

function parse(source: string, escape: Escape): Template[] {
  if (typeof source !== 'string') throw new StepError(TemplateCode.Invalid, 'a template source must be a string', false);
  if (source.length > LIQUID_LIMITS.sourceChars) {
    throw new StepError(TemplateCode.TooLarge, `the template is ${source.length} characters long; at most ${LIQUID_LIMITS.sourceChars} are allowed`, false);
  }
  try {
    return engines[escape].parse(source);
  } catch (err) {
    throw new StepError(TemplateCode.Invalid, `invalid template: ${message(err)}`, false);
  }
}

/** Checks a template's syntax and size; throws `TEMPLATE_INVALID` or `TEMPLATE_TOO_LARGE`. */
export function checkTemplate(source: string): void {
  parse(source, 'none');
}

/** Plain JSON data: own enumerable properties only, no functions, no class instances. */
function plain(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown;
}

/**
 * Renders a template over a step scope. `escape: 'html'` escapes every output (`| raw` opts out).
 * Aborting `signal` stops waiting for the render (liquidjs's own `renderLimit` stops the render).
 */
export async function renderTemplate(source: string, scope: StepScope, o: { escape?: Escape; signal?: AbortSignal } = {}): Promise<string> {
  const escape = o.escape ?? 'none';
  const templates = parse(source, escape);
  const data = {
    inputs: plain(scope.inputs ?? {}),
    steps: plain(scope.steps ?? {}),
    ...(scope.item !== undefined ? { item: plain(scope.item) } : {}),
    ...(scope.index !== undefined ? { index: scope.index } : {}),
  };
  if (o.signal?.aborted) throw new StepError(TemplateCode.Aborted, 'the render was cancelled', true);
  const render = engines[escape].render(templates, data) as Promise<unknown>;
  let output: unknown;
  try {
    output = o.signal ? await abortable(render, o.signal) : await render;
  } catch (err) {
    if (err instanceof StepError) throw err;
    const text = message(err);
    if (/template render limit exceeded/i.test(text)) throw new StepError(TemplateCode.Timeout, `the template took longer than ${LIQUID_LIMITS.renderMs} ms`, false);
    if (/memory alloc limit exceeded/i.test(text)) throw new StepError(TemplateCode.TooLarge, 'the template built more than its memory limit allows', false);
    throw new StepError(TemplateCode.Failed, `the template failed: ${text}`, false);
  }
  const text = String(output);
  if (text.length > LIQUID_LIMITS.outputChars) {
    throw new StepError(TemplateCode.TooLarge, `the rendered text is ${text.length} characters long; at most ${LIQUID_LIMITS.outputChars} are allowed`, false);
  }
  return text;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new StepError(TemplateCode.Aborted, 'the render was cancelled', true));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
