import pg from 'pg';
import type { Logger } from './logger.js';

const CHANNEL = 'concord_outbox';

/**
 * Wakes the relay of another process. A commit in the process that owns the actor's partition
 * wakes its relay in memory; a commit anywhere else (the HTTP edge behind a load balancer, the
 * service router, a timer claimed by any poller) would wait for the owner's next poll
 * (`OUTBOX_POLL_MS`). So such a commit is announced with `pg_notify`, and every process listens
 * and wakes its relay for the partitions it owns.
 *
 * Partitions announced in the same moment share one `pg_notify`. A lost notification (the
 * listener reconnecting, a failed notify) costs latency only: the poll still finds the rows.
 */
export class OutboxWakes {
  #pending = new Set<number>();
  #scheduled = false;
  #client: pg.Client | undefined;
  #stopped = true;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: {
      url: string;
      pool: pg.Pool;
      log: Logger;
      /** Called with each partition another process announced. */
      onWake: (partition: number) => void;
    },
  ) {}

  /** Announces rows committed to `partition` (coalesced with the others of this tick). */
  notify(partition: number): void {
    if (this.#stopped) return;
    this.#pending.add(partition);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const parts = [...this.#pending].join(',');
      this.#pending.clear();
      this.o.pool
        .query({ name: 'concord_outbox_notify', text: `SELECT pg_notify('${CHANNEL}', $1)`, values: [parts] })
        .catch((err: unknown) => this.o.log.debug({ err }, 'outbox notify failed; the owner polls'));
    });
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#listen();
  }

  async #listen(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.o.url, application_name: 'concord-outbox-wakes' });
    const again = (err: unknown) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      void client.end().catch(() => undefined);
      if (this.#stopped) return;
      this.o.log.warn({ err }, 'outbox wake listener lost; reconnecting (relays poll meanwhile)');
      this.#retry = setTimeout(() => void this.#listen(), 1_000);
    };
    client.on('error', again);
    client.on('end', () => again(new Error('connection ended')));
    client.on('notification', (n) => {
      if (n.channel !== CHANNEL || !n.payload) return;
      for (const p of n.payload.split(',')) this.o.onWake(Number(p));
    });
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      again(err);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}
