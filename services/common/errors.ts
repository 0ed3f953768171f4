import { ConcordError } from '../../runtime/errors.js';

/**
 * Errors of the application layer (the coordination domain, its non-actor objects and the edge's
 * policy), in the same shape as the engine's `ConcordError`: a string code from a const object
 * and JSON details. The engine knows none of these codes; the HTTP edge maps both families to
 * statuses in its one `onError`.
 */
export const DomainCode = {
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  ValidationFailed: 'VALIDATION_FAILED',
  DependencyCycle: 'DEPENDENCY_CYCLE',
  DuplicateDependency: 'DUPLICATE_DEPENDENCY',
  ResourceInactive: 'RESOURCE_INACTIVE',
  GrantInactive: 'GRANT_INACTIVE',
  AccessLevelExceeded: 'ACCESS_LEVEL_EXCEEDED',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  IdempotencyKeyInvalid: 'IDEMPOTENCY_KEY_INVALID',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  MalformedJson: 'MALFORMED_JSON',
  RouteNotFound: 'ROUTE_NOT_FOUND',
  /** A marketplace provider whose keys are missing (`unconfiguredProviders`): its routes answer 503. */
  ProviderNotConfigured: 'PROVIDER_NOT_CONFIGURED',
  /** A tenant past its API quota (`TENANT_QUOTAS`): 429 with Retry-After. */
  QuotaExceeded: 'QUOTA_EXCEEDED',
} as const;
export type DomainCode = (typeof DomainCode)[keyof typeof DomainCode];

/** A `ConcordError` raised by the coordination domain: one error family, one `onError`. */
export class DomainError extends ConcordError<DomainCode> {
  constructor(code: DomainCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(code, message, details, options);
    this.name = 'DomainError';
  }
}

export const isDomainError = (err: unknown, code?: DomainCode): err is DomainError =>
  err instanceof DomainError && (code === undefined || err.code === code);

export const notFound = (what: string, id: string) => new DomainError(DomainCode.NotFound, `${what} ${id} not found`, { id });
