import type { CallContext } from '../../connectors/kit/contract.js';
import type { Clock } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/logger.js';
import type { LogLine, StepOutcome } from '../../machines/playbook/types.js';
import { StepError, type Expressions, type StepRunner, type StepScope } from './steps/types.js';

/**
 * Carries out one attempt of a playbook step for the execution actor: its `if`, its `forEach`,
 * then the runner of its type, bounded by the step's per-attempt timeout. Called by the
 * runtime's effect worker as the `playbook` connector's `step` operation, after the attempt's
 * commit; what it answers goes back to the actor as `pbstep.<id>.<attempt>.done`. It never
 * throws: every failure is an answer with a code and whether a retry can help, and the lines the
 * runner logged.
 */

export interface StepCall {
  tenant: string | null;
  executionId: string;
  stepId: string;
  type: string;
  spec: unknown;
  if: string | null;
  forEach: string | null;
  attempt: number;
  timeoutMs: number;
  idempotencyKey: string;
  scope: StepScope;
}

/** Largest output kept with the execution (it lives in the actor's snapshot). */
export const MAX_OUTPUT_BYTES = 256 * 1024;
/** Items of a `forEach`, log lines and characters per line of an attempt (also `./instant.ts`). */
export const MAX_ITEMS = 1_000;
export const MAX_LOG_LINES = 100;
export const MAX_LOG_CHARS = 2_000;

/** Outputs are stored as JSON: CEL's BigInt integers become numbers (strings beyond 2^53). */
export function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  return value;
}

export class StepWork {
  /** Attempts running in this process, by `<executionId>/<stepId>`: an abort reaches them. */
  readonly #running = new Map<string, AbortController>();

  constructor(
    private readonly runners: Partial<Record<string, StepRunner>>,
    private readonly expressions: Expressions | undefined,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get running(): number {
    return this.#running.size;
  }

  /** Aborts the attempts of an execution's steps that run here. */
  abort(executionId: string, stepIds: readonly string[]): number {
    let n = 0;
    for (const id of stepIds) {
      const c = this.#running.get(`${executionId}/${id}`);
      if (c) {
        c.abort(new StepError('CANCELLED', 'the execution was cancelled or aborted', false));
        n += 1;
      }
    }
    return n;
  }

  /** Aborts everything (shutdown): the attempts answer nothing; their calls run again after a restart. */
  abortAll(): void {
    for (const c of this.#running.values()) c.abort(new StepError('SHUTDOWN', 'shutting down', true));
  }

  async run(call: StepCall, ctx: CallContext): Promise<StepOutcome> {
    const logs: LogLine[] = [];
    const log = (message: string, fields?: Record<string, unknown>) => {
      if (logs.length >= MAX_LOG_LINES) return;
      logs.push({ at: new Date(this.clock.now()).toISOString(), attempt: call.attempt, message: String(message).slice(0, MAX_LOG_CHARS), ...(fields ? { fields } : {}) });
    };
    const key = `${call.executionId}/${call.stepId}`;
    const controller = new AbortController();
    this.#running.get(key)?.abort(new StepError('SUPERSEDED', 'a newer attempt started', false));
    this.#running.set(key, controller);
    const onOuter = () => controller.abort(new StepError('TIMEOUT', 'the runtime gave up on the call', true));
    ctx.signal?.addEventListener('abort', onOuter, { once: true });
    const timer = setTimeout(() => controller.abort(new StepError('TIMEOUT', `the step did not finish within ${call.timeoutMs} ms (attempt ${call.attempt})`, true)), call.timeoutMs);
    const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }));
    aborted.catch(() => undefined);
    try {
      const work = this.#work(call, controller.signal, log);
      const output = await Promise.race([work, aborted]);
      if ('skipped' in output) return { ...output, logs };
      const text = JSON.stringify(output.output ?? null, jsonSafe);
      const size = Buffer.byteLength(text);
      if (size > MAX_OUTPUT_BYTES) throw new StepError('OUTPUT_TOO_LARGE', `the step's output is ${size} bytes; at most ${MAX_OUTPUT_BYTES}`, false);
      return { ok: true, output: JSON.parse(text) as unknown, logs };
    } catch (err) {
      const e = err instanceof StepError ? err : null;
      if (!e) this.log.warn({ err, executionId: call.executionId, stepId: call.stepId, attempt: call.attempt }, 'playbook step failed');
      const error = e
        ? { code: e.code, message: e.message, retryable: e.retryable }
        : { code: 'STEP_FAILED', message: err instanceof Error ? err.message : String(err), retryable: true };
      log(`failed: ${error.code}: ${error.message}`);
      return { ok: false, error, logs };
    } finally {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onOuter);
      if (this.#running.get(key) === controller) this.#running.delete(key);
    }
  }

  async #work(call: StepCall, signal: AbortSignal, log: (m: string, f?: Record<string, unknown>) => void): Promise<{ ok: true; output: unknown } | { skipped: true; reason: string }> {
    if (call.if !== null) {
      const v = this.#cel(call.if, call.scope);
      if (v !== true) {
        log(`skipped: its condition is ${JSON.stringify(v)}`);
        return { skipped: true, reason: 'condition' };
      }
    }
    const runner = Object.hasOwn(this.runners, call.type) ? this.runners[call.type] : undefined;
    if (!runner) throw new StepError('UNKNOWN_STEP_TYPE', `no runner for step type '${call.type}'`, false);
    const ctx = {
      tenantId: call.tenant ?? '',
      executionId: call.executionId,
      stepId: call.stepId,
      idempotencyKey: call.idempotencyKey,
      attempt: call.attempt,
      signal,
      log,
    };
    if (call.forEach === null) return { ok: true, output: await runner(call.spec, call.scope, ctx) };
    const items = this.#cel(call.forEach, call.scope);
    if (!Array.isArray(items)) throw new StepError('FOREACH_NOT_A_LIST', `forEach gave ${typeof items}, not a list`, false);
    if (items.length > MAX_ITEMS) throw new StepError('FOREACH_TOO_LONG', `forEach gave ${items.length} items; at most ${MAX_ITEMS}`, false);
    const outputs: unknown[] = [];
    // one item after the other, each with its own idempotency key, so a retry's repeats dedupe per item
    for (const [index, item] of items.entries()) {
      if (signal.aborted) throw signal.reason;
      outputs.push(await runner(call.spec, { ...call.scope, item, index }, { ...ctx, idempotencyKey: `${call.idempotencyKey}#${index}` }));
    }
    return { ok: true, output: outputs };
  }

  #cel(expression: string, scope: StepScope): unknown {
    if (!this.expressions) throw new StepError('EXPRESSIONS_UNAVAILABLE', 'this process has no expression engine', false);
    try {
      return this.expressions.evaluateCel(expression, scope);
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError('EXPRESSION', (err as Error).message, false);
    }
  }
}
