import { Hono } from 'hono';
import type { Env } from '../env.js';

/** Matches the webhook route's path: no bearer token (the provider signs or identifies the delivery instead). */
export const WEBHOOK_PATH = /^\/api\/integrations\/[^/]+\/webhook$/;

/**
 * `POST /api/integrations/:service/webhook`: hands the raw body bytes (never a re-serialised
 * parse: the signature covers the bytes), the headers and the query to `services.webhooks`,
 * and answers 200 once the delivery is stored. A duplicate or a stale retry is a 200 too, so the
 * provider stops retrying it.
 */
export function integrationWebhookRoutes(): Hono<Env> {
  const app = new Hono<Env>();
  app.post('/:service/webhook', async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const outcome = await c.get('services').webhooks.accept(c.req.param('service'), body, headers, c.req.query());
    return c.json(outcome, 200);
  });
  return app;
}
