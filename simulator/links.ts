import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { InProcessBus } from '../runtime/bus.js';
import type { Logger } from '../runtime/logger.js';
import { natsNames } from '../runtime/nats/subjects.js';
import { IdempotentConsumer } from '../services/saga/jetstream.js';

/** How the simulated services hear commands and answer: the in-process bus or NATS JetStream. */
export interface ServiceLink {
  /** Delivers every command on `<prefix>.<service>.>`; a handler that throws gets it again. */
  listen(service: string, handler: (subject: string, data: unknown, headers: Record<string, string>) => Promise<void>): Promise<void>;
  /** Publishes an event with `msgId` as its message id (`Nats-Msg-Id`), and `headers` (a `traceparent`). */
  publish(subject: string, data: unknown, msgId: string, headers?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/** Embedded mode: commands arrive from the relay through the bus; answers go back on it. */
export class BusLink implements ServiceLink {
  readonly #offs: Array<() => void> = [];
  constructor(
    private readonly bus: InProcessBus,
    private readonly prefix: string,
    /** A command whose handling fails is logged here (the bus keeps no copy to retry). */
    private readonly log: Logger,
  ) {}

  async listen(service: string, handler: (subject: string, data: unknown, headers: Record<string, string>) => Promise<void>): Promise<void> {
    // take the command and answer later, as a service behind a broker would: the relay's
    // delivery must not wait for the answer to be applied (it delivers one row per subject at a time)
    this.#offs.push(
      this.bus.subscribe(`${this.prefix}.${service}.>`, (m) => {
        void handler(m.subject, m.data, m.headers).catch((err: unknown) => this.log.warn({ err, subject: m.subject }, 'simulator: command failed'));
      }),
    );
  }

  async publish(subject: string, data: unknown, msgId: string, headers: Record<string, string> = {}): Promise<void> {
    // the bus has no broker to keep it: try a few times, then give up like a crashed service would
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bus.publish({ subject, data, headers, messageId: msgId });
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  async close(): Promise<void> {
    for (const off of this.#offs.splice(0)) off();
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * NATS mode: one durable consumer per service on Concord's service stream
 * (`<prefix>.<service>.>`), acked after the answer was published to JetStream.
 */
export class NatsServiceLink implements ServiceLink {
  readonly #consumers: IdempotentConsumer[] = [];
  constructor(
    private readonly nc: NatsConnection,
    private readonly o: { natsPrefix: string; servicePrefix: string; log: Logger; durablePrefix?: string },
  ) {}

  async listen(service: string, handler: (subject: string, data: unknown, headers: Record<string, string>) => Promise<void>): Promise<void> {
    const c = new IdempotentConsumer({
      js: jetstream(this.nc),
      jsm: await jetstreamManager(this.nc),
      stream: natsNames(this.o.natsPrefix).serviceStream,
      durable: `${this.o.durablePrefix ?? 'simulator'}-${service}`,
      filter: `${this.o.servicePrefix}.${service}.>`,
      log: this.o.log,
      concurrency: 256,
      handle: (m: JsMsg) => handler(m.subject, JSON.parse(decoder.decode(m.data)), m.headers?.has('traceparent') ? { traceparent: m.headers.get('traceparent') } : {}),
    });
    await c.start();
    this.#consumers.push(c);
  }

  async publish(subject: string, data: unknown, msgId: string, headers: Record<string, string> = {}): Promise<void> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    await jetstream(this.nc).publish(subject, encoder.encode(JSON.stringify(data)), { msgID: msgId, headers: h });
  }

  async close(): Promise<void> {
    await Promise.all(this.#consumers.splice(0).map((c) => c.stop()));
  }
}
