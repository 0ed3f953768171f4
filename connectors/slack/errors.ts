/**
 * Slack's failures: the `error` string of `{ ok: false }` (HTTP 200 for most), 429 `ratelimited`
 * with `Retry-After`. Token problems need a person (reinstall the app); a wrong channel or text
 * is the playbook's mistake; Slack's own trouble is worth a retry.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

const REAUTHORIZE = new Set(['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive', 'no_permission', 'org_login_required']);
const FORBIDDEN = new Set(['missing_scope', 'restricted_action', 'ekm_access_denied', 'access_denied', 'team_access_not_granted']);
const NOT_FOUND = new Set(['channel_not_found', 'user_not_found']);
const RETRY = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited', 'rate_limited']);

export function classifySlackAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const error = typeof (body as { error?: unknown })?.error === 'string' ? (body as { error: string }).error : undefined;
  const message = `slack: ${error ?? `HTTP ${status}`}`;
  if (status === 429 || error === 'ratelimited' || error === 'rate_limited') {
    const base = classifyResponse({ status: 429, headers }, { now });
    return new ConnectorError(ConnectorCode.RateLimited, message, { status, retryAfterMs: base.retryAfterMs });
  }
  if (error && REAUTHORIZE.has(error)) return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  if (error && FORBIDDEN.has(error)) return new ConnectorError(ConnectorCode.Forbidden, message, { status });
  if (error && NOT_FOUND.has(error)) return new ConnectorError(ConnectorCode.NotFound, message, { status });
  if (error && RETRY.has(error)) return new ConnectorError(ConnectorCode.Unavailable, message, { status });
  if (status === 200 && error) return new ConnectorError(ConnectorCode.Validation, message, { status }); // not_in_channel, is_archived, msg_too_long, no_text, invalid_blocks, ...
  const base = classifyResponse({ status, headers }, { now });
  return new ConnectorError(base.code, message, { status, retryable: base.retryable, retryAfterMs: base.retryAfterMs });
}

export function classifySlack(err: unknown): ConnectorError {
  return classify(err, { context: 'slack' });
}
