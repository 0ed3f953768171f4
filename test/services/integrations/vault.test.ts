import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialKey, loadConfig, type CredentialKey } from '../../../runtime/config.js';
import type { Database } from '../../../runtime/db.js';
import { createLogger } from '../../../runtime/logger.js';
import { createServices } from '../../../services/index.js';
import { open, seal } from '../../../services/integrations/envelope.js';
import { isVaultError, VaultCode } from '../../../services/integrations/errors.js';
import { CredentialVault, KeyRing, type CredentialRef } from '../../../services/integrations/vault.js';
import { freshDatabase } from '../../helpers/db.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

const newKey = (id: string): CredentialKey => credentialKey(id, randomBytes(32));
const k1 = newKey('k1');
const k2 = newKey('k2');
/** A token value that must never appear anywhere but in `get`'s answer. */
const SECRET = `shpat_${randomBytes(16).toString('hex')}`;
const REFRESH = `TG-${randomBytes(16).toString('hex')}`;

/** Every line the vault (and the test) logs, at trace level. */
const lines: string[] = [];
const log = createLogger(
  'trace',
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  }),
);

let database: Database;
beforeAll(async () => {
  database = await freshDatabase(16);
});
afterAll(async () => {
  await database.close();
});

const ref = (connectionId: string, tenantId = 'vendor-1', service = 'shopify'): CredentialRef => ({ tenantId, service, connectionId });
const vaultOf = (...keys: CredentialKey[]) => new CredentialVault(database.pool, new KeyRing(keys), log);
/** The whole table as text, every column of every row. */
const tableText = async () => (await database.pool.query<{ t: string }>('SELECT t::text AS t FROM integration_credentials t')).rows.map((r) => r.t).join('\n');
const clear = () => database.pool.query('DELETE FROM integration_credentials');
const codeOf = async (p: Promise<unknown>) => p.then(() => 'resolved', (err: unknown) => (err as { code?: string }).code ?? String(err));

describe('the credential vault', () => {
  it('round-trips a secret, bumps the version on every put, describes without the secret and forgets on delete', async () => {
    const vault = vaultOf(k1);
    const r = ref('a.myshopify.com');
    const first = await vault.put(r, { access_token: SECRET }, { scopes: ['read_products'], expiresAt: '2030-01-01T00:00:00Z', metadata: { shop: 'a.myshopify.com' } });
    expect(first).toMatchObject({ ...r, keyId: 'k1', version: 1, scopes: ['read_products'], expiresAt: '2030-01-01T00:00:00.000Z', metadata: { shop: 'a.myshopify.com' }, rotatedAt: null });
    expect((await vault.get(r)).secret).toEqual({ access_token: SECRET });

    const second = await vault.put(r, { access_token: `${SECRET}-2`, refresh_token: REFRESH });
    expect(second.version).toBe(2);
    expect(second.createdAt).toBe(first.createdAt);
    expect((await vault.get(r)).secret).toEqual({ access_token: `${SECRET}-2`, refresh_token: REFRESH });
    const info = await vault.describe(r);
    expect(info).toMatchObject({ version: 2, keyId: 'k1' });
    expect(JSON.stringify(info)).not.toContain(SECRET);
    expect(JSON.stringify(await vault.list('vendor-1'))).not.toContain(SECRET);

    expect(await vault.delete(r)).toBe(true);
    expect(await vault.describe(r)).toBeUndefined();
    expect(await codeOf(vault.get(r))).toBe('NOT_FOUND');
    expect(await vault.delete(r)).toBe(false);
  });

  it('compare-and-set: a put at a stale version is a typed conflict and changes nothing', async () => {
    const vault = vaultOf(k1);
    const r = ref('cas');
    await vault.put(r, { refresh_token: 'one' }, { expectedVersion: 0 });
    expect(await codeOf(vault.put(r, { refresh_token: 'again' }, { expectedVersion: 0 }))).toBe(VaultCode.VersionConflict);
    await vault.put(r, { refresh_token: 'two' }, { expectedVersion: 1 });
    expect(await codeOf(vault.put(r, { refresh_token: 'stale' }, { expectedVersion: 1 }))).toBe(VaultCode.VersionConflict);
    expect(await vault.get(r)).toMatchObject({ version: 2, secret: { refresh_token: 'two' } });
  });

  it('refuses metadata that repeats a secret value (metadata is stored in clear)', async () => {
    expect(await codeOf(vaultOf(k1).put(ref('slip'), { access_token: SECRET }, { metadata: { note: SECRET } }))).toBe('VALIDATION_FAILED');
    expect(await vaultOf(k1).describe(ref('slip'))).toBeUndefined();
  });

  it('binds a ciphertext to its row: copied to another row it does not decrypt', async () => {
    const vault = vaultOf(k1);
    await vault.put(ref('victim', 'vendor-1'), { access_token: SECRET });
    await vault.put(ref('attacker', 'vendor-2'), { access_token: 'the-attackers-own-token' });
    await database.pool.query(
      `UPDATE integration_credentials SET encrypted_credentials = (SELECT encrypted_credentials FROM integration_credentials WHERE connection_id = 'victim')
        WHERE connection_id = 'attacker'`,
    );
    const err = await vault.get(ref('attacker', 'vendor-2')).catch((e: unknown) => e);
    expect(isVaultError(err, VaultCode.Tampered)).toBe(true);
    expect(JSON.stringify({ message: (err as Error).message, err })).not.toContain(SECRET);
    expect((await vault.get(ref('victim', 'vendor-1'))).secret.access_token).toBe(SECRET);
  });

  it('any one-character change of an envelope is CREDENTIAL_TAMPERED, never a crash or a wrong answer', () => {
    const ring = new KeyRing([k1]);
    const r = ref('tamper');
    const envelope = seal(k1, r, Buffer.from(JSON.stringify({ access_token: SECRET })));
    expect(JSON.parse(open(ring, r, envelope, 'k1').toString())).toEqual({ access_token: SECRET });
    for (let i = 0; i < envelope.length; i++) {
      for (const c of ['A', 'B', ':']) {
        if (envelope[i] === c) continue;
        const changed = envelope.slice(0, i) + c + envelope.slice(i + 1);
        let code: string | undefined;
        try {
          open(ring, r, changed, 'k1');
        } catch (err) {
          code = (err as { code?: string }).code;
        }
        expect(code, `position ${i} -> ${c}`).toBe(VaultCode.Tampered);
      }
    }
  });

  it('a stored ciphertext changed by one byte in the database fails get with CREDENTIAL_TAMPERED', async () => {
    const vault = vaultOf(k1);
    const r = ref('tamper-db');
    await vault.put(r, { access_token: SECRET });
    // flip one character in the middle of the ciphertext part
    await database.pool.query(
      `UPDATE integration_credentials SET encrypted_credentials =
         overlay(encrypted_credentials placing (CASE WHEN substr(encrypted_credentials, length(encrypted_credentials) - 3, 1) = 'A' THEN 'B' ELSE 'A' END)
                 from length(encrypted_credentials) - 3 for 1)
        WHERE connection_id = 'tamper-db'`,
    );
    const err = await vault.get(r).catch((e: unknown) => e);
    expect(isVaultError(err, VaultCode.Tampered)).toBe(true);
    expect((err as Error).message).toContain('vendor-1/shopify/tamper-db');
    log.error({ err }, 'get failed'); // logged as a caller would: the grep below covers it
  });

  it('the start-up check names a stored key id missing from the ring, and a key of the right id that is the wrong key', async () => {
    await clear();
    await vaultOf(k1).put(ref('c1'), { access_token: SECRET });
    await vaultOf(k2, k1).put(ref('c2'), { access_token: SECRET });
    expect(await vaultOf(k2, k1).check()).toEqual({ rows: 2, keyIds: ['k1', 'k2'] });

    const missing = await vaultOf(k2).check().catch((e: unknown) => e);
    expect(isVaultError(missing, VaultCode.KeyUnknown)).toBe(true);
    expect((missing as Error).message).toMatch(/key 'k1', which is not in CREDENTIALS_KEYS/);
    expect((missing as Error).message).toContain('npm run credentials -- rotate');

    const impostor = await vaultOf(k2, newKey('k1')).check().catch((e: unknown) => e);
    expect(isVaultError(impostor, VaultCode.KeyWrong)).toBe(true);
    expect((impostor as Error).message).toContain("key 'k1'");

    const empty = await vaultOf().check().catch((e: unknown) => e);
    expect((empty as Error).message).toContain('CREDENTIALS_KEYS is unset');
  });

  it('services.start() runs the check: a key missing from the ring stops start-up', async () => {
    await clear();
    await vaultOf(k1).put(ref('c1'), { access_token: SECRET });
    const quiet = { events: false, sagaIntake: false, housekeeping: false };
    const runtime = await testRuntime(database, { run: { timers: false, relay: false } });
    const services = createServices({ runtime, log: testLog, credentialKeys: new KeyRing([k2]), run: quiet });
    try {
      await expect(services.start()).rejects.toMatchObject({ code: VaultCode.KeyUnknown, message: expect.stringContaining("'k1'") });
    } finally {
      await services.stop();
      await runtime.stop();
    }
    // by default the ring is config's CREDENTIALS_KEYS
    const configured = await testRuntime(database, { run: { timers: false, relay: false }, env: { CREDENTIALS_KEYS: `k1:${k1.key.toString('base64')}` } });
    const ok = createServices({ runtime: configured, log: testLog, run: quiet });
    try {
      await ok.start();
      expect((await ok.vault.get(ref('c1'))).secret.access_token).toBe(SECRET);
    } finally {
      await ok.stop();
      await configured.stop();
    }
  });

  it('rotates every row under the first key while gets and puts run: no call fails, no put is lost', async () => {
    await clear();
    const before = vaultOf(k1);
    const N = 300;
    const refs = Array.from({ length: N }, (_, i) => ref(`conn-${String(i).padStart(3, '0')}`, `vendor-${i % 7}`, i % 2 ? 'mercadolibre' : 'shopify'));
    const latest = new Map<string, string>();
    for (const r of refs) {
      await before.put(r, { access_token: `${SECRET}-${r.connectionId}-0` });
      latest.set(r.connectionId, `${SECRET}-${r.connectionId}-0`);
    }
    // the server, already on the new ring, and the rotation (the CLI) with its own pool
    const server = vaultOf(k2, k1);
    const rotator = vaultOf(k2, k1);
    const progress: number[] = [];
    let done = false;
    let calls = 0;
    const load = async (worker: number) => {
      for (let n = 0; !done; n++) {
        const r = refs[(worker * 37 + n * 11) % N]!;
        if (n % 3 === 0) {
          const value = `${SECRET}-${r.connectionId}-w${worker}n${n}`;
          // the writes of one connection come from one worker, so "latest" is well defined
          if ((worker * 37 + n * 11) % N % 4 === worker) {
            await server.put(r, { access_token: value });
            latest.set(r.connectionId, value);
          }
        } else {
          const got = await server.get(r);
          expect(String(got.secret.access_token).startsWith(`${SECRET}-${r.connectionId}-`)).toBe(true);
        }
        calls++;
      }
    };
    const rotation = rotator.rotate({ batchSize: 16, onProgress: (p) => progress.push(p.rotated) }).finally(() => {
      done = true;
    });
    const [summary] = await Promise.all([rotation, load(0), load(1), load(2), load(3)]);
    expect(calls).toBeGreaterThan(0);
    expect(summary).toMatchObject({ keyId: 'k2', total: N, failed: 0, remaining: 0 });
    expect(summary.rotated).toBeLessThanOrEqual(N); // rows a put re-wrote first need no rotation
    expect(progress.length).toBeGreaterThan(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    const { rows } = await database.pool.query<{ key_id: string; n: number }>('SELECT key_id, count(*)::int AS n FROM integration_credentials GROUP BY key_id');
    expect(rows).toEqual([{ key_id: 'k2', n: N }]);
    const after = vaultOf(k2); // k1 can go now
    for (const r of refs) expect((await after.get(r)).secret.access_token, r.connectionId).toBe(latest.get(r.connectionId));
    expect(await after.check()).toEqual({ rows: N, keyIds: ['k2'] });
  });

  it('reports a row that does not decrypt and rotates the rest', async () => {
    await clear();
    const v = vaultOf(k1);
    for (const c of ['r1', 'r2', 'r3']) await v.put(ref(c), { access_token: SECRET });
    await database.pool.query(`UPDATE integration_credentials SET encrypted_credentials = encrypted_credentials || 'A' WHERE connection_id = 'r2'`);
    const s = await vaultOf(k2, k1).rotate();
    expect(s).toMatchObject({ total: 3, rotated: 2, failed: 1, remaining: 1, failures: [{ ...ref('r2'), code: VaultCode.Tampered }] });
  });

  it('no stored row and no log line holds a secret', async () => {
    const v = vaultOf(k2, k1);
    await v.put(ref('final'), { access_token: SECRET, refresh_token: REFRESH, client_secret: 'cs-not-logged-0123' }, { metadata: { shop: 'final.myshopify.com' } });
    await v.get(ref('final'));
    await v.rotate();
    // a careless caller logging what it holds: redaction covers the credential fields
    log.info({ access_token: SECRET, credentials: { refresh_token: REFRESH }, req: { apiKey: SECRET, keyPem: SECRET, client_secret: SECRET } }, 'careless');
    log.info({ connection: { access_token: SECRET, clientSecret: SECRET, password: SECRET } }, 'careless nested');
    const table = await tableText();
    expect(table).toContain('final.myshopify.com'); // the dump is real
    expect(lines.filter((l) => l.includes('"careless')).length).toBe(2); // the lines were written
    for (const s of [SECRET, REFRESH, 'cs-not-logged-0123']) {
      expect(table).not.toContain(s);
      expect(lines.filter((l) => l.includes(s))).toEqual([]);
    }
  });
});

describe('CREDENTIALS_KEYS', () => {
  const b64 = randomBytes(32).toString('base64');
  it('parses id:base64key entries, the first encrypting, and never shows key material', () => {
    const c = loadConfig({ CREDENTIALS_KEYS: ` new:${b64} , old:${randomBytes(32).toString('base64url')}` });
    expect(c.credentialsKeys!.map((k) => k.id)).toEqual(['new', 'old']);
    expect(c.credentialsKeys![0]!.key.toString('base64')).toBe(b64);
    expect(JSON.stringify(c)).not.toContain(b64);
    expect(loadConfig({}).credentialsKeys).toBeUndefined();
  });

  it.each([
    ['a short key', 'k1:c2hvcnQ='],
    ['no id', `:${b64}`],
    ['a colon in the id', `a:b:${b64}`],
    ['a duplicate id', `k1:${b64},k1:${b64}`],
    ['not base64', 'k1:this is not base64 at all, not even close!!'],
  ])('refuses %s with INVALID_CONFIG that names no key material', (_what, value) => {
    let err: unknown;
    try {
      loadConfig({ CREDENTIALS_KEYS: value });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining('CREDENTIALS_KEYS') });
    expect(JSON.stringify({ m: (err as Error).message, err })).not.toContain(b64);
  });
});
