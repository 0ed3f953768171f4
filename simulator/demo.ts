/**
 * `npm run demo`: Concord (runtime, HTTP edge, saga intake) and the four simulated services in
 * one process, so the README tour completes an order end to end. Embedded by default (embedded
 * Postgres, in-process bus); with DATABASE_URL / NATS_URL set it uses the real servers and the
 * simulator speaks to Concord over NATS.
 *
 *   npm run demo -- --latency 200 --payment-failure-rate 0.2 --silent PAYMENT_PROCESSING
 *
 * Options: `--latency <ms>` (or `<min>-<max>`), `--<step>-failure-rate` for inventory, payment
 * and delivery, `--silent <STEP>` (repeatable: that step or compensation never answers).
 */
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { resolveJwtSecret } from '../http/auth/secret.js';
import { actorTypes } from '../machines/index.js';
import { loadConfig } from '../runtime/config.js';
import { createLogger } from '../runtime/logger.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { BusLink, NatsServiceLink } from './links.js';
import { ServiceSimulator, type SimulatorBehavior } from './services.js';

function behaviorFromArgs(args: string[]): SimulatorBehavior {
  const { values } = parseArgs({
    args,
    options: {
      latency: { type: 'string', default: '50' },
      'inventory-failure-rate': { type: 'string', default: '0' },
      'payment-failure-rate': { type: 'string', default: '0' },
      'delivery-failure-rate': { type: 'string', default: '0' },
      silent: { type: 'string', multiple: true, default: [] },
    },
  });
  const [min, max] = values.latency.split('-').map(Number);
  return {
    latencyMs: max === undefined ? min! : { min: min!, max },
    failureRate: {
      INVENTORY_RESERVATION: Number(values['inventory-failure-rate']),
      PAYMENT_PROCESSING: Number(values['payment-failure-rate']),
      DELIVERY_SCHEDULING: Number(values['delivery-failure-rate']),
    },
    silentAttempts: Object.fromEntries(values.silent.map((s) => [s, Infinity])),
  };
}

async function main(): Promise<void> {
  const behavior = behaviorFromArgs(process.argv.slice(2));
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const jwt = await resolveJwtSecret(config);
  const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log });
  const services = createServices({ runtime, log });
  await runtime.start();
  await services.start();
  const servicePrefix = config.saga.servicePrefix;
  const link = runtime.nats?.link
    ? new NatsServiceLink(runtime.nats.link.nc, { natsPrefix: config.nats.prefix, servicePrefix, log })
    : new BusLink(runtime.bus, servicePrefix, log);
  const sim = new ServiceSimulator({ link, servicePrefix, log, seed: Date.now() % 1_000_000, ...behavior });
  await sim.start();
  const app = createApp({ services, log, jwtSecret: jwt.secret, defaultMetrics: true });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    const token = signToken({ sub: 'demo-operator', role: 'operator', exp: Math.floor(Date.now() / 1000) + 86_400 }, jwt.secret);
    process.stdout.write(
      `\nConcord demo on http://localhost:${info.port} with simulated ${sim.services.join(', ')} services ` +
        `(${config.natsUrl ? 'over NATS' : 'in-process'}; latency ${JSON.stringify(behavior.latencyMs)} ms).\n` +
        `Operator token (24 h):\n  export TOKEN=${token}\nThen follow the tour in docs/saga.md.\n\n`,
    );
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs).unref();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sim.stop();
    await services.stop();
    await runtime.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

main().catch((err) => {
  console.error('demo failed to start:', err);
  process.exit(1);
});
