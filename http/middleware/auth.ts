import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../../runtime/clock.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import type { Principal, Role } from '../../services/common/principal.js';
import { verifyToken } from '../auth/jwt.js';
import type { Env } from '../env.js';

const CACHE_MAX = 10_000;

/**
 * `Authorization: Bearer <JWT>` (HS256); sets `principal` or answers 401 through onError.
 * Verified tokens are remembered (bounded) until their `exp`, so a busy client pays the
 * signature check once.
 */
export function authenticate(secret: string, clock: Clock): MiddlewareHandler<Env> {
  const verified = new Map<string, Principal & { exp: number }>();
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw new DomainError(DomainCode.Unauthenticated, 'missing Authorization: Bearer token');
    const m = /^Bearer\s+([A-Za-z0-9_.-]+)\s*$/i.exec(header);
    if (!m) throw new DomainError(DomainCode.Unauthenticated, 'Authorization must be "Bearer <token>"', { error: 'invalid_token' });
    const token = m[1]!;
    const now = clock.now();
    let p = verified.get(token);
    if (!p || p.exp <= now / 1000) {
      verified.delete(token);
      p = verifyToken(token, secret, now);
      if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!);
      verified.set(token, p);
    }
    c.set('principal', { sub: p.sub, role: p.role, tenantId: p.tenantId });
    await next();
  };
}

/** Function-level authorization: only these roles may call the routes below. */
export function requireRole(...roles: Role[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const p = c.get('principal');
    if (!roles.includes(p.role)) throw new DomainError(DomainCode.Forbidden, `this route is for ${roles.join(' and ')} tokens`);
    await next();
  };
}

/**
 * The operator routes: a vendor or partner gets the 404 of a route that does not exist (the
 * operator surface is not theirs to discover), any other non-operator role a 403.
 */
export function operatorsOnly(): MiddlewareHandler<Env> {
  return async (c, next) => {
    const p = c.get('principal');
    if (p.role === 'vendor' || p.role === 'partner') throw new DomainError(DomainCode.RouteNotFound, `no route for ${c.req.method} ${c.req.path}`);
    if (p.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'this route is for operator tokens');
    await next();
  };
}
