import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../runtime/config.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';

export const SECRET_FILE = 'jwt-secret';

/**
 * The JWT signing secret: `JWT_SECRET` when set. In the embedded default (no DATABASE_URL) a
 * random secret is generated once and kept in `<DATA_DIR>/jwt-secret` (mode 0600), so tokens
 * survive restarts. Against a real database JWT_SECRET is required.
 */
export async function resolveJwtSecret(config: Config): Promise<{ secret: string; generated: boolean }> {
  if (config.jwtSecret) {
    if (config.jwtSecret.length < 32) throw new ConcordError(ErrorCode.InvalidConfig, 'JWT_SECRET must be at least 32 characters');
    return { secret: config.jwtSecret, generated: false };
  }
  if (config.databaseUrl) throw new ConcordError(ErrorCode.InvalidConfig, 'JWT_SECRET is required when DATABASE_URL is set');
  const file = path.resolve(config.dataDir, SECRET_FILE);
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= 32) return { secret: existing, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(path.dirname(file), { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'w' });
  await chmod(file, 0o600);
  return { secret, generated: true };
}
