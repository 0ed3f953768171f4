/**
 * Mailgun's webhooks: a JSON body `{ signature: { timestamp, token, signature }, "event-data" }`,
 * where `signature` is the hex HMAC-SHA256 of `timestamp + token` under the account's webhook
 * signing key (the `secret`). Pure: the time is passed in. A token seen before is a replay; the
 * caller keeps the tokens (this function has no memory).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';
import { fromMailgunEvent, type MailEvent, type MailgunEventData } from './mapping.js';

const TOLERANCE_SEC = 300;

interface Body {
  signature?: { timestamp?: string; token?: string; signature?: string };
  'event-data'?: MailgunEventData;
}

function bodyOf(request: WebhookRequest): Body | undefined {
  try {
    return JSON.parse(Buffer.from(request.body).toString('utf8')) as Body;
  } catch {
    return undefined;
  }
}

export function signMailgun(signingKey: string, timestamp: string, token: string): string {
  return createHmac('sha256', signingKey).update(timestamp + token).digest('hex');
}

export function verify(request: WebhookRequest, signingKey: string, now: number): WebhookVerification {
  const s = bodyOf(request)?.signature;
  if (!s?.timestamp || !s.token || !s.signature) return { ok: false, reason: 'signature block missing' };
  const ts = Number(s.timestamp);
  if (!Number.isInteger(ts) || Math.abs(now / 1000 - ts) > TOLERANCE_SEC) return { ok: false, reason: 'timestamp outside the 5-minute window' };
  const expected = Buffer.from(signMailgun(signingKey, s.timestamp, s.token), 'hex');
  const got = Buffer.from(s.signature, 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

export function parse(request: WebhookRequest): MailEvent[] {
  const e = bodyOf(request)?.['event-data'];
  return e ? [fromMailgunEvent(e)] : [];
}

export const mailgunWebhooks: ConnectorWebhooks<MailEvent> = { verify, parse };
