import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CredentialKey } from '../../runtime/config.js';

/** How long an authorization may take, from `authorize` to the provider's callback. */
export const STATE_TTL_MS = 10 * 60_000;

/** What a signed state carries: who is connecting what, and until when. */
export interface OAuthState {
  /** Random, single use: recorded in `integration_oauth_states` and marked used by the callback. */
  nonce: string;
  tenantId: string;
  provider: 'shopify' | 'mercadolibre' | 'generic';
  /** Shopify: the shop the merchant was sent to; the callback's `shop` must be this one. */
  shop?: string;
  /** generic: the connection's account name (its pending client settings are in the vault under it). */
  account?: string;
  /** Epoch ms. */
  expiresAt: number;
}

/**
 * Signs and checks OAuth `state` values, and derives each authorization's PKCE verifier.
 *
 * The key is derived (HMAC-SHA256 with a fixed label) from the credential vault's first key
 * (`CREDENTIALS_KEYS`), so states need no secret of their own and a state signed by one process
 * is checked by any other. A state is `<base64url(JSON)>.<base64url(HMAC)>`: not secret (the
 * browser carries it) but unforgeable. The PKCE verifier is HMAC(key, nonce): it never leaves the
 * server and is never stored, yet the callback can recompute it. Rotating the vault's first key
 * invalidates the states in flight (at most ten minutes of them); the merchant starts again.
 */
export class StateSigner {
  readonly #key: Buffer;

  constructor(vaultKey: CredentialKey) {
    this.#key = createHmac('sha256', vaultKey.key).update('concord/integrations/oauth-state/v1').digest();
  }

  static nonce(): string {
    return randomBytes(18).toString('base64url');
  }

  sign(state: OAuthState): string {
    const body = Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
    return `${body}.${this.#mac(body)}`;
  }

  /** The state, or why it is refused (without saying more than that to the caller). */
  verify(value: string, now: number): { ok: true; state: OAuthState } | { ok: false; reason: string } {
    const [body, mac, extra] = value.split('.');
    if (!body || !mac || extra !== undefined) return { ok: false, reason: 'state is malformed' };
    const expected = Buffer.from(this.#mac(body), 'utf8');
    const given = Buffer.from(mac, 'utf8');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'state signature does not match' };
    let state: OAuthState;
    try {
      state = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as OAuthState;
    } catch {
      return { ok: false, reason: 'state is malformed' };
    }
    if (typeof state.expiresAt !== 'number' || state.expiresAt <= now) return { ok: false, reason: 'state expired' };
    return { ok: true, state };
  }

  /** The PKCE verifier of an authorization: 43 characters of base64url, recomputed at the callback. */
  pkceVerifier(nonce: string): string {
    return createHmac('sha256', this.#key).update(`pkce:${nonce}`).digest('base64url');
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url');
  }
}
