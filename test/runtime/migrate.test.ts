import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { migrate } from '../../runtime/migrate.js';
import { loadConfig } from '../../runtime/config.js';
import { freshDatabase } from '../helpers/db.js';

let database: Database;
beforeAll(async () => {
  database = await freshDatabase(2);
});
afterAll(async () => {
  await database.close();
});

describe('migrations', () => {
  it('a second run of the migrator does nothing', async () => {
    // the template was migrated already; running again applies nothing and changes nothing
    const before = (await database.pool.query(`SELECT name, applied_at FROM schema_migrations ORDER BY name`)).rows;
    expect(before.length).toBeGreaterThan(0);
    const again = await migrate(database.pool);
    expect(again.applied).toEqual([]);
    expect(again.skipped).toBe(before.length);
    expect((await database.pool.query(`SELECT name, applied_at FROM schema_migrations ORDER BY name`)).rows).toEqual(before);
  });
});

describe('configuration', () => {
  it('parses the environment once into a frozen, typed object with defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, databaseUrl: undefined, actorCacheSize: 10_000, partitions: 16 });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('stops with a message naming every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x/y', LOG_LEVEL: 'loud' })).toThrow(/PORT.*|DATABASE_URL|LOG_LEVEL/);
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x/y', LOG_LEVEL: 'loud' });
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toContain('PORT');
      expect(msg).toContain('DATABASE_URL');
      expect(msg).toContain('LOG_LEVEL');
    }
  });
});
