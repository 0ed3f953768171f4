import { decodeToken, encodeToken } from '../effects.js';
import { partitionOf } from '../partition.js';
import type { ActorRef } from '../registry.js';

/**
 * Every stream, subject and durable consumer name of the NATS transport, derived from one
 * prefix (`NATS_PREFIX`, default `concord`) so several deployments or test files can share a
 * server. docs/nats.md describes each.
 */
export interface NatsNames {
  prefix: string;
  /** `<prefix>.actor.p<N>.<type>.<id>`: what partition consumers read. */
  actorStream: string;
  actorSubjects: string;
  /** `<prefix>.actor.<type>.<id>`: the plain actor subject for outside services. */
  ingressStream: string;
  ingressSubjects: string;
  /** `<prefix>.events.>`: what Concord publishes to the world. */
  eventsStream: string;
  eventsSubjects: string;
  /** `<prefix>.dlq.<reason>`: one message per dead letter. */
  dlqStream: string;
  dlqSubjects: string;
  /** Service commands and the events services answer with (`svc.>` by default). */
  serviceStream: string;
  partitionConsumer(p: number): string;
  partitionFilter(p: number): string;
  ingressConsumer: string;
  routerConsumer: string;
}

export function natsNames(prefix: string): NatsNames {
  const up = prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return {
    prefix,
    actorStream: `${up}_ACTORS`,
    actorSubjects: `${prefix}.actor.*.*.*`,
    ingressStream: `${up}_ACTOR_INGRESS`,
    ingressSubjects: `${prefix}.actor.*.*`,
    eventsStream: `${up}_EVENTS`,
    eventsSubjects: `${prefix}.events.>`,
    dlqStream: `${up}_DLQ`,
    dlqSubjects: `${prefix}.dlq.>`,
    serviceStream: `${up}_SERVICES`,
    partitionConsumer: (p) => `actors-p${p}`,
    partitionFilter: (p) => `${prefix}.actor.p${p}.*.*`,
    ingressConsumer: 'ingress',
    routerConsumer: 'service-router',
  };
}

/** The partitioned subject of an actor: publish here to skip the ingress hop. */
export function partitionedActorSubject(prefix: string, ref: ActorRef, partitions: number): string {
  const p = partitionOf(`${ref.type}/${ref.id}`, partitions);
  return `${prefix}.actor.p${p}.${ref.type}.${encodeToken(ref.id)}`;
}

/** `<prefix>.actor.p<N>.<type>.<id>` back to the actor. */
export function parsePartitionedSubject(subject: string): ActorRef | null {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[1] !== 'actor' || !/^p\d+$/.test(parts[2]!)) return null;
  return { type: parts[3]!, id: decodeToken(parts[4]!) };
}

/** `<any prefix>.actor.<type>.<id>` (the relay's rows and the ingress stream) back to the actor. */
export function parsePlainActorSubject(subject: string): ActorRef | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[1] !== 'actor') return null;
  return { type: parts[2]!, id: decodeToken(parts[3]!) };
}

/** Message headers the transport reads and writes. */
export const Hdr = {
  /** JetStream's dedupe key (transport level). */
  MsgId: 'Nats-Msg-Id',
  /** The actor-level message id when it differs from Nats-Msg-Id (forwarded, replayed). */
  MessageId: 'Concord-Message-Id',
  CorrelationId: 'Concord-Correlation-Id',
  Tenant: 'Concord-Tenant',
  Source: 'Concord-Source',
  OriginSubject: 'Concord-Origin-Subject',
  /** On an outbox row: the Nats-Msg-Id to publish with instead of the row's message id (replays). */
  NatsMsgIdOverride: 'Concord-Nats-Msg-Id',
  Reason: 'Concord-Dead-Letter-Reason',
} as const;
