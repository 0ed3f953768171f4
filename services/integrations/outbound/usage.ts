import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { partitionOf } from '../../../runtime/partition.js';
import type { Logger } from '../../../runtime/logger.js';
import type { BudgetKey } from './store.js';

/**
 * API usage per key and window (`integration_rate_limits`): each process counts its calls in
 * memory and adds them to the shared rows every second (one upsert for all keys), so the table
 * is the sum over every process. The error-rate alert reads it back.
 */

interface Counts {
  calls: number;
  errors: number;
  throttled: number;
  responseMs: number;
}

export interface Outcome {
  /** The attempt reached the provider (false: only a budget wait to count). */
  called: boolean;
  failed: boolean;
  throttled: boolean;
  responseMs: number;
}

export class UsageRecorder {
  #pending = new Map<string, { key: BudgetKey; windowStart: number; limit: string | null; counts: Counts }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly windowMs: number,
  ) {}

  windowOf(ms: number): number {
    return Math.floor(ms / this.windowMs) * this.windowMs;
  }

  record(key: BudgetKey, limit: string | null, o: Outcome, at = Date.now()): void {
    const windowStart = this.windowOf(at);
    const id = `${key.tenantId}\u0000${key.provider}\u0000${key.scope}\u0000${windowStart}`;
    let p = this.#pending.get(id);
    if (!p) this.#pending.set(id, (p = { key, windowStart, limit, counts: { calls: 0, errors: 0, throttled: 0, responseMs: 0 } }));
    if (o.called) {
      p.counts.calls++;
      p.counts.responseMs += o.responseMs;
    }
    if (o.failed) p.counts.errors++;
    if (o.throttled) p.counts.throttled++;
  }

  /** What this process counted and has not written yet, for a key since `sinceMs`. */
  unflushed(key: BudgetKey, sinceMs: number): Counts {
    const c: Counts = { calls: 0, errors: 0, throttled: 0, responseMs: 0 };
    for (const p of this.#pending.values()) {
      if (p.key.tenantId !== key.tenantId || p.key.provider !== key.provider || p.key.scope !== key.scope || p.windowStart < sinceMs) continue;
      c.calls += p.counts.calls;
      c.errors += p.counts.errors;
      c.throttled += p.counts.throttled;
      c.responseMs += p.counts.responseMs;
    }
    return c;
  }

  /** Adds the pending counts to the shared rows (one statement); kept for the next flush when it fails. */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending = new Map();
    try {
      await this.pool.query(
        `INSERT INTO integration_rate_limits AS r (tenant_id, provider, scope, window_start, window_ms, rate_limit, calls, errors, throttled, response_ms_total)
         SELECT x.tenant_id, x.provider, x.scope, to_timestamp(x.window_start / 1000.0), $2, x.rate_limit, x.calls, x.errors, x.throttled, x.ms
           FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, provider text, scope text, window_start float8, rate_limit text, calls int, errors int, throttled int, ms float8)
          ORDER BY 1, 2, 3, 4
         ON CONFLICT (tenant_id, provider, scope, window_start) DO UPDATE SET
           calls = r.calls + EXCLUDED.calls, errors = r.errors + EXCLUDED.errors, throttled = r.throttled + EXCLUDED.throttled,
           response_ms_total = r.response_ms_total + EXCLUDED.response_ms_total, rate_limit = EXCLUDED.rate_limit, updated_at = now()`,
        [
          JSON.stringify(
            batch.map((p) => ({
              tenant_id: p.key.tenantId,
              provider: p.key.provider,
              scope: p.key.scope,
              window_start: p.windowStart,
              rate_limit: p.limit,
              calls: p.counts.calls,
              errors: p.counts.errors,
              throttled: p.counts.throttled,
              ms: p.counts.responseMs,
            })),
          ),
          this.windowMs,
        ],
      );
    } catch (err) {
      for (const p of batch) {
        const id = `${p.key.tenantId}\u0000${p.key.provider}\u0000${p.key.scope}\u0000${p.windowStart}`;
        const q = this.#pending.get(id);
        if (!q) this.#pending.set(id, p);
        else {
          q.counts.calls += p.counts.calls;
          q.counts.errors += p.counts.errors;
          q.counts.throttled += p.counts.throttled;
          q.counts.responseMs += p.counts.responseMs;
        }
      }
      throw err;
    }
  }
}

export interface AlertSettings {
  errorRate: number;
  windowMs: number;
  minCalls: number;
  /** `<NATS_PREFIX>.events` */
  eventsRoot: string;
  partitions: number;
}

export interface HealthChange {
  tenantId: string;
  provider: string;
  scope: string;
  health: 'healthy' | 'degraded';
  calls: number;
  errors: number;
  errorRate: number;
}

/**
 * The error-rate alert: every key whose failed calls over the window exceed the threshold (with
 * at least `minCalls` calls) turns `degraded`, and back `healthy` below it. Each change is made
 * once, whichever process sees it first (the update's `WHERE health <> new`), and publishes
 * `<events>.IntegrationAlert` through the outbox in the same transaction.
 */
export async function checkHealth(pool: pg.Pool, s: AlertSettings, log: Logger): Promise<HealthChange[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ tenant_id: string; provider: string; scope: string; health: 'healthy' | 'degraded'; calls: number; errors: number }>(
      `WITH s AS (
         SELECT tenant_id, provider, scope, sum(calls)::int AS calls, sum(errors)::int AS errors
           FROM integration_rate_limits WHERE window_start > now() - make_interval(secs => $1 / 1000.0)
          GROUP BY 1, 2, 3),
       c AS (
         SELECT o.tenant_id, o.provider, o.scope, coalesce(s.calls, 0) AS calls, coalesce(s.errors, 0) AS errors,
                CASE WHEN coalesce(s.calls, 0) >= $2 AND s.errors::float8 / s.calls > $3 THEN 'degraded' ELSE 'healthy' END AS next
           FROM integration_outbound o LEFT JOIN s USING (tenant_id, provider, scope))
       UPDATE integration_outbound o SET health = c.next, health_changed_at = now()
         FROM c WHERE o.tenant_id = c.tenant_id AND o.provider = c.provider AND o.scope = c.scope AND o.health <> c.next
       RETURNING o.tenant_id, o.provider, o.scope, o.health, c.calls, c.errors`,
      [s.windowMs, s.minCalls, s.errorRate],
    );
    const changes = rows.map((r) => ({ tenantId: r.tenant_id, provider: r.provider, scope: r.scope, health: r.health, calls: r.calls, errors: r.errors, errorRate: r.calls > 0 ? r.errors / r.calls : 0 }));
    if (changes.length > 0) {
      const at = new Date().toISOString();
      await client.query(
        `INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload, headers)
         SELECT x.partition, 'integration', x.source_id, 'publish', $2, x.message_id, x.payload, '{}'::jsonb
           FROM jsonb_to_recordset($1::jsonb) AS x(partition int, source_id text, message_id text, payload jsonb)`,
        [
          JSON.stringify(
            changes.map((c) => {
              const source = `${c.tenantId}:${c.provider}${c.scope ? `:${c.scope}` : ''}`;
              return {
                partition: partitionOf(`integration/${source}`, s.partitions),
                source_id: source,
                message_id: randomUUID(),
                payload: {
                  tenantId: c.tenantId,
                  provider: c.provider,
                  account: c.scope || null,
                  health: c.health,
                  status: c.health === 'degraded' ? 'firing' : 'resolved',
                  errorRate: c.errorRate,
                  threshold: s.errorRate,
                  calls: c.calls,
                  errors: c.errors,
                  windowSeconds: Math.round(s.windowMs / 1000),
                  at,
                },
              };
            }),
          ),
          `${s.eventsRoot}.IntegrationAlert`,
        ],
      );
    }
    await client.query('COMMIT');
    for (const c of changes) log.warn({ tenantId: c.tenantId, provider: c.provider, health: c.health, errorRate: c.errorRate, calls: c.calls }, 'integration health changed');
    return changes;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
