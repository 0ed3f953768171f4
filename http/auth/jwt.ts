import { createHmac, timingSafeEqual } from 'node:crypto';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import { ROLES, type Principal, type Role } from '../../services/common/principal.js';

/** The claims Concord reads from a bearer token. */
export interface TokenClaims {
  sub: string;
  role: Role;
  /** The vendor's or partner's id (required for those roles). */
  tenantId?: string;
  exp: number;
  iat?: number;
  nbf?: number;
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** Signs HS256 claims (`npm run token` and tests). */
export function signToken(claims: TokenClaims, secret: string): string {
  const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const invalid = (why: string) => new DomainError(DomainCode.Unauthenticated, why, { error: 'invalid_token' });

/**
 * Verifies an HS256 token and turns its claims into a principal. Anything else (another
 * algorithm, `none`, a bad signature, a missing or past `exp`, an unknown role, a vendor or
 * partner without `tenantId`) is UNAUTHENTICATED.
 */
export function verifyToken(token: string, secret: string, nowMs: number): Principal & { exp: number } {
  const parts = token.split('.');
  if (parts.length !== 3) throw invalid('malformed token');
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: unknown };
  let claims: Partial<Record<keyof TokenClaims, unknown>>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    throw invalid('malformed token');
  }
  if (!header || header.alg !== 'HS256') throw invalid('unsupported token algorithm');
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid('bad token signature');
  if (!claims || typeof claims !== 'object') throw invalid('malformed token');
  const now = nowMs / 1000;
  if (typeof claims.exp !== 'number') throw invalid('token has no exp');
  if (claims.exp <= now) throw invalid('token expired');
  if (typeof claims.nbf === 'number' && claims.nbf > now) throw invalid('token not yet valid');
  if (typeof claims.sub !== 'string' || claims.sub === '') throw invalid('token has no sub');
  if (typeof claims.role !== 'string' || !(ROLES as readonly string[]).includes(claims.role)) throw invalid('token role must be one of operator, vendor, partner, service');
  const role = claims.role as Role;
  const tenantId = typeof claims.tenantId === 'string' && claims.tenantId !== '' ? claims.tenantId : null;
  if ((role === 'vendor' || role === 'partner') && !tenantId) throw invalid(`a ${role} token needs tenantId`);
  return { sub: claims.sub, role, tenantId: role === 'vendor' || role === 'partner' ? tenantId : null, exp: claims.exp };
}
