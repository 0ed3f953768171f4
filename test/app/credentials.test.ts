import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialKey, loadConfig } from '../../runtime/config.js';
import type { Database } from '../../runtime/db.js';
import { CREDENTIALS_KEY_FILE, resolveCredentialKeys } from '../../services/integrations/keys.js';
import { CredentialVault, KeyRing, type CredentialRef } from '../../services/integrations/vault.js';
import { freshDatabase } from '../helpers/db.js';
import { testLog } from '../helpers/runtime.js';

const run = promisify(execFile);
const k1 = credentialKey('k1', randomBytes(32));
const k2 = credentialKey('k2', randomBytes(32));
const entry = (k: typeof k1) => `${k.id}:${k.key.toString('base64')}`;
const SECRET = `APP_USR-${randomBytes(16).toString('hex')}`;

const dirs: string[] = [];
let database: Database;
beforeAll(async () => {
  database = await freshDatabase(8);
});
afterAll(async () => {
  await database.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs a TypeScript entry point to its end; resolves with its exit code and output whatever the code. */
function runTs(file: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const serverEnv = { DATABASE_URL: '', JWT_SECRET: 'x'.repeat(40), NATS_URL: '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', CREDENTIALS_KEYS: '' };

describe('the credentials key', () => {
  it('is generated once for the embedded default, kept under DATA_DIR with mode 0600, and reused', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'concord-credkey-'));
    dirs.push(dir);
    const first = await resolveCredentialKeys(loadConfig({ DATA_DIR: dir }));
    expect(first.generated).toBe(true);
    expect(first.ring.ids).toEqual(['local']);
    const file = path.join(dir, CREDENTIALS_KEY_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // the file is one CREDENTIALS_KEYS entry, ready to carry to a real deployment
    expect(loadConfig({ CREDENTIALS_KEYS: (await readFile(file, 'utf8')).trim() }).credentialsKeys![0]!.key.equals(first.ring.primary!.key)).toBe(true);
    const again = await resolveCredentialKeys(loadConfig({ DATA_DIR: dir }));
    expect(again.generated).toBe(false);
    expect(again.ring.primary!.key.equals(first.ring.primary!.key)).toBe(true);
  });

  it('is CREDENTIALS_KEYS when set, and required against a real database', async () => {
    expect((await resolveCredentialKeys(loadConfig({ CREDENTIALS_KEYS: `${entry(k2)},${entry(k1)}` }))).ring.ids).toEqual(['k2', 'k1']);
    await expect(resolveCredentialKeys(loadConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db' }))).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringContaining('CREDENTIALS_KEYS is required when DATABASE_URL is set'),
    });
  });
});

describe('npm start and the vault', () => {
  it('with DATABASE_URL and no CREDENTIALS_KEYS, start-up fails with one clear line', async () => {
    const r = await runTs('app/main.ts', [], { ...serverEnv, DATABASE_URL: database.url });
    expect(r.code).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining('CREDENTIALS_KEYS is required when DATABASE_URL is set')]);
  });

  it('with a stored key id missing from CREDENTIALS_KEYS, start-up fails naming it', async () => {
    const ref: CredentialRef = { tenantId: 'vendor-9', service: 'mercadolibre', connectionId: '123456' };
    await new CredentialVault(database.pool, new KeyRing([k1]), testLog).put(ref, { refresh_token: SECRET });
    try {
      const r = await runTs('app/main.ts', [], { ...serverEnv, DATABASE_URL: database.url, CREDENTIALS_KEYS: entry(k2) });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/concord failed to start: stored credentials are encrypted under key 'k1', which is not in CREDENTIALS_KEYS/);
      expect(r.stderr + r.stdout).not.toContain(SECRET);
    } finally {
      await database.pool.query('DELETE FROM integration_credentials');
    }
  });
});

describe('npm run credentials', () => {
  it('rotate re-wraps every row under the first key against a real database while a server keeps reading and writing', async () => {
    const old = new CredentialVault(database.pool, new KeyRing([k1]), testLog);
    const refs: CredentialRef[] = Array.from({ length: 120 }, (_, i) => ({ tenantId: `vendor-${i % 5}`, service: 'shopify', connectionId: `shop-${i}.myshopify.com` }));
    for (const r of refs) await old.put(r, { access_token: `${SECRET}-${r.connectionId}` });

    // a server already on the new ring keeps working while the CLI rotates
    const server = new CredentialVault(database.pool, new KeyRing([k2, k1]), testLog);
    const latest = new Map(refs.map((r) => [r.connectionId, `${SECRET}-${r.connectionId}`]));
    let done = false;
    let calls = 0;
    const load = (async () => {
      for (let n = 0; !done; n++) {
        const r = refs[(n * 7) % refs.length]!;
        // puts touch the even rows only: the odd ones stay under k1 until the CLI rotates them
        if (n % 4 === 0 && (n * 7) % 2 === 0) {
          const v = `${SECRET}-${r.connectionId}-${n}`;
          await server.put(r, { access_token: v });
          latest.set(r.connectionId, v);
        } else {
          await server.get(r);
        }
        calls++;
      }
    })();
    const cli = runTs('app/credentials-cli.ts', ['rotate', '--batch', '10'], { DATABASE_URL: database.url, CREDENTIALS_KEYS: `${entry(k2)},${entry(k1)}`, LOG_LEVEL: 'info' }).finally(() => {
      done = true;
    });
    const [r] = await Promise.all([cli, load]);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toBeGreaterThan(0);
    // rows the server rewrote before the CLI counted are under k2 already and need no rotation
    const summary = /^rotation to key 'k2': (\d+) of (\d+) rotated, 0 failed, 0 remaining under other keys, \d+ ms$/.exec(r.stdout.trim());
    expect(summary, r.stdout).not.toBeNull();
    expect(Number(summary![2])).toBeGreaterThanOrEqual(60);
    expect(Number(summary![1])).toBeLessThanOrEqual(Number(summary![2]));
    expect(r.stderr).toMatch(new RegExp(`^rotated \\d+/${summary![2]}$`, 'm'));
    expect(r.stdout + r.stderr).not.toContain(SECRET);

    const { rows } = await database.pool.query<{ key_id: string; n: number }>('SELECT key_id, count(*)::int AS n FROM integration_credentials GROUP BY key_id');
    expect(rows).toEqual([{ key_id: 'k2', n: 120 }]);
    const only = new CredentialVault(database.pool, new KeyRing([k2]), testLog);
    for (const ref of refs) expect((await only.get(ref)).secret.access_token).toBe(latest.get(ref.connectionId));

    const check = await runTs('app/credentials-cli.ts', ['check'], { DATABASE_URL: database.url, CREDENTIALS_KEYS: entry(k2) });
    expect(check).toMatchObject({ code: 0, stdout: "credentials ok: 120 stored, under key k2; new ones are written under 'k2'\n" });
    const missing = await runTs('app/credentials-cli.ts', ['check'], { DATABASE_URL: database.url, CREDENTIALS_KEYS: entry(k1) });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("key 'k2', which is not in CREDENTIALS_KEYS");
  });

  it('answers usage for an unknown command', async () => {
    const { stderr } = await run(process.execPath, ['--import', 'tsx', 'app/credentials-cli.ts', 'spin'], { env: process.env }).catch((e: { code: number; stderr: string }) => {
      expect(e.code).toBe(64);
      return e;
    });
    expect(stderr).toContain('npm run credentials -- rotate');
  });
});
