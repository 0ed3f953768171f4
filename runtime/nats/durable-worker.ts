import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../logger.js';
import { backoffDelay } from '../../machines/lib/backoff.js';
import { AckFloor } from './ack-floor.js';

/** What a handler made of one message. */
export type Verdict =
  | { status: 'done' }
  | { status: 'dead'; reason: string; error: string }
  /** `transient`: the infrastructure failed (database or NATS unavailable), not the message: no attempt is counted. */
  | {
      status: 'retry';
      error: string;
      transient?: boolean;
      /** Try again after this long rather than after the backoff (a paused actor: it is not failing). */
      waitMs?: number;
    };

export interface WorkerOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  stream: string;
  consumer: string;
  filter: string;
  ackWaitMs: number;
  maxAckPending: number;
  maxAttempts: number;
  retryBackoffMs: number;
  /** Messages of one key are handled one at a time, in stream order; keys run concurrently. */
  keyOf(msg: JsMsg): string;
  handle(msg: JsMsg, attempt: number): Promise<Verdict>;
  /** Records a dead message durably; `term()` follows only after it resolved. */
  bury(msg: JsMsg, verdict: { reason: string; error: string; attempts: number }): Promise<void>;
  /** Extend ack deadlines of queued and running messages (tests turn it off to see redelivery absorbed). */
  heartbeat?: boolean;
  /** Crash point for tests: the handler committed, the ack is not sent yet. */
  beforeAck?(msg: JsMsg): void;
  /** Fault injection for tests: a message is about to be handled (a deliberately broken build acks it here). */
  beforeHandle?(msg: JsMsg): void;
}

interface InFlight {
  msg: JsMsg;
  seq: number;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * One durable pull consumer (explicit ack) worked in order per key.
 *
 * - ack only after the handler committed; `working()` every third of the ack wait for every
 *   message queued or running, so a slow handler is not redelivered behind its own back;
 * - a retryable failure is retried in place with backoff (the key's later messages wait),
 *   and after `maxAttempts` the message is buried (dead letter recorded) and `term()`ed;
 * - order across a gap: JetStream redelivers an unacked message only after its ack wait,
 *   while newer messages keep flowing, so a delivery lost on the wire (a reconnect) or left
 *   unacked by a dead process would come back behind newer ones. The worker therefore
 *   resyncs: at start when the consumer has unacked messages, after a reconnect, and when the
 *   consumer's delivery sequence skips, it drains its in-flight work and recreates the
 *   consumer from the ack floor. Messages already applied come again and the actor's inbox
 *   drops them; nothing is applied out of order.
 * - a consumer can vanish under the worker: a delete of ours that timed out while a node was
 *   away lands after the consumer was recreated, or the cluster loses an assignment. The
 *   client would then wait forever for it to come back (and nothing would flow on its
 *   subjects), so `consume` aborts on a missing consumer and the worker recreates it from the
 *   floor it knows: the consumer's last ack floor it read, raised by its own acks since.
 */
export class DurableWorker {
  #stopped = false;
  #resync = false;
  #messages: ConsumerMessages | undefined;
  readonly #chains = new Map<string, Promise<void>>();
  readonly #inflight = new Map<number, InFlight>();
  #done: Promise<void> = Promise.resolve();
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #sleepers = new Set<() => void>();
  #lastDelivery = 0;
  /** Where a vanished consumer is recreated from. */
  readonly #floor = new AckFloor();
  resyncs = 0;
  /** Times the consumer was found missing and recreated. */
  recreated = 0;
  handled = 0;
  /** Deliveries that were redeliveries (ack wait expired, or a resync). */
  redeliveries = 0;

  constructor(private readonly o: WorkerOptions) {}

  start(): void {
    this.#stopped = false;
    if (this.o.heartbeat !== false) {
      this.#heartbeat = setInterval(() => {
        for (const f of this.#inflight.values()) f.msg.working();
      }, Math.max(100, Math.floor(this.o.ackWaitMs / 3)));
      this.#heartbeat.unref();
    }
    this.#done = this.#run();
  }

  /** Drop what is buffered, let running handlers finish (and ack), hand the rest back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const wake of this.#sleepers) wake();
    await this.#messages?.close().catch(() => undefined);
    await this.#done;
    clearInterval(this.#heartbeat);
  }

  /** Deliveries may have been lost (a reconnect): recreate the consumer from its ack floor. */
  requestResync(): void {
    if (this.#stopped) return;
    this.#resync = true;
    for (const wake of this.#sleepers) wake(); // a backoff in progress ends now
    void this.#messages?.close().catch(() => undefined);
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  #config(start?: number): Partial<ConsumerConfig> {
    return {
      durable_name: this.o.consumer,
      filter_subject: this.o.filter,
      ack_policy: AckPolicy.Explicit,
      ack_wait: this.o.ackWaitMs * 1_000_000,
      max_ack_pending: this.o.maxAckPending,
      max_deliver: -1, // attempts are counted here, where the dead letter is recorded
      ...(start ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start } : { deliver_policy: DeliverPolicy.All }),
    };
  }

  /** Ensures the consumer exists; recreates it from the ack floor if deliveries are outstanding. */
  async #prepare(forceResync: boolean): Promise<void> {
    const { jsm, stream, consumer } = this.o;
    let info;
    try {
      info = await jsm.consumers.info(stream, consumer);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      // a first start takes the whole stream; a consumer that vanished starts after what we acked,
      // unless the stream itself was made anew (its sequence is behind our floor): then all of it
      if (this.#floor.value > 0 && (await jsm.streams.info(stream)).state.last_seq < this.#floor.value) this.#floor.forget();
      const from = this.#floor.value > 0 ? this.#floor.value + 1 : undefined;
      try {
        await jsm.consumers.add(stream, this.#config(from));
      } catch (addErr) {
        await jsm.consumers.info(stream, consumer).catch(() => {
          throw addErr;
        });
      }
      if (from !== undefined) {
        this.recreated++;
        this.o.log.warn({ stream, consumer, from }, 'consumer was missing: recreated after the last acked message');
      }
      return;
    }
    this.#floor.raise(info.ack_floor.stream_seq);
    if (forceResync || info.num_ack_pending > 0) {
      const floor = info.ack_floor.stream_seq;
      await jsm.consumers.delete(stream, consumer).catch((err) => {
        if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      });
      await jsm.consumers.add(stream, this.#config(floor + 1));
      this.resyncs++;
      this.o.log.info({ stream, consumer, from: floor + 1, unacked: info.num_ack_pending }, 'consumer resynced from its ack floor');
      return;
    }
    const c = info.config;
    if (c.ack_wait !== this.o.ackWaitMs * 1_000_000 || c.max_ack_pending !== this.o.maxAckPending) {
      await jsm.consumers.update(stream, consumer, { ack_wait: this.o.ackWaitMs * 1_000_000, max_ack_pending: this.o.maxAckPending });
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    let resync = false;
    while (!this.#stopped) {
      try {
        // take the request before preparing: a reconnect during it asks again
        resync ||= this.#resync;
        this.#resync = false;
        await this.#prepare(resync);
        resync = false;
        this.#lastDelivery = 0;
        const consumer = await this.o.js.consumers.get(this.o.stream, this.o.consumer);
        this.#floor.restart();
        const messages = await consumer.consume({ max_messages: Math.min(256, this.o.maxAckPending), expires: 5_000, abort_on_missing_resource: true });
        this.#messages = messages;
        if (this.#stopped || this.#resync) await messages.close();
        for await (const m of messages) {
          failures = 0;
          if (this.#stopped || this.#resync) {
            m.nak(); // not started: back to the consumer, in order
            continue;
          }
          const dseq = m.info.deliverySequence;
          if (this.#lastDelivery > 0 && dseq !== this.#lastDelivery + 1) {
            this.o.log.warn({ consumer: this.o.consumer, expected: this.#lastDelivery + 1, got: dseq }, 'delivery gap: resyncing');
            m.nak();
            this.#resync = true;
            void messages.close();
            continue;
          }
          this.#lastDelivery = dseq;
          this.#dispatch(m);
          while (this.#inflight.size >= this.o.maxAckPending && !this.#stopped) await Promise.race([...this.#chains.values()]);
        }
      } catch (err) {
        if (!this.#stopped) {
          this.o.log.warn({ err, consumer: this.o.consumer }, 'consumer failed; retrying');
          await this.#sleep(backoffDelay({ initialMs: 100, maxMs: 5_000 }, 1 + failures++));
        }
      }
      // finish (and ack) everything started before recreating or leaving the consumer
      while (this.#chains.size > 0) await Promise.all([...this.#chains.values()]);
      if (this.#resync) resync = true;
    }
    this.#messages = undefined;
  }

  #dispatch(m: JsMsg): void {
    if (m.redelivered) this.redeliveries++;
    const seen = this.#inflight.get(m.seq);
    if (seen) {
      seen.msg = m; // redelivered while queued or running: ack the newest delivery, handle once
      return;
    }
    const f: InFlight = { msg: m, seq: m.seq };
    this.#inflight.set(m.seq, f);
    this.#floor.delivered(m.seq);
    let key: string;
    try {
      key = this.o.keyOf(m);
    } catch {
      key = `#${m.seq}`;
    }
    const prev = this.#chains.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.#work(f)).catch((err) => this.o.log.error({ err, seq: f.seq }, 'message handling crashed'));
    this.#chains.set(key, next);
    void next.then(() => {
      this.#inflight.delete(f.seq);
      if (this.#chains.get(key) === next) this.#chains.delete(key);
    });
  }

  async #work(f: InFlight): Promise<void> {
    let attempt = 1;
    for (let tries = 1; ; tries++) {
      if (this.#stopped || this.#resync) {
        f.msg.nak(); // not applied: hand it back so the next owner takes it in order
        return;
      }
      let v: Verdict;
      if (tries === 1) this.o.beforeHandle?.(f.msg);
      try {
        v = await this.o.handle(f.msg, attempt);
      } catch (err) {
        v = { status: 'retry', error: err instanceof Error ? err.message : String(err) };
      }
      if (v.status === 'done') {
        this.o.beforeAck?.(f.msg);
        f.msg.ack();
        this.#floor.settled(f.seq);
        this.handled++;
        return;
      }
      if (v.status === 'retry' && (v.transient || attempt < this.o.maxAttempts)) {
        this.o.log.debug({ consumer: this.o.consumer, seq: f.seq, attempt, transient: v.transient, error: v.error }, 'message failed; retrying in place');
        if (!v.transient) attempt++;
        await this.#sleep(v.waitMs ?? backoffDelay({ initialMs: this.o.retryBackoffMs, maxMs: v.transient ? 5_000 : MAX_BACKOFF_MS }, tries));
        continue;
      }
      const reason = v.status === 'dead' ? v.reason : 'failed';
      await this.#buryDurably(f, { reason, error: v.error, attempts: attempt });
      return;
    }
  }

  async #buryDurably(f: InFlight, d: { reason: string; error: string; attempts: number }): Promise<void> {
    for (let n = 0; ; n++) {
      try {
        await this.o.bury(f.msg, d);
        f.msg.term(`${d.reason}: ${d.error}`.slice(0, 200));
        this.#floor.settled(f.seq);
        this.handled++;
        this.o.log.warn({ consumer: this.o.consumer, seq: f.seq, ...d }, 'message dead-lettered');
        return;
      } catch (err) {
        if (this.#stopped) {
          f.msg.nak();
          return;
        }
        this.o.log.warn({ err, seq: f.seq }, 'recording a dead letter failed; retrying');
        await this.#sleep(backoffDelay({ initialMs: 100, maxMs: 5_000 }, n + 1));
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.#sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}
