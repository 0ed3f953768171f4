import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed content is
 * `${webhookId}.${timestamp}.${body}`, HMAC-SHA256 with the secret's bytes (the base64 after
 * `whsec_`), sent as `webhook-signature: v1,<base64>`. Pure functions, tested with fixtures.
 */

export const SECRET_PREFIX = 'whsec_';

/** A new endpoint secret: `whsec_` + 24 random bytes in base64. */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(24).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

export function sign(secret: string, webhookId: string, timestampSec: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${webhookId}.${timestampSec}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a signed delivery. */
export function webhookHeaders(secret: string, webhookId: string, timestampSec: number, body: string): Record<string, string> {
  return { 'webhook-id': webhookId, 'webhook-timestamp': String(timestampSec), 'webhook-signature': sign(secret, webhookId, timestampSec, body) };
}

/**
 * Receiver side: true when one of the space-separated `v1,` signatures matches and the
 * timestamp is within `toleranceSec` of `nowSec` (replay protection).
 */
export function verify(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string, nowSec: number, toleranceSec = 300): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSec - ts) > toleranceSec) return false;
  const expected = Buffer.from(sign(secret, headers.id, ts, body).slice(3), 'base64');
  return headers.signature.split(' ').some((part) => {
    const [version, sig] = part.split(',', 2);
    if (version !== 'v1' || !sig) return false;
    const got = Buffer.from(sig, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
