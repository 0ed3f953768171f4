import { parseDuration } from '../../machines/lib/duration.js';
import type { CronSpec } from '../../machines/playbook/schedule.js';
import type { CompiledStep, StepRetry } from '../../machines/playbook/types.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { PlaybookDef, StepDef } from './schema.js';
import { STEP_TYPES } from './steps/types.js';
import { inputTypeError } from './validate.js';

/**
 * A valid playbook to what an execution runs: the steps of the shared step engine, numbered,
 * dependencies as numbers, policies in milliseconds, defaults filled in.
 */

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_PARALLELISM = 4;
/** `onError: retry` (the default) without a `retry` block retries like this. */
const DEFAULT_RETRY: StepRetry = { maxAttempts: 3, initialMs: 1_000, factor: 2, maxMs: 30_000, on: null };

function retryOf(s: StepDef): StepRetry {
  if (!s.retry) return (s.onError ?? 'retry') === 'retry' ? DEFAULT_RETRY : { ...DEFAULT_RETRY, maxAttempts: 1 };
  const b = s.retry.backoff;
  return {
    maxAttempts: s.retry.maxAttempts,
    initialMs: b ? parseDuration(b.initial) : DEFAULT_RETRY.initialMs,
    factor: b?.factor ?? DEFAULT_RETRY.factor,
    maxMs: b ? parseDuration(b.max) : DEFAULT_RETRY.maxMs,
    on: s.retry.on ?? null,
  };
}

export function compileSteps(def: PlaybookDef): CompiledStep[] {
  const blocks = [
    { phase: 'main' as const, steps: def.steps },
    { phase: 'finally' as const, steps: def.finally ?? [] },
  ];
  const numbers = new Map<string, number>();
  let n = 0;
  for (const b of blocks) for (const s of b.steps) numbers.set(s.id, ++n);
  return blocks.flatMap((b) =>
    b.steps.map((s) => {
      const type = STEP_TYPES.find((t) => s[t] !== undefined)!;
      return {
        id: s.id,
        stepNumber: numbers.get(s.id)!,
        dependencies: (s.dependsOn ?? []).map((d) => numbers.get(d)!),
        phase: b.phase,
        type,
        spec: s[type],
        if: s.if ?? null,
        forEach: s.forEach ?? null,
        timeoutMs: s.timeout ? parseDuration(s.timeout) : DEFAULT_TIMEOUT_MS,
        retry: retryOf(s),
        onError: s.onError ?? 'retry',
      };
    }),
  );
}

/** The playbook's cron trigger in the schedule actor's terms; null without one. */
export function cronOf(def: PlaybookDef): CronSpec | null {
  const c = def.triggers?.find((t) => t.cron)?.cron;
  return c ? { schedule: c.schedule, timezone: c.timezone, overlap: c.overlap, catchUp: c.catchUp, catchUpWindowMs: parseDuration(c.catchUpWindow) } : null;
}

export const hasTrigger = (def: PlaybookDef, kind: 'manual' | 'cron' | 'webhook' | 'nats'): boolean =>
  // a playbook that names no triggers can be run by hand
  kind === 'manual' && !def.triggers?.length ? true : (def.triggers ?? []).some((t) => t[kind] !== undefined);

/**
 * Inputs as given, checked against the declared ones: unknown names, wrong types and missing
 * required ones are a VALIDATION_FAILED; defaults fill in the rest.
 */
export function resolveInputs(def: PlaybookDef, given: unknown): Record<string, unknown> {
  const issues: Array<{ path: string[]; message: string }> = [];
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw new DomainError(DomainCode.ValidationFailed, 'inputs must be an object', { issues: [{ path: ['inputs'], message: 'must be an object' }] });
  }
  const g = (given ?? {}) as Record<string, unknown>;
  const declared = def.inputs ?? {};
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(g)) if (!(k in declared)) issues.push({ path: ['inputs', k], message: `unknown input '${k}'` });
  for (const [k, d] of Object.entries(declared)) {
    const v = Object.prototype.hasOwnProperty.call(g, k) ? g[k] : d.default;
    if (v === undefined) {
      if (d.required) issues.push({ path: ['inputs', k], message: 'required' });
      continue;
    }
    const why = inputTypeError(d.type, v, d.enum);
    if (why) issues.push({ path: ['inputs', k], message: why });
    else out[k] = v;
  }
  if (issues.length > 0) throw new DomainError(DomainCode.ValidationFailed, `invalid inputs: ${issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`, { issues });
  return out;
}
