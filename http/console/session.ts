import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Clock } from '../../runtime/clock.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import type { Principal } from '../../services/common/principal.js';
import { verifyToken } from '../auth/jwt.js';
import type { Env } from '../env.js';

/** The operator's token, HttpOnly: page scripts never see it. */
export const SESSION_COOKIE = 'concord_console';
/** The sign-in form's double-submit nonce (before there is a session to bind a token to). */
export const LOGIN_COOKIE = 'concord_console_login';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export interface ConsoleEnv extends Env {
  Variables: Env['Variables'] & { csrf: string };
}

const secure = (c: Context) => new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';

/** HttpOnly, SameSite=Strict, scoped to /console; Secure when served over TLS. */
export function setSession(c: Context, token: string, expSeconds: number, nowMs: number): void {
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/console', secure: secure(c), maxAge: Math.max(0, Math.floor(expSeconds - nowMs / 1000)) });
}

export function clearSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/console', secure: secure(c) });
}

/** A fresh nonce for the sign-in form, set as a cookie and answered for the hidden field. */
export function loginNonce(c: Context): string {
  const nonce = randomBytes(24).toString('base64url');
  setCookie(c, LOGIN_COOKIE, nonce, { httpOnly: true, sameSite: 'Strict', path: '/console/login', secure: secure(c), maxAge: 3600 });
  return nonce;
}

export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The sign-in form's field against its cookie (double submit). */
export function checkLoginNonce(c: Context, field: string | undefined): void {
  if (!sameSecret(getCookie(c, LOGIN_COOKIE), field)) throw new DomainError(DomainCode.Forbidden, 'the sign-in form expired: load it again');
}

/** The session's CSRF token: bound to the session's token by an HMAC, so it needs no storage and dies with the session. */
export function csrfOf(secret: string, token: string): string {
  return createHmac('sha256', secret).update(`concord-console-csrf\0${token}`).digest('base64url');
}

/**
 * Cross-site requests are refused outright: a browser says where a request comes from
 * (`Sec-Fetch-Site`, `Origin`), and only this origin may change anything.
 */
export function sameOrigin(): MiddlewareHandler<ConsoleEnv> {
  return async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const site = c.req.header('sec-fetch-site');
      if (site && site !== 'same-origin' && site !== 'none') throw new DomainError(DomainCode.Forbidden, 'cross-site requests are refused');
      const origin = c.req.header('origin');
      if (origin && origin !== new URL(c.req.url).origin) throw new DomainError(DomainCode.Forbidden, 'cross-origin requests are refused');
    }
    await next();
  };
}

/**
 * The console's session: the operator token from the cookie, verified as the API verifies a
 * bearer token (signature, expiry, role). No session sends a page to the sign-in form (an htmx
 * request gets 401 and `HX-Redirect`); a token of another role signs out. Every request that
 * changes anything must carry the session's CSRF token (form field or header).
 */
export function consoleSession(secret: string, clock: Clock): MiddlewareHandler<ConsoleEnv> {
  return async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    let principal: Principal | null = null;
    if (token) {
      try {
        const p = verifyToken(token, secret, clock.now());
        if (p.role === 'operator') principal = { sub: p.sub, role: p.role, tenantId: p.tenantId };
      } catch {
        principal = null;
      }
    }
    if (!principal || !token) {
      if (token) clearSession(c);
      const url = new URL(c.req.url);
      const login = `/console/login?next=${encodeURIComponent(url.pathname + url.search)}`;
      if (c.req.header('hx-request')) return c.body(null, 401, { 'hx-redirect': login });
      if (c.req.method !== 'GET') throw new DomainError(DomainCode.Unauthenticated, 'sign in again: the console session ended');
      return c.redirect(login, 303);
    }
    const csrf = csrfOf(secret, token);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      let given = c.req.header(CSRF_HEADER);
      if (!given) {
        const type = c.req.header('content-type') ?? '';
        if (/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) {
          const form = await c.req.parseBody();
          given = typeof form[CSRF_FIELD] === 'string' ? form[CSRF_FIELD] : undefined;
        }
      }
      if (!sameSecret(given, csrf)) throw new DomainError(DomainCode.Forbidden, 'missing or wrong CSRF token: reload the page');
    }
    c.set('principal', principal);
    c.set('csrf', csrf);
    await next();
  };
}
