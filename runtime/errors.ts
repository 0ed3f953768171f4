/**
 * One error class for the whole runtime, with a string code from a const object. The engine's
 * own codes are below; the application layer extends the class with its own code family
 * (`services/common/errors.ts`), so one `onError` maps both.
 * Call sites test codes with the predicates below, never with message text.
 */
export const ErrorCode = {
  UnknownActorType: 'UNKNOWN_ACTOR_TYPE',
  UnknownMachineVersion: 'UNKNOWN_MACHINE_VERSION',
  InvalidSnapshot: 'INVALID_SNAPSHOT',
  ActorNotFound: 'ACTOR_NOT_FOUND',
  EventRejected: 'EVENT_REJECTED',
  InvalidEvent: 'INVALID_EVENT',
  TransitionFailed: 'TRANSITION_FAILED',
  Conflict: 'CONFLICT',
  CommitFailed: 'COMMIT_FAILED',
  /** The partition lease the message was consumed under has passed to another process. */
  Fenced: 'FENCED',
  /** An operator paused the actor: it applies nothing until resumed (messages and timers wait). */
  ActorPaused: 'ACTOR_PAUSED',
  ShuttingDown: 'SHUTTING_DOWN',
  InvalidConfig: 'INVALID_CONFIG',
  Unavailable: 'UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ConcordError<C extends string = ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ConcordError';
  }
}

export function isConcordError(err: unknown, code?: ErrorCode): err is ConcordError {
  return err instanceof ConcordError && (code === undefined || err.code === code);
}

export const isRejected = (err: unknown): err is ConcordError => isConcordError(err, ErrorCode.EventRejected);
export const isNotFound = (err: unknown): err is ConcordError => isConcordError(err, ErrorCode.ActorNotFound);
export const isConflict = (err: unknown): err is ConcordError => isConcordError(err, ErrorCode.Conflict);
export const isPaused = (err: unknown): err is ConcordError => isConcordError(err, ErrorCode.ActorPaused);

/**
 * The database could not be reached or went away mid-request (stopped, restarting, crashed, out of
 * connections): says nothing about the request, which may be tried again shortly.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')) return true;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)$/.test(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  // node-postgres reports a dropped socket, or a pool that could not connect in time, without a SQLSTATE
  return /Connection terminated|ECONNREFUSED|ECONNRESET|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(msg);
}

/** Postgres SQLSTATEs after which the same work may simply be tried again. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '55P03', '57P01', '08006', '08003', '08000', '57P03']);

export function isRetryablePgError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_SQLSTATES.has(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  // node-postgres reports a dropped socket without a SQLSTATE
  return /Connection terminated|ECONNREFUSED|ECONNRESET|connection timeout/i.test(msg);
}
