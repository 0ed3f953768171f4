import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type JsMsg } from '@nats-io/jetstream';
import { subjectMatches } from '../bus.js';
import { decodeToken } from '../effects.js';
import type { ActorRef } from '../registry.js';
import { messageIdOf, payloadOf } from './actor-consumer.js';
import type { Verdict } from './durable-worker.js';
import { Hdr, partitionedActorSubject } from './subjects.js';

/**
 * Forwarders move a message to an actor's partitioned subject, where the partition's consumer
 * applies it. The republish uses `<stream>:<seq>` of the original as `Nats-Msg-Id` (the same
 * on every redelivery, so JetStream keeps one copy) and carries the publisher's own id as
 * `Concord-Message-Id`, the id the actor dedupes on.
 */
/** A JetStream publish that resolves on the stream's ack (`AckPublisher.publish`). */
export type Publish = (subject: string, data: Uint8Array, headers: MsgHdrs) => Promise<unknown>;

async function forward(publish: Publish, msg: JsMsg, target: string): Promise<Verdict> {
  const h = natsHeaders();
  if (msg.headers) for (const [k, v] of msg.headers) if (!k.startsWith('Nats-')) h.set(k, v.join(','));
  h.set(Hdr.MessageId, messageIdOf(msg));
  h.set(Hdr.OriginSubject, msg.subject);
  h.set('Nats-Msg-Id', `${msg.info.stream}:${msg.seq}`);
  try {
    await publish(target, msg.data, h);
    return { status: 'done' };
  } catch (err) {
    // a timeout or a dropped link is NATS being away, not this message
    return { status: 'retry', error: err instanceof Error ? err.message : String(err), transient: !(err instanceof JetStreamApiError) };
  }
}

/** `<prefix>.actor.<type>.<id>` (the plain subject for outside services) to the partitioned one. */
export function ingressHandler(o: { publish: Publish; prefix: string; partitions: number }) {
  return (msg: JsMsg): Promise<Verdict> => {
    const ref = plainRef(msg.subject);
    if (!ref) return Promise.resolve({ status: 'dead', reason: 'unroutable', error: `not an actor subject: ${msg.subject}` });
    return forward(o.publish, msg, partitionedActorSubject(o.prefix, ref, o.partitions));
  };
}

export function plainRef(subject: string): ActorRef | null {
  const parts = subject.split('.');
  return parts.length === 4 ? { type: parts[2]!, id: decodeToken(parts[3]!) } : null;
}

/**
 * A service event's correlation id: the `Concord-Correlation-Id` header, else the JSON
 * payload's `correlationId` or `commandId` field.
 */
export function correlationIdOf(msg: JsMsg): string | null {
  const h = msg.headers?.get(Hdr.CorrelationId);
  if (h) return h;
  const p = payloadOf(msg) as { correlationId?: unknown; commandId?: unknown } | null;
  if (p && typeof p === 'object') {
    if (typeof p.correlationId === 'string' && p.correlationId) return p.correlationId;
    if (typeof p.commandId === 'string' && p.commandId) return p.commandId;
  }
  return null;
}

/**
 * Service events to the actor waiting on their correlation id; an unknown id is `unroutable`.
 * Subjects other consumers own (`skip`, e.g. `svc.events.OrderCreatedEvent`) are acked and left
 * to them. An event without a `type` takes the last token of its subject as its type.
 *
 * The event is applied here, as the HTTP edge applies a command: the actor host's version check
 * keeps one writer per actor whichever process applies it, and the message's id is the inbox
 * id, so a redelivery is applied once. (It used to be republished to the actor's partitioned
 * subject for the partition's owner to apply: one more JetStream write, delivery and ack per
 * reply, about a third of a saga step's messaging, for no guarantee the host does not give.)
 * Events of one correlation id stay in order: the worker handles them one at a time.
 * `targets` remembers where each message went, so a dead letter names its actor.
 */
export function serviceRouterHandler(o: {
  apply: (ref: ActorRef, event: { type: string }, msg: JsMsg) => Promise<Verdict>;
  correlations: { lookup(id: string): Promise<ActorRef | null> };
  skip?: readonly string[];
  targets?: WeakMap<JsMsg, { ref: ActorRef; event: { type: string } }>;
}) {
  return async (msg: JsMsg): Promise<Verdict> => {
    if (o.skip?.some((pattern) => subjectMatches(pattern, msg.subject))) return { status: 'done' };
    const id = correlationIdOf(msg);
    if (!id) return { status: 'dead', reason: 'unroutable', error: 'no correlation id (Concord-Correlation-Id header, correlationId or commandId field)' };
    let ref: ActorRef | null;
    try {
      ref = await o.correlations.lookup(id);
    } catch (err) {
      return { status: 'retry', error: (err as Error).message, transient: true };
    }
    if (!ref) return { status: 'dead', reason: 'unroutable', error: `no actor waits on correlation id '${id}'` };
    const payload = payloadOf(msg);
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
      return { status: 'dead', reason: 'invalid', error: 'the payload is not a JSON object' };
    }
    const event = (typeof (payload as { type?: unknown }).type === 'string' ? payload : { ...payload, type: msg.subject.slice(msg.subject.lastIndexOf('.') + 1) }) as { type: string };
    o.targets?.set(msg, { ref, event });
    return o.apply(ref, event, msg);
  };
}
