import { headers as natsHeaders } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { Hdr } from './subjects.js';
import { backoffDelay } from '../../machines/lib/backoff.js';

const encoder = new TextEncoder();

/**
 * Publishes every dead letter once to `<prefix>.dlq.<reason>` (whatever recorded it: the
 * relay or a consumer), with `dlq:<id>` as `Nats-Msg-Id`, and marks it announced. The table
 * stays the source of truth; the subject lets operators and alerting subscribe.
 */
export class DeadLetterAnnouncer {
  #stopped = true;
  #wake: () => void = () => undefined;
  #done: Promise<void> = Promise.resolve();
  announced = 0;

  constructor(private readonly o: { pool: pg.Pool; js: JetStreamClient; prefix: string; log: Logger; pollMs: number; publishTimeoutMs: number }) {}

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake();
    await this.#done;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      let n = 0;
      try {
        n = await this.#once();
        failures = 0;
      } catch (err) {
        this.o.log.warn({ err }, 'announcing dead letters failed');
        failures++;
      }
      if (n === 0 || failures > 0) await this.#sleep(failures ? backoffDelay({ initialMs: 200, maxMs: 5_000 }, failures + 1) : this.o.pollMs);
    }
  }

  async #once(): Promise<number> {
    const { rows } = await this.o.pool.query<{ id: string; reason: string; subject: string | null; actor_type: string | null; actor_id: string | null; message_id: string | null; error: string | null; attempts: number; payload: unknown }>(
      `SELECT id, reason, subject, actor_type, actor_id, message_id, error, attempts, payload
       FROM dead_letters WHERE announced_at IS NULL ORDER BY id LIMIT 256`,
    );
    if (rows.length === 0) return 0;
    const acks = rows.map((r) => {
      const h = natsHeaders();
      h.set(Hdr.Reason, r.reason);
      if (r.subject) h.set(Hdr.OriginSubject, r.subject);
      if (r.message_id) h.set(Hdr.MessageId, r.message_id);
      const body = { id: Number(r.id), reason: r.reason, subject: r.subject, actor: r.actor_type ? { type: r.actor_type, id: r.actor_id } : null, messageId: r.message_id, error: r.error, attempts: r.attempts, payload: r.payload };
      return this.o.js.publish(`${this.o.prefix}.dlq.${r.reason.replace(/[^A-Za-z0-9_-]/g, '_')}`, encoder.encode(JSON.stringify(body)), {
        msgID: `dlq:${r.id}`,
        headers: h,
        timeout: this.o.publishTimeoutMs,
      });
    });
    const settled = await Promise.allSettled(acks);
    const ok = rows.filter((_, i) => settled[i]!.status === 'fulfilled').map((r) => r.id);
    if (ok.length) await this.o.pool.query('UPDATE dead_letters SET announced_at = now() WHERE id = ANY($1::bigint[])', [ok]);
    this.announced += ok.length;
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return ok.length;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
