import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { listen } from '../../http/server.js';
import { harness, type Harness } from '../http/harness.js';

/** Providers and the vault configured (with keys that reach nothing), so no route answers the 503 of an unconfigured server. */
export const FUZZ_ENV = {
  // a vault key: without one, routes that store a secret rightly answer 503 (the server is not configured)
  CREDENTIALS_KEYS: `fuzz:${randomBytes(32).toString('base64')}`,
  SHOPIFY_API_KEY: 'fuzz-key',
  SHOPIFY_API_SECRET: 'fuzz-secret',
  ML_CLIENT_ID: 'fuzz-id',
  ML_CLIENT_SECRET: 'fuzz-secret',
  ML_WEBHOOK_SECRET: 'fuzz-webhook',
};

/** The harness's app on a real port (the fuzzer speaks raw HTTP/1.1), and a forced GC for memory checks. */
export async function fuzzServer(): Promise<{ h: Harness; port: number; tokens: string[]; heapAfterGc: () => number; close: () => Promise<void> }> {
  const h = await harness({ env: FUZZ_ENV });
  const { server, port } = await listen(h.app.fetch, { port: 0, hostname: '127.0.0.1' });
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heapAfterGc = () => {
    for (let i = 0; i < 3; i++) gc();
    return process.memoryUsage().heapUsed;
  };
  const tokens = [`Bearer ${h.token('operator')}`, `Bearer ${h.token('vendor', 'vendor-fuzz')}`, `Bearer ${h.token('partner', 'partner-fuzz')}`, 'Bearer not.a.token', 'Basic Zm9vOmJhcg=='];
  return {
    h,
    port,
    tokens,
    heapAfterGc,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await h.close();
    },
  };
}
