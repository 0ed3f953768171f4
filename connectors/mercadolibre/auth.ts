/**
 * MercadoLibre OAuth 2.0: the per-country authorization URL with PKCE (S256), the form-encoded
 * code exchange and the refresh, whose refresh token is single use: each refresh kills the old
 * one, so the new one must be stored before anything uses the new access token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import { classifyMercadoLibre, classifyMercadoLibreAnswer } from './errors.js';

/** The app's keys and endpoints (the caller reads them from its configuration). */
export interface MercadoLibreAppSettings {
  clientId: string;
  clientSecret: string;
  /** `https://api.mercadolibre.com` (the token endpoint and the API). */
  apiBaseUrl?: string;
  /** Overrides the country's authorization domain (a fake, a proxy). */
  authBaseUrl?: string;
}

/** The authorization domain of each site (country); MLA when the site is unknown. */
export const AUTH_DOMAINS: Readonly<Record<string, string>> = Object.freeze({
  MLA: 'https://auth.mercadolibre.com.ar',
  MLB: 'https://auth.mercadolivre.com.br',
  MLM: 'https://auth.mercadolibre.com.mx',
  MLC: 'https://auth.mercadolibre.cl',
  MCO: 'https://auth.mercadolibre.com.co',
  MLU: 'https://auth.mercadolibre.com.uy',
  MPE: 'https://auth.mercadolibre.com.pe',
  MLV: 'https://auth.mercadolibre.com.ve',
  MEC: 'https://auth.mercadolibre.com.ec',
});

export const DEFAULT_API_BASE_URL = 'https://api.mercadolibre.com';

/** A PKCE verifier: 43 to 128 characters of [A-Za-z0-9-._~] (here 64, base64url of 48 random bytes). */
export function pkceVerifier(): string {
  return randomBytes(48).toString('base64url');
}

/** The S256 challenge of a verifier. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export function authorizationUrl(app: MercadoLibreAppSettings, o: { redirectUri: string; state: string; codeChallenge: string; siteId?: string }): string {
  const base = app.authBaseUrl ?? AUTH_DOMAINS[o.siteId ?? 'MLA'] ?? AUTH_DOMAINS.MLA!;
  const url = new URL(`${base.replace(/\/+$/, '')}/authorization`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', app.clientId);
  url.searchParams.set('redirect_uri', o.redirectUri);
  url.searchParams.set('state', o.state);
  url.searchParams.set('code_challenge', o.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/** A seller's grant. */
export interface MercadoLibreGrant {
  accessToken: string;
  /** ISO time (6 hours after issue). */
  expiresAt: string;
  refreshToken: string;
  userId: number;
  scopes: string[];
}

interface TokenAnswer {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  user_id: number;
  scope?: string;
}

async function tokenRequest(app: MercadoLibreAppSettings, params: Record<string, string>, signal: AbortSignal, now: () => number): Promise<MercadoLibreGrant> {
  let res: Response;
  try {
    // parameters in the body, form-encoded: ML refuses them in the query
    res = await fetch(`${(app.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, '')}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ client_id: app.clientId, client_secret: app.clientSecret, ...params }).toString(),
      signal,
    });
  } catch (err) {
    throw classifyMercadoLibre(err);
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) throw classifyMercadoLibreAnswer(res.status, res.headers, body, now());
  const t = body as TokenAnswer | undefined;
  if (!t || typeof t.access_token !== 'string' || typeof t.refresh_token !== 'string') throw new ConnectorError(ConnectorCode.Unknown, 'mercadolibre: token answer without tokens', { status: res.status });
  return {
    accessToken: t.access_token,
    expiresAt: new Date(now() + t.expires_in * 1000).toISOString(),
    refreshToken: t.refresh_token,
    userId: t.user_id,
    scopes: (t.scope ?? '').split(' ').filter(Boolean),
  };
}

/** Exchanges the callback's code (with the PKCE verifier and the same redirect URI). */
export function exchangeCode(app: MercadoLibreAppSettings, o: { code: string; redirectUri: string; codeVerifier: string; signal: AbortSignal; now?: () => number }): Promise<MercadoLibreGrant> {
  return tokenRequest(app, { grant_type: 'authorization_code', code: o.code, redirect_uri: o.redirectUri, code_verifier: o.codeVerifier }, o.signal, o.now ?? Date.now);
}

/** Proof that the rotated grant was stored: only `persist` can make one, so only a persisted grant is usable. */
declare const persisted: unique symbol;
export type PersistedGrant = MercadoLibreGrant & { readonly [persisted]: true };

/**
 * Refreshes a grant. The refresh token is single use: the old one is dead once ML answers, so
 * the new grant is handed to `persist` and this resolves only after `persist` did, with the
 * grant typed `PersistedGrant`. Should `persist` fail, the connection needs reauthorization
 * (the new refresh token is lost), and the error says so. A used or revoked refresh token is
 * REAUTHORIZATION_REQUIRED.
 */
export async function refreshGrant(
  app: MercadoLibreAppSettings,
  o: { refreshToken: string; persist: (next: MercadoLibreGrant) => Promise<void>; signal: AbortSignal; now?: () => number },
): Promise<PersistedGrant> {
  const next = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: o.refreshToken }, o.signal, o.now ?? Date.now);
  try {
    await o.persist(next);
  } catch (err) {
    throw new ConnectorError(ConnectorCode.ReauthorizationRequired, 'mercadolibre: the rotated refresh token could not be stored; the old one is already spent', { cause: err });
  }
  return next as PersistedGrant;
}
