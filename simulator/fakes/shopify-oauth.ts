/**
 * The Shopify fake's OAuth: the authorize redirect with its hex HMAC, the code exchange, and
 * expiring offline tokens whose refresh tokens rotate on every use (with the grace the
 * `refreshGrace` option picks).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Hono } from 'hono';
import { readParams, type FakeClock } from './common.js';
import { INVALID_TOKEN } from './shopify-graphql.js';

/**
 * How the fake treats the refresh token a refresh replaced: `until-replacement-used` (Shopify
 * since 2026-08-28: usable until the new access or refresh token is first used, 30 days at most),
 * `immediate` (dead at once), or `{ windowMs }` (usable for a while, as the 60-minute window before).
 */
export type RefreshGrace = 'until-replacement-used' | 'immediate' | { windowMs: number };

export interface AccessTokenRecord {
  token: string;
  shop: string;
  scope: string;
  expiresAt: number | null;
  revoked: boolean;
  used: boolean;
  /** The refresh token whose use issued this one. */
  parent: string | undefined;
}

export interface RefreshTokenRecord {
  token: string;
  shop: string;
  scope: string;
  expiresAt: number;
  state: 'live' | 'rotated' | 'dead';
  rotatedAt?: number;
  used: boolean;
  parent: string | undefined;
}

const hex = (n: number) => randomBytes(n).toString('hex');
const THIRTY_DAYS = 30 * 24 * 3600 * 1000;

/** The query a Shopify OAuth callback carries, with its hex HMAC (sorted, URL-encoded pairs). */
export function signOAuthQuery(params: Record<string, string>, secret: string): string {
  const message = new URLSearchParams(Object.keys(params).sort().map((k): [string, string] => [k, params[k]!])).toString();
  return createHmac('sha256', secret).update(message).digest('hex');
}

/** Access and refresh tokens of every shop, and the rules they live by. */
export class ShopifyTokens {
  readonly access = new Map<string, AccessTokenRecord>();
  readonly refresh = new Map<string, RefreshTokenRecord>();
  constructor(
    private readonly clock: FakeClock,
    private readonly o: { accessTtlMs: number; refreshTtlMs: number; grace: RefreshGrace },
  ) {}

  issue(shop: string, scope: string, expiring: boolean, parent?: string) {
    const now = this.clock.now();
    const access: AccessTokenRecord = { token: `shpat_${hex(16)}`, shop, scope, expiresAt: expiring ? now + this.o.accessTtlMs : null, revoked: false, used: false, parent };
    this.access.set(access.token, access);
    if (!expiring) return { access_token: access.token, scope };
    const refresh: RefreshTokenRecord = { token: `shprt_${hex(16)}`, shop, scope, expiresAt: now + this.o.refreshTtlMs, state: 'live', used: false, parent };
    this.refresh.set(refresh.token, refresh);
    return {
      access_token: access.token,
      expires_in: Math.round(this.o.accessTtlMs / 1000),
      refresh_token: refresh.token,
      refresh_token_expires_in: Math.round(this.o.refreshTtlMs / 1000),
      scope,
    };
  }

  /** The access token of an API call to `shop`, or undefined when Shopify would answer 401. */
  authenticate(token: string | undefined, shop: string): AccessTokenRecord | undefined {
    const t = token ? this.access.get(token) : undefined;
    if (!t || t.shop !== shop || t.revoked || (t.expiresAt !== null && t.expiresAt <= this.clock.now())) return undefined;
    this.#firstUse(t);
    return t;
  }

  /** Rotates a refresh token; undefined means invalid_grant. */
  rotate(token: string | undefined, shop: string) {
    const r = token ? this.refresh.get(token) : undefined;
    if (!r || r.shop !== shop || !this.#usable(r)) return undefined;
    this.#firstUse(r);
    if (r.state === 'live') {
      r.state = this.o.grace === 'immediate' ? 'dead' : 'rotated';
      r.rotatedAt = this.clock.now();
    }
    return this.issue(shop, r.scope, true, r.token);
  }

  revoke(shop: string): void {
    for (const t of this.access.values()) if (t.shop === shop) t.revoked = true;
    for (const r of this.refresh.values()) if (r.shop === shop) r.state = 'dead';
  }

  expire(shop?: string): void {
    for (const t of this.access.values()) if ((!shop || t.shop === shop) && t.expiresAt !== null) t.expiresAt = this.clock.now() - 1;
  }

  /** The first use of a replacement ends the grace of the token it replaced. */
  #firstUse(rec: { used: boolean; parent: string | undefined }): void {
    if (rec.used) return;
    rec.used = true;
    const parent = rec.parent ? this.refresh.get(rec.parent) : undefined;
    if (parent && parent.state === 'rotated' && this.o.grace === 'until-replacement-used') parent.state = 'dead';
  }

  #usable(r: RefreshTokenRecord): boolean {
    const now = this.clock.now();
    if (r.state === 'dead' || r.expiresAt <= now) return false;
    if (r.state === 'live') return true;
    const grace = this.o.grace;
    if (grace === 'immediate') return false;
    if (grace === 'until-replacement-used') return now - r.rotatedAt! < THIRTY_DAYS;
    return now - r.rotatedAt! < grace.windowMs;
  }
}

/**
 * `GET /{shop}/admin/oauth/authorize`, `POST /{shop}/admin/oauth/access_token`, and
 * `DELETE /{shop}/admin/api_permissions/current.json` (the app gives up its access: every token
 * of the shop and its refresh tokens stop working; 200 `{}`).
 */
export function oauthRoutes(app: Hono, o: { apiKey: string; apiSecret: string; clock: FakeClock; tokens: ShopifyTokens; onInstall: (shop: string) => void }): void {
  const { clock, tokens } = o;
  const codes = new Map<string, { shop: string; scope: string; online: boolean; expiresAt: number; used: boolean }>();

  app.get('/:shop/admin/oauth/authorize', (c) => {
    const shop = c.req.param('shop');
    const q = new URL(c.req.url).searchParams;
    if (q.get('client_id') !== o.apiKey) return c.text('Oauth error invalid_request: The client_id provided is invalid', 400);
    const redirect = q.get('redirect_uri');
    if (!redirect) return c.text('Oauth error invalid_request: The redirect_uri is missing', 400);
    o.onInstall(shop);
    const code = hex(16);
    codes.set(code, { shop, scope: q.get('scope') ?? '', online: q.getAll('grant_options[]').includes('per-user'), expiresAt: clock.now() + 10 * 60_000, used: false });
    const params: Record<string, string> = {
      code,
      host: Buffer.from(`admin.shopify.com/store/${shop.split('.')[0]}`).toString('base64url'),
      shop,
      state: q.get('state') ?? '',
      timestamp: String(Math.floor(clock.now() / 1000)),
    };
    const target = new URL(redirect);
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
    target.searchParams.set('hmac', signOAuthQuery(params, o.apiSecret));
    return c.redirect(target.toString(), 302);
  });

  app.delete('/:shop/admin/api_permissions/current.json', (c) => {
    const shop = c.req.param('shop');
    if (!tokens.authenticate(c.req.header('x-shopify-access-token'), shop)) return c.json(INVALID_TOKEN, 401);
    tokens.revoke(shop);
    return c.json({}, 200);
  });

  app.post('/:shop/admin/oauth/access_token', async (c) => {
    const shop = c.req.param('shop');
    const p = await readParams(c.req.raw);
    if (p.client_id !== o.apiKey || p.client_secret !== o.apiSecret) {
      return c.json({ error: 'invalid_client', error_description: 'Client authentication failed.' }, 400);
    }
    if (p.grant_type === 'refresh_token') {
      const issued = tokens.rotate(p.refresh_token, shop);
      if (!issued) return c.json({ error: 'invalid_grant', error_description: 'The refresh token is invalid, expired, revoked or was already used.' }, 400);
      return c.json(issued);
    }
    const code = codes.get(p.code ?? '');
    if (!code || code.used || code.shop !== shop || code.expiresAt <= clock.now()) {
      return c.json({ error: 'invalid_request', error_description: 'The authorization code was not found or was already used' }, 400);
    }
    code.used = true;
    if (code.online) {
      const t = tokens.issue(shop, code.scope, false);
      tokens.access.get(t.access_token)!.expiresAt = clock.now() + 86_399_000;
      return c.json({
        ...t,
        expires_in: 86399,
        associated_user_scope: code.scope,
        associated_user: { id: 902541635, first_name: 'Fake', last_name: 'Merchant', email: 'merchant@example.com', email_verified: true, account_owner: true, locale: 'en', collaborator: false },
      });
    }
    return c.json(tokens.issue(shop, code.scope, p.expiring === '1' || p.expiring === 'true'));
  });
}
