/**
 * A runtime with the workflow actor in a child process, for the kill-and-resume test.
 * WORKER_MODE=start creates and starts two workflows of three automated connector steps:
 * - `wf-timer`: step 1 fails once (retryable), leaving a durable retry timer; prints `failed wf-timer 1`.
 * - `wf-call`: step 2's connector call never returns; prints `called wf-call 2`.
 * WORKER_MODE=resume runs the same runtime with a connector that always answers at once.
 * Every connector call prints `called <workflow> <step>`.
 */
import { loadConfig } from '../../../runtime/config.js';
import { createLogger } from '../../../runtime/logger.js';
import { Registry } from '../../../runtime/registry.js';
import { createRuntime } from '../../../runtime/runtime.js';
import type { ConnectorInvoker } from '../../../runtime/in-process.js';
import { workflowType, type StepInit } from '../../../machines/workflow/index.js';
import { ConnectorCode, ConnectorError } from '../../../connectors/kit/errors.js';

const env = process.env;
const mode = env.WORKER_MODE ?? 'resume';
const out = (line: string) => process.stdout.write(`${line}\n`);

const ops: ConnectorInvoker = async (_operation, input) => {
  const { workflowId, stepNumber, attempt } = input as { workflowId: string; stepNumber: number; attempt: number };
  out(`called ${workflowId} ${stepNumber}`);
  if (mode === 'start' && workflowId === 'wf-timer' && stepNumber === 1 && attempt === 1) {
    setImmediate(() => out(`failed ${workflowId} ${stepNumber}`));
    throw new ConnectorError(ConnectorCode.Unavailable, 'upstream unavailable');
  }
  if (mode === 'start' && workflowId === 'wf-call' && stepNumber === 2) return new Promise(() => undefined); // hangs until the process dies
  return { done: stepNumber };
};

const runtime = await createRuntime({
  config: loadConfig({ DATABASE_URL: env.DATABASE_URL, LOG_LEVEL: 'silent', PARTITIONS: '4', TIMER_POLL_MS: '50', OUTBOX_POLL_MS: '50', DB_POOL_SIZE: '8' }),
  registry: new Registry([workflowType]),
  log: createLogger(env.WORKER_LOG_LEVEL ?? 'silent'),
  connectors: new Map([['ops', ops]]),
});
await runtime.start();
out('ready');

if (mode === 'start') {
  const steps = (id: string): StepInit[] =>
    [1, 2, 3].map((n) => ({
      id: `${id}-s${n}`,
      stepNumber: n,
      name: `step ${n}`,
      description: null,
      estimatedDuration: 1,
      maxRetries: 2,
      dependencies: n === 1 ? [] : [n - 1],
      configuration: { action: { type: 'connector', connector: 'ops', operation: 'provision' }, retryBackoffMs: 4_000, timeoutMs: 60_000 },
    }));
  for (const id of ['wf-timer', 'wf-call']) {
    const at = new Date().toISOString();
    await runtime.host.send({ type: 'workflow', id }, { type: 'workflow.create', name: id, workflowType: 'DATA_SYNC', steps: steps(id), at, by: 'test' });
    await runtime.host.send({ type: 'workflow', id }, { type: 'workflow.start', at, by: 'test' });
  }
}
