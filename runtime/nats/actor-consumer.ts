import type { JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import type { ActorHost } from '../actor-host.js';
import type { Fence } from '../store.js';
import { recordNatsDeadLetter } from '../dead-letters.js';
import { ErrorCode, isConcordError, isRetryablePgError } from '../errors.js';
import type { Verdict } from './durable-worker.js';
import { Hdr, parsePartitionedSubject } from './subjects.js';
import { TRACEPARENT } from '../tracing.js';

const decoder = new TextDecoder();
/** How often a paused actor's waiting message is tried again: the longest a resume waits for it. */
const PAUSED_RETRY_MS = 500;

const TERMINAL: Record<string, string> = {
  [ErrorCode.EventRejected]: 'rejected',
  [ErrorCode.UnknownActorType]: 'unroutable',
  [ErrorCode.ActorNotFound]: 'unroutable',
  [ErrorCode.InvalidEvent]: 'invalid',
};

/** The actor-level id of a message: the forwarder's or replay's id, else the publisher's own. */
export function messageIdOf(msg: JsMsg): string {
  return msg.headers?.get(Hdr.MessageId) || msg.headers?.get(Hdr.MsgId) || `${msg.info.stream}:${msg.seq}`;
}

export function payloadOf(msg: JsMsg): unknown {
  const text = decoder.decode(msg.data);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function headersOf(msg: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (msg.headers) for (const [k, v] of msg.headers) out[k] = v.join(',');
  return out;
}

/**
 * Applies one message from a partition consumer to its actor; the worker acks after commit. The
 * commit carries `fence`, the partition lease the consumer runs under.
 */
export function actorHandler(host: ActorHost, fence?: Fence) {
  return async (msg: JsMsg): Promise<Verdict> => {
    const ref = parsePartitionedSubject(msg.subject);
    if (!ref) return { status: 'dead', reason: 'unroutable', error: `not an actor subject: ${msg.subject}` };
    const event = payloadOf(msg);
    if (!event || typeof event !== 'object' || Array.isArray(event) || typeof (event as { type?: unknown }).type !== 'string') {
      return { status: 'dead', reason: 'invalid', error: 'the payload is not a JSON event with a string `type`' };
    }
    return applyMessage(host, ref, event as { type: string }, msg, fence);
  };
}

/**
 * Applies a consumed message's event to `ref` (deduped on the message's id) and judges the
 * outcome. A fenced commit (the lease has passed on) is a transient retry: the message goes back
 * unapplied, for the new owner, and this process's lease loss stops the consumer.
 */
export async function applyMessage(host: ActorHost, ref: { type: string; id: string }, event: { type: string }, msg: JsMsg, fence?: Fence): Promise<Verdict> {
  try {
    // the trace the message carries (W3C traceparent, set by the relay's span) goes on in the transition
    const traceparent = msg.headers?.get(TRACEPARENT) || undefined;
    await host.send(ref, event, { messageId: messageIdOf(msg), tenant: msg.headers?.get(Hdr.Tenant) || undefined, ...(fence ? { fence } : {}), ...(traceparent ? { traceparent } : {}) });
    return { status: 'done' };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    if (isConcordError(err) && TERMINAL[err.code]) return { status: 'dead', reason: TERMINAL[err.code]!, error };
    // paused by an operator: the message waits in place (its actor's later ones behind it) and is
    // applied after the resume; waiting is not a failure, so it never counts toward a dead letter
    if (isConcordError(err, ErrorCode.ActorPaused)) return { status: 'retry', error, transient: true, waitMs: PAUSED_RETRY_MS };
    return { status: 'retry', error, transient: isTransient(err) };
  }
}

/** The database (or the runtime) was unavailable: says nothing about the message. */
export function isTransient(err: unknown): boolean {
  if (isConcordError(err, ErrorCode.ShuttingDown) || isConcordError(err, ErrorCode.Unavailable) || isConcordError(err, ErrorCode.Fenced)) return true;
  if (isConcordError(err, ErrorCode.CommitFailed)) return isRetryablePgError(err.cause) || !(err.cause instanceof Error) || !('code' in err.cause);
  return isRetryablePgError(err);
}

/** The key that orders handling: one actor's messages one at a time. */
export const actorKeyOf = (msg: JsMsg): string => msg.subject;

/** Records a message the worker gave up on. */
export function natsBurial(
  pool: pg.Pool,
  targetOf: (msg: JsMsg) => { type: string; id: string } | null,
  /** The event as the actor was to get it, when it differs from the payload (a type added). */
  eventOf: (msg: JsMsg) => unknown = payloadOf,
) {
  return async (msg: JsMsg, d: { reason: string; error: string; attempts: number }): Promise<void> => {
    const ref = targetOf(msg);
    await recordNatsDeadLetter(pool, {
      reason: d.reason,
      subject: msg.subject,
      actorType: ref?.type ?? null,
      actorId: ref?.id ?? null,
      messageId: messageIdOf(msg),
      payload: eventOf(msg),
      headers: { ...headersOf(msg), [Hdr.OriginSubject]: msg.headers?.get(Hdr.OriginSubject) || msg.subject },
      error: d.error,
      attempts: d.attempts,
    });
  };
}
