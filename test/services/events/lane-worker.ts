/**
 * A child process for the kill -9 tests of lanes (lanes-crash.test.ts): one event delivery worker
 * over DATABASE_URL and NATS_URL (the config from the environment), whose publishes are acked
 * slowly (LANE_WORKER_ACK_DELAY_MS after the message is stored), so a SIGKILL lands with lane
 * batches published and not yet recorded. With LANE_WORKER_HTTP=1 it has no messaging channel:
 * it POSTs to the targets' registered endpoints (the test's receiver answers slowly instead).
 * Prints `ready` once started.
 */
import { connect } from '@nats-io/transport-node';
import { systemClock } from '../../../runtime/clock.js';
import { loadConfig } from '../../../runtime/config.js';
import { createPool } from '../../../runtime/db.js';
import { natsDeliverPublisher } from '../../../services/events/channel.js';
import { EventDeliveryWorker, type DeliverPublisher } from '../../../services/events/worker.js';
import { testLog } from '../../helpers/runtime.js';

const config = loadConfig(process.env);
const pool = createPool(config.databaseUrl!, 4, 'lane-worker');
if (process.env.LANE_WORKER_HTTP === '1') {
  new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: testLog, endpointLaneBatch: Number(process.env.LANE_WORKER_BATCH ?? 16) }).start();
  console.log('ready');
  await new Promise(() => undefined);
}
const nc = await connect({ servers: config.natsUrl! });
const real = await natsDeliverPublisher(nc, config.nats, testLog);
const delay = Number(process.env.LANE_WORKER_ACK_DELAY_MS ?? 20);
const slow: DeliverPublisher = async (...args) => {
  await real(...args);
  await new Promise((r) => setTimeout(r, delay));
};
const worker = new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: testLog, publish: slow, laneBatch: Number(process.env.LANE_WORKER_BATCH ?? 16) });
worker.start();
console.log('ready');
