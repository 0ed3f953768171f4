import { classify } from '../connectors/kit/classify.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../connectors/kit/errors.js';
import type { ActorHost } from './actor-host.js';
import type { CommitExtension } from './store.js';
import type { InProcessBus } from './bus.js';
import { actorSubject, decodeToken } from './effects.js';
import { ErrorCode, isConcordError } from './errors.js';
import type { Delivery, OutboxRow, Outcome } from './relay.js';
import { TRACEPARENT } from './tracing.js';

export type { ConnectorInvoker };

const TERMINAL = new Set<string>([ErrorCode.EventRejected, ErrorCode.UnknownActorType, ErrorCode.InvalidEvent, ErrorCode.ActorNotFound]);

/** `concord.actor.<type>.<id>` back to a ref. */
export function parseActorSubject(subject: string): { type: string; id: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[1] !== 'actor') return null;
  return { type: parts[2]!, id: decodeToken(parts[3]!) };
}

/**
 * Deletes outbox rows in the commit of a transition: a connector call's row is retired by the
 * commit that applies its answer to the actor (see `InProcessDelivery`'s `directReplies`).
 */
export const OUTBOX_RETIRE: CommitExtension = {
  name: 'outbox_retire',
  // gated by a one-time filter: as a join, Postgres planned a hash join that started a
  // sequential scan of the outbox in every commit, retiring or not (reading every dead row at
  // its head before it found the ids set empty); a commit that retires nothing now reads no outbox
  sql: (rows) => `DELETE FROM outbox o WHERE EXISTS (SELECT 1 FROM g WHERE ${rows} IS NOT NULL)
    AND o.id = ANY (ARRAY(SELECT r.id FROM g CROSS JOIN LATERAL jsonb_to_recordset(${rows}) AS r(id bigint)))`,
};

/**
 * The embedded transport: actor sends go straight to the local actor host (deduped there by
 * the outbox message id), publishes to in-process subscribers, connector calls to the
 * registered invokers (beside the relay: a call does not hold up its partition; its answer is
 * queued as an outbox row in the transaction that retires the call). Order is kept per
 * destination; destinations run concurrently.
 */
export class InProcessDelivery implements Delivery {
  constructor(
    private readonly host: ActorHost,
    private readonly bus: InProcessBus,
    private readonly connectors: Map<string, ConnectorInvoker> = new Map(),
    /** A connector call still running after this is answered as a retryable TIMEOUT failure. */
    private readonly callTimeoutMs = 30_000,
    /**
     * A call's answer is applied to its actor here at once, by a commit that also deletes the
     * call's row (`OUTBOX_RETIRE`, which the host must have registered), instead of as a
     * follow-up outbox row the relay reads and delivers: one commit instead of a settle
     * statement, a read and a commit. Just as durable: until that commit the row stays, so a
     * crash runs the call again under the same idempotency key. When the direct send fails
     * (paused actor, rejected answer, shutdown), the answer takes the follow-up row as before.
     */
    private readonly directReplies = false,
  ) {}

  async deliver(rows: readonly OutboxRow[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = rows.map(() => ({ status: 'skipped' }));
    const groups = new Map<string, number[]>();
    rows.forEach((r, i) => {
      // connector calls are independent of each other (each answer is its own event): run them all at once
      const dest = r.kind === 'call' ? `call:${r.messageId}` : `${r.kind}:${r.subject}`;
      const g = groups.get(dest);
      if (g) g.push(i);
      else groups.set(dest, [i]);
    });
    await Promise.all(
      [...groups.values()].map(async (idx) => {
        for (const i of idx) {
          if (rows[i]!.kind === 'call') {
            // a connector call may take long: it must not hold up the partition's other rows
            outcomes[i] = { status: 'running', settled: this.#one(rows[i]!) };
            continue;
          }
          const o = await this.#one(rows[i]!);
          outcomes[i] = o;
          if (o.status === 'retry' || o.status === 'wait') return; // keep order: the rest of this destination waits
        }
      }),
    );
    return outcomes;
  }

  async #one(row: OutboxRow): Promise<Exclude<Outcome, { status: 'running' }>> {
    try {
      if (row.kind === 'send') {
        const ref = parseActorSubject(row.subject);
        if (!ref) return { status: 'dead', reason: 'unroutable', error: `not an actor subject: ${row.subject}` };
        await this.host.send(ref, row.payload as { type: string }, { messageId: row.messageId, traceparent: row.headers[TRACEPARENT] });
      } else if (row.kind === 'publish') {
        await this.bus.publish({ subject: row.subject, data: row.payload, headers: row.headers, messageId: row.messageId });
      } else {
        const call = row.payload as { connector: string; operation: string; input: unknown; replyTo: string | null };
        const invoker = this.connectors.get(call.connector);
        if (!invoker) return { status: 'dead', reason: 'unroutable', error: `no connector '${call.connector}'` };
        const replyType = call.replyTo ?? `${call.connector}.${call.operation}`;
        let reply: { type: string; [k: string]: unknown };
        const abort = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            abort.abort();
            reject(new ConnectorError(ConnectorCode.Timeout, `connector ${call.connector}.${call.operation} did not answer in ${this.callTimeoutMs} ms`));
          }, this.callTimeoutMs);
        });
        try {
          const output = await Promise.race([invoker(call.operation, call.input, { idempotencyKey: row.messageId, signal: abort.signal }), timeout]);
          reply = { type: `${replyType}.done`, output: output ?? null, at: new Date(this.host.now()).toISOString() };
        } catch (err) {
          // the one classification (connectors/kit): the actor is told the code, whether a retry
          // can help and how long the provider asked us to wait; its machine decides the retry
          const failure = classify(err, { now: this.host.now() });
          reply = { type: `${replyType}.failed`, error: failure.toFailure(), at: new Date(this.host.now()).toISOString() };
        } finally {
          clearTimeout(timer);
        }
        const ref = { type: row.sourceType, id: row.sourceId };
        const messageId = `${row.messageId}:reply`;
        if (this.directReplies) {
          try {
            await this.host.send(ref, reply, { messageId, traceparent: row.headers[TRACEPARENT], extras: () => ({ [OUTBOX_RETIRE.name]: [{ id: row.id }] }) });
            return { status: 'done', retired: true };
          } catch {
            // the follow-up row below carries it, with the relay's handling of paused and refused actors
          }
        }
        // the answer goes back to the actor as an outbox row written with this row's deletion
        return { status: 'done', then: { kind: 'send', subject: actorSubject(ref.type, ref.id), messageId, payload: reply } };
      }
      return { status: 'done' };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // paused by an operator: not a failure; the row waits (no attempt counted) until the resume
      if (isConcordError(err, ErrorCode.ActorPaused)) return { status: 'wait' };
      if (isConcordError(err) && TERMINAL.has(err.code)) {
        return { status: 'dead', reason: err.code === ErrorCode.EventRejected ? 'rejected' : 'unroutable', error: message };
      }
      return { status: 'retry', error: message };
    }
  }
}
