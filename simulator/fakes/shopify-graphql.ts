/**
 * `POST /{shop}/admin/api/{version}/graphql.json` of the Shopify fake: the optional REST-style
 * request limit, token check, the cost-based throttle per shop, and execution of queries and
 * mutations (with `@idempotent(key:)` as the version requires).
 */
import type { Hono } from 'hono';
import { retryAfterSeconds, type FakeClock, type RateRecorder } from './common.js';
import { execute, FieldError, GraphQLSyntaxError, parse, pickOperation, requestedCost, resolveArgs, resolveValue, rootFields, type Field, type GraphQLDocument } from './graphql.js';
import { adminRoot, checkScope, IDEMPOTENT_MUTATIONS, versionAtLeast, type Level, type ShopData } from './shopify-admin.js';
import type { ShopifyTokens } from './shopify-oauth.js';

/** GraphQL cost buckets per plan: points, and points restored per second. */
export const SHOPIFY_PLANS = {
  standard: { maximumAvailable: 2000, restoreRate: 100 },
  advanced: { maximumAvailable: 4000, restoreRate: 200 },
  plus: { maximumAvailable: 20000, restoreRate: 1000 },
  enterprise: { maximumAvailable: 40000, restoreRate: 2000 },
  unlimited: { maximumAvailable: Number.MAX_SAFE_INTEGER, restoreRate: Number.MAX_SAFE_INTEGER },
} as const;

export type ShopifyPlan = keyof typeof SHOPIFY_PLANS | { maximumAvailable: number; restoreRate: number };

export const INVALID_TOKEN = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };

export interface CallRecord {
  shop: string;
  operation: string;
  status: number;
  throttled: boolean;
  at: number;
}

/** Per-shop buckets: GraphQL cost points and, when set, REST-style request counts. */
export class ShopifyLimits {
  readonly #cost = new Map<string, { max: number; restore: number; available: number; at: number }>();
  readonly #requests = new Map<string, { level: number; at: number }>();
  throttledStatus: 200 | 429;
  requestLimit: { bucket: number; leakPerSecond: number } | undefined;

  constructor(
    private readonly clock: FakeClock,
    private readonly plan: ShopifyPlan,
    o: { throttledStatus?: 200 | 429; requestLimit?: { bucket: number; leakPerSecond: number } },
  ) {
    this.throttledStatus = o.throttledStatus ?? 200;
    this.requestLimit = o.requestLimit;
  }

  /** The shop's cost bucket, refilled up to now. */
  bucket(shop: string) {
    let b = this.#cost.get(shop);
    const now = this.clock.now();
    if (!b) {
      const p = planOf(this.plan);
      b = { max: p.maximumAvailable, restore: p.restoreRate, available: p.maximumAvailable, at: now };
      this.#cost.set(shop, b);
    }
    b.available = Math.min(b.max, b.available + ((now - b.at) / 1000) * b.restore);
    b.at = now;
    return b;
  }

  setPlan(shop: string, plan: ShopifyPlan): void {
    const p = planOf(plan);
    const b = this.bucket(shop);
    b.max = p.maximumAvailable;
    b.restore = p.restoreRate;
    b.available = Math.min(b.available, b.max);
  }

  setRequestLimit(limit: { bucket: number; leakPerSecond: number } | undefined): void {
    this.requestLimit = limit;
    this.#requests.clear();
  }

  /** Takes one request from the leaky bucket; answers the wait in ms when it is full. */
  takeRequest(shop: string): { ok: true; level: number } | { ok: false; level: number; waitMs: number } {
    const limit = this.requestLimit!;
    const now = this.clock.now();
    const rb = this.#requests.get(shop) ?? { level: 0, at: now };
    rb.level = Math.max(0, rb.level - ((now - rb.at) / 1000) * limit.leakPerSecond);
    rb.at = now;
    this.#requests.set(shop, rb);
    if (rb.level + 1 > limit.bucket) return { ok: false, level: rb.level, waitMs: ((rb.level + 1 - limit.bucket) / limit.leakPerSecond) * 1000 };
    rb.level += 1;
    return { ok: true, level: rb.level };
  }
}

const planOf = (p: ShopifyPlan) => (typeof p === 'string' ? SHOPIFY_PLANS[p] : p);

export interface GraphQLDeps {
  clock: FakeClock;
  rate: RateRecorder;
  tokens: ShopifyTokens;
  limits: ShopifyLimits;
  shops: Map<string, ShopData>;
  calls: CallRecord[];
  nextId: () => number;
  /** Levels the request changed (the server sends the inventory webhooks). */
  onLevelsChanged: (shop: string, levels: Level[]) => void;
}

export function graphqlRoute(app: Hono, d: GraphQLDeps): void {
  const { clock, limits } = d;
  app.post('/:shop/admin/api/:version/graphql.json', async (c) => {
    const shop = c.req.param('shop');
    const version = c.req.param('version');
    d.rate.record(shop);
    const log = (operation: string, status: number, throttled = false) => d.calls.push({ shop, operation, status, throttled, at: Date.now() });
    if (!/^(\d{4}-\d{2}|unstable)$/.test(version)) {
      log('', 404);
      return c.json({ errors: 'Not Found' }, 404);
    }
    c.header('x-shopify-api-version', version);
    if (limits.requestLimit) {
      const bucketSize = limits.requestLimit.bucket;
      const taken = limits.takeRequest(shop);
      c.header('x-shopify-shop-api-call-limit', `${Math.ceil(taken.level)}/${bucketSize}`);
      if (!taken.ok) {
        log('', 429, true);
        c.header('retry-after', String(retryAfterSeconds(taken.waitMs)));
        return c.json({ errors: `Exceeded ${limits.requestLimit.leakPerSecond} calls per second for api client. Reduce request rates to resume uninterrupted service.` }, 429);
      }
    }
    const token = d.shops.has(shop) ? d.tokens.authenticate(c.req.header('x-shopify-access-token'), shop) : undefined;
    if (!token) {
      log('', 401);
      return c.json(INVALID_TOKEN, 401);
    }
    let body: { query?: unknown; variables?: unknown; operationName?: unknown };
    try {
      body = (await c.req.json()) as typeof body;
    } catch {
      log('', 400);
      return c.json({ errors: { query: 'Required parameter missing or invalid' } }, 400);
    }
    const vars = (body.variables && typeof body.variables === 'object' ? body.variables : {}) as Record<string, unknown>;
    const bucket = limits.bucket(shop);
    const cost = (requested: number, actual: number | null) => ({
      cost: { requestedQueryCost: requested, actualQueryCost: actual, throttleStatus: { maximumAvailable: bucket.max, currentlyAvailable: Math.floor(bucket.available), restoreRate: bucket.restore } },
    });
    let operation = '';
    try {
      if (typeof body.query !== 'string') throw new GraphQLSyntaxError('No query string was present');
      const doc = parse(body.query);
      const op = pickOperation(doc, typeof body.operationName === 'string' ? body.operationName : undefined);
      for (const [k, dflt] of Object.entries(op.variables)) if (!(k in vars) && dflt !== undefined) vars[k] = resolveValue(dflt, vars);
      const fields = rootFields(op, doc, vars);
      operation = fields[0]?.name ?? '';
      const requested = requestedCost(op, doc, vars);
      if (requested > 1000) {
        log(operation, 200);
        return c.json({
          errors: [{ message: `Query cost is ${requested}, which exceeds the single query max cost limit (1000).`, extensions: { code: 'MAX_COST_EXCEEDED', cost: requested, maxCost: 1000 } }],
          extensions: cost(requested, null),
        });
      }
      if (bucket.available < requested) {
        log(operation, limits.throttledStatus, true);
        if (limits.throttledStatus === 429) c.header('retry-after', String(retryAfterSeconds(((requested - bucket.available) / bucket.restore) * 1000)));
        return c.json(
          { errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED', documentation: 'https://shopify.dev/api/usage/rate-limits' } }], extensions: cost(requested, null) },
          limits.throttledStatus,
        );
      }
      const scopes = new Set(token.scope.split(',').map((s) => s.trim()).filter(Boolean));
      for (const f of fields) checkScope(f.name, scopes);
      const shopState = d.shops.get(shop)!;
      const changed: Level[] = [];
      const root = adminRoot({ shop: shopState, version, now: () => clock.iso(), nextId: d.nextId, scopes, onLevelChanged: (lv) => changed.push(lv) });
      const result =
        op.type === 'mutation' ? runMutation(root.mutation, fields, doc, vars, version, shopState) : execute(root.query, fields, { vars, fragments: doc.fragments });
      const actual = op.type === 'mutation' ? Math.max(result.cost, 10) : result.cost;
      bucket.available -= actual;
      log(operation, 200);
      if (changed.length > 0) d.onLevelsChanged(shop, changed);
      return c.json({ data: result.data, extensions: cost(requested, actual) });
    } catch (err) {
      if (err instanceof GraphQLSyntaxError || err instanceof FieldError) {
        log(operation, 200);
        const extensions = err instanceof FieldError ? err.extensions : { code: 'SYNTAX_ERROR' };
        return c.json({ errors: [{ message: err.message, extensions }] });
      }
      throw err;
    }
  });
}

/** Runs a mutation's root fields, honouring `@idempotent(key:)` as the version requires. */
function runMutation(
  root: Record<string, unknown>,
  fields: Field[],
  doc: GraphQLDocument,
  vars: Record<string, unknown>,
  version: string,
  shop: ShopData,
): { data: Record<string, unknown>; cost: number } {
  const data: Record<string, unknown> = {};
  let cost = 0;
  for (const f of fields) {
    const directive = f.directives.find((d) => d.name === 'idempotent');
    const key = directive ? resolveValue(directive.args.key, vars) : undefined;
    if (directive && !versionAtLeast(version, '2026-01')) throw new FieldError(`Directive 'idempotent' is not defined in version ${version}`, { code: 'undefinedDirective' });
    if (directive && (typeof key !== 'string' || key === '')) throw new FieldError("Directive 'idempotent' requires a non-empty 'key'", { code: 'BAD_REQUEST' });
    if (!directive && IDEMPOTENT_MUTATIONS.has(f.name) && versionAtLeast(version, '2026-04')) {
      throw new FieldError(`The @idempotent directive is required for ${f.name} from version 2026-04`, { code: 'BAD_REQUEST' });
    }
    const fingerprint = JSON.stringify([f.name, resolveArgs(f.args, vars)]);
    const storeKey = `${f.name}:${String(key)}`;
    const seen = typeof key === 'string' ? shop.idempotency.get(storeKey) : undefined;
    const out = f.alias ?? f.name;
    if (seen) {
      data[out] =
        seen.fingerprint === fingerprint
          ? seen.data
          : { inventoryAdjustmentGroup: null, userErrors: [{ code: 'IDEMPOTENCY_KEY_PARAMETER_MISMATCH', field: null, message: 'The same idempotency key cannot be used with different operation parameters.' }] };
      continue;
    }
    const r = execute(root, [f], { vars, fragments: doc.fragments });
    cost += r.cost;
    data[out] = r.data[out];
    if (typeof key === 'string') shop.idempotency.set(storeKey, { fingerprint, data: r.data[out] });
  }
  return { data, cost };
}
