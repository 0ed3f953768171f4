/**
 * The server under test in its own process, so the load generator does not share its event loop:
 * a benchmark script calls `serveConcord()` when started with `--serve`, and `spawnServer()`
 * from its main part to start itself that way and learn the port.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from '../http/app.js';
import { actorTypes } from '../machines/index.js';
import { credentialKey, loadConfig } from '../runtime/config.js';
import type { Logger } from '../runtime/logger.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices, type Services } from '../services/index.js';
import { KeyRing } from '../services/integrations/vault.js';
import { benchLog } from './lib.js';

/** Runs Concord from the environment (JWT_SECRET set by the parent), prints `READY <port>`, stops on SIGTERM. */
export async function serveConcord(o: { prepare?: (services: Services) => Promise<void>; requestLog?: Logger } = {}): Promise<void> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
  const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log: benchLog });
  const services = createServices({ runtime, log: benchLog, credentialKeys: new KeyRing([credentialKey('bench', randomBytes(32))]) });
  await runtime.start();
  await services.start();
  await o.prepare?.(services);
  const app = createApp({ services, log: o.requestLog ?? benchLog, jwtSecret: process.env.JWT_SECRET! });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
  process.once('SIGTERM', async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await services.stop();
    await runtime.stop();
    process.exit(0);
  });
}

/** Starts `script --serve` with `env` and answers its port and how to stop it. */
export async function spawnServer(script: string, env: NodeJS.ProcessEnv): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const check = setInterval(() => {
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearInterval(check);
        resolve(Number(m[1]));
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(check);
      reject(new Error(`server exited with ${code}`));
    });
  });
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
