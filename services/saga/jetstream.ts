import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../../runtime/logger.js';
import { backoffDelay } from '../../machines/lib/backoff.js';

/**
 * A durable pull consumer whose handler is idempotent, so order and redelivery do not matter:
 * messages are handled concurrently (up to `concurrency`), acked after the handler resolved,
 * nak'ed with a delay when it threw. Several processes may share one durable.
 */
export class IdempotentConsumer {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #stopped = false;
  /** The server's ack floor as last read: where a vanished durable is recreated from. */
  #floor = 0;
  readonly #running = new Set<Promise<void>>();

  constructor(
    private readonly o: {
      js: JetStreamClient;
      jsm: JetStreamManager;
      stream: string;
      durable: string;
      filter: string;
      log: Logger;
      concurrency?: number;
      ackWaitMs?: number;
      handle(msg: JsMsg): Promise<void>;
    },
  ) {}

  async start(): Promise<void> {
    await this.#ensure();
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /**
   * Creates the durable if it does not exist. A durable that vanished while we ran (a cluster
   * losing it, a delete landing late) is recreated after the server's last ack floor we read:
   * other processes may share it, so our own acks say nothing of theirs.
   */
  async #ensure(): Promise<void> {
    const { jsm, stream, durable, filter } = this.o;
    const from = this.#floor > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#floor + 1 } : { deliver_policy: DeliverPolicy.All };
    const config = { durable_name: durable, ack_policy: AckPolicy.Explicit, ...from, filter_subject: filter, ack_wait: (this.o.ackWaitMs ?? 30_000) * 1_000_000, max_ack_pending: 1_000 };
    try {
      this.#floor = Math.max(this.#floor, (await jsm.consumers.info(stream, durable)).ack_floor.stream_seq);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      await jsm.consumers.add(stream, config).catch(async (addErr) => {
        await jsm.consumers.info(stream, durable).catch(() => {
          throw addErr; // not a race with another process: a real failure
        });
      });
      if (this.#floor > 0) this.o.log.warn({ stream, consumer: durable, from: this.#floor + 1 }, 'consumer was missing: recreated after its last ack floor');
    }
  }

  async #run(): Promise<void> {
    const limit = this.o.concurrency ?? 32;
    for (let first = true; !this.#stopped; first = false) {
      try {
        if (!first) await this.#ensure();
        const consumer = await this.o.js.consumers.get(this.o.stream, this.o.durable);
        // a missing consumer ends the loop (the client would otherwise wait for it forever)
        const messages = await consumer.consume({ max_messages: limit * 2, expires: 5_000, abort_on_missing_resource: true });
        this.#messages = messages;
        if (this.#stopped) await messages.close();
        for await (const m of messages) {
          const p = this.#one(m);
          this.#running.add(p);
          void p.finally(() => this.#running.delete(p));
          while (this.#running.size >= limit) await Promise.race(this.#running);
        }
      } catch (err) {
        if (this.#stopped) break;
        this.o.log.warn({ err, consumer: this.o.durable }, 'consumer loop failed; restarting');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async #one(m: JsMsg): Promise<void> {
    try {
      await this.o.handle(m);
      m.ack();
    } catch (err) {
      this.o.log.warn({ err, subject: m.subject, consumer: this.o.durable }, 'handler failed; redelivering');
      m.nak(backoffDelay({ initialMs: 250, maxMs: 30_000 }, m.info.deliveryCount + 1));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#messages?.close().catch(() => undefined);
    await this.#loop;
    await Promise.allSettled([...this.#running]);
  }
}
