/**
 * The one error type a connector call fails with. Every failure, whatever threw it (an HTTP
 * answer, a dropped socket, a timeout, a provider SDK), is turned into a `ConnectorError` by
 * `classify` (./classify.ts) at the connector edge; past that edge nothing looks at the raw
 * error again. `retryable` is the only thing a retry decision reads.
 *
 * @example
 * throw new ConnectorError(ConnectorCode.RateLimited, 'shopify: 429', { retryAfterMs: 2_000, status: 429 });
 * throw new ConnectorError('CARD_DECLINED', 'insufficient funds', { retryable: false }); // the provider's own code
 */

/** The shared vocabulary of connector failures. */
export const ConnectorCode = {
  /** 429, or a provider's own throttling answer. */
  RateLimited: 'RATE_LIMITED',
  /** 5xx, 425, 503: the provider is down or overloaded. */
  Unavailable: 'UNAVAILABLE',
  /** No answer in time: 408, 504, our own deadline, a socket or undici timeout. */
  Timeout: 'TIMEOUT',
  /** The request never got an answer: refused, reset, DNS, undici socket errors. */
  Network: 'NETWORK',
  /** The grant is revoked or expired beyond refresh: a person must reconnect the account. */
  ReauthorizationRequired: 'REAUTHORIZATION_REQUIRED',
  /** The access token was refused but can be refreshed: refresh, then try again. */
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  /** The provider refused the request as made (400, 422 and other 4xx). */
  Validation: 'VALIDATION',
  Conflict: 'CONFLICT',
  /** A failure nothing recognised (see `classify` for why it counts as retryable). */
  Unknown: 'UNKNOWN',
} as const;
export type ConnectorCode = (typeof ConnectorCode)[keyof typeof ConnectorCode];

/** Whether a failure of each standard code is worth trying again, unless said otherwise. */
export const RETRYABLE_BY_DEFAULT: Readonly<Record<ConnectorCode, boolean>> = Object.freeze({
  RATE_LIMITED: true,
  UNAVAILABLE: true,
  TIMEOUT: true,
  NETWORK: true,
  REAUTHORIZATION_REQUIRED: false,
  UNAUTHORIZED: true,
  FORBIDDEN: false,
  NOT_FOUND: false,
  VALIDATION: false,
  CONFLICT: false,
  UNKNOWN: true,
});

const STANDARD = new Set<string>(Object.values(ConnectorCode));
const MAX_MESSAGE = 2_000;

export const isStandardCode = (code: string): code is ConnectorCode => STANDARD.has(code);

export interface ConnectorErrorOptions extends ErrorOptions {
  /** Overrides the code's default; required for a provider's own code. */
  retryable?: boolean;
  /** The provider asked us to wait this long (Retry-After, a rate-limit reset header). */
  retryAfterMs?: number;
  /** The HTTP status, when the failure was an HTTP answer. */
  status?: number;
}

/** What the actor is told about a failed call (`<connector>.<operation>.failed`'s `error`): JSON. */
export interface ConnectorFailure {
  code: string;
  message: string;
  retryable: boolean;
  retryAfterMs?: number;
  status?: number;
}

export class ConnectorError extends Error {
  /** One of `ConnectorCode`, or a provider's own business code (e.g. `CARD_DECLINED`), which must say whether it is retryable. */
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;

  constructor(code: ConnectorCode, message: string, options?: ConnectorErrorOptions);
  constructor(code: string, message: string, options: ConnectorErrorOptions & { retryable: boolean });
  constructor(code: string, message: string, options: ConnectorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConnectorError';
    this.code = code;
    this.retryable = options.retryable ?? (isStandardCode(code) ? RETRYABLE_BY_DEFAULT[code] : true);
    const wait = options.retryAfterMs;
    this.retryAfterMs = wait !== undefined && Number.isFinite(wait) && wait >= 0 ? Math.round(wait) : undefined;
    this.status = options.status;
  }

  /** The failure as the actor gets it (no stack, no cause, the message cut to 2,000 characters: it is stored in the actor's snapshot and journal). */
  toFailure(): ConnectorFailure {
    return {
      code: this.code,
      message: this.message.length > MAX_MESSAGE ? `${this.message.slice(0, MAX_MESSAGE - 1)}…` : this.message,
      retryable: this.retryable,
      ...(this.retryAfterMs !== undefined ? { retryAfterMs: this.retryAfterMs } : {}),
      ...(this.status !== undefined ? { status: this.status } : {}),
    };
  }
}

export function isConnectorError(err: unknown, code?: string): err is ConnectorError {
  return err instanceof ConnectorError && (code === undefined || err.code === code);
}

/** True for a classified failure that is worth trying again. Classify first: a raw error is never retryable here. */
export const isRetryable = (err: unknown): boolean => isConnectorError(err) && err.retryable;
/** True for a classified failure that will not go away by trying again. */
export const isTerminal = (err: unknown): boolean => isConnectorError(err) && !err.retryable;
export const isRateLimited = (err: unknown): err is ConnectorError => isConnectorError(err, ConnectorCode.RateLimited);
export const isTimeout = (err: unknown): err is ConnectorError => isConnectorError(err, ConnectorCode.Timeout);
export const needsReauthorization = (err: unknown): err is ConnectorError => isConnectorError(err, ConnectorCode.ReauthorizationRequired);
