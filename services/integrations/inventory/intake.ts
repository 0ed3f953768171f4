import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { BusMessage } from '../../../runtime/bus.js';
import type { Logger } from '../../../runtime/logger.js';
import { natsNames } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { IdempotentConsumer } from '../../saga/jetstream.js';
import type { InventoryService } from './service.js';

const decoder = new TextDecoder();

/**
 * `svc.inventory.changed` `{ tenantId, sku, stock, changedAt }` from the platform's services:
 * our stock changed. Applied once per message id (`Nats-Msg-Id`; the change and its inbox row
 * commit in one statement), then fanned out to the tenant's channels. With NATS a durable
 * consumer shared by every process (`inventory-intake`); embedded, an in-process subscription.
 */
export class InventoryIntake {
  #off: (() => void) | undefined;
  #consumer: IdempotentConsumer | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly inventory: InventoryService,
    private readonly log: Logger,
  ) {}

  get subject(): string {
    return `${this.runtime.config.saga.servicePrefix}.inventory.changed`;
  }

  async start(): Promise<void> {
    const nats = this.runtime.nats;
    if (nats?.link) {
      const nc = nats.link.nc;
      this.#consumer = new IdempotentConsumer({
        js: jetstream(nc),
        jsm: await jetstreamManager(nc),
        stream: natsNames(this.runtime.config.nats.prefix).serviceStream,
        durable: 'inventory-intake',
        filter: this.subject,
        log: this.log,
        handle: async (m: JsMsg) => {
          const id = m.headers?.get('Nats-Msg-Id') || `${m.info.stream}:${m.seq}`;
          await this.inventory.changed(parse(decoder.decode(m.data)), id);
        },
      });
      await this.#consumer.start();
      return;
    }
    this.#off = this.runtime.bus.subscribe(this.subject, async (msg: BusMessage) => this.inventory.changed(msg.data, msg.messageId));
  }

  async stop(): Promise<void> {
    this.#off?.();
    this.#off = undefined;
    await this.#consumer?.stop();
    this.#consumer = undefined;
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
