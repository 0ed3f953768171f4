import type pg from 'pg';
import { isConnectorError } from '../../connectors/kit/errors.js';
import { nextHealth, type CheckSettings, type EcosystemHealth, type ecosystemType } from '../../machines/ecosystem/index.js';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { Clock } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/logger.js';
import { partitionOf } from '../../runtime/partition.js';
import type { IntegrationCalls } from './calls.js';

interface Tracked {
  id: string;
  tenantId: string;
  name: string;
  settings: CheckSettings;
  health: EcosystemHealth;
  /** Epoch ms of the next scheduled check. */
  nextDue: number;
}

export interface MonitorOptions {
  pool: pg.Pool;
  actors: ActorHandle<typeof ecosystemType>;
  calls: IntegrationCalls;
  clock: Clock;
  log: Logger;
  /** The check settings of a tier (interval, degraded latency, failures to unhealthy). */
  settingsOf: (tier: string) => CheckSettings;
  /** Whether this process checks that integration (it owns the partition of its actor); default: all. */
  owns?: (id: string) => boolean;
  /** How often due checks are gathered; default: 250 ms (a few checks per tick, not a burst per second), or half the shortest interval seen if shorter. */
  tickMs?: number;
  /** Checks running at once. */
  concurrency?: number;
  /** How often the monitored set is brought up to date with changes made by other processes. */
  refreshMs?: number;
  /** How often the latest health of the integrations checked is written (one statement). */
  flushMs: number;
  /** Timeout of one check. */
  callTimeoutMs: number;
}

const EMPTY: EcosystemHealth = { status: 'unknown', latencyMs: null, lastCheckAt: null, lastOkAt: null, consecutiveFailures: 0, since: null, lastError: null, checks: 0 };

/** The newer of two health records (by last check; the first on a tie). */
export function newer(a: EcosystemHealth | null | undefined, b: EcosystemHealth | null | undefined): EcosystemHealth | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return (b.lastCheckAt ?? '') > (a.lastCheckAt ?? '') ? b : a;
}

/**
 * The time of an integration's next check after `now`: due times are `offset + k * interval`,
 * the offset a hash of the id (deterministic: the same after a restart, in any process), so the
 * checks of many integrations spread evenly over the interval instead of bunching where they
 * were registered or where the process started.
 */
export function nextDueAfter(id: string, intervalMs: number, now: number): number {
  const interval = Math.max(1, Math.round(intervalMs));
  const offset = partitionOf(id, interval);
  return now - ((((now - offset) % interval) + interval) % interval) + interval;
}

/**
 * The registry's periodic health checks, cheap and smooth (issue 18: "1,000 integrations per
 * minute without the API's latency moving"):
 * - every tick the due integrations are gathered and checked with bounded concurrency;
 * - a check changes nothing in the database by itself: its outcome goes to the usage meter
 *   (availability, calls; flushed in bulk) and to this monitor's record of the integration, whose
 *   latest health is written in bulk (`ecosystem_health_latest`, one statement per flush);
 * - the integration's actor hears of a check only when its status changed
 *   (`ecosystem.health.observed`: one transition and commit, and the IntegrationHealthChanged event);
 * - due times are spread by a hash of the id (`nextDueAfter`).
 * The set monitored is the active integrations whose actor is active, loaded at start, followed
 * for this process's changes (`refresh([id])`) and every `refreshMs` for other processes' ones.
 * A process checks only the integrations whose actor's partition it owns.
 */
export class HealthMonitor {
  readonly #tracked = new Map<string, Tracked>();
  /** Latest health not yet written to `ecosystem_health_latest`. */
  #dirty = new Map<string, EcosystemHealth>();
  readonly #queue: string[] = [];
  readonly #inFlight = new Map<string, Promise<void>>();
  #tick: NodeJS.Timeout | undefined;
  #refresh: NodeJS.Timeout | undefined;
  #flush: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #refreshedAt = 0;
  #stopped = true;
  #tickMs: number;
  readonly #abort = new AbortController();

  constructor(private readonly o: MonitorOptions) {
    this.#tickMs = o.tickMs ?? 250;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.refresh();
    this.#schedule();
    this.#refresh = setInterval(() => void this.refresh().catch((err: unknown) => this.o.log.warn({ err }, 'refreshing the monitored integrations failed')), this.o.refreshMs ?? 30_000);
    this.#refresh.unref();
    this.#flush = setInterval(() => void this.flush(), this.o.flushMs);
    this.#flush.unref();
  }

  #schedule(): void {
    clearInterval(this.#tick);
    if (this.#stopped) return;
    this.#tick = setInterval(() => this.tick(), this.#tickMs);
    this.#tick.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#tick);
    clearInterval(this.#refresh);
    clearInterval(this.#flush);
    this.#queue.length = 0;
    this.#abort.abort();
    await Promise.allSettled([...this.#inFlight.values()]);
    await this.flush();
  }

  /** How many integrations this monitor follows. */
  get size(): number {
    return this.#tracked.size;
  }

  /** This process's record of an integration's health (newer than its actor's between changes of status). */
  healthOf(id: string): EcosystemHealth | null {
    return this.#tracked.get(id)?.health ?? null;
  }

  /**
   * Brings the monitored set up to date: with ids, those integrations (after a change this
   * process made); without, every integration or actor changed since the last refresh (all at start).
   */
  async refresh(ids?: string[]): Promise<void> {
    const since = this.#refreshedAt;
    const startedAt = this.o.clock.now();
    const params: unknown[] = [];
    let where: string;
    if (ids) {
      params.push(ids);
      where = 'i.id = ANY($1)';
    } else if (since > 0) {
      // a second of overlap: a commit stamped just before the last refresh but visible only after it
      params.push(new Date(since - 1_000));
      where = '(i.updated_at > $1 OR a.updated_at > $1)';
    } else where = 'true';
    const { rows } = await this.o.pool.query<{ id: string; tenant_id: string; name: string; tier: string; active: boolean; actor_health: EcosystemHealth | null; latest: EcosystemHealth | null }>(
      `SELECT i.id, i.tenant_id, i.name, i.tier, (i.status = 'active' AND a.status = 'ACTIVE') AS active,
              a.snapshot->'context'->'health' AS actor_health, l.health AS latest
         FROM ecosystem_integrations i
         LEFT JOIN actors a ON a.type = 'ecosystem' AND a.id = i.id
         LEFT JOIN ecosystem_health_latest l ON l.integration_id = i.id
        WHERE ${where}`,
      params,
    );
    const now = this.o.clock.now();
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.id);
      if (!r.active) {
        this.#tracked.delete(r.id);
        continue;
      }
      const settings = this.o.settingsOf(r.tier);
      const prev = this.#tracked.get(r.id);
      const health = newer(newer(prev?.health, r.actor_health), r.latest) ?? { ...EMPTY };
      const nextDue = prev && prev.settings.intervalMs === settings.intervalMs ? prev.nextDue : nextDueAfter(r.id, settings.intervalMs, now);
      this.#tracked.set(r.id, { id: r.id, tenantId: r.tenant_id, name: r.name, settings, health, nextDue });
      if (settings.intervalMs / 2 < this.#tickMs) {
        this.#tickMs = Math.max(20, Math.floor(settings.intervalMs / 2));
        this.#schedule();
      }
    }
    // asked for by id and gone: deleted
    if (ids) for (const id of ids) if (!seen.has(id)) this.#tracked.delete(id);
    if (!ids) this.#refreshedAt = startedAt;
  }

  /** Gathers the due integrations and starts their checks (at most `concurrency` at once). */
  tick(): void {
    if (this.#stopped) return;
    const now = this.o.clock.now();
    for (const t of this.#tracked.values()) {
      if (t.nextDue > now) continue;
      t.nextDue = nextDueAfter(t.id, t.settings.intervalMs, now);
      if (this.#inFlight.has(t.id) || (this.o.owns && !this.o.owns(t.id))) continue;
      this.#queue.push(t.id);
    }
    this.#pump();
  }

  #pump(): void {
    const limit = this.o.concurrency ?? 8;
    while (this.#inFlight.size < limit && this.#queue.length > 0) {
      const id = this.#queue.shift()!;
      if (this.#inFlight.has(id) || !this.#tracked.has(id)) continue;
      const run = this.#check(id).finally(() => {
        this.#inFlight.delete(id);
        this.#pump();
      });
      this.#inFlight.set(id, run);
    }
  }

  /** Checks one integration now (an operator's "check now", a change of config) and waits for the outcome. */
  async checkNow(id: string): Promise<EcosystemHealth | null> {
    if (!this.#tracked.has(id)) await this.refresh([id]);
    if (!this.#tracked.has(id)) return null;
    await this.#inFlight.get(id);
    const run = this.#check(id).finally(() => this.#inFlight.delete(id));
    this.#inFlight.set(id, run);
    await run;
    return this.healthOf(id);
  }

  async #check(id: string): Promise<void> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.o.callTimeoutMs)]);
    let outcome: { ok: boolean; latencyMs: number | null; error: { code: string; message: string } | null };
    try {
      const out = await this.o.calls.check(id, signal);
      outcome = { ok: out.ok, latencyMs: out.latencyMs, error: out.ok ? null : { code: 'UNEXPECTED_STATUS', message: `health check answered ${out.status}` } };
    } catch (err) {
      if (this.#stopped) return;
      if (isConnectorError(err, 'NOT_FOUND')) {
        this.#tracked.delete(id); // deleted meanwhile (by another process)
        return;
      }
      outcome = { ok: false, latencyMs: null, error: isConnectorError(err) ? { code: err.code, message: err.message } : { code: 'UNKNOWN', message: err instanceof Error ? err.message : String(err) } };
    }
    const t = this.#tracked.get(id);
    if (!t) return; // deactivated or deleted while it ran
    const at = new Date(this.o.clock.now()).toISOString();
    const before = t.health;
    const after = nextHealth(before, t.settings, outcome, at);
    t.health = after;
    this.#dirty.set(id, after);
    if (after.status === before.status) return;
    try {
      await this.o.actors.send(id, { type: 'ecosystem.health.observed', health: after, at }, { tenant: t.tenantId });
    } catch (err) {
      // the next check that finds the status changed tells it again (the record stays as it was)
      t.health = before;
      this.o.log.warn({ err, integrationId: id }, 'telling the registry actor of a change of health failed');
    }
  }

  /** Writes the latest health of the integrations checked since the last flush (one statement). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#dirty.size === 0) return;
      const batch = [...this.#dirty.entries()].map(([id, health]) => ({ id, health, at: health.lastCheckAt }));
      this.#dirty = new Map();
      try {
        await this.o.pool.query(
          `INSERT INTO ecosystem_health_latest AS l (integration_id, health, checked_at)
           SELECT r.id, r.health, r.at FROM jsonb_to_recordset($1::jsonb) AS r(id text, health jsonb, at timestamptz)
           ON CONFLICT (integration_id) DO UPDATE SET health = excluded.health, checked_at = excluded.checked_at WHERE l.checked_at <= excluded.checked_at`,
          [JSON.stringify(batch)],
        );
      } catch (err) {
        for (const b of batch) if (!this.#dirty.has(b.id)) this.#dirty.set(b.id, b.health);
        this.o.log.warn({ err, integrations: batch.length }, 'writing the latest health failed; kept for the next flush');
      }
    });
    return this.#flushing;
  }
}
