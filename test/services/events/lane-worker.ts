/**
 * A child process for the kill -9 test of lanes (lanes-crash.test.ts): one event delivery worker
 * over DATABASE_URL and NATS_URL (the config from the environment), whose publishes are acked
 * slowly (LANE_WORKER_ACK_DELAY_MS after the message is stored), so a SIGKILL lands with lane
 * batches published and not yet recorded. Prints `ready` once started.
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
