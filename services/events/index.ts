import type pg from 'pg';
import type { InProcessBus } from '../../runtime/bus.js';
import type { Clock } from '../../runtime/clock.js';
import type { Config } from '../../runtime/config.js';
import type { Logger } from '../../runtime/logger.js';
import type { NatsTransport } from '../../runtime/nats/transport.js';
import { busDeliverPublisher, natsDeliverPublisher } from './channel.js';
import { EventDeliveryWorker, type DeliverPublisher } from './worker.js';

export { EventDeliveryWorker } from './worker.js';
export { EventService } from './service.js';

/** Cross-integration event delivery as the runtime runs it: the worker and its channel. */
export interface EventDelivery {
  worker: EventDeliveryWorker;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The delivery worker over the runtime's database. Its messaging channel is NATS (stream
 * `<PREFIX>_DELIVER`, provisioned at start) when the transport is on, the in-process bus
 * otherwise; registered HTTP endpoints are posted to in both cases.
 */
export function createEventDelivery(o: { pool: pg.Pool; config: Config; clock: Clock; log: Logger; bus: InProcessBus; nats: NatsTransport | undefined }): EventDelivery {
  let publish: DeliverPublisher = busDeliverPublisher(o.bus, o.config.nats.prefix);
  const worker = new EventDeliveryWorker({
    pool: o.pool,
    config: o.config.events,
    clock: o.clock,
    log: o.log,
    publish: (...args) => publish(...args),
  });
  return {
    worker,
    async start() {
      const link = o.nats?.link;
      if (link) publish = await natsDeliverPublisher(link.nc, o.config.nats, o.log);
      worker.start();
    },
    stop: () => worker.stop(),
  };
}
