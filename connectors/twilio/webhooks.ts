/**
 * Twilio's request signing (status callbacks, incoming messages): `X-Twilio-Signature` is the
 * base64 HMAC-SHA1, under the Auth Token, of the full callback URL followed by every POST
 * parameter name and value, sorted by name. The URL is part of what is signed, so `verify` reads
 * it from the request's `query.url` (the intake puts the public URL it was called on there).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';

export interface StatusCallback {
  messageSid: string;
  status: string;
  errorCode: string | null;
}

export function signTwilio(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', authToken).update(data).digest('base64');
}

const formOf = (request: WebhookRequest) => Object.fromEntries(new URLSearchParams(Buffer.from(request.body).toString('utf8')));

export function verify(request: WebhookRequest, authToken: string, _now: number): WebhookVerification {
  const signature = request.headers['x-twilio-signature'];
  const url = request.query?.url;
  if (!signature) return { ok: false, reason: 'X-Twilio-Signature missing' };
  if (!url) return { ok: false, reason: 'the callback URL is not known (query.url)' };
  const expected = Buffer.from(signTwilio(authToken, url, formOf(request)));
  const got = Buffer.from(signature);
  return got.length === expected.length && timingSafeEqual(got, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

export function parse(request: WebhookRequest): StatusCallback[] {
  const f = formOf(request);
  return f.MessageSid ? [{ messageSid: f.MessageSid, status: f.MessageStatus ?? f.SmsStatus ?? 'unknown', errorCode: f.ErrorCode ?? null }] : [];
}

export const twilioWebhooks: ConnectorWebhooks<StatusCallback> = { verify, parse };
