import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { backoffDelay } from '../../machines/lib/backoff.js';
import { subjectMatches, type BusMessage } from '../../runtime/bus.js';
import { isConcordError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import type { Runtime } from '../../runtime/runtime.js';
import { DomainError } from '../common/errors.js';
import type { PlaybookService } from './service.js';

const decoder = new TextDecoder();
const NS = 1_000_000;
/** Trigger messages wait this long for a process to take them (Concord down for a weekend). */
const TRIGGER_MAX_AGE_MS = 7 * 24 * 3_600_000;
/** JetStream drops a second message with the same `Nats-Msg-Id` inside this window. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** Other processes' playbook changes are seen within this long (the stream's subjects follow). */
const RELOAD_EVERY_MS = 30_000;
const ACK_WAIT_MS = 30_000;
const MAX_DELIVER = 20;
export const TRIGGER_CONSUMER = 'playbook-triggers';

/** The stream that keeps playbook trigger messages: `<PREFIX>_PLAYBOOK_TRIGGERS`. */
export const triggerStreamName = (prefix: string): string => `${prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_PLAYBOOK_TRIGGERS`;

/** A failure that says the message can never start an execution (bad inputs, a refused event): it is not redelivered. */
const permanent = (err: unknown): boolean => err instanceof DomainError || isConcordError(err);

/**
 * The `nats` trigger. With NATS, the subject patterns of every live playbook are the subjects of
 * a JetStream stream (`<PREFIX>_PLAYBOOK_TRIGGERS`, work-queue retention, kept 7 days), read by
 * one durable pull consumer that all processes share: a message published while Concord is down
 * waits in the stream and starts its execution when a process comes back; it is acked only once
 * the execution is committed (a crash before that redelivers it). A message starts one execution
 * per matching playbook, whose id is derived from the playbook and the message id
 * (`Nats-Msg-Id`), so a redelivered or republished message starts nothing twice; a message
 * without that header takes its place in the stream as its id (a redelivery starts nothing twice;
 * a producer's blind retry is a second message). A pattern JetStream refuses (it
 * overlaps another stream's subjects) falls back to a core NATS queue subscription (not durable),
 * with a warning. Embedded (no NATS), the in-process bus. The JSON body is the inputs. Subjects
 * are reloaded whenever a playbook changes here, and every 30 s (changes made by other processes).
 */
export class PlaybookNatsIntake {
  #routes: Array<{ playbookId: string; subject: string }> = [];
  #subs = new Map<string, Subscription | (() => void)>();
  #off: (() => void) | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #js: { js: JetStreamClient; jsm: JetStreamManager } | undefined;
  /** Patterns the stream captures now. */
  #durable = new Set<string>();
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly runtime: Runtime,
    private readonly playbooks: PlaybookService,
    private readonly log: Logger,
  ) {}

  get #nc(): NatsConnection | undefined {
    return this.runtime.nats?.link?.nc;
  }

  get #stream(): string {
    return triggerStreamName(this.runtime.config.nats.prefix);
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#off = this.playbooks.onChange(() => void this.reload());
    await this.reload();
    if (this.#nc) {
      this.#timer = setInterval(() => void this.reload(), RELOAD_EVERY_MS);
      this.#timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#off?.();
    clearInterval(this.#timer);
    await this.#reloading;
    await this.#messages?.close().catch(() => undefined);
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
    for (const s of this.#subs.values()) {
      if (typeof s === 'function') s();
      else s.unsubscribe();
    }
    this.#subs.clear();
  }

  /** Makes the stream capture the live patterns (NATS), subscribes what it cannot, drops what no playbook uses any more. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (!this.#running) return;
      try {
        this.#routes = await this.playbooks.natsSubjects();
      } catch (err) {
        this.log.warn({ err }, 'playbook nats subjects could not be loaded');
        return;
      }
      const wanted = new Set(this.#routes.map((r) => r.subject));
      if (this.#nc) {
        try {
          this.#durable = await this.#syncStream([...wanted].sort());
          if (this.#durable.size > 0) this.#loop ??= this.#consume();
        } catch (err) {
          this.log.warn({ err }, 'playbook trigger stream could not be set up: core NATS subscriptions (not durable) meanwhile');
          this.#durable = new Set();
        }
      }
      const core = new Set([...wanted].filter((p) => !this.#durable.has(p)));
      for (const [pattern, s] of this.#subs) {
        if (core.has(pattern)) continue;
        if (typeof s === 'function') s();
        else s.unsubscribe();
        this.#subs.delete(pattern);
      }
      for (const pattern of core) if (!this.#subs.has(pattern)) this.#subs.set(pattern, this.#subscribe(pattern));
    });
    return this.#reloading;
  }

  async #jetstream(): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
    const nc = this.#nc!;
    this.#js ??= { js: jetstream(nc), jsm: await jetstreamManager(nc) };
    return this.#js;
  }

  /**
   * The stream's subjects become the live patterns (every process computes the same set from the
   * database). Answers the patterns it captures: one JetStream refuses (overlapping another
   * stream) is left out, with a warning.
   */
  async #syncStream(patterns: string[]): Promise<Set<string>> {
    const { jsm } = await this.#jetstream();
    const name = this.#stream;
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.status === 404) return null;
      throw err;
    });
    const current = [...(info?.config.subjects ?? [])].sort();
    if (patterns.length === 0) return new Set(current); // a stream needs a subject: keep the last ones (their messages are acked and dropped)
    if (current.join('\n') === patterns.join('\n')) return new Set(current);
    const apply = async (subjects: string[]) => {
      if (info) await jsm.streams.update(name, { ...info.config, subjects });
      else
        await jsm.streams.add({
          name,
          subjects,
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          max_age: TRIGGER_MAX_AGE_MS * NS,
          duplicate_window: DUPLICATE_WINDOW_MS * NS,
        });
    };
    try {
      await apply(patterns);
      return new Set(patterns);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
    }
    // one at a time, to find those JetStream refuses
    const accepted: string[] = [];
    for (const p of patterns) {
      try {
        await apply([...accepted, p]);
        accepted.push(p);
      } catch (err) {
        if (!(err instanceof JetStreamApiError)) throw err;
        this.log.warn({ err, subject: p }, 'playbook nats trigger: JetStream refuses this subject (it overlaps another stream): a core subscription takes it, not durable');
      }
      if (!info && accepted.length > 0) return this.#syncStream(patterns); // created: the rest are updates
    }
    return new Set(accepted);
  }

  /** The durable consumer's loop: each message handled at once, acked after its executions are committed. */
  async #consume(): Promise<void> {
    while (this.#running) {
      try {
        const { js, jsm } = await this.#jetstream();
        await jsm.consumers.info(this.#stream, TRIGGER_CONSUMER).catch(async (err: unknown) => {
          if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
          await jsm.consumers
            .add(this.#stream, { durable_name: TRIGGER_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: ACK_WAIT_MS * NS, max_deliver: MAX_DELIVER, max_ack_pending: 256 })
            .catch(async (addErr: unknown) => {
              await jsm.consumers.info(this.#stream, TRIGGER_CONSUMER).catch(() => {
                throw addErr; // not a race with another process
              });
            });
        });
        const consumer = await js.consumers.get(this.#stream, TRIGGER_CONSUMER);
        const messages = await consumer.consume({ max_messages: 64, expires: 5_000 });
        this.#messages = messages;
        if (!this.#running) await messages.close();
        for await (const m of messages) {
          const p = this.#one(m).finally(() => this.#inFlight.delete(p));
          this.#inFlight.add(p);
          while (this.#inFlight.size >= 32) await Promise.race(this.#inFlight);
        }
      } catch (err) {
        if (!this.#running) break;
        this.log.warn({ err }, 'playbook trigger consumer failed; restarting');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  async #one(m: JsMsg): Promise<void> {
    try {
      // without a Nats-Msg-Id, the message's place in the stream (its sequence and the time the
      // stream stored it): the same on every redelivery, and never reused, even by a recreated stream
      const read = this.#read(m.subject, m.headers?.get('Nats-Msg-Id') || `stream:${m.info.streamSequence}@${m.info.timestampNanos}`, m.data);
      if (!read) {
        m.ack();
        return;
      }
      const { id, data } = read;
      let routes = this.#routes.filter((r) => this.#durable.has(r.subject) && subjectMatches(r.subject, m.subject));
      if (routes.length === 0) {
        // a playbook made in another process since the last reload
        this.#routes = await this.playbooks.natsSubjects();
        routes = this.#routes.filter((r) => subjectMatches(r.subject, m.subject));
      }
      for (const r of routes) await this.#start(r.playbookId, m.subject, id, data, true);
      m.ack();
    } catch (err) {
      this.log.warn({ err, subject: m.subject }, 'playbook nats trigger failed; redelivering');
      m.nak(backoffDelay({ initialMs: 500, maxMs: 30_000 }, m.info.deliveryCount + 1));
    }
  }

  /** A trigger message's id and JSON body; null (logged) for one that is not JSON. */
  #read(subject: string, id: string, body: Uint8Array): { id: string; data: unknown } | null {
    try {
      return { id, data: body.length ? JSON.parse(decoder.decode(body)) : {} };
    } catch {
      this.log.warn({ subject }, 'playbook nats trigger: a message that is not JSON is ignored');
      return null;
    }
  }

  /** Starts one playbook's execution; a transient failure throws only when `rethrow` (the durable path redelivers). */
  async #start(playbookId: string, subject: string, messageId: string, data: unknown, rethrow: boolean): Promise<void> {
    try {
      await this.playbooks.fromNats(playbookId, subject, messageId, data);
    } catch (err) {
      if (rethrow && !permanent(err)) throw err;
      this.log.warn({ err, playbookId, subject }, 'playbook nats trigger: the message did not start an execution');
    }
  }

  #subscribe(pattern: string): Subscription | (() => void) {
    const nc = this.#nc;
    if (!nc) return this.runtime.bus.subscribe(pattern, (m: BusMessage) => this.#deliver(pattern, m.subject, m.headers['Nats-Msg-Id'] ?? m.messageId, m.data));
    return nc.subscribe(pattern, {
      queue: 'concord-playbooks',
      callback: (err, m) => {
        if (err) return;
        // core NATS delivers a message once to the queue group: without a Nats-Msg-Id it needs no dedupe, only an id
        const read = this.#read(m.subject, m.headers?.get('Nats-Msg-Id') || `core:${randomUUID()}`, m.data);
        if (!read) return;
        void this.#deliver(pattern, m.subject, read.id, read.data).catch((e: unknown) => this.log.warn({ err: e, subject: m.subject }, 'playbook nats trigger failed'));
      },
    });
  }

  async #deliver(pattern: string, subject: string, messageId: string, data: unknown): Promise<void> {
    for (const r of this.#routes) {
      if (r.subject !== pattern || !subjectMatches(pattern, subject)) continue;
      await this.#start(r.playbookId, subject, messageId, data, false);
    }
  }
}
