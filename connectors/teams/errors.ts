/**
 * Teams webhook failures: plain-text bodies ("Bad payload received by generic incoming webhook.",
 * "Microsoft Teams endpoint returned HTTP error 429 with ContextId ..."), a 200 whose text is not
 * `1` (the classic connector's way of reporting Teams' own failure), 404 or 410 for a removed
 * webhook (a person must create a new one); the kit's table for the rest.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

export function classifyTeamsAnswer(status: number, headers: Headers, text: string, now = Date.now()): ConnectorError {
  const message = `teams: ${text.trim().slice(0, 200) || `HTTP ${status}`}`;
  const throttled = /HTTP error 429|too many requests/i.test(text);
  if (status === 429 || throttled) {
    const base = classifyResponse({ status: 429, headers }, { now });
    return new ConnectorError(ConnectorCode.RateLimited, message, { status, retryAfterMs: base.retryAfterMs });
  }
  if (status === 200) return new ConnectorError(ConnectorCode.Unavailable, message, { status }); // delivery failed on Teams' side
  if (status === 404 || status === 410) return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  const base = classifyResponse({ status, headers }, { now });
  return new ConnectorError(base.code, message, { status, retryable: base.retryable, retryAfterMs: base.retryAfterMs });
}

export function classifyTeams(err: unknown): ConnectorError {
  return classify(err, { context: 'teams' });
}
