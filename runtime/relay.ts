import type pg from 'pg';
import { backoffMs, decideRetry, type RetryPolicy } from '../connectors/kit/retry.js';
import { Grouper } from './grouper.js';
import type { LeaseListener } from './leases.js';
import type { Logger } from './logger.js';
import { actorAttributes, Attr, endFailed, SOURCE_VERSION, SpanKind, SpanStatusCode, TRACEPARENT, type Tracing } from './tracing.js';
import { backoffDelay } from '../machines/lib/backoff.js';

export interface OutboxRow {
  id: number;
  partition: number;
  sourceType: string;
  sourceId: string;
  kind: 'publish' | 'send' | 'call';
  subject: string;
  messageId: string;
  /** The payload as stored (JSON text): transports that send bytes use it as it is. */
  payloadJson: string;
  /** The payload parsed (lazily, on first use). */
  readonly payload: unknown;
  headers: Record<string, string>;
  attempts: number;
}

/** What became of one row: carried out, dead (never going to work), retry later, or not tried. */
export type Outcome =
  /** `then`: a message this work produced (a connector call's answer to its actor), queued in the
   * same transaction that deletes the row, so the work's result is never lost nor doubled.
   * `retired`: the row is gone already (deleted by the commit that applied the work's answer).
   */
  | { status: 'done'; then?: { kind: 'send'; subject: string; messageId: string; payload: unknown }; retired?: true }
  | { status: 'dead'; reason: string; error: string }
  | { status: 'retry'; error: string }
  /** The destination is paused by an operator: the row stays, counts no attempt, and is tried again after the partition's backoff. */
  | { status: 'wait' }
  | { status: 'skipped' }
  /**
   * Still running (a connector call): the row stays in the outbox, is not handed out again by
   * this process, and is settled when `settled` resolves. A crash meanwhile leaves the row, so
   * the work runs again after restart (at least once, under the same idempotency key).
   */
  | { status: 'running'; settled: Promise<Exclude<Outcome, { status: 'running' }>> };

/**
 * The batch's fence, for transports whose receivers dedupe only inside a window (JetStream's
 * duplicate window): `fresh()` turns false once the batch is too old to publish safely, and the
 * transport then publishes none of its remaining rows (they answer `skipped`, and the relay reads
 * them again, under its lease's epoch).
 */
export interface BatchFence {
  fresh(): boolean;
}

/**
 * Carries out a batch of outbox rows (in id order). An implementation keeps order per
 * destination: after a row answers `retry` or `wait`, later rows to the same destination are `skipped`.
 */
export interface Delivery {
  deliver(rows: readonly OutboxRow[], fence?: BatchFence): Promise<Outcome[]>;
}

/** A partition whose batch needed a retry waits 50 ms, doubling to 5 s; no jitter (one loop per partition). */
const PARTITION_BACKOFF = { initialMs: 50, factor: 2, maxMs: 5_000, jitter: 0 } as const;

interface Loop {
  /** The partition lease's fencing token (`partition_epochs`); undefined: unfenced (tests that drive the relay by hand). */
  epoch: number | undefined;
  stop: boolean;
  /** Set by `wake` and cleared as a read starts: a commit the running read may have missed. */
  woken: boolean;
  wake: () => void;
  done: Promise<void>;
}

/**
 * The outbox relay: for every partition this process leases, rows are read in id order,
 * handed to the transport, and deleted only after it has carried them out (at least once; the
 * row's message id lets the receiver dedupe). Rows are deleted rather than passed by a
 * high-water mark, so a row whose transaction committed late is never skipped. A row that keeps
 * failing backs off, and after `maxAttempts` goes to `dead_letters` so it does not block the
 * rest of its partition.
 *
 * Round trips: rows carried out cleanly are deleted by the partition's next read (one statement
 * deletes them and reads on), and reads of partitions that wake together share one statement,
 * so a busy relay costs about one round trip per batch of each partition, not four.
 */
export class OutboxRelay implements LeaseListener {
  readonly #loops = new Map<number, Loop>();
  readonly #reads = new Grouper<{ partition: number; epoch: number | undefined; deleting: readonly number[] }, OutboxRow[]>((asks) => this.#readMany(asks), {
    maxBatch: 64,
    concurrency: 2,
  });
  /** Rows whose work is still running (see the `running` outcome). */
  readonly #running = new Map<number, Promise<void>>();
  delivered = 0;
  deadLettered = 0;
  readonly #policy: RetryPolicy;

  constructor(
    private readonly o: {
      pool: pg.Pool;
      delivery: Delivery;
      log: Logger;
      batch: number;
      pollMs: number;
      maxAttempts: number;
      backoffMs?: (attempt: number) => number;
      /**
       * A batch read longer ago than this is not published (default: never stale). With
       * JetStream it is half the duplicate window: a relay that stalled mid-batch (a pause, a
       * long GC) while its partition passed to another process cannot publish a row after the
       * window that would drop it as the new owner's duplicate has closed; the reread is fenced
       * by the lease's epoch, so it gets nothing once the partition has moved.
       */
      staleAfterMs?: number;
      /** Spans of the rows carried out (those that carry a trace: `traceparent` in their headers). */
      tracing?: Tracing;
    },
  ) {
    this.#policy = { ...PARTITION_BACKOFF, maxAttempts: o.maxAttempts, maxRetryAfterMs: 0 };
  }

  acquired(p: number, epoch?: number): void {
    if (this.#loops.has(p)) return;
    let interrupt: () => void = () => undefined;
    const loop: Loop = {
      epoch,
      stop: false,
      woken: false,
      wake: () => {
        loop.woken = true;
        interrupt();
      },
      done: Promise.resolve(),
    };
    /**
     * Waits `ms` or until woken. An idle wait is skipped when a wake came while the loop was
     * busy (a row committed after its last read began would otherwise wait a whole poll); a
     * backoff is only cut short by a wake that comes during it.
     */
    const sleep = (ms: number, idle = false) => {
      if (idle && loop.woken) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        interrupt = () => {
          clearTimeout(t);
          resolve();
        };
      });
    };
    loop.done = this.#run(p, loop, sleep);
    this.#loops.set(p, loop);
  }

  async releasing(p: number): Promise<void> {
    const loop = this.#loops.get(p);
    if (!loop) return;
    loop.stop = true;
    loop.wake();
    await loop.done;
    this.#loops.delete(p);
  }

  lost(): void {
    for (const [p, loop] of this.#loops) {
      loop.stop = true;
      loop.wake();
      this.#loops.delete(p);
    }
  }

  /** A commit wrote rows to partition `p`: look at once instead of at the next poll. False when `p` is not relayed here. */
  wake(p: number): boolean {
    const loop = this.#loops.get(p);
    loop?.wake();
    return loop !== undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#loops.keys()].map((p) => this.releasing(p)));
    await Promise.all([...this.#running.values()]);
  }

  /**
   * An idle partition's wait until its next poll: to the next multiple of the poll interval, so
   * the idle partitions of this process poll at the same moments and their reads share statements
   * (the reads' grouper), instead of each partition's poll being one statement of its own.
   */
  #idleWait(): number {
    const ms = this.o.pollMs;
    return ms - (Date.now() % ms);
  }

  async #run(p: number, loop: Loop, sleep: (ms: number, idle?: boolean) => Promise<void>): Promise<void> {
    let failures = 0;
    /** Rows carried out and not deleted yet: the next read deletes them. */
    let done: number[] = [];
    while (!loop.stop) {
      let rows: OutboxRow[];
      loop.woken = false;
      try {
        rows = await this.#reads.submit({ partition: p, epoch: loop.epoch, deleting: done });
        this.delivered += done.length;
        done = [];
      } catch (err) {
        this.o.log.warn({ err, partition: p }, 'outbox read failed');
        await sleep(backoffDelay({ initialMs: 100, maxMs: 5_000 }, 1 + failures++));
        continue;
      }
      if (rows.length === 0) {
        failures = 0;
        await sleep(this.#idleWait(), true);
        continue;
      }
      let retried: number;
      const readAt = performance.now();
      const staleAfterMs = this.o.staleAfterMs ?? Infinity;
      let stale = false;
      const fence = {
        fresh: () => {
          stale ||= performance.now() - readAt >= staleAfterMs;
          return !stale;
        },
      };
      try {
        const outcomes = this.o.tracing?.enabled ? await tracedDeliver(this.o.tracing, this.o.delivery, rows, fence) : await this.o.delivery.deliver(rows, fence);
        if (stale) this.o.log.warn({ partition: p, ageMs: Math.round(performance.now() - readAt), staleAfterMs }, 'outbox batch went stale before it was published (the relay stalled): read again under the lease');
        if (outcomes.length === rows.length && outcomes.every((o) => o.status === 'done' && !o.then)) {
          done = rows.map((r) => r.id);
          retried = 0;
        } else {
          retried = await this.#settle(rows, outcomes);
        }
      } catch (err) {
        this.o.log.warn({ err, partition: p }, 'outbox delivery failed');
        retried = 1;
      }
      if (retried > 0) {
        const backoff = this.o.backoffMs ?? ((n: number) => backoffMs(PARTITION_BACKOFF, n + 1));
        await sleep(backoff(failures++));
      } else {
        failures = 0;
        // Nothing committed to this partition since the read began (no wake) and the batch was not
        // full: the next read would find nothing and only delete what was just carried out. So
        // wait for the next wake (or poll) and delete it then, with the read that takes the next
        // rows: one statement per batch instead of two, and no wake lost (a commit's wake ends the
        // wait). If the process dies meanwhile the rows are published again under the same message
        // ids, as after any crash between publish and delete (at least once, deduped downstream);
        // the loop's end (release, loss, shutdown) deletes them at once.
        if (done.length > 0 && rows.length < this.o.batch) await sleep(this.#idleWait(), true);
      }
    }
    // the loop stops (lease released or lost, or shutdown): what it carried out is deleted now;
    // if that fails, the rows are carried out again by the next owner (at least once)
    if (done.length > 0) {
      await this.#reads
        .submit({ partition: p, epoch: undefined, deleting: done })
        .then(() => (this.delivered += done.length))
        .catch((err: unknown) => this.o.log.warn({ err, partition: p }, 'deleting relayed outbox rows failed; they are relayed again'));
    }
  }

  /**
   * One statement for every partition asking at this moment: deletes the rows they carried out
   * and reads each one's next batch in id order (the read sees the table as before the delete,
   * hence the exclusion). A partition asking under a lease epoch gets rows only while that epoch
   * is the partition's current one: a relay whose lease passed on reads nothing.
   */
  async #readMany(asks: ReadonlyArray<{ partition: number; epoch: number | undefined; deleting: readonly number[] }>): Promise<OutboxRow[][]> {
    const { rows } = await this.o.pool.query<{
      id: number;
      partition: number;
      source_type: string;
      source_id: string;
      kind: OutboxRow['kind'];
      subject: string;
      message_id: string;
      payload_json: string;
      headers: Record<string, string>;
      attempts: number;
    }>({
      name: 'concord_outbox_read',
      // the payload as text: the NATS transport publishes those bytes without a parse and re-serialise
      text: `WITH gone AS (DELETE FROM outbox WHERE id = ANY($2::bigint[]))
             SELECT o.id, o.partition, o.source_type, o.source_id, o.kind, o.subject, o.message_id, o.payload::text AS payload_json, o.headers, o.attempts
             FROM unnest($1::int[], $5::bigint[]) AS p(partition, epoch)
             CROSS JOIN LATERAL (
               SELECT * FROM outbox
               WHERE outbox.partition = p.partition AND id <> ALL($2::bigint[]) AND id <> ALL($4::bigint[])
                 AND (p.epoch IS NULL OR EXISTS (SELECT 1 FROM partition_epochs e WHERE e.partition = p.partition AND e.epoch = p.epoch))
               ORDER BY id LIMIT $3
             ) o`,
      values: [asks.map((a) => a.partition), asks.flatMap((a) => a.deleting), this.o.batch, [...this.#running.keys()], asks.map((a) => a.epoch ?? null)],
    });
    const byPartition = new Map<number, OutboxRow[]>(asks.map((a) => [a.partition, []]));
    for (const r of rows) {
      byPartition.get(r.partition)!.push({
        id: r.id,
        partition: r.partition,
        sourceType: r.source_type,
        sourceId: r.source_id,
        kind: r.kind,
        subject: r.subject,
        messageId: r.message_id,
        payloadJson: r.payload_json,
        get payload(): unknown {
          const parsed: unknown = JSON.parse(r.payload_json);
          Object.defineProperty(this, 'payload', { value: parsed });
          return parsed;
        },
        headers: r.headers,
        attempts: r.attempts,
      });
    }
    return asks.map((a) => byPartition.get(a.partition)!);
  }

  /** Deletes what is done or dead (recording the dead), counts attempts on the rest. */
  async #settle(rows: OutboxRow[], outcomes: Outcome[]): Promise<number> {
    const doneIds: number[] = [];
    const followUps: Array<{ row: OutboxRow; then: NonNullable<Extract<Outcome, { status: 'done' }>['then']> }> = [];
    const dead: Array<{ row: OutboxRow; reason: string; error: string }> = [];
    const retry: Array<{ row: OutboxRow; error: string }> = [];
    let waiting = 0;
    rows.forEach((row, i) => {
      const o = outcomes[i] ?? { status: 'skipped' };
      if (o.status === 'running') {
        const settled = o.settled
          .catch((err: unknown): Outcome => ({ status: 'retry', error: err instanceof Error ? err.message : String(err) }))
          .then((final) => this.#settle([row], [final]))
          .catch((err: unknown) => this.o.log.warn({ err, id: row.id }, 'settling a finished outbox row failed; it runs again'))
          .finally(() => this.#running.delete(row.id));
        this.#running.set(row.id, settled.then(() => undefined));
        return;
      }
      if (o.status === 'done') {
        doneIds.push(row.id);
        if (o.then) followUps.push({ row, then: o.then });
      }
      else if (o.status === 'wait') waiting++;
      else if (o.status === 'dead') dead.push({ row, reason: o.reason, error: o.error });
      else if (o.status === 'retry') {
        // the one retry decision (connectors/kit/retry.ts); the row's wait is its partition's backoff
        if (decideRetry({ retryable: true }, row.attempts + 1, this.#policy).retry) retry.push({ row, error: o.error });
        else dead.push({ row, reason: 'failed', error: o.error });
      }
    });
    if (doneIds.length === rows.length && outcomes.every((o) => o.status === 'done' && o.retired)) {
      this.delivered += doneIds.length;
      return 0; // nothing left to write
    }
    // one statement, so all of it happens or none of it does
    await this.o.pool.query({
      name: 'concord_outbox_settle',
      text: `WITH gone AS (DELETE FROM outbox WHERE id = ANY($1::bigint[])),
        follow AS (
          INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload)
          SELECT f.partition, f.source_type, f.source_id, f.kind, f.subject, f.message_id, f.payload
          FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (partition int, source_type text, source_id text, kind text, subject text, message_id text, payload jsonb))
            WITH ORDINALITY AS f(partition, source_type, source_id, kind, subject, message_id, payload, n)
          ORDER BY f.n
        ),
        dead AS (
          INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts)
          SELECT 'outbox', d.reason, d.subject, d.actor_type, d.actor_id, d.message_id, d.payload, d.headers, d.error, d.attempts
          FROM jsonb_to_recordset($3::jsonb) AS d(reason text, subject text, actor_type text, actor_id text, message_id text,
            payload jsonb, headers jsonb, error text, attempts int)
        ),
        retried AS (
          UPDATE outbox SET attempts = outbox.attempts + 1, last_error = r.error
          FROM jsonb_to_recordset($4::jsonb) AS r(id bigint, error text) WHERE outbox.id = r.id
        )
        SELECT 1`,
      values: [
        [...doneIds, ...dead.map((d) => d.row.id)],
        JSON.stringify(
          followUps.map((f) => ({
            partition: f.row.partition,
            source_type: f.row.sourceType,
            source_id: f.row.sourceId,
            kind: f.then.kind,
            subject: f.then.subject,
            message_id: f.then.messageId,
            payload: f.then.payload,
          })),
        ),
        JSON.stringify(
          dead.map((d) => ({
            reason: d.reason,
            subject: d.row.subject,
            actor_type: d.row.sourceType,
            actor_id: d.row.sourceId,
            message_id: d.row.messageId,
            payload: d.row.payload,
            headers: { ...d.row.headers, 'Concord-Kind': d.row.kind },
            error: d.error,
            attempts: d.row.attempts + 1,
          })),
        ),
        JSON.stringify(retry.map((r) => ({ id: r.row.id, error: r.error.slice(0, 2000) }))),
      ],
    });
    this.delivered += doneIds.length;
    this.deadLettered += dead.length;
    // a connector call's answer, queued just now, goes out at once rather than at the next poll
    for (const p of new Set(followUps.map((f) => f.row.partition))) this.wake(p);
    if (dead.length) this.o.log.warn({ dead: dead.map((d) => ({ id: d.row.id, reason: d.reason, error: d.error })) }, 'outbox rows dead-lettered');
    return retry.length + waiting; // either way the partition backs off (a new commit's wake cuts it short)
  }
}

/**
 * Carries out rows with a span each (`publish <subject>`, a producer span, child of the
 * transition that wrote the row): the row goes out with the span's own `traceparent`, so the
 * consumer's transition is the span's child. A row without a trace goes out as it is.
 */
async function tracedDeliver(tracing: Tracing, delivery: Delivery, rows: readonly OutboxRow[], fence?: BatchFence): Promise<Outcome[]> {
  const spans = rows.map((row) => {
    const parent = row.headers[TRACEPARENT];
    if (!parent) return null;
    const span = tracing.start(`${row.kind} ${row.subject}`, SpanKind.PRODUCER, tracing.parent(parent), {
      ...actorAttributes({ type: row.sourceType, id: row.sourceId }, Number(row.headers[SOURCE_VERSION]) || undefined),
      [Attr.subject]: row.subject,
      [Attr.messageId]: row.messageId,
    });
    if (span) row.headers = { ...row.headers, [TRACEPARENT]: tracing.traceparentOf(span) };
    return span;
  });
  try {
    const outcomes = await delivery.deliver(rows, fence);
    outcomes.forEach((o, i) => {
      const span = spans[i];
      if (!span) return;
      span.setAttribute(Attr.outcome, o.status);
      if (o.status === 'dead') span.setStatus({ code: SpanStatusCode.ERROR, message: o.error });
      span.end();
    });
    return outcomes;
  } catch (err) {
    for (const span of spans) endFailed(span, err);
    throw err;
  }
}
