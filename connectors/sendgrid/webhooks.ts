/**
 * SendGrid's signed Event Webhook: ECDSA (P-256, SHA-256) over the timestamp followed by the raw
 * body, the signature in `X-Twilio-Email-Event-Webhook-Signature` (base64 DER) and the time in
 * `X-Twilio-Email-Event-Webhook-Timestamp`. The verification key SendGrid shows (base64 DER SPKI)
 * is the `secret`. Pure: the time is passed in.
 */
import { createPublicKey, createVerify } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';
import { fromSendGridEvent, type MailEvent, type SendGridEvent } from './mapping.js';

export const SIGNATURE_HEADER = 'x-twilio-email-event-webhook-signature';
export const TIMESTAMP_HEADER = 'x-twilio-email-event-webhook-timestamp';
const TOLERANCE_SEC = 300;

export function verify(request: WebhookRequest, publicKey: string, now: number): WebhookVerification {
  const signature = request.headers[SIGNATURE_HEADER];
  const timestamp = request.headers[TIMESTAMP_HEADER];
  if (!signature || !timestamp) return { ok: false, reason: 'signature or timestamp header missing' };
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(now / 1000 - ts) > TOLERANCE_SEC) return { ok: false, reason: 'timestamp outside the 5-minute window' };
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    const v = createVerify('sha256');
    v.update(timestamp);
    v.update(request.body);
    return v.verify(key, Buffer.from(signature, 'base64')) ? { ok: true } : { ok: false, reason: 'signature does not match' };
  } catch {
    return { ok: false, reason: 'signature or key malformed' };
  }
}

export function parse(request: WebhookRequest): MailEvent[] {
  const events = JSON.parse(Buffer.from(request.body).toString('utf8')) as SendGridEvent[];
  return Array.isArray(events) ? events.map(fromSendGridEvent) : [];
}

export const sendgridWebhooks: ConnectorWebhooks<MailEvent> = { verify, parse };
