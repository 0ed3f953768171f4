import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type pg from 'pg';
import { ACTIVE_SAGA_STATUSES } from '../../machines/saga/index.js';
import type { Clock } from '../../runtime/clock.js';
import { SAGA_ACTOR, type SagaService } from './service.js';

interface Totals {
  started: number;
  completed: number;
  failed: number;
  compensations: number;
  active: number;
}

/**
 * The spec's workflow metrics in Prometheus form, read from the saga actors' indexed columns so
 * every process reports the same cluster-wide numbers: `workflow_started_total`,
 * `workflow_completed_total`, `workflow_failed_total`, `saga_compensation_total` (counters by
 * `workflow_type`), `workflow_active` and `workflow_stuck_count` (gauges) and
 * `workflow_duration_seconds` (a histogram of the sagas this process saw finish while it ran,
 * by type and final status). One query per scrape (cached for a second).
 */
export function registerSagaMetrics(registry: Registry, o: { pool: pg.Pool; sagas: SagaService; clock: Clock }): void {
  let cache: { at: number; rows: Map<string, Totals> } | null = null;
  const totals = async (): Promise<Map<string, Totals>> => {
    if (cache && Date.now() - cache.at < 1_000) return cache.rows;
    const { rows } = await o.pool.query<Totals & { t: string | null }>(
      `SELECT attrs->>'workflowType' AS t,
              count(*)::int AS started,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
              count(*) FILTER (WHERE attrs->>'failedAt' IS NOT NULL AND attrs->>'cancelledAt' IS NULL)::int AS failed,
              coalesce(sum((attrs->>'compensated')::int), 0)::int AS compensations,
              count(*) FILTER (WHERE status = ANY($2::text[]))::int AS active
         FROM actors WHERE type = $1 AND status <> 'NEW' GROUP BY 1`,
      [SAGA_ACTOR, [...ACTIVE_SAGA_STATUSES]],
    );
    cache = { at: Date.now(), rows: new Map(rows.filter((r) => r.t).map((r) => [r.t!, r])) };
    return cache.rows;
  };
  const seen = new Map<string, number>();
  const counter = (name: string, help: string, key: keyof Totals) =>
    new Counter({
      name,
      help,
      labelNames: ['workflow_type'] as const,
      registers: [registry],
      async collect() {
        for (const [type, t] of await totals()) {
          const k = `${name}/${type}`;
          const delta = t[key] - (seen.get(k) ?? 0);
          if (delta > 0) this.inc({ workflow_type: type }, delta);
          seen.set(k, Math.max(t[key], seen.get(k) ?? 0));
        }
      },
    });
  counter('workflow_started_total', 'Workflows started', 'started');
  counter('workflow_completed_total', 'Workflows completed', 'completed');
  counter('workflow_failed_total', 'Workflows failed (a step failed, ran out of retries or timed out; cancellations not counted)', 'failed');
  counter('saga_compensation_total', 'Compensations executed (steps compensated)', 'compensations');
  new Gauge({
    name: 'workflow_active',
    help: 'Workflows not finished (IN_PROGRESS, COMPENSATING, CANCELLING, COMPENSATION_FAILED)',
    labelNames: ['workflow_type'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [type, t] of await totals()) this.set({ workflow_type: type }, t.active);
    },
  });
  new Gauge({
    name: 'workflow_stuck_count',
    help: 'Sagas still running past the stuck threshold (SAGA_STUCK_AFTER_MINUTES)',
    registers: [registry],
    async collect() {
      this.set(await o.sagas.stuck());
    },
  });
  let watermark = new Date(o.clock.now()).toISOString();
  new Histogram({
    name: 'workflow_duration_seconds',
    help: 'Time from start to the final status, for sagas that finished while this process ran',
    labelNames: ['workflow_type', 'status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
    async collect() {
      const { rows } = await o.pool.query<{ t: string; status: string; ms: number; done: string }>(
        `SELECT attrs->>'workflowType' AS t, status, (attrs->>'durationMs')::float8 AS ms, attrs->>'completedAt' AS done
           FROM actors
          WHERE type = $1 AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at >= $3 AND attrs->>'completedAt' > $2
          ORDER BY attrs->>'completedAt'`,
        [SAGA_ACTOR, watermark, new Date(watermark)],
      );
      for (const r of rows) {
        this.observe({ workflow_type: r.t, status: r.status }, r.ms / 1000);
        if (r.done > watermark) watermark = r.done;
      }
    },
  });
}
