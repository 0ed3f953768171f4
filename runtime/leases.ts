import pg from 'pg';
import type { Logger } from './logger.js';

/** Advisory-lock key spaces (the first of the two int4 keys). */
const MEMBER_KEY = 720_110;
const PARTITION_KEY = 720_111;

export interface LeaseListener {
  /**
   * Called after a partition is acquired, with its new fencing token: `epoch` was bumped in
   * `partition_epochs` before this call, so commits carrying an older one write nothing.
   */
  acquired(partition: number, epoch: number): void;
  /** Called before a partition is released; the lease is held until it resolves. */
  releasing(partition: number): Promise<void>;
  /** The session died: every lease is gone already. Stop work on all of them at once. */
  lost(): void;
}

/**
 * Partition ownership across processes, with Postgres advisory locks held by one dedicated
 * session: a lease dies with the process (or its connection), so there is no home-made
 * consensus. Every process holds a shared "member" lock; the member count read from
 * `pg_locks` sets each process's fair share, `ceil(partitions / members)`, and every
 * `rebalanceMs` a process releases what it holds above its share and tries to take free ones.
 */
export class PartitionLeases {
  #client: pg.Client | undefined;
  readonly #owned = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #busy: Promise<void> = Promise.resolve();
  members = 0;
  /** The Postgres backend holding the leases (operators can see it in pg_stat_activity). */
  backendPid: number | undefined;

  constructor(
    private readonly o: { url: string; partitions: number; rebalanceMs: number; log: Logger; listener: LeaseListener },
  ) {}

  owned(): number[] {
    return [...this.#owned].sort((a, b) => a - b);
  }

  owns(p: number): boolean {
    return this.#owned.has(p);
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#rebalance();
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.o.url, application_name: 'concord-leases' });
    const onGone = (err?: Error) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      if (this.#owned.size > 0) this.o.log.warn({ err, partitions: this.owned() }, 'lease session lost; dropping partitions');
      this.#owned.clear();
      this.o.listener.lost();
    };
    client.on('error', onGone);
    client.on('end', () => onGone());
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_advisory_lock_shared($1, 0), pg_backend_pid() AS pid', [MEMBER_KEY]);
    this.backendPid = rows[0]?.pid;
    this.#client = client;
    return client;
  }

  #rebalance(): Promise<void> {
    this.#busy = this.#busy.then(async () => {
      if (this.#stopped) return;
      try {
        const client = this.#client ?? (await this.#connect());
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = 0 AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [MEMBER_KEY],
        );
        this.members = Math.max(1, rows[0]?.n ?? 1);
        const share = Math.ceil(this.o.partitions / this.members);
        while (this.#owned.size > share) {
          const p = Math.max(...this.#owned);
          await this.o.listener.releasing(p);
          this.#owned.delete(p);
          await client.query('SELECT pg_advisory_unlock($1, $2)', [PARTITION_KEY, p]);
        }
        if (this.#owned.size < share) {
          // start at a different place per process so they do not all fight for partition 0
          const offset = process.pid % this.o.partitions;
          for (let i = 0; i < this.o.partitions && this.#owned.size < share; i++) {
            const p = (offset + i) % this.o.partitions;
            if (this.#owned.has(p)) continue;
            const { rows: got } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [PARTITION_KEY, p]);
            if (got[0]?.ok) {
              // the new fencing token, committed before anything is consumed under this lease
              const { rows: bumped } = await client.query<{ epoch: string }>(
                `INSERT INTO partition_epochs (partition, epoch) VALUES ($1, 1)
                 ON CONFLICT (partition) DO UPDATE SET epoch = partition_epochs.epoch + 1 RETURNING epoch`,
                [p],
              );
              this.#owned.add(p);
              this.o.listener.acquired(p, Number(bumped[0]!.epoch));
            }
          }
        }
      } catch (err) {
        this.o.log.warn({ err }, 'partition rebalance failed; retrying');
        const c = this.#client;
        this.#client = undefined;
        if (this.#owned.size > 0) {
          this.#owned.clear();
          this.o.listener.lost();
        }
        await c?.end().catch(() => undefined);
      } finally {
        if (!this.#stopped) {
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => void this.#rebalance(), this.o.rebalanceMs);
        }
      }
    });
    return this.#busy;
  }

  /** Releases every partition (after the listener has stopped work on each) and the session. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#busy;
    for (const p of this.owned()) await this.o.listener.releasing(p);
    this.#owned.clear();
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
  }
}
