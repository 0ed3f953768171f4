import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { freePort, startEmbeddedPostgres } from '../../runtime/embedded-postgres.js';
import { createLogger } from '../../runtime/logger.js';
import { migrate } from '../../runtime/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

/**
 * Tests run against the real PostgreSQL at DATABASE_URL (CI: 127.0.0.1:5432). Without it, an
 * embedded PostgreSQL is started in a temporary directory. A template database is migrated
 * once; each test file clones its own from it.
 */
export default async function setup(project: TestProject) {
  const log = createLogger('warn');
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    if (process.env.CI === 'true') throw new Error('CI=true but DATABASE_URL is not set: the tests need the real PostgreSQL');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'concord-test-pg-'));
    await chmod(dir, 0o755); // as root, the server runs as the `postgres` user and must reach its directory
    const server = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), log });
    adminUrl = server.url.replace(/\/concord$/, '/postgres');
    stopEmbedded = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
    console.warn(`[concord tests] DATABASE_URL not set: using an embedded PostgreSQL (${adminUrl.replace(/:[^:@/]+@/, ':***@')})`);
  }
  const template = `concord_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  const tplPool = new pg.Pool({ connectionString: withDatabase(adminUrl, template), max: 1 });
  await migrate(tplPool, log);
  await tplPool.end();
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', template);

  return async () => {
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
      [`t\\_${process.pid}\\_%`, template],
    );
    for (const r of rows) await admin.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    await stopEmbedded?.();
  };
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}
