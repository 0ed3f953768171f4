import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { credentialKey } from '../../../../runtime/config.js';
import { ManualClock } from '../../../../runtime/clock.js';
import type { Database } from '../../../../runtime/db.js';
import { createLogger } from '../../../../runtime/logger.js';
import { CredentialVault, KeyRing } from '../../../../services/integrations/vault.js';
import { TemplateStore } from '../../../../services/playbooks/templates.js';
import { createStepRunners, type CommunicateOptions, type StepRunContext, type StepScope } from '../../../../services/playbooks/steps/index.js';

/** Every line logged through `log`, for "no secret in the logs" checks. */
export const logLines: string[] = [];
export const log = createLogger(
  'trace',
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  }),
);

/** One key for every vault the tests build over a database (as one process would have). */
const KEY = credentialKey('k1', randomBytes(32));

export function stepsOver(database: Database, o: { allowPrivateTargets?: boolean; providers?: CommunicateOptions } = {}) {
  const clock = new ManualClock(Date.now());
  const vault = new CredentialVault(database.pool, new KeyRing([KEY]), log);
  const templates = new TemplateStore(database.pool);
  const runners = createStepRunners({ pool: database.pool, vault, templates, clock, webhooks: { allowPrivateTargets: o.allowPrivateTargets ?? true, timeoutMs: 2000 }, providers: o.providers });
  return { clock, vault, templates, runners };
}

/** A run context as the engine gives one; `lines` collects the step's log. */
export function ctxOf(tenantId: string, o: Partial<StepRunContext> = {}): StepRunContext & { lines: Array<{ message: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ message: string; fields?: Record<string, unknown> }> = [];
  return {
    tenantId,
    executionId: 'exec-1',
    stepId: 'step-1',
    idempotencyKey: `playbook-execution/exec-1/step-1#${randomBytes(4).toString('hex')}`,
    attempt: 1,
    signal: new AbortController().signal,
    log: (message, fields) => {
      lines.push({ message, ...(fields ? { fields } : {}) });
      log.info({ ...fields }, message);
    },
    lines,
    ...o,
  };
}

export const emptyScope: StepScope = { inputs: {}, steps: {} };

/** The StepError an async call fails with (or 'resolved'). */
export async function failure(p: Promise<unknown>): Promise<{ code: string; retryable: boolean; retryAfterMs?: number; message: string } | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    const e = err as { code: string; retryable: boolean; retryAfterMs?: number; message: string; name: string };
    if (e.name !== 'StepError') throw err;
    return { code: e.code, retryable: e.retryable, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}), message: e.message };
  }
}
