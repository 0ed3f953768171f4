import type pg from 'pg';
import { idempotentTransaction, type IdempotencyRequest, type IdempotentResult } from './idempotency.js';
import type { Principal } from './principal.js';

/**
 * Who asks for a command and under which request: what every service command takes besides its
 * validated input. The service owns the transaction and, when `idempotency` is given, stores the
 * answer with the work, so the edge only translates.
 */
export interface CommandContext {
  principal: Principal;
  /** The edge's request id, recorded in the audit trail. */
  requestId: string | null;
  /** The caller's Idempotency-Key for this request, or null when it sent none. */
  idempotency?: IdempotencyRequest | null;
}

/** A command's answer under an Idempotency-Key: the first answer (status and body), or that answer given again. */
export type Answer<T> = IdempotentResult & { body: T };

/**
 * Runs a plain-table command in one transaction on `pool`; with an Idempotency-Key the answer
 * is stored before COMMIT, and a retry gets the first answer back (see `idempotentTransaction`).
 */
export async function keyedTransaction<T>(pool: pg.Pool, cx: CommandContext, status: number, work: (client: pg.PoolClient) => Promise<T>): Promise<Answer<T>> {
  const out = await idempotentTransaction(pool, cx.idempotency ?? null, async (client) => ({ status, body: await work(client) }));
  // a replayed body is the stored JSON of this same command's first answer
  return out as Answer<T>;
}
