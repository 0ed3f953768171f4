import { ConnectorCode, ConnectorError } from './errors.js';

/**
 * The one classification of a connector failure: whatever a call threw (or the HTTP answer it
 * got), the `ConnectorError` that says what it was and whether trying again can help.
 *
 * | failure                                                      | code                                     | retryable |
 * |--------------------------------------------------------------|------------------------------------------|-----------|
 * | a `ConnectorError`                                           | as is                                    | as is     |
 * | HTTP 429                                                     | RATE_LIMITED (+ `Retry-After`)           | yes       |
 * | HTTP 503, 425, other 5xx                                     | UNAVAILABLE (+ `Retry-After`)            | yes       |
 * | HTTP 408, 504                                                | TIMEOUT (+ `Retry-After`)                | yes       |
 * | HTTP 401                                                     | REAUTHORIZATION_REQUIRED                 | no        |
 * | HTTP 401 when the caller can refresh the token               | UNAUTHORIZED                             | yes       |
 * | HTTP 403                                                     | FORBIDDEN                                | no        |
 * | HTTP 404, 410                                                | NOT_FOUND                                | no        |
 * | HTTP 409                                                     | CONFLICT                                 | no        |
 * | HTTP 400, 422 and every other 4xx                            | VALIDATION                               | no        |
 * | HTTP 1xx/3xx (a redirect not followed)                       | UNKNOWN                                  | no        |
 * | `TimeoutError` (`AbortSignal.timeout()`), an `AbortError` or | TIMEOUT                                  | yes       |
 * | `ABORT_ERR` (cut short by us), `ETIMEDOUT`, undici timeouts  |                                          |           |
 * | `ECONNREFUSED`, `ECONNRESET`, `EAI_AGAIN`, `ENOTFOUND`,      | NETWORK                                  | yes       |
 * | `EPIPE`, `E*UNREACH`, other `UND_ERR_*` (also as a `cause`)  |                                          |           |
 * | anything else (a thrown string, a provider SDK's own error)  | UNKNOWN                                  | yes       |
 *
 * Anything unrecognised is retryable, deliberately: every connector call carries an
 * idempotency key, retries are bounded by the retry policy, and an unrecognised failure is far
 * more often a library's own shape of a transient fault than a permanent refusal (Temporal and
 * Restate choose the same). A connector that knows better says so, in its own `classify`, by
 * throwing a `ConnectorError`. No other property of an unknown error (a `retryable` flag, a
 * message) is trusted: only the platform's documented error codes are read.
 */
export interface ClassifyOptions {
  /** A 401 can be cured by refreshing the access token (OAuth 2 with a refresh token). */
  canRefresh?: boolean;
  /** For an HTTP-date `Retry-After`: now, in epoch milliseconds. */
  now?: number;
  /** Prefixes the message (e.g. `shopify orders.list`). */
  context?: string;
}

/** Response headers as fetch (`Headers`) or node:http (`IncomingHttpHeaders`) give them. */
export type HeadersLike = Headers | Readonly<Record<string, string | string[] | undefined>>;

/** An HTTP answer that was not a success. */
export interface HttpAnswer {
  status: number;
  headers?: HeadersLike;
}

function header(headers: HeadersLike | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/** `Retry-After` in seconds or as an HTTP date, to milliseconds from `now` (never negative). */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/GMT$/i.test(v)) return undefined; // an HTTP date ends in GMT; Date.parse would take '-3' for a year
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const prefixed = (o: ClassifyOptions, message: string) => (o.context ? `${o.context}: ${message}` : message);

/** Classifies an HTTP answer that was not a 2xx. */
export function classifyResponse(res: HttpAnswer, o: ClassifyOptions = {}): ConnectorError {
  const s = res.status;
  const message = prefixed(o, `HTTP ${s}`);
  const status = s;
  const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'), o.now ?? Date.now());
  if (s === 429) return new ConnectorError(ConnectorCode.RateLimited, message, { status, retryAfterMs });
  if (s === 408 || s === 504) return new ConnectorError(ConnectorCode.Timeout, message, { status, retryAfterMs });
  if (s === 425 || s >= 500) return new ConnectorError(ConnectorCode.Unavailable, message, { status, retryAfterMs });
  if (s === 401) return o.canRefresh ? new ConnectorError(ConnectorCode.Unauthorized, message, { status }) : new ConnectorError(ConnectorCode.ReauthorizationRequired, message, { status });
  if (s === 403) return new ConnectorError(ConnectorCode.Forbidden, message, { status });
  if (s === 404 || s === 410) return new ConnectorError(ConnectorCode.NotFound, message, { status });
  if (s === 409) return new ConnectorError(ConnectorCode.Conflict, message, { status });
  if (s >= 400) return new ConnectorError(ConnectorCode.Validation, message, { status });
  // a 1xx, or a 3xx the client did not follow: nothing a retry would change
  return new ConnectorError(ConnectorCode.Unknown, prefixed(o, `unexpected HTTP ${s}`), { status, retryable: false });
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ABORT_ERR', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EPROTO']);

/** The documented error code or name of one link of a cause chain (Node system errors, undici, DOMException). */
function codeOf(err: unknown): { code: string | undefined; name: string | undefined } {
  if (typeof err !== 'object' || err === null) return { code: undefined, name: undefined };
  const code = (err as { code?: unknown }).code;
  return { code: typeof code === 'string' ? code : undefined, name: err instanceof Error ? err.name : undefined };
}

/**
 * Classifies any failure of a connector call (see the table above). A `Response` (fetch) is
 * classified by its status and headers; an error is classified by its own code or by the code
 * of an error in its `cause` chain (fetch wraps the socket error: `TypeError('fetch failed')`).
 */
export function classify(err: unknown, o: ClassifyOptions = {}): ConnectorError {
  if (err instanceof ConnectorError) return err;
  if (typeof Response !== 'undefined' && err instanceof Response) return classifyResponse(err, o);
  const top = err instanceof Error ? err.message : String(err);
  let link: unknown = err;
  for (let depth = 0; depth < 5 && link != null; depth++) {
    const { code, name } = codeOf(link);
    if (name === 'TimeoutError' || (code && TIMEOUT_CODES.has(code)) || name === 'AbortError') {
      return new ConnectorError(ConnectorCode.Timeout, prefixed(o, top), { cause: err });
    }
    if (code && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_'))) {
      return new ConnectorError(ConnectorCode.Network, prefixed(o, `${code}: ${top}`), { cause: err });
    }
    link = link instanceof Error ? link.cause : undefined;
  }
  return new ConnectorError(ConnectorCode.Unknown, prefixed(o, top), { cause: err });
}
