import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that may carry secrets; pino replaces them before a line is written. */
/**
 * Field names that carry secrets: our own (camelCase), the providers' OAuth wire names
 * (snake_case) and the credential vault's fields. Redacted at the top level and one level down.
 */
const SECRET_FIELDS = [
  'password',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'clientSecret',
  'webhookSecret',
  'privateKeyPem',
  'apiKey',
  'api_key',
  'apiSecret',
  'api_secret',
  'keyPem',
  'key_pem',
  'privateKey',
  'private_key',
  'passphrase',
  'code_verifier',
  'codeVerifier',
  'credentials',
];

/** Paths that may carry secrets; pino replaces them before a line is written. */
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'config.databaseUrl',
  'config.jwtSecret',
  'config.credentialsKeys',
  'config.providers.shopify.apiSecret',
  'config.providers.shopify.webhookSecret',
  'config.providers.mercadolibre.clientSecret',
  'config.providers.mercadolibre.webhookSecret',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'concord' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination as never) : pino(options);
}
