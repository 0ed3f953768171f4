import { loadConfig } from '../runtime/config.js';
import { openDatabase } from '../runtime/db.js';
import { createLogger } from '../runtime/logger.js';
import { migrate } from '../runtime/migrate.js';

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
const config = loadConfig();
const log = createLogger(config.logLevel);
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPgPort, poolSize: 2, log });
try {
  const { applied, skipped } = await migrate(database.pool, log);
  log.info({ applied, alreadyApplied: skipped }, applied.length ? 'migrations applied' : 'nothing to migrate');
} finally {
  await database.close();
}
