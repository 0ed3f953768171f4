/**
 * MercadoLibre's failures to `ConnectorError`: its error envelope `{ message, error, status,
 * cause }` (validation causes kept), `invalid_token`, `invalid_grant`, 404 and 429 with
 * `Retry-After`; the kit's table for everything generic.
 */
import { classify, classifyResponse } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

/** One entry of a validation error's `cause`. */
export interface MLCause {
  department?: string;
  cause_id?: number;
  type?: 'error' | 'warning' | string;
  code?: string;
  references?: string[];
  message?: string;
}

/** A ConnectorError that keeps the validation causes ML gave (warnings do not block an update). */
export class MercadoLibreError extends ConnectorError {
  causes: MLCause[] = [];
}

function mlError(code: ConnectorCode, message: string, o: { status?: number; retryAfterMs?: number; retryable?: boolean; causes?: MLCause[] }): MercadoLibreError {
  const e = new MercadoLibreError(code, `mercadolibre: ${message}`, { status: o.status, retryAfterMs: o.retryAfterMs, ...(o.retryable === undefined ? {} : { retryable: o.retryable }) });
  e.causes = o.causes ?? [];
  return e;
}

/** A non-2xx answer with its parsed body (undefined when it was not JSON). */
export function classifyMercadoLibreAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const b = (body ?? {}) as { message?: unknown; error?: unknown; cause?: unknown; error_description?: unknown };
  const error = typeof b.error === 'string' ? b.error : undefined;
  const message = typeof b.message === 'string' ? b.message : typeof b.error_description === 'string' ? b.error_description : undefined;
  if (error === 'invalid_grant') return mlError(ConnectorCode.ReauthorizationRequired, 'invalid_grant: the authorization code or refresh token is expired, revoked or was already used', { status });
  if (status === 401 && (message === 'invalid_token' || error === 'invalid_token' || error === 'unauthorized_request_error' || error === 'not_found')) {
    // an expired or revoked access token: refresh (a revoked grant shows up as invalid_grant then)
    return mlError(ConnectorCode.Unauthorized, 'invalid_token (refresh the access token, then try again)', { status });
  }
  if (status === 401 && error === 'invalid_client') return mlError(ConnectorCode.ReauthorizationRequired, 'invalid_client: the app credentials were refused', { status, retryable: false });
  const causes = Array.isArray(b.cause) ? (b.cause as MLCause[]) : [];
  if (status === 400 && (error === 'validation_error' || causes.length > 0)) {
    const blocking = causes.filter((c) => c.type !== 'warning');
    const detail = (blocking.length > 0 ? blocking : causes).map((c) => `${c.code ?? c.cause_id ?? 'cause'}: ${c.message ?? ''}`).join('; ');
    return mlError(ConnectorCode.Validation, `${message ?? 'validation error'}${detail ? ` (${detail})` : ''}`, { status, causes });
  }
  const generic = classifyResponse({ status, headers }, { now });
  return mlError(generic.code as ConnectorCode, `HTTP ${status}${message ? `: ${message}` : error ? `: ${error}` : ''}`, { status, retryAfterMs: generic.retryAfterMs, retryable: generic.retryable });
}

/** The connector's `classify`: a classified error as is, anything else through the kit's table. */
export function classifyMercadoLibre(err: unknown): ConnectorError {
  return classify(err, { context: 'mercadolibre' });
}
