import { connect, type NatsConnection } from '@nats-io/transport-node';
import { sagaType, type SagaContext } from '../../../machines/saga/index.js';
import type { Database } from '../../../runtime/db.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { createServices, type Services } from '../../../services/index.js';
import type { SagaIntake, SagaService } from '../../../services/saga/index.js';
import { orderData, type OrderRequest } from '../../../services/saga/order.js';
import { BusLink, NatsServiceLink } from '../../../simulator/links.js';
import { ServiceSimulator, type SimulatorBehavior } from '../../../simulator/services.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { natsEnv } from '../../helpers/nats.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

/** Short timings so timeouts, retries and compensations run in test time. */
export const FAST = {
  SAGA_STEP_TIMEOUTS: 'INVENTORY_RESERVATION=PT0.4S,PAYMENT_PROCESSING=PT0.4S,DELIVERY_SCHEDULING=PT0.4S,NOTIFICATION_SENDING=PT0.4S',
  SAGA_RETRY_INITIAL_INTERVAL: 'PT0.05S',
  SAGA_RETRY_MAX_INTERVAL: 'PT0.2S',
  SAGA_COMPENSATION_TIMEOUT: 'PT0.4S',
  SAGA_COMPENSATION_MAX_RETRIES: '2',
};

export interface SagaHarness {
  database: Database;
  runtime: Runtime;
  services: Services;
  sagas: SagaService;
  sim: ServiceSimulator;
  intake: SagaIntake;
  servicePrefix: string;
  nc?: NatsConnection;
  /** Waits until the saga reaches one of `statuses` and returns its context. */
  settle(workflowId: string, statuses: string[], timeoutMs?: number): Promise<SagaContext>;
  close(): Promise<void>;
}

/**
 * Concord (runtime + saga intake) and the simulated services over one fresh database: embedded
 * (in-process bus) by default, or over NATS with a prefix of its own.
 */
export async function sagaHarness(o: { env?: Record<string, string>; behavior?: SimulatorBehavior; nats?: { url: string; prefix: string }; seed?: number } = {}): Promise<SagaHarness> {
  const database = await freshDatabase();
  const servicePrefix = o.nats ? `${o.nats.prefix}svc` : 'svc';
  const env = { ...(o.nats ? natsEnv(o.nats.url, o.nats.prefix) : {}), SAGA_SERVICE_PREFIX: servicePrefix, ...o.env };
  const runtime = await testRuntime(database, { types: [sagaType], env });
  const services = createServices({ runtime, log: testLog, run: { events: false } });
  await runtime.start();
  await services.start();
  const { sagas, sagaIntake: intake } = services;
  let nc: NatsConnection | undefined;
  let link;
  if (o.nats) {
    nc = await connect({ servers: o.nats.url });
    link = new NatsServiceLink(nc, { natsPrefix: o.nats.prefix, servicePrefix, log: testLog });
  } else {
    link = new BusLink(runtime.bus, servicePrefix, testLog);
  }
  const sim = new ServiceSimulator({ link, servicePrefix, log: testLog, seed: o.seed ?? 7, ...o.behavior });
  await sim.start();
  return {
    database,
    runtime,
    services,
    sagas,
    sim,
    intake,
    servicePrefix,
    nc,
    async settle(workflowId, statuses, timeoutMs = 20_000) {
      return waitFor(`${workflowId} in ${statuses.join('|')}`, async () => {
        const ctx = await sagas.context(workflowId).catch(() => null);
        return ctx && statuses.includes(ctx.status) ? ctx : null;
      }, timeoutMs);
    },
    async close() {
      await sim.stop();
      await services.stop();
      await runtime.stop();
      await nc?.close();
      await database.close();
    },
  };
}

let n = 0;
/** An order request as the spec shows it, with a fresh orderId. */
export function order(overrides: Partial<OrderRequest> = {}): OrderRequest {
  n += 1;
  return {
    orderId: `order-${process.pid}-${n}-${Math.random().toString(36).slice(2, 8)}`,
    customerId: '123e4567-e89b-12d3-a456-426614174000',
    items: [{ productId: '789e0123-e89b-12d3-a456-426614174000', quantity: 2, price: 29.99 }],
    paymentMethod: { type: 'CREDIT_CARD', token: 'tok_1234567890' },
    shippingAddress: { street: '123 Main St', city: 'New York', state: 'NY', zipCode: '10001', country: 'US' },
    ...overrides,
  };
}

export const startOrder = (h: SagaHarness, o: OrderRequest = order()) => h.sagas.start('ORDER_FULFILLMENT', orderData(o));

/** Concord's own events, collected from the in-process bus. */
export function collectEvents(h: SagaHarness): Array<{ subject: string; data: Record<string, unknown> }> {
  const out: Array<{ subject: string; data: Record<string, unknown> }> = [];
  h.runtime.bus.subscribe(`${h.runtime.config.nats.prefix}.events.>`, (m) => {
    out.push({ subject: m.subject, data: m.data as Record<string, unknown> });
  });
  return out;
}
