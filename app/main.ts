import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { resolveJwtSecret } from '../http/auth/secret.js';
import { listen } from '../http/server.js';
import { actorTypes } from '../machines/index.js';
import { loadConfig } from '../runtime/config.js';
import { isConcordError } from '../runtime/errors.js';
import { createLogger } from '../runtime/logger.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { resolveCredentialKeys } from '../services/integrations/keys.js';

/** `npm start`: the runtime and the HTTP edge in one process, stopped cleanly by SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(isConcordError(err) ? err.message : err);
    process.exit(78); // EX_CONFIG
  }
  // buffered: one write per ~4 KB of lines, not one per request line (runtime/logger.ts has the
  // trade-off: a kill -9 loses at most the last second of lines; exits and error lines flush)
  const log = createLogger(config.logLevel, undefined, { buffered: {} });
  let jwt;
  let credentials;
  try {
    jwt = await resolveJwtSecret(config);
    credentials = await resolveCredentialKeys(config);
  } catch (err) {
    console.error(isConcordError(err) ? err.message : err);
    process.exit(78);
  }
  // one connector map: the services register the connectors they implement (`integration`)
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log, connectors });
  const services = createServices({ runtime, log, credentialKeys: credentials.ring, connectors });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log, jwtSecret: jwt.secret, defaultMetrics: true });
  const { server, port } = await listen(app.fetch, { port: config.port, hostname: config.host });
  log.info({ port, host: config.host, embeddedDatabase: !config.databaseUrl, nats: Boolean(config.natsUrl) }, 'concord listening');
  log.flush(); // the line operators and scripts wait for, out now
  if (!config.databaseUrl && !config.jwtSecret) {
    // the embedded default prints one operator token (24 h) so the README tour works by copy and paste
    const token = signToken({ sub: 'local-operator', role: 'operator', exp: Math.floor(Date.now() / 1000) + 86_400 }, jwt.secret);
    process.stdout.write(`\nOperator token (24 h; more with \`npm run token -- --role operator\`):\n  export TOKEN=${token}\n\n`);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    // the console's live pages hold their connections open: end them, or the close below waits for them
    services.watch.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.stop();
    await runtime.stop();
    process.exit(0);
  };
  // the runtime stops first and the embedded PostgreSQL last (runtime.stop() closes the database);
  // the embedded server runs in its own process group, so a terminal's Ctrl-C reaches only us
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  // a failure we can explain is one line that says what to do; anything else keeps its stack
  if (isConcordError(err)) console.error(`concord failed to start: ${err.message}`);
  else console.error('concord failed to start:', err);
  process.exit(1);
});
