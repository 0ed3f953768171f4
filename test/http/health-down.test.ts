import { expect, it } from 'vitest';
import { createApp } from '../../http/app.js';
import { createServices } from '../../services/index.js';
import { relationshipType } from '../../machines/relationship.js';
import { createPool, freePort } from '../../runtime/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';
import { SECRET } from './harness.js';

it('answers 503 with a health document (not a problem) when the database is unreachable', async () => {
  // a real pool to a port nothing listens on: the database is down, not mocked
  const url = `postgres://postgres@127.0.0.1:${await freePort()}/nowhere`;
  const pool = createPool(url, 2);
  const database = { pool, url, close: async () => pool.end() };
  const runtime = await testRuntime(database, { types: [relationshipType], run: { timers: false, relay: false } });
  const app = createApp({ services: createServices({ runtime, log: testLog }), log: testLog, jwtSecret: SECRET });
  try {
    for (const path of ['/api/v1/vendor-partner-coordination/health', '/health']) {
      const res = await app.request(path);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { status: string; components?: Record<string, { status: string }>; database?: { status: string } };
      expect(body.status).toBe('down');
      if (body.components) {
        expect(body.components.database!.status).toBe('down');
        expect(body.components.dependencyResolution!.status).toBe('down');
      }
    }
  } finally {
    await database.close();
  }
});
