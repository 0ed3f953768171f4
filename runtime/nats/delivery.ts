import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { ConcordError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BatchFence, Delivery, OutboxRow, Outcome } from '../relay.js';
import type { AckPublisher } from './publisher.js';
import { Hdr, parsePlainActorSubject, partitionedActorSubject } from './subjects.js';

const encoder = new TextEncoder();
const CORE_TTL_MS = 30_000;

function isNoResponders(err: unknown): boolean {
  const e = err as { isNoResponders?: () => boolean; name?: string } | null;
  return Boolean(e?.isNoResponders?.()) || e?.name === 'NoRespondersError';
}

/**
 * A failure of the transport (timeout, closed or dropped connection, JetStream not answering)
 * rather than of the row: it says nothing about the message, so it must not count toward the
 * row's attempts (a long NATS outage would otherwise dead-letter the whole outbox).
 */
function isTransportFailure(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return false; // the server answered: about this message
  return true;
}

/** Thrown when a batch made no progress because NATS is unavailable: the relay backs off. */
class TransportUnavailable extends ConcordError {
  constructor(cause: unknown) {
    super(ErrorCode.Unavailable, `nats unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {}, { cause });
  }
}

/**
 * The relay's JetStream side: outbox rows are published with the row's message id as
 * `Nats-Msg-Id` (JetStream drops a second copy inside the duplicate window, which covers a
 * relay that crashed after publishing and before deleting the row). Publishes are pipelined
 * across destinations; rows to one destination subject go one after another, each after the
 * previous one's ack, so a publish lost on a dropped connection can never be overtaken by a
 * later one to the same destination. A failed row stops its destination (later rows to it are
 * `skipped`) and is retried with the same id by the relay.
 *
 * `send` rows go to the target's partitioned subject; `publish` rows to their own subject (a
 * subject no stream captures is sent as a core NATS message); `call` rows are carried out
 * in-process by `calls` (connector calls are not a NATS concern).
 */
export class NatsDelivery implements Delivery {
  readonly #core = new Map<string, number>();
  published = 0;

  constructor(
    private readonly o: {
      nc: NatsConnection;
      js: JetStreamClient;
      jsm: JetStreamManager;
      prefix: string;
      partitions: number;
      publishTimeoutMs: number;
      log: Logger;
      calls: Delivery;
      publisher: AckPublisher;
    },
  ) {}

  async deliver(rows: readonly OutboxRow[], fence?: BatchFence): Promise<Outcome[]> {
    const outcomes: Outcome[] = rows.map(() => ({ status: 'skipped' }));
    const calls: number[] = [];
    const chains = new Map<string, Promise<boolean>>();
    let core = false;
    let transportError: unknown;
    rows.forEach((row, i) => {
      if (row.kind === 'call') {
        calls.push(i);
        return;
      }
      const target = this.#target(row);
      if (typeof target !== 'string') {
        outcomes[i] = target;
        return;
      }
      const prev = chains.get(target);
      const run = async (): Promise<boolean> => {
        // checked right before each publish, after any wait for the previous row's ack: a relay
        // that stalled past it publishes nothing more of this batch (the rows stay, and are read again)
        if (fence && !fence.fresh()) return false;
        try {
          if (this.#isCore(target)) {
            this.o.nc.publish(target, encoder.encode(row.payloadJson), { headers: this.#headers(row) });
            core = true;
          } else {
            const h = this.#headers(row);
            h.set('Nats-Msg-Id', row.headers[Hdr.NatsMsgIdOverride] ?? row.messageId);
            await this.o.publisher.publish(target, encoder.encode(row.payloadJson), h);
          }
          outcomes[i] = { status: 'done' };
          this.published++;
          return true;
        } catch (err) {
          if (row.kind === 'publish' && isNoResponders(err) && (await this.#noStreamFor(target))) {
            // no stream captures this subject: it is a plain NATS subject
            if (this.#core.size > 10_000) this.#core.clear();
            this.#core.set(target, Date.now() + CORE_TTL_MS);
            this.o.nc.publish(target, encoder.encode(row.payloadJson), { headers: this.#headers(row) });
            core = true;
            outcomes[i] = { status: 'done' };
            this.published++;
            return true;
          }
          if (isTransportFailure(err)) {
            transportError ??= err;
            outcomes[i] = { status: 'skipped' }; // not the row's fault: no attempt counted
          } else {
            outcomes[i] = { status: 'retry', error: err instanceof Error ? err.message : String(err) };
          }
          return false;
        }
      };
      // the same destination: strictly after the previous row's ack, and not at all after a failure
      chains.set(target, prev ? prev.then((ok) => (ok ? run() : false)) : run());
    });
    const callOutcomes = calls.length ? this.o.calls.deliver(calls.map((i) => rows[i]!)) : Promise.resolve([]);
    const [, co] = await Promise.all([Promise.all(chains.values()), callOutcomes]);
    calls.forEach((rowIndex, k) => {
      outcomes[rowIndex] = co[k] ?? { status: 'skipped' };
    });
    if (core) await this.o.nc.flush();
    if (transportError !== undefined && !outcomes.some((x) => x.status === 'done' || x.status === 'dead' || x.status === 'retry')) {
      throw new TransportUnavailable(transportError);
    }
    return outcomes;
  }

  #target(row: OutboxRow): string | Outcome {
    if (row.kind === 'publish') return row.subject;
    const ref = parsePlainActorSubject(row.subject);
    if (!ref) return { status: 'dead', reason: 'unroutable', error: `not an actor subject: ${row.subject}` };
    return partitionedActorSubject(this.o.prefix, ref, this.o.partitions);
  }

  /** True only when JetStream answers that no stream captures `subject`. */
  async #noStreamFor(subject: string): Promise<boolean> {
    try {
      await this.o.jsm.streams.find(subject);
      return false;
    } catch (err) {
      return err instanceof JetStreamApiError && err.status === 404;
    }
  }

  #isCore(subject: string): boolean {
    const until = this.#core.get(subject);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#core.delete(subject);
    return false;
  }

  #headers(row: OutboxRow): MsgHdrs {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(row.headers)) if (k !== Hdr.NatsMsgIdOverride) h.set(k, String(v));
    if (row.headers[Hdr.NatsMsgIdOverride]) h.set(Hdr.MessageId, row.messageId);
    h.set(Hdr.Source, `${row.sourceType}/${row.sourceId}`);
    return h;
  }
}
