/** Who is calling, as the edge authenticated it. */
export const ROLES = ['operator', 'vendor', 'partner', 'service'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** Who: the token's `sub`. */
  sub: string;
  role: Role;
  /** The vendor's or partner's id for those roles; null for operator and service. */
  tenantId: string | null;
}

/** Operators and services act platform-wide; vendors and partners only on what they are party to. */
export const isPlatform = (p: Principal): boolean => p.role === 'operator' || p.role === 'service';

/** A vendor or partner as a party (`ownerType`/`grantedToType` values); null for platform roles. */
export function partyOf(p: Principal): { id: string; type: 'vendor' | 'partner' } | null {
  if ((p.role === 'vendor' || p.role === 'partner') && p.tenantId) return { id: p.tenantId, type: p.role };
  return null;
}
