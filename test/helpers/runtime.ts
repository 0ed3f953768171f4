import { loadConfig, type Config } from '../../runtime/config.js';
import { createLogger } from '../../runtime/logger.js';
import { Registry, type ActorTypeDefinition } from '../../runtime/registry.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../runtime/runtime.js';
import type { Database } from '../../runtime/db.js';
import { ledgerType } from '../fixtures/machines.js';

export const testLog = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', PARTITIONS: '4', TIMER_POLL_MS: '50', OUTBOX_POLL_MS: '50', ...env });
}

/** A runtime over a test database; nothing started until `start()`. */
export async function testRuntime(
  database: Database,
  opts: Partial<Omit<RuntimeOptions, 'database' | 'config' | 'registry'>> & { types?: ActorTypeDefinition[]; env?: Record<string, string> } = {},
): Promise<Runtime> {
  const { types, env, ...rest } = opts;
  return createRuntime({
    config: testConfig({ DATABASE_URL: database.url, ...env }),
    registry: new Registry(types ?? [ledgerType]),
    log: testLog,
    database,
    ...rest,
  });
}
