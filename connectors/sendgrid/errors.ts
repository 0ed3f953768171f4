/**
 * SendGrid's failures: its envelope `{ errors: [{ message, field, help }] }`; 401 (a revoked or
 * wrong API key) needs a person; 403 is its temporary block after too many bad requests; 429
 * carries `X-RateLimit-Reset` (epoch seconds) rather than `Retry-After`. The kit's table for the rest.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

export function classifySendGridAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const errors = (body as { errors?: Array<{ message?: unknown; field?: unknown }> } | undefined)?.errors;
  const first = Array.isArray(errors) ? errors[0] : undefined;
  const detail = first && typeof first.message === 'string' ? `${first.message}${typeof first.field === 'string' ? ` (${first.field})` : ''}` : `HTTP ${status}`;
  const message = `sendgrid: ${detail}`;
  if (status === 429) {
    const reset = Number(headers.get('x-ratelimit-reset'));
    const retryAfterMs = Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now) : undefined;
    const base = classifyResponse({ status, headers }, { now });
    return new ConnectorError(ConnectorCode.RateLimited, message, { status, retryAfterMs: base.retryAfterMs ?? retryAfterMs });
  }
  if (status === 401) return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  const base = classifyResponse({ status, headers }, { now });
  return new ConnectorError(base.code, message, { status, retryable: base.retryable, retryAfterMs: base.retryAfterMs });
}

export function classifySendGrid(err: unknown): ConnectorError {
  return classify(err, { context: 'sendgrid' });
}
