import { parseArgs } from 'node:util';
import { signToken } from '../http/auth/jwt.js';
import { resolveJwtSecret } from '../http/auth/secret.js';
import { loadConfig } from '../runtime/config.js';
import { ROLES, type Role } from '../services/common/principal.js';
import { isConcordError } from '../runtime/errors.js';

const USAGE = `npm run token -- --role operator|vendor|partner|service [--tenant <vendor or partner id>] [--sub <who>] [--ttl <seconds>]

Mints an HS256 bearer token with JWT_SECRET, or with the embedded default's secret under DATA_DIR.`;

/** `npm run token`: a bearer token for local use. Prints only the token, for \`TOKEN=$(npm run -s token ...)\`. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { role: { type: 'string' }, tenant: { type: 'string' }, sub: { type: 'string' }, ttl: { type: 'string', default: '86400' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const role = values.role as Role | undefined;
  if (!role || !ROLES.includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}\n\n${USAGE}`);
  if ((role === 'vendor' || role === 'partner') && !values.tenant) throw new Error(`a ${role} token needs --tenant <${role} id>`);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error('--ttl must be a positive number of seconds');
  const { secret } = await resolveJwtSecret(loadConfig());
  const token = signToken(
    {
      sub: values.sub ?? (values.tenant ? `${role}:${values.tenant}` : `local-${role}`),
      role,
      ...(values.tenant ? { tenantId: values.tenant } : {}),
      exp: Math.floor(Date.now() / 1000) + ttl,
    },
    secret,
  );
  process.stdout.write(`${token}\n`);
}

main().catch((err) => {
  console.error(isConcordError(err) ? err.message : (err as Error).message);
  process.exit(1);
});
