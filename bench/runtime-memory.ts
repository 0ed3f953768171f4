/** Touches 100,000 actors through a runtime with a 10,000-actor cache and prints the RSS. */
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { benchLog } from './lib.js';
import { benchType } from './machines.js';

const TOUCH = 100_000;
const config = loadConfig({ DATABASE_URL: process.env.DATABASE_URL, LOG_LEVEL: 'warn', ACTOR_CACHE_SIZE: '10000' });
const rt = await createRuntime({ config, registry: new Registry([benchType]), log: benchLog, run: { timers: false, relay: false } });
await rt.start();
const t0 = performance.now();
let next = 0;
let peak = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (next < TOUCH) {
      const i = next++;
      await rt.host.send({ type: 'bench', id: `m${i}` }, { type: 'bench.tick', i });
      if (i % 5000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
  }),
);
const secs = (performance.now() - t0) / 1000;
peak = Math.max(peak, process.memoryUsage().rss);
console.log(
  `memory: ${TOUCH.toLocaleString()} actors touched in ${secs.toFixed(1)} s (${Math.round(TOUCH / secs)}/s), cache holds ${rt.host.cached.toLocaleString()}, peak RSS ${(peak / 2 ** 20).toFixed(0)} MB`,
);
await rt.stop();
process.exit(0);
