import { parseArgs } from 'node:util';
import { loadConfig } from '../runtime/config.js';
import { openDatabase } from '../runtime/db.js';
import { isConcordError } from '../runtime/errors.js';
import { createLogger } from '../runtime/logger.js';
import { migrate } from '../runtime/migrate.js';
import { describeRef } from '../services/integrations/envelope.js';
import { resolveCredentialKeys } from '../services/integrations/keys.js';
import { CredentialVault } from '../services/integrations/vault.js';

const USAGE = `npm run credentials -- rotate [--batch <rows per transaction, default 100>]
npm run credentials -- check

rotate  re-wraps every stored credential under the first key of CREDENTIALS_KEYS (the other keys
        must still be in the ring to decrypt). Safe while servers run: deploy the new ring to them
        first, so that what they write is under the new key too. Progress goes to stderr, one
        summary line to stdout; exits 1 if any row is left under another key.
check   the start-up check: every key id stored is in the ring and decrypts its rows.`;

/** `npm run credentials`: operations on the credential vault. */
async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { batch: { type: 'string', default: '100' }, help: { type: 'boolean' } } });
  const command = positionals[0];
  if (values.help || (command !== 'rotate' && command !== 'check') || positionals.length > 1) {
    (values.help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 64; // EX_USAGE
  }
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new Error('--batch must be a whole number from 1 to 10000');
  const config = loadConfig();
  const { ring } = await resolveCredentialKeys(config);
  // pino writes to stderr: stdout carries only the summary line
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPgPort, poolSize: 2, log });
  try {
    await migrate(database.pool, log);
    const vault = new CredentialVault(database.pool, ring, log);
    if (command === 'check') {
      const { rows, keyIds } = await vault.check();
      process.stdout.write(`credentials ok: ${rows} stored, under key${keyIds.length === 1 ? '' : 's'} ${keyIds.join(', ') || '(none)'}; new ones are written under '${ring.primary?.id ?? '(no key)'}'\n`);
      return 0;
    }
    const s = await vault.rotate({
      batchSize: batch,
      onProgress: (p) => process.stderr.write(`rotated ${p.rotated}/${p.total}${p.failed ? `, ${p.failed} failed` : ''}\n`),
    });
    for (const f of s.failures) process.stderr.write(`not rotated: ${describeRef(f)} (${f.code})\n`);
    process.stdout.write(
      `rotation to key '${s.keyId}': ${s.rotated} of ${s.total} rotated, ${s.failed} failed, ${s.remaining} remaining under other keys, ${s.durationMs} ms\n`,
    );
    return s.remaining === 0 && s.failed === 0 ? 0 : 1;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`credentials: ${isConcordError(err) ? err.message : (err as Error).message}`);
    process.exit(1);
  },
);
