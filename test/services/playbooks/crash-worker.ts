/**
 * A runtime with the playbook services in a child process, for the kill -9 test. Its step
 * runners call the parent's counting server (COUNTING_URL). WORKER_MODE=start creates a playbook
 * of three steps in a row and runs it, printing `execution <id>`; any mode prints `ready`.
 */
import type { ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { executionType, scheduleType } from '../../../machines/playbook/index.js';
import { loadConfig } from '../../../runtime/config.js';
import { createLogger } from '../../../runtime/logger.js';
import { Registry } from '../../../runtime/registry.js';
import { createRuntime } from '../../../runtime/runtime.js';
import { createServices } from '../../../services/index.js';
import { KEY_ENV, operator, testRunners } from './kit.js';

const env = process.env;
const out = (line: string) => process.stdout.write(`${line}\n`);
const log = createLogger(env.WORKER_LOG_LEVEL ?? 'silent');
const connectors = new Map<string, ConnectorInvoker>();
const runtime = await createRuntime({
  config: loadConfig({ DATABASE_URL: env.DATABASE_URL, LOG_LEVEL: 'silent', PARTITIONS: '4', TIMER_POLL_MS: '50', OUTBOX_POLL_MS: '50', DB_POOL_SIZE: '8', ...KEY_ENV }),
  registry: new Registry([executionType, scheduleType]),
  log,
  connectors,
});
const services = createServices({ runtime, log, connectors, run: { events: false, sagaIntake: false, housekeeping: false }, playbooks: { runners: testRunners(env.COUNTING_URL!) } });
await runtime.start();
await services.start();
out('ready');
if (env.WORKER_MODE === 'start') {
  const pb = await services.playbooks.create(
    { principal: operator },
    ['name: crash', 'steps:', '  - id: one', '    webhook: { path: /ok/crash-1 }', '  - id: two', '    dependsOn: [one]', '    webhook: { path: /hangonce/crash-2 }', '    timeout: PT5M', '  - id: three', '    dependsOn: [two]', '    webhook: { path: /ok/crash-3 }'].join('\n'),
    'yaml',
  );
  const e = await services.playbooks.execute({ principal: operator }, pb.id, {});
  out(`execution ${e.id}`);
}
process.on('SIGTERM', () => {
  void services
    .stop()
    .then(() => runtime.stop())
    .then(() => process.exit(0));
});
