import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { BusMessage } from '../../runtime/bus.js';
import { isConcordError, ErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { natsNames } from '../../runtime/nats/subjects.js';
import type { Runtime } from '../../runtime/runtime.js';
import { IdempotentConsumer } from './jetstream.js';
import { OrderCreatedEvent, orderData } from './order.js';
import type { SagaService } from './service.js';
import { TRACEPARENT } from '../../runtime/tracing.js';

const decoder = new TextDecoder();

/**
 * What reaches sagas from services.
 *
 * - `OrderCreatedEvent` on `<svc>.events.OrderCreatedEvent` starts an ORDER_FULFILLMENT saga,
 *   once per orderId (the workflow id is derived from it). With NATS a durable consumer
 *   (`saga-intake`, shared by every process) reads it; embedded, an in-process subscription.
 * - Service replies: with NATS the transport's service router delivers them by correlation id
 *   (the command id). Embedded, this class does the same: it looks the command id up and sends
 *   the event to the saga, deduped by `eventId`, with `type` taken from the subject when the
 *   payload has none.
 */
export class SagaIntake {
  #offBus: Array<() => void> = [];
  #consumer: IdempotentConsumer | undefined;
  readonly #prefix: string;

  constructor(
    private readonly runtime: Runtime,
    private readonly sagas: SagaService,
    private readonly log: Logger,
  ) {
    this.#prefix = runtime.config.saga.servicePrefix;
  }

  /** Call after `runtime.start()` (the NATS connection must be up). */
  async start(): Promise<void> {
    const nats = this.runtime.nats;
    const orderSubject = `${this.#prefix}.events.OrderCreatedEvent`;
    if (nats?.link) {
      const nc = nats.link.nc;
      this.#consumer = new IdempotentConsumer({
        js: jetstream(nc),
        jsm: await jetstreamManager(nc),
        stream: natsNames(this.runtime.config.nats.prefix).serviceStream,
        durable: 'saga-intake',
        filter: orderSubject,
        log: this.log,
        handle: async (m: JsMsg) => this.#orderCreated(parse(decoder.decode(m.data))),
      });
      await this.#consumer.start();
      return;
    }
    this.#offBus.push(
      this.runtime.bus.subscribe(`${this.#prefix}.events.>`, async (msg: BusMessage) => {
        if (msg.subject === orderSubject) await this.#orderCreated(msg.data);
        else await this.#reply(msg);
      }),
    );
  }

  async stop(): Promise<void> {
    for (const off of this.#offBus) off();
    this.#offBus = [];
    await this.#consumer?.stop();
    this.#consumer = undefined;
  }

  async #orderCreated(data: unknown): Promise<void> {
    const parsed = OrderCreatedEvent.safeParse(data);
    if (!parsed.success) {
      // a malformed event can never start a saga: log it and let it go
      this.log.warn({ issues: parsed.error.issues }, 'OrderCreatedEvent ignored: it does not match the contract');
      return;
    }
    const r = await this.sagas.start('ORDER_FULFILLMENT', orderData(parsed.data));
    this.log.debug({ workflowId: r.workflowId, orderId: parsed.data.orderId, created: r.created }, 'OrderCreatedEvent');
  }

  async #reply(msg: BusMessage): Promise<void> {
    const payload = msg.data as Record<string, unknown> | null;
    const commandId = payload && typeof payload.commandId === 'string' ? payload.commandId : null;
    if (!commandId) {
      this.log.warn({ subject: msg.subject }, 'service event without commandId ignored');
      return;
    }
    const ref = await this.runtime.host.correlations.lookup(commandId);
    if (!ref) {
      this.log.warn({ subject: msg.subject, commandId }, 'service event for an unknown command ignored');
      return;
    }
    const type = typeof payload!.type === 'string' ? payload!.type : msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const messageId = typeof payload!.eventId === 'string' ? payload!.eventId : msg.messageId;
    try {
      await this.runtime.host.send(ref, { ...payload, type }, { messageId, traceparent: msg.headers[TRACEPARENT] });
    } catch (err) {
      if (isConcordError(err, ErrorCode.EventRejected) || isConcordError(err, ErrorCode.ActorNotFound)) {
        this.log.warn({ err, ref, type }, 'service event not accepted');
        return;
      }
      throw err; // retried by the publisher
    }
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
