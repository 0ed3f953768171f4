import type { Context } from 'hono';
import { idempotencyRequest, type IdempotencyRequest, type IdempotentResult } from '../services/common/idempotency.js';
import type { Env } from './env.js';

/** The caller's Idempotency-Key for this POST, fingerprinted with its method, path and body. */
export function idempotencyOf(c: Context<Env>, body: unknown): IdempotencyRequest | null {
  return idempotencyRequest(c.get('principal'), c.req.header('idempotency-key'), c.req.method, c.req.path, body ?? null);
}

/** Answers with the stored (or fresh) response; a replay says so in `Idempotent-Replayed`. */
export function reply(c: Context<Env>, r: IdempotentResult): never {
  if (r.replayed) c.header('idempotent-replayed', 'true');
  // typed as the route's declared answer by the caller's schema; the body is that answer
  return c.json(r.body as never, r.status as never) as never;
}
