import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ConcordError, ErrorCode, isDatabaseUnavailable } from '../runtime/errors.js';
import { DomainCode } from '../services/common/errors.js';
import { VaultCode } from '../services/integrations/errors.js';
import type { Env } from './env.js';

/** RFC 9457 problem details, as every error leaves the edge. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

/** The one mapping of error codes (the engine's `ErrorCode` and the services' `DomainCode`) to HTTP statuses. */
const STATUS: Partial<Record<string, [number, string]>> = {
  [ErrorCode.ActorNotFound]: [404, 'Not Found'],
  [ErrorCode.UnknownActorType]: [404, 'Not Found'],
  [ErrorCode.EventRejected]: [409, 'Transition Not Allowed'],
  [ErrorCode.InvalidEvent]: [400, 'Bad Request'],
  [ErrorCode.Conflict]: [409, 'Conflict'],
  [ErrorCode.ActorPaused]: [409, 'Actor Paused'],
  [ErrorCode.ShuttingDown]: [503, 'Service Unavailable'],
  [ErrorCode.Unavailable]: [503, 'Service Unavailable'],
  [ErrorCode.CommitFailed]: [503, 'Service Unavailable'],
  [ErrorCode.Fenced]: [503, 'Service Unavailable'],
  [DomainCode.Unauthenticated]: [401, 'Unauthorized'],
  [DomainCode.Forbidden]: [403, 'Forbidden'],
  [DomainCode.NotFound]: [404, 'Not Found'],
  [DomainCode.RouteNotFound]: [404, 'Not Found'],
  [DomainCode.ValidationFailed]: [400, 'Bad Request'],
  [DomainCode.MalformedJson]: [400, 'Bad Request'],
  [DomainCode.IdempotencyKeyInvalid]: [400, 'Bad Request'],
  [DomainCode.DependencyCycle]: [409, 'Dependency Cycle'],
  [DomainCode.DuplicateDependency]: [409, 'Conflict'],
  [DomainCode.ResourceInactive]: [409, 'Conflict'],
  [DomainCode.GrantInactive]: [409, 'Conflict'],
  [DomainCode.AccessLevelExceeded]: [403, 'Forbidden'],
  [DomainCode.IdempotencyKeyReused]: [422, 'Unprocessable Content'],
  [DomainCode.PayloadTooLarge]: [413, 'Content Too Large'],
  [DomainCode.UnsupportedMediaType]: [415, 'Unsupported Media Type'],
  [DomainCode.ProviderNotConfigured]: [503, 'Service Unavailable'],
  [DomainCode.QuotaExceeded]: [429, 'Too Many Requests'],
  // the credential vault: a stored secret that does not decrypt, or a key ring that cannot open it,
  // is the operator's to fix (restore the key, or the merchant reconnects), not the caller's
  [VaultCode.Tampered]: [503, 'Credentials Unusable'],
  [VaultCode.KeyUnknown]: [503, 'Credentials Unusable'],
  [VaultCode.KeyWrong]: [503, 'Credentials Unusable'],
  [VaultCode.NotConfigured]: [503, 'Credentials Unusable'],
  [VaultCode.VersionConflict]: [409, 'Conflict'],
};

/** 503s that a retry in a second will not cure: no Retry-After. */
const NOT_PASSING = new Set<string>([DomainCode.ProviderNotConfigured, VaultCode.Tampered, VaultCode.KeyUnknown, VaultCode.KeyWrong, VaultCode.NotConfigured]);

/** Details that may reach a client; internal refs and stack traces never do. */
const PUBLIC_DETAILS = new Set(['issues', 'target', 'cycle', 'currentStatus', 'allowedActions', 'action', 'isActive', 'yourLevel', 'error', 'type', 'deployed', 'id', 'limit', 'accepts', 'retryAfter', 'failedSteps', 'failedStep', 'replayedAt']);

function publicDetails(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([k]) => PUBLIC_DETAILS.has(k)));
}

const slug = (code: string) => `https://concord.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`;

/** Maps any thrown value to a problem; unknown errors are 500s with the request id only. */
export function toProblem(err: unknown, requestId: string, path: string): Problem {
  const base = { instance: path, requestId };
  const mapped = err instanceof ConcordError ? STATUS[err.code] : undefined;
  if (err instanceof ConcordError && mapped) {
    const [status, title] = mapped;
    return { type: slug(err.code), title, status, detail: err.message, code: err.code, ...publicDetails(err.details), ...base };
  }
  if (isDatabaseUnavailable(err) || (err instanceof Error && isDatabaseUnavailable(err.cause))) {
    // the database is down or restarting: the request may be tried again (Retry-After), never a 500
    return { type: slug('DATABASE_UNAVAILABLE'), title: 'Service Unavailable', status: 503, detail: 'the database is unavailable; try again shortly', code: 'DATABASE_UNAVAILABLE', ...base };
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const malformed = status === 400 && /json/i.test(err.message);
    const code = malformed ? DomainCode.MalformedJson : status === 413 ? DomainCode.PayloadTooLarge : `HTTP_${status}`;
    return { type: slug(code), title: malformed ? 'Bad Request' : err.message || 'Error', status, detail: malformed ? 'the request body is not valid JSON' : err.message, code, ...base };
  }
  return { type: slug('INTERNAL'), title: 'Internal Server Error', status: 500, detail: `an unexpected error occurred; quote request id ${requestId}`, code: 'INTERNAL', ...base };
}

export function problemResponse(c: Context<Env>, problem: Problem): Response {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  // a passing unavailability (database down, shutting down, lease moving): worth a retry soon
  if (problem.status === 503 && !NOT_PASSING.has(problem.code)) headers['retry-after'] = '1';
  if (problem.status === 401) {
    const desc = problem.detail.replaceAll('"', "'");
    headers['www-authenticate'] = problem.error ? `Bearer realm="concord", error="invalid_token", error_description="${desc}"` : 'Bearer realm="concord"';
  }
  if (problem.status === 429 && typeof problem.retryAfter === 'number') headers['retry-after'] = String(problem.retryAfter);
  return c.body(JSON.stringify(problem), problem.status as never, headers);
}
