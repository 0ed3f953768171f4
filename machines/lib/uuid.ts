/**
 * UUID-shaped ids derived from data. Machines may not draw random ids, and services derive ids
 * from idempotency keys, so every such id goes through `uuidFromHex` (version 8, RFC 9562's
 * "custom" version; the variant bits set as RFC 4122 wants).
 */

/** 32+ hex digits (a hash) as a version-8 UUID: `xxxxxxxx-xxxx-8xxx-[89ab]xxx-xxxxxxxxxxxx`. */
export function uuidFromHex(hex: string): string {
  if (!/^[0-9a-f]{32}/i.test(hex)) throw new Error('uuidFromHex needs at least 32 hex digits');
  const variant = ((parseInt(hex[16]!, 16) & 3) | 8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A deterministic UUID from a seed, for ids a machine mints (e.g. an event id). A pure, fast,
 * non-cryptographic hash (FNV-1a per 32-bit word with a murmur finalizer); where an id must
 * resist guessing, hash with SHA-256 in a service and pass the digest to `uuidFromHex`.
 */
export function uuidFrom(seed: string): string {
  const words: string[] = [];
  for (let k = 0; k < 4; k++) {
    let h = 0x811c9dc5 ^ Math.imul(k + 1, 0x9e3779b1);
    for (let i = 0; i < seed.length; i++) {
      h ^= seed.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    words.push((h >>> 0).toString(16).padStart(8, '0'));
  }
  return uuidFromHex(words.join(''));
}
