/**
 * MercadoLibre notifications in. They are not signed: `verify` accepts only our own
 * `application_id` and, when a shared secret is configured, the `secret` query parameter of the
 * callback URL (constant time). The body only points at a change: fetch `resource` with the
 * seller's token, never trust it. `_id` is the dedupe key.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';

export interface MLNotification {
  /** Stable across ML's retries: dedupe on it. */
  id: string;
  /** `/items/MLA123`. */
  resource: string;
  userId: number;
  topic: string;
  applicationId: number;
  attempts: number;
  sent: string | undefined;
  actions: string[];
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function readJson(request: WebhookRequest): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(request.body).toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a notification: a JSON body of our `applicationId` with `_id`, `resource`, `user_id` and
 * `topic`; and `?secret=` equal to `secret` when one is set (empty `secret`: not checked). That a
 * `user_id` is a connected seller is the caller's check.
 */
export function verifyNotification(request: WebhookRequest, secret: string, applicationId: string | number): WebhookVerification {
  if (secret) {
    const given = request.query?.secret;
    if (!given || !sameText(given, secret)) return { ok: false, reason: 'secret query parameter missing or wrong' };
  }
  const b = readJson(request);
  if (!b) return { ok: false, reason: 'body is not a JSON object' };
  if (String(b.application_id) !== String(applicationId)) return { ok: false, reason: 'unknown application_id' };
  if (typeof b._id !== 'string' || !b._id) return { ok: false, reason: '_id missing' };
  if (typeof b.resource !== 'string' || typeof b.topic !== 'string' || !Number.isFinite(Number(b.user_id))) return { ok: false, reason: 'resource, topic or user_id missing' };
  return { ok: true };
}

export function parseNotification(request: WebhookRequest): MLNotification[] {
  const b = readJson(request);
  if (!b || typeof b._id !== 'string' || typeof b.resource !== 'string' || typeof b.topic !== 'string') throw new TypeError('mercadolibre notification: _id, resource and topic are required');
  return [
    {
      id: b._id,
      resource: b.resource,
      userId: Number(b.user_id),
      topic: b.topic,
      applicationId: Number(b.application_id),
      attempts: Number(b.attempts ?? 1),
      sent: typeof b.sent === 'string' ? b.sent : undefined,
      actions: Array.isArray(b.actions) ? b.actions.map(String) : [],
    },
  ];
}

/** The contract's webhooks, bound to the app's `application_id` (its client id). */
export function mercadolibreWebhooks(applicationId: string | number): ConnectorWebhooks<MLNotification> {
  return { verify: (request, secret) => verifyNotification(request, secret, applicationId), parse: parseNotification };
}
