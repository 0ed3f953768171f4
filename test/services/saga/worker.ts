/**
 * Concord in a child process for the saga crash test: the runtime with the NATS transport, the
 * saga type and the saga intake (OrderCreatedEvent). Prints `ready` once started; runs until
 * it is killed. Configured by the environment the test passes.
 */
import { sagaType } from '../../../machines/saga/index.js';
import { loadConfig } from '../../../runtime/config.js';
import { createLogger } from '../../../runtime/logger.js';
import { Registry } from '../../../runtime/registry.js';
import { createRuntime } from '../../../runtime/runtime.js';
import { createServices } from '../../../services/index.js';

const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', PARTITIONS: process.env.PARTITIONS ?? '4', TIMER_POLL_MS: '100', DB_POOL_SIZE: '10' });
const log = createLogger(process.env.WORKER_LOG_LEVEL ?? 'silent');
const runtime = await createRuntime({ config, registry: new Registry([sagaType]), log });
const services = createServices({ runtime, log, run: { events: false, housekeeping: false } });
await runtime.start();
await services.start();
process.stdout.write('ready\n');
