import { setMaxListeners } from 'node:events';
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
  /** Rows of a messaging-only lane claimed together (default LANE_BATCH; 1: one at a time, the old way, for benchmarks). */
  laneBatch?: number;
  /** Rows of a lane with an HTTP endpoint claimed together (default ENDPOINT_LANE_BATCH; 1: one claim per POST, the old way). */
  endpointLaneBatch?: number;
}

const CLAIM_GAP_MS = 4;

/**
 * Rows of one (source, target) lane claimed together when the target has no HTTP endpoint: they
 * are published to the messaging channel in order, pipelined, and recorded in one statement. A
 * lane with an HTTP endpoint keeps one request in flight (a receiver may not reorder).
 */
export const LANE_BATCH = 128;

/**
 * Rows of a lane with an HTTP endpoint claimed together. They are still POSTed one at a time, in
 * order (a receiver may not reorder), but one claim serves them all and their outcomes are
 * recorded many per statement, overlapped with the next POSTs: the round trips per delivery go
 * from three (claim, POST, record) to about one (the POST).
 */
export const ENDPOINT_LANE_BATCH = 32;

/**
 * How long a lane task keeps its lane: after a batch all delivered, it claims the lane's
 * next rows itself (one indexed statement over that lane alone) instead of waiting for the claim
 * of all lanes, until this much time has passed; then the lane goes back to that claim, where
 * lanes are ranked by priority again.
 */
const LANE_TURN_MS = 250;

/** An endpoint lane starts no POST that could still be running when its lease lapses (a timeout plus this). */
const LEASE_MARGIN_MS = 1_000;

/** A receiver's Retry-After is honoured up to an hour. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/** The delivery retry policy of the events configuration (doubling, no jitter: a row's retry time is its queue's). */
export function deliveryRetryPolicy(c: EventsConfig): RetryPolicy {
  return { maxAttempts: c.maxAttempts, initialMs: c.retryBackoffMs, factor: 2, maxMs: c.retryMaxMs, jitter: 0, maxRetryAfterMs: MAX_RETRY_AFTER_MS };
}

/**
 * The last part of a claim: the rows just leased (CTE `claimed`) with their place in the lane (from
 * the CTE `cte`, aliased `alias`, with `id` and `rn`), their event and their target's endpoint.
 */
const claimedRows = (cte: string, alias: string, order: string): string =>
  `SELECT c.id::int AS id, c.event_id, c.target_integration_id, c.attempts, c.generation, c.lease_until, ${alias}.rn::int AS rn,
          e.event_name, e.source_integration_id, e.event_category, e.priority, e.payload, e.metadata, e.created_at,
          ep.url, ep.secret, ep.event_names, ep.event_categories
   FROM claimed c JOIN ${cte} ${alias} ON ${alias}.id = c.id JOIN cross_integration_events e ON e.id = c.event_id
   LEFT JOIN integration_endpoints ep ON ep.integration_id = c.target_integration_id
   ORDER BY ${order}`;

interface Claimed {
  id: number;
  /** Its place in its lane at the claim (1: the head). */
  rn: number;
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
  /** Told of every delivery recorded as delivered (usage analytics count them in memory). */
  #onDelivered: ((targets: string[], at: number) => void) | undefined;
  readonly #touched = new Set<string>();
  #abort = new AbortController();
  #running = false;
  #loop: Promise<void> | undefined;
  #kick: (() => void) | undefined;
  #dirty = false;
  /** `rounds`: a lane's next rows claimed by the task that held it (no claim of all lanes). */
  readonly stats = { delivered: 0, retried: 0, dead: 0, released: 0, claims: 0, lanes: 0, rounds: 0 };

  constructor(private readonly o: EventDeliveryWorkerOptions) {}

  /** `fn` hears of every delivery recorded as delivered: the target integration ids and when (it must not block or throw). */
  onDelivered(fn: (targets: string[], at: number) => void): void {
    this.#onDelivered = fn;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    // every lane's POST in flight listens to it (one listener each, removed after the POST)
    setMaxListeners(0, this.#abort.signal);
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
          // one task per lane: its rows in order (a lane with an HTTP endpoint has one)
          let lane: Claimed[] = [];
          for (const r of rows) {
            if (lane.length > 0 && (lane[0]!.source_integration_id !== r.source_integration_id || lane[0]!.target_integration_id !== r.target_integration_id)) {
              this.#track(lane);
              lane = [];
            }
            lane.push(r);
          }
          if (lane.length > 0) this.#track(lane);
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

  #track(lane: Claimed[]): void {
    this.stats.lanes++;
    const p = this.#turn(lane)
      .catch((err) => this.o.log.error({ err, delivery: lane[0]!.id, rows: lane.length }, 'event delivery: recording the outcome failed; the lease will lapse and it is retried'))
      .finally(() => {
        this.#inflight.delete(p);
        this.wake();
      });
    this.#inflight.add(p);
  }

  /**
   * Claims up to `lanes` lanes' heads (highest priority first), and also the rows after each head,
   * up to LANE_BATCH (ENDPOINT_LANE_BATCH for a lane whose target has an HTTP endpoint), as long as
   * each is due and unleased (a consecutive prefix of the lane: a row waiting for its retry stops its lane there).
   * Rows come back in lane order.
   */
  async #claim(lanes: number): Promise<Claimed[]> {
    const now = new Date(this.o.clock.now());
    const leaseUntil = new Date(now.getTime() + this.o.config.leaseMs);
    const caps = this.#caps();
    const { rows } = await this.o.pool.query<Claimed>(
      `WITH open AS (
         SELECT d.id, d.source_integration_id, d.target_integration_id,
                row_number() OVER w AS rn,
                bool_and(d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1)) OVER w AS ready,
                max(d.priority_rank) OVER (PARTITION BY d.source_integration_id, d.target_integration_id) AS lane_rank,
                min(d.id) OVER (PARTITION BY d.source_integration_id, d.target_integration_id) AS lane_head,
                CASE WHEN ep.url IS NULL THEN $4::int ELSE $5::int END AS cap
         FROM event_deliveries d
         LEFT JOIN integration_endpoints ep ON ep.integration_id = d.target_integration_id
         WHERE d.status IN ('pending', 'failed')
         WINDOW w AS (PARTITION BY d.source_integration_id, d.target_integration_id ORDER BY d.id ROWS UNBOUNDED PRECEDING)
       ), lanes AS (
         SELECT source_integration_id AS s, target_integration_id AS t, lane_rank, id AS lane_head, cap FROM open
         WHERE rn = 1 AND ready
         ORDER BY lane_rank DESC, id LIMIT $2
       ), picked AS (
         SELECT o.id, l.lane_rank, l.lane_head, o.rn FROM open o
         JOIN lanes l ON l.s = o.source_integration_id AND l.t = o.target_integration_id
         WHERE o.ready AND o.rn <= l.cap
       ), locked AS (
         SELECT d.id FROM event_deliveries d JOIN picked p ON p.id = d.id
         WHERE d.status IN ('pending', 'failed') AND (d.lease_until IS NULL OR d.lease_until < $1)
         FOR UPDATE OF d SKIP LOCKED
       ), claimed AS (
         UPDATE event_deliveries d SET lease_until = $3, attempts = d.attempts + 1, last_attempt_at = $1, updated_at = $1
         FROM locked WHERE d.id = locked.id
         RETURNING d.id, d.event_id, d.target_integration_id, d.attempts, d.generation, d.lease_until
       )
       ${claimedRows('picked', 'p', 'p.lane_rank DESC, p.lane_head, p.rn')}`,
      [now, lanes, leaseUntil, caps.other, caps.endpoint],
    );
    return this.#cut(rows);
  }

  /**
   * A lane's rows must be its head and the rows right after it: a row another worker was claiming
   * at the same moment (skipped as locked) cuts the lane there, and what came after the cut goes
   * back untried, so no row is published ahead of an earlier one. `rows` come in lane order.
   */
  async #cut(rows: Claimed[]): Promise<Claimed[]> {
    this.stats.claims += rows.length;
    const out: Claimed[] = [];
    const cut: Claimed[] = [];
    let lane = '';
    let next = 1;
    for (const r of rows) {
      const key = `${r.source_integration_id}\u0000${r.target_integration_id}`;
      if (key !== lane) {
        lane = key;
        next = 1;
      }
      if (r.rn === next) {
        out.push(r);
        next++;
      } else {
        cut.push(r);
        next = Number.POSITIVE_INFINITY;
      }
    }
    if (cut.length > 0) await this.#release(cut);
    return out;
  }

  /** How many rows of a lane one claim takes: a lane with an HTTP endpoint, and one without (messaging, or neither channel). */
  #caps(): { endpoint: number; other: number } {
    return { endpoint: this.o.endpointLaneBatch ?? ENDPOINT_LANE_BATCH, other: this.o.publish ? (this.o.laneBatch ?? LANE_BATCH) : 1 };
  }

  #laneCap(row: Claimed): number {
    const caps = this.#caps();
    return row.url ? caps.endpoint : caps.other;
  }

  /**
   * The next rows of one lane, for the task that just delivered its batch of it (the lane's head
   * up to `after`): the rows after it, up to the lane's batch size, as long as each is due and
   * unleased, claimed in one statement that walks only that lane's open rows from `after` on
   * (index `event_deliveries_open`; starting there skips the index entries of the rows just
   * delivered, dead until a vacuum). Every row before `after` is finished, so the first row
   * after it is the lane's head. Same rules as the claim of all lanes, cut included.
   */
  async #claimLane(source: string, target: string, after: number, delivered?: Claimed[]): Promise<Claimed[]> {
    const now = new Date(this.o.clock.now());
    const leaseUntil = new Date(now.getTime() + this.o.config.leaseMs);
    const caps = this.#caps();
    const params: unknown[] = [now, source, target, caps.other, leaseUntil, caps.endpoint, after];
    // a messaging batch's record rides in the same statement (its rows are all at or before `after`)
    if (delivered) params.push(delivered.map((r) => r.id), ['messaging']);
    const record = delivered
      ? `rec AS (
           UPDATE event_deliveries SET status = 'delivered', lease_until = NULL, delivered_at = $1, updated_at = $1, last_status_code = NULL, last_error = NULL, channels = $9
            WHERE id = ANY($8::bigint[])
         ), `
      : '';
    const { rows } = await this.o.pool.query<Claimed>(
      `WITH ${record}lane AS (
         SELECT d.id, row_number() OVER w AS rn,
                bool_and(d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1)) OVER w AS ready
         FROM event_deliveries d
         WHERE d.source_integration_id = $2 AND d.target_integration_id = $3 AND d.status IN ('pending', 'failed') AND d.id > $7
         WINDOW w AS (ORDER BY d.id ROWS UNBOUNDED PRECEDING)
         ORDER BY d.id
         LIMIT (SELECT CASE WHEN EXISTS (SELECT 1 FROM integration_endpoints WHERE integration_id = $3) THEN $6::int ELSE $4::int END)
       ), locked AS (
         SELECT d.id FROM event_deliveries d JOIN lane l ON l.id = d.id
         WHERE l.ready AND d.status IN ('pending', 'failed') AND (d.lease_until IS NULL OR d.lease_until < $1)
         FOR UPDATE OF d SKIP LOCKED
       ), claimed AS (
         UPDATE event_deliveries d SET lease_until = $5, attempts = d.attempts + 1, last_attempt_at = $1, updated_at = $1
         WHERE d.id = ANY(ARRAY(SELECT id FROM locked))
         RETURNING d.id, d.event_id, d.target_integration_id, d.attempts, d.generation, d.lease_until
       )
       ${claimedRows('lane', 'l', 'l.rn')}`,
      params,
    );
    this.stats.rounds++;
    if (delivered) this.#delivered(delivered, now.getTime());
    return this.#cut(rows);
  }

  /** Hands claims back untried: the attempt is not counted, the lease goes, the rows are due again. */
  async #release(rows: Claimed[]): Promise<void> {
    this.stats.released += rows.length;
    await this.o.pool.query(
      `UPDATE event_deliveries SET attempts = attempts - 1, lease_until = NULL, updated_at = $2
        WHERE id = ANY($1::bigint[]) AND lease_until = $3 AND status IN ('pending', 'failed')`,
      [rows.map((r) => r.id), new Date(this.o.clock.now()), rows[0]!.lease_until],
    );
  }

  /**
   * A lane's rows to the messaging channel (its target has no HTTP endpoint): published in order,
   * pipelined (one connection keeps the publish order), and recorded in one statement. At the
   * first failure that row takes its retry and the rows after it go back untried, so the lane
   * waits for it; a receiver that already got a later row dedupes its repeat on webhook-id.
   */
  async #deliverLane(rows: Claimed[], next = false): Promise<{ whole: boolean; next?: Claimed[] }> {
    if (this.#abort.signal.aborted) {
      await this.#release(rows);
      return { whole: false };
    }
    const publish = this.o.publish!;
    const sent = rows.map((row) => {
      const { webhookId, body } = this.#message(row);
      return publish(row.target_integration_id, body, webhookId, { 'webhook-id': webhookId, 'concord-event-id': row.event_id, 'concord-source': row.source_integration_id });
    });
    const results = await Promise.allSettled(sent);
    const failed = results.findIndex((r) => r.status === 'rejected');
    const done = failed < 0 ? rows : rows.slice(0, failed);
    for (const r of done) await this.o.beforeRecord?.(r.id);
    if (failed < 0 && next) {
      const last = rows[rows.length - 1]!;
      return { whole: true, next: await this.#claimLane(last.source_integration_id, last.target_integration_id, last.id, rows) };
    }
    if (done.length > 0) {
      const at = new Date(this.o.clock.now());
      await this.o.pool.query(
        `UPDATE event_deliveries SET status = 'delivered', lease_until = NULL, delivered_at = $2, updated_at = $2, last_status_code = NULL, last_error = NULL, channels = $3
          WHERE id = ANY($1::bigint[])`,
        [done.map((r) => r.id), at, ['messaging']],
      );
      this.#delivered(done, at.getTime());
    }
    if (failed >= 0) {
      const reason = (results[failed] as PromiseRejectedResult).reason as Error;
      await this.#record(rows[failed]!, { kind: 'retry', statusCode: null, retryAfterMs: null, error: `publish: ${reason?.message ?? String(reason)}` }, []);
      if (failed + 1 < rows.length) await this.#release(rows.slice(failed + 1));
      return { whole: false };
    }
    return { whole: true };
  }

  /** Rows recorded delivered (after the commit): counted, heard of, their events settled next. */
  #delivered(rows: Claimed[], at: number): void {
    this.stats.delivered += rows.length;
    this.#onDelivered?.(rows.map((r) => r.target_integration_id), at);
    for (const r of rows) this.#touched.add(r.event_id);
  }

  /** The delivery's webhook-id and body (Standard Webhooks' envelope), the same on every channel. */
  #message(row: Claimed): { webhookId: string; body: string } {
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
    return { webhookId, body };
  }

  async #deliver(row: Claimed): Promise<void> {
    // claimed while the worker was being stopped: hand it back untried
    if (this.#abort.signal.aborted) return this.#record(row, { kind: 'aborted', statusCode: null, retryAfterMs: null, error: null }, []);
    const { outcome, channels } = await this.#attempt(row);
    await this.o.beforeRecord?.(row.id);
    await this.#record(row, outcome, channels);
  }

  /**
   * A lane's turn: its claimed rows, then, while every row is delivered and the turn lasts, the
   * lane's next rows claimed by this task itself and delivered the same way (no wait for the claim
   * of all lanes, which walks every open row). A lane with an HTTP endpoint POSTs one row at a time;
   * one without publishes its rows pipelined; a lane with neither (no messaging channel, no
   * endpoint) records one row at a time and ends its turn there.
   */
  async #turn(first: Claimed[]): Promise<void> {
    const started = performance.now();
    let rows = first;
    for (;;) {
      // a batch short of the lane's size means the lane has caught up: new rows come with the wakes
      // of the loop, batched across lanes, instead of a claim per lane per round
      const more = (n: number) => this.#running && n >= this.#laneCap(rows[0]!) && performance.now() - started < LANE_TURN_MS;
      const { source_integration_id: source, target_integration_id: target } = rows[0]!;
      if (rows[0]!.url) {
        if (!(await this.#deliverEndpointLane(rows)) || !more(rows.length)) return;
        rows = await this.#claimLane(source, target, rows[rows.length - 1]!.id);
      } else if (this.o.publish) {
        // the batch's record and the claim of the lane's next rows are one statement
        const r = await this.#deliverLane(rows, more(rows.length));
        if (!r.next) return;
        rows = r.next;
      } else {
        await this.#deliver(rows[0]!);
        return;
      }
      if (rows.length === 0) return;
    }
  }

  /**
   * A lane whose target has an HTTP endpoint: its rows POSTed one at a time, in order, each only
   * after the one before it was answered 2xx. Delivered rows are recorded many per statement while
   * the next POSTs go (at most one record statement in flight), so a crash leaves at most the rows
   * since the last record to be delivered again (at least once; receivers dedupe on webhook-id).
   * At the first row not delivered, the rows before it are recorded, it takes its retry (or dead
   * letter), and the rows after it go back untried, so nothing overtakes it. No POST starts that
   * could outlive the lease: the rest go back for the next claim.
   */
  async #deliverEndpointLane(rows: Claimed[]): Promise<boolean> {
    const done: Array<{ row: Claimed; statusCode: number | null; channels: string[] }> = [];
    let recording: Promise<void> | undefined;
    let recordFailed: unknown;
    // one record statement at a time: the rows delivered while it runs go in the next one
    const pump = (): void => {
      if (recording || done.length === 0 || recordFailed !== undefined) return;
      recording = this.#recordDelivered(done.splice(0))
        .catch((err: unknown) => {
          recordFailed = err ?? new Error('recording delivered rows failed');
        })
        .finally(() => {
          recording = undefined;
          pump();
        });
    };
    const settleRecords = async (): Promise<void> => {
      pump();
      while (recording) await recording;
      // a failed record leaves its rows leased: they are delivered again when the lease lapses
      if (recordFailed !== undefined) throw recordFailed;
    };
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      // the first row goes as a lone claim always did; a later one only if its POST ends within the lease
      if (this.#abort.signal.aborted || (i > 0 && this.o.clock.now() + this.o.config.webhookTimeoutMs + LEASE_MARGIN_MS > row.lease_until.getTime())) {
        await settleRecords();
        await this.#release(rows.slice(i));
        return false;
      }
      const { outcome, channels } = await this.#attempt(row);
      await this.o.beforeRecord?.(row.id);
      if (outcome.kind === 'delivered') {
        done.push({ row, statusCode: outcome.statusCode, channels });
        pump();
        // the database is failing: POST no more of what could not be recorded
        if (recordFailed !== undefined) {
          await settleRecords();
          return false;
        }
        continue;
      }
      await settleRecords();
      if (outcome.kind === 'aborted') {
        await this.#release(rows.slice(i));
        return false;
      }
      await this.#record(row, outcome, channels);
      if (i + 1 < rows.length) await this.#release(rows.slice(i + 1));
      return false;
    }
    await settleRecords();
    return true;
  }

  /** Rows delivered (each with its status code and channels), recorded in one statement. */
  async #recordDelivered(batch: Array<{ row: Claimed; statusCode: number | null; channels: string[] }>): Promise<void> {
    const now = this.o.clock.now();
    const at = new Date(now);
    await this.o.pool.query(
      `UPDATE event_deliveries d SET status = 'delivered', lease_until = NULL, delivered_at = $4, updated_at = $4, last_status_code = x.code, last_error = NULL,
              channels = string_to_array(x.channels, ',')
         FROM unnest($1::bigint[], $2::int[], $3::text[]) AS x(id, code, channels)
        WHERE d.id = x.id`,
      [batch.map((b) => b.row.id), batch.map((b) => b.statusCode), batch.map((b) => b.channels.join(',')), at],
    );
    this.#delivered(batch.map((b) => b.row), now);
  }

  /** One attempt of one row: published to the messaging channel if there is one, then POSTed to the target's endpoint if it wants it. */
  async #attempt(row: Claimed): Promise<{ outcome: PostOutcome; channels: string[] }> {
    const { webhookId, body } = this.#message(row);
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
    return { outcome, channels };
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
      this.#onDelivered?.([row.target_integration_id], now);
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
