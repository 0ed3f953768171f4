import type pg from 'pg';
import { decideRetry, type RetryPolicy } from '../../connectors/kit/retry.js';
import type { Clock } from '../../runtime/clock.js';
import type { EventsConfig } from '../../runtime/config.js';
import type { Logger } from '../../runtime/logger.js';
import { endpointWants, webhookIdOf } from './model.js';
import { webhookHeaders } from './signing.js';
import { postWebhook, type PostOutcome } from './webhook.js';

/** Publishes one delivery to the messaging channel (NATS `concord.deliver.<target>` or in-process). */
export type DeliverPublisher = (target: string, body: string, messageId: string, headers: Record<string, string>) => Promise<void>;

export interface EventDeliveryWorkerOptions {
  pool: pg.Pool;
  config: EventsConfig;
  clock: Clock;
  log: Logger;
  /** The messaging channel; HTTP endpoints are posted to in addition. */
  publish?: DeliverPublisher;
  /** Tests: called after a delivery's HTTP attempt and before its outcome is recorded. */
  beforeRecord?(deliveryId: number): void | Promise<void>;
  /** How often pending events whose deliveries all finished are looked for (default 30 s). */
  statusSweepMs?: number;
}

const CLAIM_GAP_MS = 4;

/** A receiver's Retry-After is honoured up to an hour. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/** The delivery retry policy of the events configuration (doubling, no jitter: a row's retry time is its queue's). */
export function deliveryRetryPolicy(c: EventsConfig): RetryPolicy {
  return { maxAttempts: c.maxAttempts, initialMs: c.retryBackoffMs, factor: 2, maxMs: c.retryMaxMs, jitter: 0, maxRetryAfterMs: MAX_RETRY_AFTER_MS };
}

interface Claimed {
  id: number;
  event_id: string;
  target_integration_id: string;
  attempts: number;
  generation: number;
  lease_until: Date;
  event_name: string;
  source_integration_id: string;
  event_category: string;
  priority: string;
  payload: unknown;
  metadata: unknown;
  created_at: Date;
  url: string | null;
  secret: string | null;
  event_names: string[] | null;
  event_categories: string[] | null;
}

/**
 * Claims the head of each (source, target) queue and delivers it. Only the oldest open row
 * (pending, or failed and waiting to retry) of a pair can be claimed, so a later event of a
 * pair never overtakes an earlier one, across retries, restarts and several processes; a dead
 * row leaves the queue, so it blocks nothing. Lanes are served by priority: a lane's rank is
 * the highest priority queued in it, so a critical event also pulls the older events of its
 * own source ahead of other sources' lower-priority work without being reordered past them.
 *
 * A claim is a lease (`lease_until`) committed before the attempt: if the process dies
 * mid-attempt, the row is attempted again once the lease lapses (at least once; receivers
 * dedupe on `webhook-id`). A worker that stops hands its claims back instead, uncounted.
 */
export class EventDeliveryWorker {
  readonly #inflight = new Set<Promise<void>>();
  readonly #touched = new Set<string>();
  #abort = new AbortController();
  #running = false;
  #loop: Promise<void> | undefined;
  #kick: (() => void) | undefined;
  #dirty = false;
  readonly stats = { delivered: 0, retried: 0, dead: 0, released: 0, claims: 0 };

  constructor(private readonly o: EventDeliveryWorkerOptions) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#loop = this.#run();
  }

  /** New or retried deliveries may be due: claim now instead of at the next poll. */
  wake(): void {
    this.#dirty = true;
    this.#kick?.();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#kick?.();
    // in-flight POSTs end now and their claims are handed back, so the next owner retries them at once
    this.#abort.abort();
    await this.#loop;
    await Promise.allSettled([...this.#inflight]);
    await this.#settle();
  }

  async #run(): Promise<void> {
    let lastClaim = 0;
    let lastSweep = performance.now();
    while (this.#running) {
      if (performance.now() - lastSweep >= (this.o.statusSweepMs ?? 30_000)) {
        lastSweep = performance.now();
        await this.#sweep();
      }
      // every accepted event and every finished delivery wakes the loop; claiming at most every
      // few milliseconds batches those wakes instead of scanning the queues once per wake
      const gap = CLAIM_GAP_MS - (performance.now() - lastClaim);
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      lastClaim = performance.now();
      await this.#settle();
      const free = this.o.config.batch - this.#inflight.size;
      let claimed = 0;
      this.#dirty = false;
      if (free > 0) {
        try {
          const rows = await this.#claim(free);
          claimed = rows.length;
          for (const r of rows) this.#track(r);
        } catch (err) {
          this.o.log.warn({ err }, 'event delivery: claim failed');
        }
      }
      if (claimed > 0 && claimed === free) continue;
      if (this.#dirty) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.config.pollMs);
        this.#kick = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#kick = undefined;
    }
  }

  #track(row: Claimed): void {
    const p = this.#deliver(row)
      .catch((err) => this.o.log.error({ err, delivery: row.id }, 'event delivery: recording the outcome failed; the lease will lapse and it is retried'))
      .finally(() => {
        this.#inflight.delete(p);
        this.wake();
      });
    this.#inflight.add(p);
  }

  async #claim(limit: number): Promise<Claimed[]> {
    const now = new Date(this.o.clock.now());
    const leaseUntil = new Date(now.getTime() + this.o.config.leaseMs);
    const { rows } = await this.o.pool.query<Claimed>(
      `WITH open AS (
         SELECT id, next_attempt_at, lease_until,
                row_number() OVER (PARTITION BY source_integration_id, target_integration_id ORDER BY id) AS rn,
                max(priority_rank) OVER (PARTITION BY source_integration_id, target_integration_id) AS lane_rank
         FROM event_deliveries WHERE status IN ('pending', 'failed')
       ), heads AS (
         SELECT id, lane_rank FROM open
         WHERE rn = 1 AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY lane_rank DESC, id LIMIT $2
       ), locked AS (
         SELECT d.id FROM event_deliveries d JOIN heads h ON h.id = d.id
         WHERE d.status IN ('pending', 'failed') AND (d.lease_until IS NULL OR d.lease_until < $1)
         FOR UPDATE OF d SKIP LOCKED
       ), claimed AS (
         UPDATE event_deliveries d SET lease_until = $3, attempts = d.attempts + 1, last_attempt_at = $1, updated_at = $1
         FROM locked WHERE d.id = locked.id
         RETURNING d.id, d.event_id, d.target_integration_id, d.attempts, d.generation, d.lease_until, d.priority_rank
       )
       SELECT c.id::int AS id, c.event_id, c.target_integration_id, c.attempts, c.generation, c.lease_until,
              e.event_name, e.source_integration_id, e.event_category, e.priority, e.payload, e.metadata, e.created_at,
              ep.url, ep.secret, ep.event_names, ep.event_categories
       FROM claimed c JOIN cross_integration_events e ON e.id = c.event_id
       LEFT JOIN integration_endpoints ep ON ep.integration_id = c.target_integration_id
       ORDER BY c.priority_rank DESC, c.id`,
      [now, limit, leaseUntil],
    );
    this.stats.claims += rows.length;
    return rows;
  }

  async #deliver(row: Claimed): Promise<void> {
    // claimed while the worker was being stopped: hand it back untried
    if (this.#abort.signal.aborted) return this.#record(row, { kind: 'aborted', statusCode: null, retryAfterMs: null, error: null }, []);
    const webhookId = webhookIdOf(row.event_id, row.target_integration_id, row.generation);
    const body = JSON.stringify({
      type: row.event_name,
      timestamp: new Date(row.created_at).toISOString(),
      data: {
        id: row.event_id,
        eventName: row.event_name,
        sourceIntegrationId: row.source_integration_id,
        targetIntegrationId: row.target_integration_id,
        eventCategory: row.event_category,
        priority: row.priority,
        payload: row.payload,
        metadata: row.metadata,
      },
    });
    const channels: string[] = [];
    let outcome: PostOutcome = { kind: 'delivered', statusCode: null, retryAfterMs: null, error: null };
    if (this.o.publish) {
      try {
        await this.o.publish(row.target_integration_id, body, webhookId, { 'webhook-id': webhookId, 'concord-event-id': row.event_id, 'concord-source': row.source_integration_id });
        channels.push('messaging');
      } catch (err) {
        outcome = { kind: 'retry', statusCode: null, retryAfterMs: null, error: `publish: ${(err as Error).message}` };
      }
    }
    // an endpoint registered after the event was accepted still applies its filters
    const wanted = row.url && endpointWants({ eventNames: row.event_names, eventCategories: row.event_categories }, row.event_name, row.event_category);
    if (outcome.kind === 'delivered' && row.url && row.secret && wanted) {
      const ts = Math.floor(this.o.clock.now() / 1000);
      outcome = await postWebhook(row.url, webhookHeaders(row.secret, webhookId, ts, body), body, {
        timeoutMs: this.o.config.webhookTimeoutMs,
        allowPrivate: this.o.config.allowPrivateTargets,
        now: () => this.o.clock.now(),
        signal: this.#abort.signal,
      });
      if (outcome.kind === 'delivered') channels.push('webhook');
    }
    await this.o.beforeRecord?.(row.id);
    await this.#record(row, outcome, channels);
  }

  async #record(row: Claimed, outcome: PostOutcome, channels: string[]): Promise<void> {
    const now = this.o.clock.now();
    const at = new Date(now);
    let set: string;
    let params: unknown[];
    if (outcome.kind === 'aborted') {
      // our own shutdown cut the attempt short: that is no answer from the receiver, so the claim
      // goes back as it was taken (attempt uncounted, no lease, still due) for the next owner to
      // retry at once. The POST may have arrived, as after a crash: receivers dedupe on webhook-id.
      // Only our own claim: if its lease lapsed and another worker took the row, it is theirs.
      this.stats.released++;
      await this.o.pool.query(
        `UPDATE event_deliveries SET attempts = attempts - 1, lease_until = NULL, updated_at = $2 WHERE id = $1 AND lease_until = $3 AND status IN ('pending', 'failed')`,
        [row.id, at, row.lease_until],
      );
      return;
    }
    if (outcome.kind === 'delivered') {
      this.stats.delivered++;
      set = `status = 'delivered', lease_until = NULL, delivered_at = $3, updated_at = $3, last_status_code = $4, last_error = NULL, channels = $5`;
      params = [row.id, row.event_id, at, outcome.statusCode, channels];
    } else {
      // the one retry decision (connectors/kit/retry.ts): a terminal failure never, a retryable
      // one until the attempts run out, after its backoff or the receiver's Retry-After if longer
      const decision = decideRetry({ retryable: outcome.kind === 'retry', retryAfterMs: outcome.retryAfterMs ?? undefined }, row.attempts, deliveryRetryPolicy(this.o.config));
      if (decision.retry) {
        this.stats.retried++;
        // the event's status does not change while a delivery is retrying
        await this.o.pool.query(
          `UPDATE event_deliveries SET status = 'failed', lease_until = NULL, next_attempt_at = $2, updated_at = $3, last_status_code = $4, last_error = $5 WHERE id = $1`,
          [row.id, new Date(now + decision.delayMs), at, outcome.statusCode, outcome.error],
        );
        return;
      }
      this.stats.dead++;
      const why = outcome.kind === 'retry' ? `${outcome.error} (gave up after ${row.attempts} attempts)` : outcome.error;
      this.o.log.warn({ event: row.event_id, target: row.target_integration_id, attempts: row.attempts, error: why }, 'event delivery dead-lettered');
      set = `status = 'dead', lease_until = NULL, dead_at = $3, updated_at = $3, last_status_code = $4, last_error = $5`;
      params = [row.id, row.event_id, at, outcome.statusCode, why];
    }
    await this.o.pool.query(`UPDATE event_deliveries SET ${set} WHERE id = $1 AND event_id = $2`, params);
    this.#touched.add(row.event_id);
  }

  /**
   * An event's status is brought up to date by the pass after its deliveries' outcomes (see
   * `#settle`); a process that dies between the two leaves the event `pending` with every
   * delivery finished. Any worker finds such events here (older than one sweep interval, so
   * outcomes being settled right now are not in the way) and settles them.
   */
  async #sweep(): Promise<void> {
    try {
      const { rows } = await this.o.pool.query<{ id: string }>(
        `SELECT e.id FROM cross_integration_events e
         WHERE e.status = 'pending' AND e.created_at < $1
           AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'failed'))
         ORDER BY e.created_at LIMIT 500`,
        [new Date(this.o.clock.now() - (this.o.statusSweepMs ?? 30_000))],
      );
      for (const r of rows) this.#touched.add(r.id);
      if (rows.length > 0) this.o.log.info({ events: rows.length }, 'event delivery: settling events left pending by a stopped process');
    } catch (err) {
      this.o.log.warn({ err }, 'event delivery: status sweep failed; next sweep retries');
    }
  }

  /**
   * Brings the status of events whose deliveries finished up to date, many per statement. It
   * runs after those deliveries committed, so of two finishing at once (even in two processes)
   * the later pass counts both; `processedAt` is when the last delivery finished.
   */
  async #settle(): Promise<void> {
    if (this.#touched.size === 0) return;
    const ids = [...this.#touched];
    this.#touched.clear();
    try {
      await this.o.pool.query(
        `UPDATE cross_integration_events e SET
           status = CASE WHEN x.open > 0 THEN 'pending' WHEN x.dead > 0 THEN 'failed' ELSE 'processed' END,
           processed_at = CASE WHEN x.open > 0 THEN NULL ELSE x.finished END,
           error_message = CASE WHEN x.open = 0 AND x.dead > 0 THEN x.dead || ' of ' || x.total || ' deliveries dead-lettered' ELSE NULL END,
           updated_at = greatest(e.updated_at, x.finished)
         FROM (SELECT event_id, count(*) FILTER (WHERE status IN ('pending', 'failed')) AS open, count(*) FILTER (WHERE status = 'dead') AS dead,
                      count(*) AS total, max(coalesce(delivered_at, dead_at)) AS finished
               FROM event_deliveries WHERE event_id = ANY($1) GROUP BY event_id) x
         WHERE e.id = x.event_id`,
        [ids],
      );
    } catch (err) {
      for (const id of ids) this.#touched.add(id);
      this.o.log.warn({ err }, 'event delivery: settling event statuses failed; retrying');
    }
  }
}
