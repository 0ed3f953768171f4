import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../../runtime/clock.js';
import { DomainCode, DomainError } from '../../runtime/domain/errors.js';
import type { Role } from '../../runtime/domain/principal.js';
import { verifyToken } from '../auth/jwt.js';
import type { Env } from '../env.js';

/** `Authorization: Bearer <JWT>` (HS256); sets `principal` or answers 401 through onError. */
export function authenticate(secret: string, clock: Clock): MiddlewareHandler<Env> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw new DomainError(DomainCode.Unauthenticated, 'missing Authorization: Bearer token');
    const m = /^Bearer\s+([A-Za-z0-9_.-]+)\s*$/i.exec(header);
    if (!m) throw new DomainError(DomainCode.Unauthenticated, 'Authorization must be "Bearer <token>"', { error: 'invalid_token' });
    c.set('principal', verifyToken(m[1]!, secret, clock.now()));
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
