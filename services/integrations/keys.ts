import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCredentialKeys, type Config } from '../../runtime/config.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { KeyRing } from './envelope.js';

export const CREDENTIALS_KEY_FILE = 'credentials-key';
/** The id of the key generated for the embedded default. */
export const LOCAL_KEY_ID = 'local';

/**
 * The vault's key ring: `CREDENTIALS_KEYS` when set. In the embedded default (no DATABASE_URL)
 * a key is generated once into `<DATA_DIR>/credentials-key` (mode 0600, one `id:base64key`
 * line, ready to paste into CREDENTIALS_KEYS) and reused. Against a real database
 * CREDENTIALS_KEYS is required: a key that lives on one machine's disk would strand the
 * credentials of every other process.
 */
export async function resolveCredentialKeys(config: Config): Promise<{ ring: KeyRing; generated: boolean }> {
  if (config.credentialsKeys) return { ring: new KeyRing(config.credentialsKeys), generated: false };
  if (config.databaseUrl) {
    throw new ConcordError(
      ErrorCode.InvalidConfig,
      'CREDENTIALS_KEYS is required when DATABASE_URL is set: CREDENTIALS_KEYS=<id>:$(openssl rand -base64 32)',
    );
  }
  const file = path.resolve(config.dataDir, CREDENTIALS_KEY_FILE);
  let existing: string | undefined;
  try {
    existing = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing !== undefined) {
    const { keys, problems } = parseCredentialKeys(existing);
    if (problems.length > 0 || keys.length === 0) {
      throw new ConcordError(ErrorCode.InvalidConfig, `${file} does not hold a credentials key (${problems.join('; ')}): restore it, or set CREDENTIALS_KEYS`);
    }
    return { ring: new KeyRing(keys), generated: false };
  }
  await mkdir(path.dirname(file), { recursive: true });
  const line = `${LOCAL_KEY_ID}:${randomBytes(32).toString('base64')}`;
  // 'wx': two processes starting at once must not both generate (the loser reads the winner's)
  try {
    await writeFile(file, `${line}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return resolveCredentialKeys(config);
    throw err;
  }
  await chmod(file, 0o600);
  return { ring: new KeyRing(parseCredentialKeys(line).keys), generated: true };
}
