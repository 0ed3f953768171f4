/**
 * Twilio's failures: its envelope `{ code, message, more_info, status }`. 20003 (authentication)
 * needs a person; 20429 and HTTP 429 are throttling (with `Retry-After`); 21211/21614 (a bad
 * `To`), 21606 (a `From` that cannot send) and 21610 (the recipient unsubscribed) are the
 * playbook's to fix, never retried; the kit's table for the rest.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

export interface TwilioErrorBody {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

export function classifyTwilioAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const b = (body ?? {}) as TwilioErrorBody;
  const message = `twilio: ${b.code ? `${b.code} ` : ''}${b.message ?? `HTTP ${status}`}`;
  if (status === 429 || b.code === 20429) {
    const base = classifyResponse({ status: 429, headers }, { now });
    return new ConnectorError(ConnectorCode.RateLimited, message, { status, retryAfterMs: base.retryAfterMs });
  }
  if (b.code === 20003 || status === 401) return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  if (b.code === 21610) return new ConnectorError('RECIPIENT_UNSUBSCRIBED', message, { status, retryable: false });
  const base = classifyResponse({ status, headers }, { now });
  return new ConnectorError(base.code, message, { status, retryable: base.retryable, retryAfterMs: base.retryAfterMs });
}

export function classifyTwilio(err: unknown): ConnectorError {
  return classify(err, { context: 'twilio' });
}
