import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { JetStreamApiError, type PubAck } from '@nats-io/jetstream';

interface Pending {
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
}

/** No stream captures the subject (the server's 503 status to the reply subject). */
export class NoRespondersError extends Error {
  override readonly name = 'NoRespondersError';
  isNoResponders(): boolean {
    return true;
  }
}

/** The publish was sent, its acknowledgement did not come in time (or the link dropped). */
export class PublishTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

const decoder = new TextDecoder();

/**
 * JetStream publishes with acknowledgements, pipelined on one connection: each publish carries a
 * reply subject under this publisher's inbox, one subscription receives every PubAck, and the
 * reply's last token finds the waiting publish. One sweep per interval expires what was not
 * acknowledged in time.
 *
 * The client's `js.publish` is a request: per publish it allocates a request object, a timer and
 * two `Error`s with stack traces (one of them to reject an already-settled promise); at relay
 * rates that was the largest single share of the relay's CPU. Outcomes are the same: the PubAck,
 * a `JetStreamApiError` when the server refuses the message, `NoRespondersError` when no stream
 * captures the subject, a timeout otherwise.
 */
export class AckPublisher {
  readonly #pending = new Map<string, Pending>();
  readonly #inbox: string;
  readonly #prefixLength: number;
  readonly #sub: Subscription;
  readonly #sweep: NodeJS.Timeout;
  #seq = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.#inbox = createInbox();
    this.#prefixLength = this.#inbox.length + 1;
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (err, msg) => (err ? this.#failAll(err) : this.#settle(msg)) });
    this.#sweep = setInterval(() => this.#expire(), Math.max(20, Math.min(1_000, Math.floor(timeoutMs / 4))));
    this.#sweep.unref();
  }

  get pending(): number {
    return this.#pending.size;
  }

  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<PubAck> {
    const token = (this.#seq++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      try {
        this.nc.publish(subject, data, { reply: this.#inbox + '.' + token, headers });
      } catch (err) {
        reject(err as Error);
        return;
      }
      this.#pending.set(token, { resolve, reject, deadline: performance.now() + this.timeoutMs });
    });
  }

  /** Stops listening; publishes still waiting fail as timed out (their fate is unknown). */
  close(): void {
    clearInterval(this.#sweep);
    this.#sub.unsubscribe();
    this.#failAll(new PublishTimeoutError('publisher closed before the acknowledgement came'));
  }

  #settle(msg: Msg): void {
    const token = msg.subject.slice(this.#prefixLength);
    const p = this.#pending.get(token);
    if (!p) return; // expired already: the relay publishes it again under the same message id
    this.#pending.delete(token);
    if (msg.headers?.hasError) {
      if (msg.headers.code === 503) p.reject(new NoRespondersError(`no stream captures ${msg.subject}`));
      else p.reject(new Error(`publish failed: ${msg.headers.code} ${msg.headers.description}`));
      return;
    }
    let ack: PubAck & { error?: { code: number; err_code: number; description: string } };
    try {
      ack = JSON.parse(decoder.decode(msg.data)) as typeof ack;
    } catch (err) {
      p.reject(new Error(`unreadable publish acknowledgement: ${(err as Error).message}`));
      return;
    }
    if (ack.error) p.reject(new JetStreamApiError(ack.error as never));
    else p.resolve(ack);
  }

  #expire(): void {
    const now = performance.now();
    // one timeout for all: insertion order is deadline order
    for (const [token, p] of this.#pending) {
      if (p.deadline > now) break;
      this.#pending.delete(token);
      p.reject(new PublishTimeoutError(`no acknowledgement within ${this.timeoutMs} ms`));
    }
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
