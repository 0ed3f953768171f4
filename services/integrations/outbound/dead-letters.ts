import type pg from 'pg';
import type { ConnectorError } from '../../../connectors/kit/errors.js';
import { connectionId, type Provider } from '../../../machines/integration/index.js';
import type { DeadLetter } from '../../../runtime/dead-letters.js';
import type { DeadLetterSink } from './door.js';
import type { ConnectionRef, OutboundCall } from './types.js';

/** The `origin` of dead letters the outbound door parks (`dead_letters.origin`). */
export const OUTBOUND_ORIGIN = 'outbound';

/** What a parked call keeps: enough to run it again through the door. Never a credential. */
export interface ParkedCall {
  connection: ConnectionRef;
  call: OutboundCall;
}

/**
 * Calls that still failed after their retries, in the engine's dead-letter store
 * (`/api/v1/dead-letters`): origin `outbound`, reason `failed`, subject
 * `integration.<provider>.<operation>`, the connection actor as `actor_type`/`actor_id`, the
 * call's idempotency key as `message_id`, and headers naming the provider, the tenant and the
 * call's subject (e.g. the SKU). Replaying one runs the call through the door again, with the
 * same idempotency key.
 */
export class OutboundDeadLetters implements DeadLetterSink {
  constructor(private readonly pool: pg.Pool) {}

  async park(c: ConnectionRef, call: OutboundCall, error: ConnectorError, attempts: number): Promise<void> {
    const parked: ParkedCall = {
      connection: { tenantId: c.tenantId, provider: c.provider, account: c.account },
      call: { operation: call.operation, input: call.input, idempotencyKey: call.idempotencyKey, ...(call.cost !== undefined ? { cost: call.cost } : {}), ...(call.subject ? { subject: call.subject } : {}) },
    };
    const headers: Record<string, string> = { 'Concord-Tenant': c.tenantId, 'Concord-Provider': c.provider, 'Concord-Account': c.account, 'Concord-Error-Code': error.code };
    for (const [k, v] of Object.entries(call.subject ?? {})) headers[`Concord-Subject-${k}`] = String(v);
    await this.pool.query(
      `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts)
       VALUES ($1, 'failed', $2, 'integration', $3, $4, $5::jsonb, $6::jsonb, $7, $8)`,
      [
        OUTBOUND_ORIGIN,
        `integration.${c.provider}.${call.operation}`,
        connectionId(c.tenantId, c.provider, c.account),
        call.idempotencyKey,
        JSON.stringify(parked),
        JSON.stringify(headers),
        `${error.code}: ${error.message}`.slice(0, 4000),
        attempts,
      ],
    );
  }

  /** Marks a parked call replayed (once: a second replay answers null) and answers it. */
  async claim(id: number): Promise<{ letter: DeadLetter; parked: ParkedCall } | null> {
    const { rows } = await this.pool.query<{ payload: ParkedCall; created_at: Date; replayed_at: Date; [k: string]: unknown }>(
      `UPDATE dead_letters SET replayed_at = now() WHERE id = $1 AND origin = $2 AND replayed_at IS NULL
       RETURNING id, origin, reason, subject, actor_type, actor_id, message_id, payload, headers, error, attempts, created_at, replayed_at`,
      [id, OUTBOUND_ORIGIN],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      parked: r.payload,
      letter: {
        id: Number(r.id),
        origin: r.origin as string,
        reason: r.reason as string,
        subject: r.subject as string | null,
        actorType: r.actor_type as string | null,
        actorId: r.actor_id as string | null,
        messageId: r.message_id as string | null,
        payload: r.payload,
        headers: r.headers as Record<string, string>,
        error: r.error as string | null,
        attempts: r.attempts as number,
        createdAt: r.created_at.toISOString(),
        replayedAt: r.replayed_at.toISOString(),
      },
    };
  }

  /** Open parked calls of a connection. */
  async count(tenantId: string, provider: Provider, account: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM dead_letters WHERE origin = $1 AND actor_type = 'integration' AND actor_id = $2 AND replayed_at IS NULL`,
      [OUTBOUND_ORIGIN, connectionId(tenantId, provider, account)],
    );
    return rows[0]!.n;
  }
}
