import type { Context } from 'hono';
import type { CommandContext } from '../services/common/command.js';
import type { Env } from './env.js';
import { idempotencyOf } from './idempotency.js';

/**
 * The command context of this request for a service: who calls, the request id, and (when
 * `keyedBody` is given: the request body, or null for a POST without one) the caller's
 * Idempotency-Key fingerprinted with it.
 */
export function commandOf(c: Context<Env>, keyedBody?: unknown): CommandContext {
  return {
    principal: c.get('principal'),
    requestId: c.get('requestId'),
    idempotency: keyedBody === undefined ? null : idempotencyOf(c, keyedBody),
  };
}
