/**
 * Shopify OAuth (authorization code grant, offline access with expiring tokens): building the
 * authorize URL and checking the callback are pure functions; the code exchange and the refresh
 * are calls that take the app's keys as arguments.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import { classifyShopify, classifyShopifyAnswer } from './errors.js';

/** The app's keys and where shops live (the caller reads them from its configuration). */
export interface ShopifyAppSettings {
  apiKey: string;
  apiSecret: string;
  /** `https://{shop}` in production; a local fake is `http://127.0.0.1:4010/{shop}`. */
  shopUrlTemplate?: string;
}

/** An expiring offline grant: the access token lives an hour, the refresh token rotates on every use. */
export interface ShopifyGrant {
  accessToken: string;
  /** ISO time the access token expires (absent for a legacy non-expiring token). */
  expiresAt?: string;
  refreshToken?: string;
  refreshTokenExpiresAt?: string;
  scopes: string[];
}

const SHOP = /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/;

/** A `*.myshopify.com` host, nothing else (no scheme, path, port or other domain). */
export const isShopDomain = (shop: string): boolean => SHOP.test(shop);

/** The base URL of a shop: the template with `{shop}` replaced. */
export function shopUrl(shop: string, template = 'https://{shop}'): string {
  if (!isShopDomain(shop)) throw new ConnectorError(ConnectorCode.Validation, `shopify: '${shop}' is not a *.myshopify.com shop`);
  return template.replace('{shop}', shop).replace(/\/+$/, '');
}

/**
 * The URL the merchant's browser is sent to. Offline access (no `grant_options[]=per-user`):
 * the token belongs to the shop, not to the merchant who installed.
 */
export function authorizeUrl(app: ShopifyAppSettings, o: { shop: string; scopes: string[]; redirectUri: string; state: string }): string {
  const url = new URL(`${shopUrl(o.shop, app.shopUrlTemplate)}/admin/oauth/authorize`);
  url.searchParams.set('client_id', app.apiKey);
  url.searchParams.set('scope', o.scopes.join(','));
  url.searchParams.set('redirect_uri', o.redirectUri);
  url.searchParams.set('state', o.state);
  return url.toString();
}

export type CallbackCheck = { ok: true; shop: string; code: string; state: string } | { ok: false; reason: string };

/** Shopify's callback may be this far off our clock (the Node library allows 90 s). */
export const CALLBACK_MAX_SKEW_MS = 90_000;

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks the callback query: the hex HMAC-SHA256 (API secret) over the remaining parameters
 * sorted and URL-encoded, in constant time; a timestamp within `CALLBACK_MAX_SKEW_MS` of `now`;
 * a `*.myshopify.com` shop; a code and a state. Checking the state itself (signed, single-use,
 * bound to tenant and shop) is the caller's.
 */
export function verifyCallback(query: Readonly<Record<string, string | undefined>> | URLSearchParams, apiSecret: string, now: number): CallbackCheck {
  const params: Record<string, string> = {};
  const entries = query instanceof URLSearchParams ? [...query.entries()] : Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined);
  for (const [k, v] of entries) params[k] = v;
  const hmac = params.hmac;
  if (!hmac || !/^[0-9a-f]{64}$/i.test(hmac)) return { ok: false, reason: 'missing or malformed hmac' };
  const rest = Object.keys(params)
    .filter((k) => k !== 'hmac' && k !== 'signature')
    .sort();
  const message = new URLSearchParams(rest.map((k): [string, string] => [k, params[k]!])).toString();
  const expected = createHmac('sha256', apiSecret).update(message).digest('hex');
  if (!sameHex(expected, hmac.toLowerCase())) return { ok: false, reason: 'hmac does not match' };
  const ts = Number(params.timestamp);
  if (!Number.isFinite(ts) || Math.abs(now - ts * 1000) > CALLBACK_MAX_SKEW_MS) return { ok: false, reason: 'timestamp missing or not plausible' };
  if (!params.shop || !isShopDomain(params.shop)) return { ok: false, reason: 'shop is not a *.myshopify.com host' };
  if (!params.code) return { ok: false, reason: 'code missing' };
  if (!params.state) return { ok: false, reason: 'state missing' };
  return { ok: true, shop: params.shop, code: params.code, state: params.state };
}

interface TokenAnswer {
  access_token: string;
  scope?: string;
  expires_in?: number;
  refresh_token?: string;
  refresh_token_expires_in?: number;
}

function grantOf(t: TokenAnswer, now: number): ShopifyGrant {
  return {
    accessToken: t.access_token,
    ...(t.expires_in !== undefined ? { expiresAt: new Date(now + t.expires_in * 1000).toISOString() } : {}),
    ...(t.refresh_token !== undefined ? { refreshToken: t.refresh_token } : {}),
    ...(t.refresh_token_expires_in !== undefined ? { refreshTokenExpiresAt: new Date(now + t.refresh_token_expires_in * 1000).toISOString() } : {}),
    scopes: (t.scope ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

async function tokenRequest(app: ShopifyAppSettings, shop: string, body: Record<string, unknown>, signal: AbortSignal, now: () => number): Promise<ShopifyGrant> {
  let res: Response;
  try {
    res = await fetch(`${shopUrl(shop, app.shopUrlTemplate)}/admin/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ client_id: app.apiKey, client_secret: app.apiSecret, ...body }),
      signal,
    });
  } catch (err) {
    throw classifyShopify(err);
  }
  const text = await res.text().catch(() => '');
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) throw classifyShopifyAnswer(res.status, res.headers, parsed, now());
  const t = parsed as TokenAnswer | undefined;
  if (!t || typeof t.access_token !== 'string') throw new ConnectorError(ConnectorCode.Unknown, 'shopify: token answer without access_token', { status: res.status });
  return grantOf(t, now());
}

/** Exchanges the callback's code for an expiring offline token (`expiring: 1`). A bad or used code is VALIDATION. */
export function exchangeCode(app: ShopifyAppSettings, o: { shop: string; code: string; signal: AbortSignal; now?: () => number }): Promise<ShopifyGrant> {
  return tokenRequest(app, o.shop, { code: o.code, expiring: 1 }, o.signal, o.now ?? Date.now);
}

/**
 * Rotates the refresh token. Persist the whole answer before using it: the replacement ends
 * the old refresh token's grace as soon as it is first used. A revoked grant or a dead refresh
 * token is REAUTHORIZATION_REQUIRED.
 */
export function refreshGrant(app: ShopifyAppSettings, o: { shop: string; refreshToken: string; signal: AbortSignal; now?: () => number }): Promise<ShopifyGrant> {
  return tokenRequest(app, o.shop, { grant_type: 'refresh_token', refresh_token: o.refreshToken }, o.signal, o.now ?? Date.now);
}
