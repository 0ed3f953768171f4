import { expect, it } from 'vitest';
import { createApp } from '../../http/app.js';
import { createServices } from '../../services/index.js';
import { relationshipType } from '../../machines/relationship.js';
import { createPool, freePort } from '../../runtime/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';
import { signToken } from '../../http/auth/jwt.js';
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

it('answers a route that needs the database with a 503 problem and Retry-After, not a 500, when the database is unreachable', async () => {
  const url = `postgres://postgres@127.0.0.1:${await freePort()}/nowhere`;
  const pool = createPool(url, 2);
  const database = { pool, url, close: async () => pool.end() };
  const runtime = await testRuntime(database, { types: [relationshipType], run: { timers: false, relay: false } });
  const app = createApp({ services: createServices({ runtime, log: testLog }), log: testLog, jwtSecret: SECRET });
  const token = signToken({ sub: 'op', role: 'operator', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
  try {
    for (const path of ['/api/v1/vendor-partner-coordination/relationships/0b7f7f5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b', '/api/v1/vendor-partner-coordination/relationships']) {
      const res = await app.request(path, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, path).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    }
  } finally {
    await database.close();
  }
});
