/**
 * The four authentication patterns of seed 003, for any REST API: API key (header or query
 * parameter, name configurable), OAuth 2.0 client credentials (token cached until shortly
 * before expiry), OAuth 2.0 authorization code with refresh, and certificate (mutual TLS).
 */
import { createHash } from 'node:crypto';
import { ConnectorCode, ConnectorError } from '../kit/errors.js';
import type { CredentialsByPattern } from '../kit/contract.js';
import { classifyGenericAnswer } from './errors.js';
import { send, type Transport } from './transport.js';

export type GenericAuth =
  | { pattern: 'api_key'; in: 'header' | 'query'; name: string }
  | { pattern: 'client_credentials'; tokenUrl: string; /** How the client authenticates at the token URL (default `basic`). */ clientAuth?: 'basic' | 'body' }
  | { pattern: 'oauth2'; authorizeUrl: string; tokenUrl: string; clientId: string; clientSecret: string; clientAuth?: 'basic' | 'body' }
  | { pattern: 'certificate' };

export type GenericCredentials<A extends GenericAuth> = CredentialsByPattern[A['pattern']];

/** What a request needs added for the pattern: headers, query parameters, TLS client material. */
export interface Authenticated {
  headers: Record<string, string>;
  query: Record<string, string>;
  tls?: { cert: string; key: string; passphrase?: string; ca?: string };
}

export interface TokenGrant {
  accessToken: string;
  expiresAt?: string;
  refreshToken?: string;
  scopes: string[];
}

interface TokenAnswer {
  access_token?: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
}

/** A token endpoint call (RFC 6749 §4.1.3, §4.4, §6): form-encoded parameters in the body. */
export async function tokenRequest(
  t: Transport,
  o: { tokenUrl: string; clientId: string; clientSecret: string; clientAuth?: 'basic' | 'body'; params: Record<string, string>; signal: AbortSignal; now?: () => number },
): Promise<TokenGrant> {
  const params = new URLSearchParams(o.params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if ((o.clientAuth ?? 'basic') === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`).toString('base64')}`;
  } else {
    params.set('client_id', o.clientId);
    params.set('client_secret', o.clientSecret);
  }
  const res = await send(t, { method: 'POST', url: o.tokenUrl, headers, body: params.toString(), signal: o.signal });
  const body = res.json();
  if (res.status < 200 || res.status >= 300) throw classifyGenericAnswer(res.status, res.headers, body, { context: 'generic token' });
  const a = (body ?? {}) as TokenAnswer;
  if (typeof a.access_token !== 'string') throw new ConnectorError(ConnectorCode.Unknown, 'generic token: answer without access_token', { status: res.status });
  const now = (o.now ?? Date.now)();
  return {
    accessToken: a.access_token,
    ...(typeof a.expires_in === 'number' ? { expiresAt: new Date(now + a.expires_in * 1000).toISOString() } : {}),
    ...(typeof a.refresh_token === 'string' ? { refreshToken: a.refresh_token } : {}),
    scopes: (a.scope ?? '').split(/[ ,]/).filter(Boolean),
  };
}

/** The authorization code pattern's browser step (with an optional PKCE S256 challenge). */
export function authorizationUrl(auth: Extract<GenericAuth, { pattern: 'oauth2' }>, o: { redirectUri: string; state: string; scopes?: string[]; codeChallenge?: string }): string {
  const url = new URL(auth.authorizeUrl);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', auth.clientId);
  url.searchParams.set('redirect_uri', o.redirectUri);
  url.searchParams.set('state', o.state);
  if (o.scopes?.length) url.searchParams.set('scope', o.scopes.join(' '));
  if (o.codeChallenge) {
    url.searchParams.set('code_challenge', o.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
  }
  return url.toString();
}

export function exchangeCode(t: Transport, auth: Extract<GenericAuth, { pattern: 'oauth2' }>, o: { code: string; redirectUri: string; codeVerifier?: string; signal: AbortSignal }): Promise<TokenGrant> {
  return tokenRequest(t, {
    ...auth,
    params: { grant_type: 'authorization_code', code: o.code, redirect_uri: o.redirectUri, ...(o.codeVerifier ? { code_verifier: o.codeVerifier } : {}) },
    signal: o.signal,
  });
}

/** Refreshes an authorization-code grant. Store the answer before using it: the provider may rotate (and kill) the old refresh token. */
export function refreshGrant(t: Transport, auth: Extract<GenericAuth, { pattern: 'oauth2' }>, o: { refreshToken: string; signal: AbortSignal }): Promise<TokenGrant> {
  return tokenRequest(t, { ...auth, params: { grant_type: 'refresh_token', refresh_token: o.refreshToken }, signal: o.signal });
}

/** Client-credentials tokens, cached per client and scopes until 30 s before they expire. */
export class ClientCredentialsCache {
  readonly #tokens = new Map<string, { grant: TokenGrant; until: number }>();
  readonly #inflight = new Map<string, Promise<TokenGrant>>();
  constructor(private readonly now: () => number = Date.now) {}

  async token(t: Transport, auth: Extract<GenericAuth, { pattern: 'client_credentials' }>, creds: CredentialsByPattern['client_credentials'], signal: AbortSignal): Promise<string> {
    // the secret is part of the key: a rotated or wrong secret must not be served a token minted with another
    const key = `${creds.clientId}\u0000${createHash('sha256').update(creds.clientSecret).digest('base64url')}\u0000${(creds.scopes ?? []).join(' ')}`;
    const hit = this.#tokens.get(key);
    if (hit && hit.until > this.now()) return hit.grant.accessToken;
    let p = this.#inflight.get(key);
    if (!p) {
      // concurrent calls share one token request
      p = tokenRequest(t, {
        tokenUrl: auth.tokenUrl,
        clientId: creds.clientId,
        clientSecret: creds.clientSecret,
        clientAuth: auth.clientAuth,
        params: { grant_type: 'client_credentials', ...(creds.scopes?.length ? { scope: creds.scopes.join(' ') } : {}) },
        signal,
        now: this.now,
      }).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    const grant = await p;
    const until = grant.expiresAt ? Date.parse(grant.expiresAt) - 30_000 : this.now() + 300_000;
    this.#tokens.set(key, { grant, until });
    return grant.accessToken;
  }

  /** Forgets a client's tokens (after a 401: the provider revoked or expired it early). */
  forget(clientId: string): void {
    for (const k of this.#tokens.keys()) if (k.startsWith(`${clientId}\u0000`)) this.#tokens.delete(k);
  }
}
