import type pg from 'pg';
import { ActorHost, type HostHooks } from './actor-host.js';
import { InProcessBus } from './bus.js';
import { DatabaseClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db.js';
import { InProcessDelivery, OUTBOX_RETIRE, type ConnectorInvoker } from './in-process.js';
import { PartitionLeases, type LeaseListener } from './leases.js';
import type { Logger } from './logger.js';
import { migrate } from './migrate.js';
import { NatsTransport, type NatsHealth, type NatsTransportOptions } from './nats/transport.js';
import type { Registry } from './registry.js';
import { OutboxRelay, type Delivery } from './relay.js';
import { Janitor } from './janitor.js';
import { OutboxWakes } from './outbox-wakes.js';
import { TimerPoller } from './timers.js';
import { Tracing } from './tracing.js';

export interface RuntimeOptions {
  config: Config;
  registry: Registry;
  log: Logger;
  /** The runtime's time; by default the database's (`DatabaseClock`, synced at start and every minute). */
  clock?: Clock;
  hooks?: HostHooks;
  connectors?: Map<string, ConnectorInvoker>;
  /** An already opened database (tests); otherwise opened from config (embedded when no URL). */
  database?: Database;
  /** Replaces the in-process delivery (the NATS transport plugs in here). */
  delivery?: (host: ActorHost, bus: InProcessBus) => Delivery;
  /** Background loops to run; all by default. */
  run?: { timers?: boolean; relay?: boolean };
  commitConcurrency?: number;
  maxDeliveryAttempts?: number;
  /** Replaces the tracing the configuration asks for (tests). */
  tracing?: Tracing;
  /** Tests only: options of the NATS transport (used when `config.natsUrl` is set). */
  nats?: Pick<NatsTransportOptions, 'heartbeat' | 'name' | 'hooks'>;
}

export interface RuntimeHealth {
  status: 'up' | 'degraded' | 'down';
  database: { status: 'up' | 'down'; error?: string };
  outbox: { pending: number; oldestAgeMs: number };
  timers: { pending: number; overdue: number };
  deadLetters: number;
  partitions: { total: number; owned: number[]; members: number };
  actors: { cached: number; inFlight: number };
  /** Present when the NATS transport is on. */
  nats?: NatsHealth;
}

export interface Runtime {
  config: Config;
  /** The runtime's time (the database's unless a clock was injected). */
  clock: Clock;
  database: Database;
  host: ActorHost;
  bus: InProcessBus;
  timers: TimerPoller;
  relay: OutboxRelay;
  leases: PartitionLeases;
  /** The JetStream transport, when `config.natsUrl` is set. */
  nats: NatsTransport | undefined;
  /** OpenTelemetry spans of the engine's path (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set). */
  tracing: Tracing;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<RuntimeHealth>;
}

/** Wires the actor host, timer poller, outbox relay and partition leases over one database. */
export async function createRuntime(o: RuntimeOptions): Promise<Runtime> {
  const { config, log } = o;
  const clock = o.clock ?? new DatabaseClock();
  const database =
    o.database ??
    (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPgPort, poolSize: config.dbPoolSize, log }));
  const bus = new InProcessBus();
  // the host tells the poller and the relay about new work; they are built right after it
  const late: { timers?: TimerPoller; relay?: OutboxRelay; wakes?: OutboxWakes } = {};
  const tracing = o.tracing ?? Tracing.fromConfig(config.tracing);
  const host = new ActorHost({
    tracing,
    pool: database.pool,
    registry: o.registry,
    clock,
    log,
    partitions: config.partitions,
    cacheSize: config.actorCacheSize,
    liveSize: config.actorLiveSize,
    idleMs: config.actorIdleMs,
    commitBatchMax: config.commitBatchMax,
    commitConcurrency: o.commitConcurrency ?? config.commitConcurrency,
    tenantWeight: config.commitFair ? undefined : false,
    hooks: o.hooks,
    onCommitted: (rec) => {
      // the partition's relay runs here, or in another process that is told through Postgres
      if (rec.outbox.length > 0 && !late.relay?.wake(rec.partition)) late.wakes?.notify(rec.partition);
      for (const t of rec.timerUpserts) late.timers?.wake(t.dueAt);
    },
  });
  const timers = new TimerPoller({ pool: database.pool, host, clock, log, pollMs: config.timerPollMs, claimMs: config.timerClaimMs });
  // a connector call's answer is applied with the commit that retires the call's row
  host.extendCommit(OUTBOX_RETIRE);
  const inProcess = new InProcessDelivery(host, bus, o.connectors, config.connectorCallTimeoutMs, true);
  const nats = config.natsUrl
    ? new NatsTransport({
        url: config.natsUrl,
        config: config.nats,
        partitions: config.partitions,
        pool: database.pool,
        host,
        log,
        calls: inProcess,
        onReconnect: () => {
          for (const p of leases.owned()) relay?.wake(p); // out of its backoff: NATS is back
        },
        ...o.nats,
      })
    : undefined;
  const delivery = o.delivery?.(host, bus) ?? nats ?? inProcess;
  const relay = new OutboxRelay({
    pool: database.pool,
    delivery,
    log,
    batch: config.outboxBatch,
    pollMs: config.outboxPollMs,
    maxAttempts: o.maxDeliveryAttempts ?? 10,
    // JetStream drops a second copy of a message id only inside its duplicate window
    staleAfterMs: delivery === nats ? config.nats.duplicateWindowMs / 2 : undefined,
    tracing,
  });
  const rl = relay;
  // the process that owns a partition relays its outbox and (with NATS) consumes its actors' messages
  const listener: LeaseListener = nats
    ? {
        acquired: (p, epoch) => {
          rl.acquired(p, epoch);
          nats.acquired(p, epoch);
        },
        releasing: async (p) => {
          await Promise.all([rl.releasing(p), nats.releasing(p)]);
        },
        lost: () => {
          rl.lost();
          nats.lost();
        },
      }
    : relay;
  const leases = new PartitionLeases({ url: database.url, partitions: config.partitions, rebalanceMs: 1_000, log, listener });
  const janitor = new Janitor({ pool: database.pool, log, inboxRetentionHours: config.inboxRetentionHours, everyMs: 15 * 60_000 });
  const wakes = new OutboxWakes({ url: database.url, pool: database.pool, log, onWake: (p) => void relay.wake(p) });
  late.timers = timers;
  late.relay = relay;
  late.wakes = wakes;
  let sweeper: NodeJS.Timeout | undefined;
  let clockSync: NodeJS.Timeout | undefined;
  const syncClock = async (): Promise<void> => {
    if (!(clock instanceof DatabaseClock)) return;
    try {
      await clock.sync(async () => (await database.pool.query<{ ms: number }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`)).rows[0]!.ms);
      if (Math.abs(clock.skewMs) > 1_000) {
        log.warn(
          { skewMs: clock.skewMs },
          "this machine's clock is off the database's: the runtime keeps the database's time (timers, journal), but tokens and webhook signatures use this machine's clock: fix its time sync (NTP)",
        );
      }
    } catch (err) {
      log.warn({ err }, 'reading the database time failed; the runtime keeps its last reading');
    }
  };
  const run = { timers: true, relay: true, ...o.run };
  const t = timers;
  const r = relay;

  return {
    config,
    clock,
    database,
    host,
    tracing,
    bus,
    timers: t,
    relay: r,
    leases,
    nats,
    async start() {
      await migrate(database.pool, log);
      await syncClock();
      clockSync = setInterval(() => void syncClock(), 60_000);
      clockSync.unref();
      await warnWithoutAutovacuum(database.pool, log);
      await nats?.start();
      if (run.relay) {
        await wakes.start();
        await leases.start();
      }
      if (run.timers) t.start();
      sweeper = setInterval(() => host.passivateIdle(), Math.max(1_000, Math.floor(config.actorIdleMs / 4)));
      sweeper.unref();
      janitor.start();
      log.info({ partitions: leases.owned().length, types: o.registry.types() }, 'runtime started');
    },
    async stop() {
      clearInterval(sweeper);
      clearInterval(clockSync);
      await wakes.stop(); // first: a terminal's Ctrl-C stops an embedded PostgreSQL at the same time
      await janitor.stop();
      await nats?.stopIntake(); // consumers finish and ack what they started
      await host.close(); // stop intake, finish in-flight transitions
      await t.stop();
      await leases.stop(); // each relay loop finishes its batch before its lease is released
      await r.stop();
      await nats?.close();
      if (!o.database) await database.close();
      await tracing.shutdown().catch((err: unknown) => log.warn({ err }, 'exporting the last spans failed'));
      log.info('runtime stopped');
    },
    async health() {
      const h: RuntimeHealth = {
        status: 'up',
        database: { status: 'up' },
        outbox: { pending: 0, oldestAgeMs: 0 },
        timers: { pending: 0, overdue: 0 },
        deadLetters: 0,
        partitions: { total: config.partitions, owned: leases.owned(), members: leases.members },
        actors: { cached: host.cached, inFlight: host.inFlight },
      };
      try {
        const now = clock.now();
        const { rows } = await database.pool.query<{ pending: number; oldest: number | null; tpending: number; overdue: number; dead: number }>(
          `SELECT (SELECT count(*)::int FROM outbox) AS pending,
                  (SELECT extract(epoch FROM min(created_at)) * 1000 FROM outbox)::float8 AS oldest,
                  (SELECT count(*)::int FROM timers) AS tpending,
                  (SELECT count(*)::int FROM timers t WHERE t.due_at < to_timestamp(($1::float8 - 5000) / 1000.0)
                     -- a paused actor's timers wait on purpose: not a sign of trouble
                     AND NOT EXISTS (SELECT 1 FROM actors a WHERE a.type = t.actor_type AND a.id = t.actor_id AND a.paused_at IS NOT NULL)) AS overdue,
                  (SELECT count(*)::int FROM dead_letters WHERE replayed_at IS NULL) AS dead`,
          [now],
        );
        const row = rows[0]!;
        h.outbox = { pending: row.pending, oldestAgeMs: row.oldest === null ? 0 : Math.max(0, now - row.oldest) };
        h.timers = { pending: row.tpending, overdue: row.overdue };
        h.deadLetters = row.dead;
        if (h.outbox.oldestAgeMs > 30_000 || h.timers.overdue > 0) h.status = 'degraded';
        if (nats) {
          h.nats = await nats.health(leases.owned());
          if (h.nats.status !== 'connected' || h.nats.missing.length > 0) h.status = 'degraded';
        }
      } catch (err) {
        h.database = { status: 'down', error: (err as Error).message };
        h.status = 'down';
      }
      return h;
    },
  };
}

/**
 * The runtime's hot statements are prepared once per connection, and Postgres keeps a prepared
 * statement's generic plan until an ANALYZE (or VACUUM) of its tables replans it. Plans made
 * while the tables were empty (a fresh deployment) scan them whole (the outbox delete, the
 * timer claim); autovacuum's first analyze, within about a minute, fixes that. Without
 * autovacuum nothing does: say so once, at start.
 */
async function warnWithoutAutovacuum(pool: pg.Pool, log: Logger): Promise<void> {
  const { rows } = await pool.query<{ on: boolean }>(`SELECT current_setting('autovacuum')::boolean AS on`);
  if (rows[0]?.on === false) {
    log.warn(
      { setting: 'autovacuum' },
      'autovacuum is off on this PostgreSQL server: run VACUUM ANALYZE on the runtime tables (actors, inbox, journal, outbox, timers) regularly, or plans made while they were small stay in use',
    );
  }
}
