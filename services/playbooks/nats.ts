import type { Subscription } from '@nats-io/transport-node';
import { subjectMatches, type BusMessage } from '../../runtime/bus.js';
import type { Logger } from '../../runtime/logger.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { PlaybookService } from './service.js';

const decoder = new TextDecoder();

/**
 * The `nats` trigger: every live playbook's subject pattern is subscribed (with NATS, one queue
 * group shared by all processes, so one process takes each message; embedded, the in-process
 * bus). A message starts one execution, whose id is derived from the playbook and the message
 * id (`Nats-Msg-Id`, else the bus message id), so a redelivered message starts nothing twice.
 * The JSON body is the inputs. Subjects are reloaded whenever a playbook changes.
 */
export class PlaybookNatsIntake {
  #routes: Array<{ playbookId: string; subject: string }> = [];
  #subs = new Map<string, Subscription | (() => void)>();
  #off: (() => void) | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #running = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly playbooks: PlaybookService,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#running = true;
    this.#off = this.playbooks.onChange(() => void this.reload());
    await this.reload();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#off?.();
    await this.#reloading;
    for (const s of this.#subs.values()) {
      if (typeof s === 'function') s();
      else s.unsubscribe();
    }
    this.#subs.clear();
  }

  /** Subscribes new patterns and drops those no playbook uses any more. */
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
      for (const [pattern, s] of this.#subs) {
        if (wanted.has(pattern)) continue;
        if (typeof s === 'function') s();
        else s.unsubscribe();
        this.#subs.delete(pattern);
      }
      for (const pattern of wanted) if (!this.#subs.has(pattern)) this.#subs.set(pattern, this.#subscribe(pattern));
    });
    return this.#reloading;
  }

  #subscribe(pattern: string): Subscription | (() => void) {
    const nc = this.runtime.nats?.link?.nc;
    if (!nc) return this.runtime.bus.subscribe(pattern, (m: BusMessage) => this.#deliver(pattern, m.subject, m.headers['Nats-Msg-Id'] ?? m.messageId, m.data));
    return nc.subscribe(pattern, {
      queue: 'concord-playbooks',
      callback: (err, m) => {
        if (err) return;
        const id = m.headers?.get('Nats-Msg-Id');
        if (!id) {
          this.log.warn({ subject: m.subject }, 'playbook nats trigger: a message without a Nats-Msg-Id header is ignored (it could not be deduplicated)');
          return;
        }
        let data: unknown;
        try {
          data = m.data.length ? JSON.parse(decoder.decode(m.data)) : {};
        } catch {
          this.log.warn({ subject: m.subject }, 'playbook nats trigger: a message that is not JSON is ignored');
          return;
        }
        void this.#deliver(pattern, m.subject, id, data).catch((e: unknown) => this.log.warn({ err: e, subject: m.subject }, 'playbook nats trigger failed'));
      },
    });
  }

  async #deliver(pattern: string, subject: string, messageId: string, data: unknown): Promise<void> {
    for (const r of this.#routes) {
      if (r.subject !== pattern || !subjectMatches(pattern, subject)) continue;
      try {
        await this.playbooks.fromNats(r.playbookId, subject, messageId, data);
      } catch (err) {
        this.log.warn({ err, playbookId: r.playbookId, subject }, 'playbook nats trigger: the message did not start an execution');
      }
    }
  }
}
