import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Runtime } from '../runtime/runtime.js';

/**
 * Prometheus metrics for one app (a registry per app, so tests can build many): request
 * latency by route, actor transitions and their outcomes, outbox lag, timers due.
 */
export function createMetrics(runtime: Runtime, opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'concord_' });
  const latency = new Histogram({
    name: 'concord_http_request_duration_seconds',
    help: 'HTTP request latency by method, matched route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const stats = runtime.host.stats;
  const seen: Record<string, number> = {};
  new Counter({
    name: 'concord_actor_transitions_total',
    help: 'Actor events by outcome in this process (applied, duplicate, rejected, conflict)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      for (const [outcome, key] of [['applied', 'transitions'], ['duplicate', 'duplicates'], ['rejected', 'rejected'], ['conflict', 'conflicts']] as const) {
        const now = stats[key];
        const delta = now - (seen[key] ?? 0);
        if (delta > 0) this.inc({ outcome }, delta);
        seen[key] = now;
      }
    },
  });
  let health: Awaited<ReturnType<Runtime['health']>> | null = null;
  let healthAt = 0;
  // one database round trip per scrape at most, shared by the gauges below
  const latest = async () => {
    if (!health || Date.now() - healthAt > 500) {
      health = await runtime.health();
      healthAt = Date.now();
    }
    return health;
  };
  new Gauge({
    name: 'concord_outbox_lag_seconds',
    help: 'Age of the oldest unsent outbox row',
    registers: [registry],
    async collect() {
      this.set((await latest()).outbox.oldestAgeMs / 1000);
    },
  });
  new Gauge({
    name: 'concord_outbox_pending',
    help: 'Outbox rows not yet delivered',
    registers: [registry],
    async collect() {
      this.set((await latest()).outbox.pending);
    },
  });
  new Gauge({
    name: 'concord_timers_pending',
    help: 'Durable timers scheduled',
    registers: [registry],
    async collect() {
      this.set((await latest()).timers.pending);
    },
  });
  new Gauge({
    name: 'concord_timers_due',
    help: 'Durable timers more than 5 s past due (overdue)',
    registers: [registry],
    async collect() {
      this.set((await latest()).timers.overdue);
    },
  });
  new Gauge({
    name: 'concord_dead_letters',
    help: 'Dead letters not replayed',
    registers: [registry],
    async collect() {
      this.set((await latest()).deadLetters);
    },
  });
  new Gauge({
    name: 'concord_actors_cached',
    help: 'Actors hydrated in memory',
    registers: [registry],
    collect() {
      this.set(runtime.host.cached);
    },
  });
  return { registry, latency };
}
