import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyToken } from '../../http/auth/jwt.js';
import { resolveJwtSecret, SECRET_FILE } from '../../http/auth/secret.js';
import { loadConfig } from '../../runtime/config.js';

const run = promisify(execFile);
const dirs: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'concord-secret-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('JWT secret', () => {
  it('is generated once for the embedded default, kept under DATA_DIR with mode 0600, and reused', async () => {
    const dir = await tmp();
    const first = await resolveJwtSecret(loadConfig({ DATA_DIR: dir }));
    expect(first.generated).toBe(true);
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    expect((await stat(path.join(dir, SECRET_FILE))).mode & 0o777).toBe(0o600);
    const again = await resolveJwtSecret(loadConfig({ DATA_DIR: dir }));
    expect(again).toEqual({ secret: first.secret, generated: false });
  });

  it('is required against a real database, and must be long enough', async () => {
    await expect(resolveJwtSecret(loadConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db' }))).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(resolveJwtSecret(loadConfig({ JWT_SECRET: 'short' }))).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('npm run token', () => {
  it('mints a token the edge accepts, with the embedded default secret', async () => {
    const dir = await tmp();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'app/token-cli.ts', '--role', 'vendor', '--tenant', 'vendor-123', '--ttl', '600'], {
      env: { ...process.env, DATABASE_URL: '', JWT_SECRET: '', DATA_DIR: dir },
    });
    const secret = (await readFile(path.join(dir, SECRET_FILE), 'utf8')).trim();
    const p = verifyToken(stdout.trim(), secret, Date.now());
    expect(p).toMatchObject({ role: 'vendor', tenantId: 'vendor-123', sub: 'vendor:vendor-123' });
    expect(p.exp - Date.now() / 1000).toBeGreaterThan(590);
  });

  it('refuses a vendor token without a tenant', async () => {
    const err = await run(process.execPath, ['--import', 'tsx', 'app/token-cli.ts', '--role', 'vendor'], {
      env: { ...process.env, JWT_SECRET: 'x'.repeat(40) },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('needs --tenant');
  });
});
