/**
 * Shopify's failures to `ConnectorError`: its token errors, the 401 of a dead access token, the
 * GraphQL `THROTTLED` answer (HTTP 200 or 429) with a wait computed from the restore rate,
 * `userErrors` of the inventory mutations, and the kit's table for everything generic.
 */
import { classify, classifyResponse, parseRetryAfter } from '../kit/classify.js';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';

/** `extensions.cost.throttleStatus`: the shop's cost bucket, as Shopify reports it on every answer. */
export interface ThrottleStatus {
  maximumAvailable: number;
  currentlyAvailable: number;
  /** Points restored per second. */
  restoreRate: number;
}

/** `extensions.cost` of a GraphQL answer (`actualQueryCost` is null when the query did not run). */
export interface QueryCost {
  requestedQueryCost: number;
  actualQueryCost: number | null;
  throttleStatus: ThrottleStatus;
}

export interface ShopifyUserError {
  code?: string | null;
  field?: Array<string | number> | null;
  message: string;
}

/**
 * How long until the bucket holds `requested` points again (at least one second when nothing
 * is known: Shopify's answer says only that the bucket is short).
 */
export function throttleWaitMs(cost: QueryCost | undefined): number {
  if (!cost || !(cost.throttleStatus.restoreRate > 0)) return 1_000;
  const missing = cost.requestedQueryCost - cost.throttleStatus.currentlyAvailable;
  return Math.max(0, Math.ceil((missing / cost.throttleStatus.restoreRate) * 1000));
}

/** A ConnectorError that also carries the cost Shopify reported (so a budget can pace on a failure too). */
export class ShopifyError extends ConnectorError {
  cost: QueryCost | undefined;
  userErrors: ShopifyUserError[] = [];
}

function shopifyError(code: ConnectorCode, message: string, o: { status?: number; retryAfterMs?: number; cost?: QueryCost; userErrors?: ShopifyUserError[]; retryable?: boolean }): ShopifyError {
  const e = new ShopifyError(code, `shopify: ${message}`, { status: o.status, retryAfterMs: o.retryAfterMs, ...(o.retryable === undefined ? {} : { retryable: o.retryable }) });
  e.cost = o.cost;
  e.userErrors = o.userErrors ?? [];
  return e;
}

const INVALID_TOKEN = /Invalid API key or access token/i;

/** A non-2xx answer of the Admin API or of the OAuth token endpoint, with its parsed body. */
export function classifyShopifyAnswer(status: number, headers: Headers, body: unknown, now = Date.now()): ConnectorError {
  const b = (body ?? {}) as { error?: unknown; errors?: unknown; extensions?: { cost?: QueryCost } };
  if (b.error === 'invalid_grant') {
    // a revoked, expired or already-rotated refresh token: only the merchant can fix it
    return shopifyError(ConnectorCode.ReauthorizationRequired, 'invalid_grant: the grant is revoked or the refresh token was used or expired', { status });
  }
  if (status === 401 && typeof b.errors === 'string' && INVALID_TOKEN.test(b.errors)) {
    return shopifyError(ConnectorCode.Unauthorized, 'invalid API key or access token (refresh the token, then try again)', { status });
  }
  if (Array.isArray(b.errors) && b.errors.some((e) => (e as { extensions?: { code?: string } })?.extensions?.code === 'THROTTLED')) {
    const cost = b.extensions?.cost;
    const retryAfterMs = parseRetryAfter(headers.get('retry-after'), now) ?? throttleWaitMs(cost);
    return shopifyError(ConnectorCode.RateLimited, 'THROTTLED: the cost bucket is short of points', { status, retryAfterMs, cost });
  }
  const generic = classifyResponse({ status, headers }, { now, context: 'shopify' });
  const detail = typeof b.errors === 'string' ? `: ${b.errors}` : typeof b.error === 'string' ? `: ${b.error}` : '';
  return shopifyError(generic.code as ConnectorCode, `HTTP ${status}${detail}`, { status, retryAfterMs: generic.retryAfterMs, retryable: generic.retryable });
}

/** Top-level GraphQL `errors` of an HTTP 200 answer. */
export function classifyGraphQLErrors(errors: Array<{ message?: string; extensions?: { code?: string } }>, cost: QueryCost | undefined): ConnectorError {
  const codes = errors.map((e) => e.extensions?.code).filter((c): c is string => typeof c === 'string');
  const message = errors.map((e) => e.message ?? '').join('; ');
  if (codes.includes('THROTTLED')) return shopifyError(ConnectorCode.RateLimited, 'THROTTLED: the cost bucket is short of points', { status: 200, retryAfterMs: throttleWaitMs(cost), cost });
  if (codes.includes('ACCESS_DENIED')) return shopifyError(ConnectorCode.Forbidden, `ACCESS_DENIED: ${message}`, { status: 200, cost });
  if (codes.includes('INTERNAL_SERVER_ERROR')) return shopifyError(ConnectorCode.Unavailable, message, { status: 200, cost });
  // MAX_COST_EXCEEDED, syntax, unknown fields, missing @idempotent or changeFromQuantity: the request as made is wrong
  return shopifyError(ConnectorCode.Validation, `${codes[0] ?? 'GRAPHQL_ERROR'}: ${message}`, { status: 200, cost });
}

/** `userErrors` of a mutation: a stale compare-and-set is a CONFLICT (the sync turns it into one), the rest VALIDATION. */
export function classifyUserErrors(mutation: string, userErrors: ShopifyUserError[], cost: QueryCost | undefined): ConnectorError {
  const stale = userErrors.find((u) => u.code === 'CHANGE_FROM_QUANTITY_STALE' || u.code === 'COMPARE_QUANTITY_STALE');
  const summary = userErrors.map((u) => `${u.code ?? 'ERROR'}: ${u.message}`).join('; ');
  if (stale) return shopifyError(ConnectorCode.Conflict, `${mutation}: ${summary}`, { status: 200, cost, userErrors });
  return shopifyError(ConnectorCode.Validation, `${mutation}: ${summary}`, { status: 200, cost, userErrors });
}

/** The connector's `classify`: a ShopifyError as is; any other failure through the kit's table. */
export function classifyShopify(err: unknown): ConnectorError {
  return classify(err, { context: 'shopify' });
}
