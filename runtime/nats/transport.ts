import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import type { ActorHost } from '../actor-host.js';
import type { NatsConfig } from '../config.js';
import type { LeaseListener } from '../leases.js';
import type { ActorRef } from '../registry.js';
import type { Fence } from '../store.js';
import type { Logger } from '../logger.js';
import type { BatchFence, Delivery, OutboxRow, Outcome } from '../relay.js';
import { actorHandler, actorKeyOf, applyMessage, natsBurial, payloadOf } from './actor-consumer.js';
import { DeadLetterAnnouncer } from './announcer.js';
import { NatsLink, type NatsStatus } from './connection.js';
import { NatsDelivery } from './delivery.js';
import { AckPublisher } from './publisher.js';
import { DurableWorker } from './durable-worker.js';
import { correlationIdOf, ingressHandler, plainRef, serviceRouterHandler } from './forwarders.js';
import { provisionStreams } from './provision.js';
import { natsNames, parsePartitionedSubject, type NatsNames } from './subjects.js';

export interface NatsHealth {
  status: NatsStatus | 'down';
  reconnects: number;
  /** Messages not yet applied on this process's consumers (pending + unacked): its partitions, and the ingress and router when it runs them. */
  lag: number;
  consumers: Array<{ name: string; pending: number; ackPending: number; redelivered: number }>;
  /** Consumers this process works that NATS does not have (it recreates them; until then nothing flows on their subjects). */
  missing: string[];
  published: number;
  handled: number;
  /** Redeliveries seen by this process's consumers (ack wait expired, or a resync). */
  redeliveries: number;
  resyncs: number;
  /** Consumers found missing and recreated by this process. */
  recreated: number;
  error?: string;
}

export interface NatsTransportOptions {
  url: string;
  config: NatsConfig;
  partitions: number;
  pool: pg.Pool;
  host: ActorHost;
  log: Logger;
  /** Carries out `call` rows (connector calls stay in-process). */
  calls: Delivery;
  /** Tests only: turn off `working()` to watch redelivery being absorbed. */
  heartbeat?: boolean;
  /** How the process is named on the NATS server. */
  name?: string;
  /** Told after every reconnect (the runtime wakes the relay out of its backoff). */
  onReconnect?: () => void;
  /** Points where a crash matters; tests make the process die right there. */
  hooks?: NatsHooks;
}

export interface NatsHooks {
  /**
   * The relay handed a batch over; nothing of it is published yet. Tests stall the relay here
   * (as a SIGSTOP or a long GC pause would) to watch a partition handover.
   */
  beforeDeliver?(rows: readonly OutboxRow[]): Promise<void> | void;
  /** Rows were published and acked by JetStream; the relay has not deleted them yet. */
  afterPublish?(rows: readonly OutboxRow[]): void;
  /** A message was applied and committed; it is not acked yet. */
  beforeAck?(msg: JsMsg): void;
  /**
   * A consumed message is about to be applied. The fault suite's deliberately broken build acks
   * it here, before the commit, to show that the history checker catches what that loses.
   */
  beforeHandle?(msg: JsMsg): void;
}

/**
 * The JetStream transport: provisions streams, publishes the outbox (the relay's `Delivery`),
 * and, as a lease listener, runs one durable consumer per owned partition. The owner of
 * partition 0 also runs the singletons whose order matters across the cluster: the ingress
 * (plain actor subjects), the service-event router, and the dead-letter announcer.
 */
export class NatsTransport implements LeaseListener, Delivery {
  readonly names: NatsNames;
  #link: NatsLink | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #delivery: NatsDelivery | undefined;
  /** JetStream publishes of the relay and the forwarders (acks matched by reply token). */
  #publisher: AckPublisher | undefined;
  readonly #workers = new Map<number, DurableWorker>();
  #singletons: { ingress: DurableWorker; router: DurableWorker; announcer: DeadLetterAnnouncer } | undefined;
  #offReconnect: (() => void) | undefined;
  #stopped = false;

  constructor(private readonly o: NatsTransportOptions) {
    this.names = natsNames(o.config.prefix);
  }

  get link(): NatsLink | undefined {
    return this.#link;
  }

  /** Connects and provisions the streams (idempotent). */
  async start(): Promise<void> {
    this.#stopped = false;
    const link = await NatsLink.open(this.o.url, this.o.log, this.o.name ?? `concord-${process.pid}`);
    this.#link = link;
    this.#js = jetstream(link.nc, { timeout: this.o.config.publishTimeoutMs });
    this.#jsm = await jetstreamManager(link.nc, { timeout: this.o.config.publishTimeoutMs });
    await provisionStreams(this.#jsm, this.names, this.o.config, this.o.log);
    this.#publisher = new AckPublisher(link.nc, this.o.config.publishTimeoutMs);
    this.#delivery = new NatsDelivery({
      nc: link.nc,
      js: this.#js,
      jsm: this.#jsm,
      prefix: this.names.prefix,
      partitions: this.o.partitions,
      publishTimeoutMs: this.o.config.publishTimeoutMs,
      log: this.o.log,
      calls: this.o.calls,
      publisher: this.#publisher,
    });
    this.#offReconnect = link.onReconnect(() => {
      for (const w of this.#workers.values()) w.requestResync();
      this.#singletons?.ingress.requestResync();
      this.#singletons?.router.requestResync();
      this.o.onReconnect?.();
    });
    this.o.log.info({ prefix: this.names.prefix, streams: [this.names.actorStream, this.names.ingressStream, this.names.eventsStream, this.names.dlqStream, this.names.serviceStream] }, 'nats transport ready');
  }

  async deliver(rows: readonly OutboxRow[], fence?: BatchFence): Promise<Outcome[]> {
    const delivery = this.#delivery;
    if (!delivery) throw new Error('nats transport not started');
    if (this.o.hooks?.beforeDeliver) await this.o.hooks.beforeDeliver(rows);
    const outcomes = await delivery.deliver(rows, fence);
    this.o.hooks?.afterPublish?.(rows.filter((_, i) => outcomes[i]?.status === 'done'));
    return outcomes;
  }

  #worker(consumer: string, stream: string, filter: string, parts: Pick<ConstructorParameters<typeof DurableWorker>[0], 'keyOf' | 'handle' | 'bury'>): DurableWorker {
    const c = this.o.config;
    return new DurableWorker({
      js: this.#js!,
      jsm: this.#jsm!,
      log: this.o.log,
      stream,
      consumer,
      filter,
      ackWaitMs: c.ackWaitMs,
      maxAckPending: c.maxAckPending,
      maxAttempts: c.maxAttempts,
      retryBackoffMs: c.retryBackoffMs,
      heartbeat: this.o.heartbeat,
      beforeAck: this.o.hooks?.beforeAck,
      beforeHandle: this.o.hooks?.beforeHandle,
      ...parts,
    });
  }

  /** `epoch`: the lease's fencing token; every commit of a message consumed under it carries it. */
  acquired(p: number, epoch: number): void {
    if (this.#stopped || !this.#js || this.#workers.has(p)) return;
    const fence = { partition: p, epoch };
    const w = this.#worker(this.names.partitionConsumer(p), this.names.actorStream, this.names.partitionFilter(p), {
      keyOf: actorKeyOf,
      handle: actorHandler(this.o.host, fence),
      bury: natsBurial(this.o.pool, (m) => parsePartitionedSubject(m.subject)),
    });
    this.#workers.set(p, w);
    w.start();
    if (p === 0) this.#startSingletons(fence);
  }

  async releasing(p: number): Promise<void> {
    const w = this.#workers.get(p);
    this.#workers.delete(p);
    await Promise.all([w?.stop(), p === 0 ? this.#stopSingletons() : undefined]);
  }

  lost(): void {
    for (const [p, w] of this.#workers) {
      this.#workers.delete(p);
      void w.stop();
    }
    void this.#stopSingletons();
  }

  /** The consumers only one process runs, with the owner of partition 0, under its lease's `fence`. */
  #startSingletons(fence: Fence): void {
    if (this.#singletons) return;
    const c = this.o.config;
    const publisher = this.#publisher!;
    const common = { publish: publisher.publish.bind(publisher), prefix: this.names.prefix, partitions: this.o.partitions };
    const ingress = this.#worker(this.names.ingressConsumer, this.names.ingressStream, this.names.ingressSubjects, {
      keyOf: (m) => m.subject,
      handle: ingressHandler(common),
      bury: natsBurial(this.o.pool, (m) => plainRef(m.subject)),
    });
    // events about one correlation id (one command) stay in order; different ones run concurrently,
    // so one saga's reply never waits behind another's
    const targets = new WeakMap<JsMsg, { ref: ActorRef; event: { type: string } }>();
    const router = this.#worker(this.names.routerConsumer, this.names.serviceStream, c.serviceEvents, {
      keyOf: (m) => correlationIdOf(m) ?? m.subject,
      handle: serviceRouterHandler({
        apply: (ref, event, m) => applyMessage(this.o.host, ref, event, m, fence),
        correlations: { lookup: (id) => this.o.host.correlations.lookup(id) },
        skip: c.routerSkip,
        targets,
      }),
      // an event that reached its actor and was refused is recorded against the actor (a replay
      // sends it there); one that never found its actor is published again to be routed again
      bury: natsBurial(this.o.pool, (m) => targets.get(m)?.ref ?? null, (m) => targets.get(m)?.event ?? payloadOf(m)),
    });
    const announcer = new DeadLetterAnnouncer({ pool: this.o.pool, js: this.#js!, prefix: this.names.prefix, log: this.o.log, pollMs: 1_000, publishTimeoutMs: c.publishTimeoutMs });
    this.#singletons = { ingress, router, announcer };
    ingress.start();
    router.start();
    announcer.start();
  }

  async #stopSingletons(): Promise<void> {
    const s = this.#singletons;
    this.#singletons = undefined;
    if (s) await Promise.all([s.ingress.stop(), s.router.stop(), s.announcer.stop()]);
  }

  /** Stops taking messages (running handlers finish and ack); the leases are released later. */
  async stopIntake(): Promise<void> {
    this.#stopped = true;
    const ws = [...this.#workers.values()];
    this.#workers.clear();
    await Promise.all([...ws.map((w) => w.stop()), this.#stopSingletons()]);
  }

  async close(): Promise<void> {
    await this.stopIntake();
    this.#publisher?.close();
    this.#offReconnect?.();
    await this.#link?.close();
  }

  async health(owned: number[]): Promise<NatsHealth> {
    const link = this.#link;
    const s = this.#singletons;
    const workers = [...this.#workers.values(), ...(s ? [s.ingress, s.router] : [])];
    const h: NatsHealth = {
      status: link?.status ?? 'down',
      reconnects: link?.reconnects ?? 0,
      lag: 0,
      consumers: [],
      missing: [],
      published: this.#delivery?.published ?? 0,
      handled: workers.reduce((n, w) => n + w.handled, 0),
      redeliveries: workers.reduce((n, w) => n + w.redeliveries, 0),
      resyncs: workers.reduce((n, w) => n + w.resyncs, 0),
      recreated: workers.reduce((n, w) => n + w.recreated, 0),
    };
    if (!this.#jsm || h.status !== 'connected') return h;
    try {
      const watched = owned.map((p) => [this.names.actorStream, this.names.partitionConsumer(p)] as const);
      if (s) watched.push([this.names.ingressStream, this.names.ingressConsumer], [this.names.serviceStream, this.names.routerConsumer]);
      const infos = await Promise.all(
        watched.map(([stream, name]) =>
          this.#jsm!.consumers.info(stream, name).catch((err: unknown) => {
            if (err instanceof JetStreamApiError && err.status === 404) h.missing.push(name);
            return null;
          }),
        ),
      );
      for (const info of infos) {
        if (!info) continue;
        h.consumers.push({ name: info.name, pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered });
        h.lag += info.num_pending + info.num_ack_pending;
      }
    } catch (err) {
      h.error = (err as Error).message;
    }
    return h;
  }
}
