import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CREDENTIAL_KEY_ID, type CredentialKey } from '../../runtime/config.js';
import { VaultCode, VaultError } from './errors.js';

/** The row a credential belongs to: one per (tenant, service, connection). */
export interface CredentialRef {
  readonly tenantId: string;
  readonly service: string;
  readonly connectionId: string;
}

/** The vault's keys: the first encrypts, all decrypt. */
export class KeyRing {
  readonly primary: CredentialKey | undefined;
  readonly #byId: ReadonlyMap<string, CredentialKey>;

  constructor(keys: readonly CredentialKey[]) {
    this.primary = keys[0];
    this.#byId = new Map(keys.map((k) => [k.id, k]));
  }

  get ids(): string[] {
    return [...this.#byId.keys()];
  }

  get(id: string): CredentialKey | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export const describeRef = (ref: CredentialRef) => `${ref.tenantId}/${ref.service}/${ref.connectionId}`;

/**
 * The associated data: the envelope version, the key id and the row's key, unambiguously
 * encoded. A ciphertext moved to another row (or relabelled with another key id) fails to open.
 */
function associatedData(ref: CredentialRef, keyId: string): Buffer {
  return Buffer.from(JSON.stringify(['concord.credentials', VERSION, keyId, ref.tenantId, ref.service, ref.connectionId]), 'utf8');
}

/**
 * Encrypts `plaintext` for `ref` with AES-256-GCM under `key`, with a fresh random 96-bit IV.
 * Returns the compact envelope `v1:<keyId>:<iv>:<tag>:<ciphertext>` (base64url parts).
 */
export function seal(key: CredentialKey, ref: CredentialRef, plaintext: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(ref, key.id));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [VERSION, key.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join(':');
}

/** base64url that decodes and re-encodes to itself: a changed padding bit is a change too. */
function strictBase64url(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : undefined;
}

function tampered(ref: CredentialRef, keyId: string | undefined, why: string): VaultError {
  return new VaultError(
    VaultCode.Tampered,
    `the stored credentials of ${describeRef(ref)} do not decrypt (${why}): the row was altered or copied from another row, or was written under another key of id '${keyId ?? '?'}'; store the credentials again (reconnect)`,
    { ...ref, keyId },
  );
}

/**
 * Decrypts an envelope written by `seal` for `ref`. `rowKeyId` is the row's `key_id` column,
 * which must agree with the envelope. Throws `CREDENTIAL_TAMPERED` for anything altered or
 * malformed and `CREDENTIALS_KEY_UNKNOWN` when the key id is not in the ring; never a crash.
 */
export function open(ring: KeyRing, ref: CredentialRef, envelope: string, rowKeyId: string): Buffer {
  const parts = envelope.split(':');
  const [version, keyId, ivText, tagText, ctText] = parts;
  if (parts.length !== 5 || version !== VERSION || !CREDENTIAL_KEY_ID.test(keyId!)) throw tampered(ref, rowKeyId, 'malformed envelope');
  if (keyId !== rowKeyId) throw tampered(ref, rowKeyId, 'key id differs from the row');
  const iv = strictBase64url(ivText!);
  const tag = strictBase64url(tagText!);
  const ct = strictBase64url(ctText!);
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || !ct) throw tampered(ref, keyId, 'malformed envelope');
  const key = ring.get(keyId);
  if (!key) {
    throw new VaultError(
      VaultCode.KeyUnknown,
      `the stored credentials of ${describeRef(ref)} are encrypted under key '${keyId}', which is not in CREDENTIALS_KEYS: add that key to the ring (the first key encrypts, all decrypt)`,
      { ...ref, keyId },
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData(ref, keyId));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw tampered(ref, keyId, 'authentication failed');
  }
}
