import { Hono } from 'hono';
import type { Logger } from '../runtime/logger.js';
import type { Runtime } from '../runtime/runtime.js';

export interface AppDeps {
  runtime: Runtime;
  log: Logger;
}

/** The HTTP edge. Routes translate HTTP to runtime calls and back; testable without a port. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/health', async (c) => {
    const h = await deps.runtime.health();
    return c.json(h, h.status === 'down' ? 503 : 200);
  });
  return app;
}
