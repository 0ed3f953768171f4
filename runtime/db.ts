import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded-postgres.js';
import type { Logger } from './logger.js';

// bigint columns (versions, ids) fit in a JS number for any realistic lifetime; parse them so.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface Database {
  pool: pg.Pool;
  url: string;
  /** Closes the pool and, when embedded, stops the embedded server. */
  close(): Promise<void>;
}

/**
 * How long a new connection may take before the query waiting for it fails (a server that
 * drops packets instead of refusing would otherwise hold a request until the OS gives up,
 * minutes later); the edge answers that failure as a 503 like any database outage.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

export function createPool(url: string, max: number, applicationName = 'concord', connectTimeoutMs = CONNECT_TIMEOUT_MS): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName, connectionTimeoutMillis: connectTimeoutMs });
  // an idle client that loses its server must not crash the process; the next query reconnects
  pool.on('error', () => undefined);
  return pool;
}

export async function openDatabase(opts: {
  url: string | undefined;
  dataDir: string;
  embeddedPort: number;
  poolSize: number;
  log: Logger;
}): Promise<Database> {
  let url = opts.url;
  let embedded: EmbeddedServer | undefined;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: opts.dataDir, port: opts.embeddedPort, log: opts.log });
    url = embedded.url;
  }
  const pool = createPool(url, opts.poolSize);
  return {
    pool,
    url,
    async close() {
      await pool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}

export { freePort } from './embedded-postgres.js';
