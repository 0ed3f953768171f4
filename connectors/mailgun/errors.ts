/**
 * Mailgun's failures: `{ message }` bodies (a plain-text `Forbidden` for a wrong key, which is a
 * 401), 429 with `Retry-After` when the account's sending rate is exceeded; the kit's table for the rest.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

export function classifyMailgunAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const detail = typeof body === 'string' ? body.trim().slice(0, 200) : typeof (body as { message?: unknown })?.message === 'string' ? (body as { message: string }).message : '';
  const message = `mailgun: ${detail || `HTTP ${status}`}`;
  if (status === 401) return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  const base = classifyResponse({ status, headers }, { now });
  return new ConnectorError(base.code, message, { status, retryable: base.retryable, retryAfterMs: base.retryAfterMs });
}

export function classifyMailgun(err: unknown): ConnectorError {
  return classify(err, { context: 'mailgun' });
}
