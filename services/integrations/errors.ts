import { ConcordError } from '../../runtime/errors.js';

/**
 * Errors of the credential vault. Messages and details name the row (tenant, service,
 * connection) and the key id, never key material or a secret.
 */
export const VaultCode = {
  /** No key to encrypt with: CREDENTIALS_KEYS is unset and no key was generated. */
  NotConfigured: 'CREDENTIALS_NOT_CONFIGURED',
  /** A stored ciphertext names a key id that is not in the key ring. */
  KeyUnknown: 'CREDENTIALS_KEY_UNKNOWN',
  /** A key in the ring decrypts none of the rows written under its id: it is not the key they were written with. */
  KeyWrong: 'CREDENTIALS_KEY_WRONG',
  /** A ciphertext failed authentication or is malformed: altered, copied from another row, or written under another key of that id. */
  Tampered: 'CREDENTIAL_TAMPERED',
  /** `put` with `expectedVersion`: the row's version moved on (or the row exists when 0 was expected). */
  VersionConflict: 'CREDENTIAL_VERSION_CONFLICT',
} as const;
export type VaultCode = (typeof VaultCode)[keyof typeof VaultCode];

export class VaultError extends ConcordError<VaultCode> {
  constructor(code: VaultCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(code, message, details, options);
    this.name = 'VaultError';
  }
}

export const isVaultError = (err: unknown, code?: VaultCode): err is VaultError =>
  err instanceof VaultError && (code === undefined || err.code === code);
