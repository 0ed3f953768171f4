import type pg from 'pg';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { iso, transaction } from '../common/sql.js';
import { describeRef, KeyRing, open, seal, type CredentialRef } from './envelope.js';
import { isVaultError, VaultCode, VaultError } from './errors.js';

export { KeyRing, type CredentialRef } from './envelope.js';

/** A connection's secret: the fields a connector authenticates with (tokens, API key, client secret, key PEM). */
export type CredentialSecret = Readonly<Record<string, string>>;

/** What may be known about a stored credential without decrypting it. */
export interface CredentialInfo extends CredentialRef {
  keyId: string;
  /** Bumped by every `put`; rotation leaves it alone (the secret does not change). */
  version: number;
  expiresAt: string | null;
  scopes: string[];
  /** Non-secret, in clear (e.g. the shop domain, the seller id, the token type). */
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  rotatedAt: string | null;
}

export interface StoredCredential extends CredentialInfo {
  secret: CredentialSecret;
}

export interface PutOptions {
  expiresAt?: string | Date | null;
  scopes?: readonly string[];
  metadata?: Record<string, unknown>;
  /**
   * Compare-and-set: write only if the row is at this version (0: only if there is no row),
   * else `CREDENTIAL_VERSION_CONFLICT`. A refresh that read version n stores its rotated token
   * with `expectedVersion: n`, so a concurrent refresh cannot be overwritten unseen.
   */
  expectedVersion?: number;
}

export interface RotationProgress {
  /** Rows not under the first key when the rotation started. */
  total: number;
  rotated: number;
  failed: number;
}

export interface RotationSummary extends RotationProgress {
  keyId: string;
  /** Rows that did not decrypt (tampered or under an unknown key): named, never their content. */
  failures: Array<CredentialRef & { code: string }>;
  /** Rows still not under the first key at the end (failed ones, or written meanwhile by a process with an older ring). */
  remaining: number;
  durationMs: number;
}

export interface RotateOptions {
  batchSize?: number;
  onProgress?: (p: RotationProgress) => void;
}

export interface VaultCheck {
  rows: number;
  keyIds: string[];
}

interface Row {
  tenant_id: string;
  service: string;
  connection_id: string;
  encrypted_credentials: string;
  key_id: string;
  version: number;
  expires_at: Date | null;
  scopes: string[];
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  rotated_at: Date | null;
}

const COLUMNS = 'tenant_id, service, connection_id, encrypted_credentials, key_id, version, expires_at, scopes, metadata, created_at, updated_at, rotated_at';
const INFO_COLUMNS = COLUMNS.replace('encrypted_credentials, ', '');
/** Rows re-checked per key id at start: one that decrypts proves the key; all failing means a wrong key. */
const CHECK_SAMPLE = 3;
/** Extra passes of a rotation over rows it found locked (SKIP LOCKED) or rewritten under an older key. */
const ROTATION_RETRIES = 5;

const refOf = (r: Pick<Row, 'tenant_id' | 'service' | 'connection_id'>): CredentialRef => ({
  tenantId: r.tenant_id,
  service: r.service,
  connectionId: r.connection_id,
});

function infoOf(r: Omit<Row, 'encrypted_credentials'>): CredentialInfo {
  return {
    ...refOf(r),
    keyId: r.key_id,
    version: r.version,
    expiresAt: iso(r.expires_at),
    scopes: r.scopes,
    metadata: r.metadata,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    rotatedAt: iso(r.rotated_at),
  };
}

/**
 * The credential vault: connection secrets encrypted at rest in `integration_credentials`
 * (AES-256-GCM, the key id in every ciphertext, bound to its row). Nothing it returns or
 * throws, and nothing it logs, carries a secret except `get`'s answer.
 *
 * @example
 * await vault.put({ tenantId: 'v-1', service: 'shopify', connectionId: 'shop.myshopify.com' },
 *   { access_token: 'shpat_...' }, { scopes: ['read_products'], expiresAt: '2026-01-01T00:00:00Z' });
 * const { secret } = await vault.get(ref);
 */
export class CredentialVault {
  constructor(
    private readonly pool: pg.Pool,
    readonly ring: KeyRing,
    private readonly log: Logger,
  ) {}

  /** Creates or replaces a connection's secret, bumping its version in the same statement. */
  async put(ref: CredentialRef, secret: CredentialSecret, o: PutOptions = {}): Promise<CredentialInfo> {
    const key = this.ring.primary;
    if (!key) {
      throw new VaultError(VaultCode.NotConfigured, 'no credentials key is configured: set CREDENTIALS_KEYS=<id>:<32 bytes in base64>');
    }
    validateRef(ref);
    const metadata = o.metadata ?? {};
    guardMetadata(secret, metadata);
    const envelope = seal(key, ref, Buffer.from(JSON.stringify(secret), 'utf8'));
    const params: unknown[] = [
      ref.tenantId,
      ref.service,
      ref.connectionId,
      envelope,
      key.id,
      o.expiresAt == null ? null : new Date(o.expiresAt),
      [...(o.scopes ?? [])],
      JSON.stringify(metadata),
    ];
    const insert = `INSERT INTO integration_credentials (tenant_id, service, connection_id, encrypted_credentials, key_id, expires_at, scopes, metadata)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`;
    let sql: string;
    if (o.expectedVersion === undefined) {
      sql = `${insert} ON CONFLICT (tenant_id, service, connection_id) DO UPDATE SET
          encrypted_credentials = EXCLUDED.encrypted_credentials, key_id = EXCLUDED.key_id,
          expires_at = EXCLUDED.expires_at, scopes = EXCLUDED.scopes, metadata = EXCLUDED.metadata,
          version = integration_credentials.version + 1, updated_at = now()
        RETURNING ${INFO_COLUMNS}`;
    } else if (o.expectedVersion === 0) {
      sql = `${insert} ON CONFLICT (tenant_id, service, connection_id) DO NOTHING RETURNING ${INFO_COLUMNS}`;
    } else {
      sql = `UPDATE integration_credentials SET encrypted_credentials = $4, key_id = $5, expires_at = $6, scopes = $7, metadata = $8,
          version = version + 1, updated_at = now()
        WHERE tenant_id = $1 AND service = $2 AND connection_id = $3 AND version = $9
        RETURNING ${INFO_COLUMNS}`;
      params.push(o.expectedVersion);
    }
    const { rows } = await this.pool.query<Row>(sql, params);
    if (!rows[0]) {
      throw new VaultError(VaultCode.VersionConflict, `the credentials of ${describeRef(ref)} are no longer at version ${o.expectedVersion}`, {
        ...ref,
        expectedVersion: o.expectedVersion,
      });
    }
    return infoOf(rows[0]);
  }

  /** Decrypts a connection's secret. A missing row is `NOT_FOUND`; an altered one `CREDENTIAL_TAMPERED`. */
  async get(ref: CredentialRef): Promise<StoredCredential> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM integration_credentials WHERE tenant_id = $1 AND service = $2 AND connection_id = $3`,
      [ref.tenantId, ref.service, ref.connectionId],
    );
    const row = rows[0];
    if (!row) throw notFound('credentials', describeRef(ref));
    return { ...infoOf(row), secret: this.decrypt(row) };
  }

  /** The metadata of a connection's credentials, never the secret; undefined when there are none. */
  async describe(ref: CredentialRef): Promise<CredentialInfo | undefined> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${INFO_COLUMNS} FROM integration_credentials WHERE tenant_id = $1 AND service = $2 AND connection_id = $3`,
      [ref.tenantId, ref.service, ref.connectionId],
    );
    return rows[0] ? infoOf(rows[0]) : undefined;
  }

  /** Every stored credential of a tenant (optionally of one service), metadata only. */
  async list(tenantId: string, service?: string): Promise<CredentialInfo[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${INFO_COLUMNS} FROM integration_credentials WHERE tenant_id = $1 AND ($2::text IS NULL OR service = $2)
        ORDER BY service, connection_id`,
      [tenantId, service ?? null],
    );
    return rows.map(infoOf);
  }

  /** Forgets a connection's credentials; false when there were none. */
  async delete(ref: CredentialRef): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM integration_credentials WHERE tenant_id = $1 AND service = $2 AND connection_id = $3',
      [ref.tenantId, ref.service, ref.connectionId],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * The start-up check: every key id in the table is in the ring, and each key decrypts one of
   * the rows written under it. Throws `CREDENTIALS_KEY_UNKNOWN` or `CREDENTIALS_KEY_WRONG`
   * naming the key id, so a wrong or missing key stops start-up instead of failing a sync later.
   */
  async check(): Promise<VaultCheck> {
    const { rows: counts } = await this.pool.query<{ key_id: string; n: number }>(
      'SELECT key_id, count(*)::int AS n FROM integration_credentials GROUP BY key_id ORDER BY key_id',
    );
    const keyIds = counts.map((c) => c.key_id);
    const unknown = keyIds.filter((id) => !this.ring.has(id));
    if (unknown.length > 0) {
      const ring = this.ring.ids.length ? `the ring holds ${this.ring.ids.map((i) => `'${i}'`).join(', ')}` : 'CREDENTIALS_KEYS is unset';
      throw new VaultError(
        VaultCode.KeyUnknown,
        `stored credentials are encrypted under key ${unknown.map((i) => `'${i}'`).join(', ')}, which is not in CREDENTIALS_KEYS (${ring}): add it as <id>:<base64 key> after the current first key, then run \`npm run credentials -- rotate\``,
        { keyIds: unknown, rows: counts.filter((c) => unknown.includes(c.key_id)).reduce((a, c) => a + c.n, 0) },
      );
    }
    for (const keyId of keyIds) {
      const { rows } = await this.pool.query<Row>(
        `SELECT ${COLUMNS} FROM integration_credentials WHERE key_id = $1 ORDER BY updated_at DESC LIMIT ${CHECK_SAMPLE}`,
        [keyId],
      );
      let opened = false;
      for (const row of rows) {
        try {
          this.decrypt(row);
          opened = true;
          break;
        } catch (err) {
          if (!isVaultError(err, VaultCode.Tampered)) throw err;
          this.log.warn({ ...refOf(row), keyId }, 'stored credentials do not decrypt');
        }
      }
      if (!opened) {
        throw new VaultError(
          VaultCode.KeyWrong,
          `key '${keyId}' in CREDENTIALS_KEYS decrypts none of the stored credentials written under that id: it is not the key they were written with; restore the original key '${keyId}'`,
          { keyId },
        );
      }
    }
    const total = counts.reduce((a, c) => a + c.n, 0);
    this.log.info({ rows: total, keyIds, encryptingKey: this.ring.primary?.id }, 'credentials vault checked');
    return { rows: total, keyIds };
  }

  /**
   * Re-wraps every row that is not under the first key, in batches of short transactions
   * (`FOR UPDATE SKIP LOCKED`, in key order), while the server runs: a concurrent `put` either
   * commits first (and is then under the first key already, so the row no longer qualifies) or
   * waits for the batch and overwrites it; nothing is lost. Rows that do not decrypt are
   * reported, not fatal. Safe to run again; rotation keeps each row's version.
   */
  async rotate(o: RotateOptions = {}): Promise<RotationSummary> {
    const key = this.ring.primary;
    if (!key) throw new VaultError(VaultCode.NotConfigured, 'no credentials key is configured: set CREDENTIALS_KEYS');
    const started = performance.now();
    const batchSize = Math.max(1, o.batchSize ?? 100);
    const total = await this.countNotUnder(key.id);
    const failures = new Map<string, CredentialRef & { code: string }>();
    let rotated = 0;
    const progress = () => o.onProgress?.({ total, rotated, failed: failures.size });
    for (let pass = 0; pass <= ROTATION_RETRIES; pass++) {
      let after: CredentialRef | undefined;
      for (;;) {
        const batch = await transaction(this.pool, async (client) => {
          const { rows } = await client.query<Row>(
            `SELECT ${COLUMNS} FROM integration_credentials
              WHERE key_id <> $1 AND ($2::text IS NULL OR (tenant_id, service, connection_id) > ($2, $3, $4))
              ORDER BY tenant_id, service, connection_id LIMIT $5 FOR UPDATE SKIP LOCKED`,
            [key.id, after?.tenantId ?? null, after?.service ?? null, after?.connectionId ?? null, batchSize],
          );
          const rewrapped: Array<[string, string, string, string]> = [];
          for (const row of rows) {
            const ref = refOf(row);
            try {
              rewrapped.push([row.tenant_id, row.service, row.connection_id, seal(key, ref, this.decryptRaw(row))]);
            } catch (err) {
              if (!isVaultError(err)) throw err;
              failures.set(describeRef(ref), { ...ref, code: err.code });
            }
          }
          if (rewrapped.length > 0) {
            await client.query(
              `UPDATE integration_credentials c SET encrypted_credentials = u.ct, key_id = $5, rotated_at = now()
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(t, s, k, ct)
                WHERE c.tenant_id = u.t AND c.service = u.s AND c.connection_id = u.k`,
              [rewrapped.map((r) => r[0]), rewrapped.map((r) => r[1]), rewrapped.map((r) => r[2]), rewrapped.map((r) => r[3]), key.id],
            );
          }
          return { last: rows.at(-1), rewrapped: rewrapped.length };
        });
        if (!batch.last) break;
        after = refOf(batch.last);
        rotated += batch.rewrapped;
        progress();
      }
      const remaining = await this.countNotUnder(key.id);
      if (remaining <= failures.size || pass === ROTATION_RETRIES) {
        const summary = { keyId: key.id, total, rotated, failed: failures.size, failures: [...failures.values()], remaining, durationMs: Math.round(performance.now() - started) };
        this.log.info({ ...summary, failures: summary.failures.map(describeRef) }, 'credentials rotation finished');
        return summary;
      }
      // rows another transaction held (SKIP LOCKED) or rewrote under an older first key: look again shortly
      await new Promise((r) => setTimeout(r, 100 * (pass + 1)));
    }
    throw new Error('unreachable');
  }

  private async countNotUnder(keyId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM integration_credentials WHERE key_id <> $1', [keyId]);
    return rows[0]!.n;
  }

  private decryptRaw(row: Row): Buffer {
    return open(this.ring, refOf(row), row.encrypted_credentials, row.key_id);
  }

  private decrypt(row: Row): CredentialSecret {
    const plain = this.decryptRaw(row);
    try {
      return JSON.parse(plain.toString('utf8')) as CredentialSecret;
    } finally {
      plain.fill(0);
    }
  }
}

function validateRef(ref: CredentialRef): void {
  for (const [field, v] of Object.entries(ref)) {
    if (typeof v !== 'string' || v === '' || v.length > 255) {
      throw new DomainError(DomainCode.ValidationFailed, `credential ${field} must be a non-empty string of at most 255 characters`, { field });
    }
  }
}

/** Metadata is stored in clear: refuse one that repeats a secret value (a caller's slip, caught before it lands). */
function guardMetadata(secret: CredentialSecret, metadata: Record<string, unknown>): void {
  const clear = JSON.stringify(metadata);
  for (const [field, value] of Object.entries(secret)) {
    if (typeof value !== 'string') {
      throw new DomainError(DomainCode.ValidationFailed, `credential field ${field} must be a string`, { field });
    }
    if (value.length >= 8 && clear.includes(value)) {
      throw new DomainError(DomainCode.ValidationFailed, `credential metadata repeats the secret field ${field}: metadata is stored in clear`, { field });
    }
  }
}
