/**
 * The generic REST connector's failures: the kit's table, with `412 Precondition Failed` (a
 * stale `If-Match`) as a CONFLICT and the RFC 6749 token errors (`invalid_grant`,
 * `invalid_client`) as REAUTHORIZATION_REQUIRED.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import type { HeadersLike } from '../kit/classify.js';

export function classifyGenericAnswer(status: number, headers: HeadersLike, body: unknown, o: { canRefresh?: boolean; context: string; now?: number }): ConnectorError {
  const b = (body ?? {}) as { error?: unknown; title?: unknown; detail?: unknown };
  const oauthError = typeof b.error === 'string' ? b.error : undefined;
  const detail = [typeof b.title === 'string' ? b.title : undefined, typeof b.detail === 'string' ? b.detail : undefined, oauthError].filter(Boolean).join(': ');
  const message = `${o.context}: HTTP ${status}${detail ? ` ${detail}` : ''}`;
  if (oauthError === 'invalid_grant' || oauthError === 'invalid_client' || oauthError === 'unauthorized_client') {
    return new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  }
  if (status === 412) return new ConnectorError(ConnectorCode.Conflict, message, { status });
  const generic = classifyResponse({ status, headers }, { canRefresh: o.canRefresh, now: o.now });
  return new ConnectorError(generic.code, message, { status, retryAfterMs: generic.retryAfterMs, retryable: generic.retryable });
}

export function classifyGeneric(err: unknown): ConnectorError {
  return classify(err, { context: 'generic' });
}
