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

/**
 * A buffered destination: log lines are gathered in memory and written in blocks of about
 * `minLength` bytes (one write(2) per ~15 request lines instead of one per line), and at the
 * latest `flushMs` after they were logged (a timer that never keeps the process alive).
 */
export interface BufferedLog {
  /** Where to write: a file descriptor (1, stdout, by default) or a file path. */
  readonly dest?: number | string;
  /** Bytes gathered before a write (default 4,096). */
  readonly minLength?: number;
  /** The longest a line waits in the buffer, in ms (default 1,000). */
  readonly flushMs?: number;
}

type Boom = ReturnType<typeof pino.destination>;
/** Every buffered destination of this process, written out synchronously when it exits. */
const buffers = new Set<Boom>();
const flushAllSync = () => {
  for (const b of buffers) {
    try {
      b.flushSync();
    } catch {
      // exiting: a destination that cannot be written any more has nothing left to give
    }
  }
};

/**
 * The process's logger: structured JSON lines, secrets redacted (REDACT_PATHS), written to
 * `destination` (stdout by default) as each line is logged - or, with `buffered`, through a
 * buffer (BufferedLog) to `buffered.dest` (`destination` is then not used).
 *
 * The buffer's trade-off: a line reaches the destination up to `flushMs` after it was logged,
 * and a process that dies without running its exit handlers (kill -9, the OOM killer, a crash of
 * node itself) loses the lines still buffered - at most `minLength` bytes or `flushMs` of them.
 * The journal and the tables are the record of what happened, not the log. Nothing else is lost:
 * the buffer is written out synchronously when the process exits (process.exit - the SIGTERM/SIGINT
 * shutdown ends with it -, an empty event loop, an uncaught exception or rejection), an `error`
 * or `fatal` line is written at once with everything before it, and `logger.flush()` writes it
 * out on demand (the server does after its "concord listening" line). The writes are synchronous
 * (sonic-boom `sync: true`): a buffer is never half in flight when the process exits, and lines
 * keep their order; a destination that blocks (a full pipe) blocks the process, as Node's own
 * stdout does on a pipe.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, opts: { buffered?: BufferedLog } = {}): Logger {
  const options = { level, base: { service: 'concord' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (!opts.buffered) return destination ? pino(options, destination as never) : pino(options);
  const { dest = 1, minLength = 4096, flushMs = 1000 } = opts.buffered;
  const boom = pino.destination({ dest, sync: true, minLength });
  if (buffers.size === 0) process.on('exit', flushAllSync);
  buffers.add(boom);
  let pending = false;
  const flush = () => {
    pending = false;
    boom.flush();
  };
  setInterval(() => pending && flush(), flushMs).unref();
  return pino(
    {
      ...options,
      hooks: {
        logMethod(args, method, lineLevel) {
          method.apply(this, args);
          pending = true;
          if (lineLevel >= 50) flush(); // error and fatal: out now, with every line before them
        },
      },
    },
    boom,
  );
}
