import { ConcordError, ErrorCode } from '../../runtime/errors.js';

/**
 * Errors of the coordination domain (the non-actor objects and the edge's policy), in the same
 * shape as the runtime's `ConcordError`: a string code from a const object and JSON details.
 * The HTTP edge maps both families to statuses in its one `onError`.
 */
export const DomainCode = {
  Unauthenticated: ErrorCode.Unauthenticated,
  Forbidden: ErrorCode.Forbidden,
  NotFound: ErrorCode.NotFound,
  ValidationFailed: ErrorCode.ValidationFailed,
  DependencyCycle: ErrorCode.DependencyCycle,
  DuplicateDependency: ErrorCode.DuplicateDependency,
  ResourceInactive: ErrorCode.ResourceInactive,
  GrantInactive: ErrorCode.GrantInactive,
  AccessLevelExceeded: ErrorCode.AccessLevelExceeded,
  IdempotencyKeyReused: ErrorCode.IdempotencyKeyReused,
  IdempotencyKeyInvalid: ErrorCode.IdempotencyKeyInvalid,
  PayloadTooLarge: ErrorCode.PayloadTooLarge,
  UnsupportedMediaType: ErrorCode.UnsupportedMediaType,
  MalformedJson: ErrorCode.MalformedJson,
  RouteNotFound: ErrorCode.RouteNotFound,
} as const;
export type DomainCode = (typeof DomainCode)[keyof typeof DomainCode];

/** A `ConcordError` raised by the coordination domain: one error family, one `onError`. */
export class DomainError extends ConcordError {
  constructor(code: DomainCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(code, message, details, options);
    this.name = 'DomainError';
  }
}

export const isDomainError = (err: unknown, code?: DomainCode): err is DomainError =>
  err instanceof DomainError && (code === undefined || err.code === code);

export const notFound = (what: string, id: string) => new DomainError(DomainCode.NotFound, `${what} ${id} not found`, { id });
