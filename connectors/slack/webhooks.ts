/**
 * Slack's request signing (Events API, interactivity, slash commands): `X-Slack-Signature` is
 * `v0=` + the hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` under the app's
 * signing secret; requests older than 5 minutes are refused. Pure: the time is passed in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';
import { fromSlackEvent, type ChatEvent, type SlackEventEnvelope } from './mapping.js';

const TOLERANCE_SEC = 300;

export function signSlack(secret: string, timestamp: string, body: Uint8Array | string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

export function verify(request: WebhookRequest, secret: string, now: number): WebhookVerification {
  const signature = request.headers['x-slack-signature'];
  const timestamp = request.headers['x-slack-request-timestamp'];
  if (!signature || !timestamp) return { ok: false, reason: 'X-Slack-Signature or X-Slack-Request-Timestamp missing' };
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(now / 1000 - ts) > TOLERANCE_SEC) return { ok: false, reason: 'timestamp outside the 5-minute window' };
  const expected = Buffer.from(signSlack(secret, timestamp, request.body));
  const got = Buffer.from(signature);
  return got.length === expected.length && timingSafeEqual(got, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

export function parse(request: WebhookRequest): ChatEvent[] {
  return [fromSlackEvent(JSON.parse(Buffer.from(request.body).toString('utf8')) as SlackEventEnvelope)];
}

export const slackWebhooks: ConnectorWebhooks<ChatEvent> = { verify, parse };
