/** `npm run bench`: runs every benchmark script in bench/ in turn and prints their tables. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const only = process.argv.slice(2);
const scripts = [
  'runtime.ts',
  'nats.ts',
  'http.ts',
  'events.ts',
  'delivery.ts',
  'delivery-http.ts',
  'saga.ts',
  'webhooks.ts',
  'outbound.ts',
  'sync.ts',
  'sync-speed.ts',
  'registry.ts',
  'playbooks.ts',
  'playbook-steps.ts',
  'console.ts',
  'traces.ts',
  'quotas.ts',
  'fairness.ts',
  'ratios.ts',
  'log-line.ts',
].filter(
  (s) => existsSync(fileURLToPath(new URL(`./${s}`, import.meta.url))) && (only.length === 0 || only.some((o) => s.startsWith(o))),
);
for (const s of scripts) {
  console.log(`\n# bench/${s}`);
  execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`./${s}`, import.meta.url))], { stdio: 'inherit', env: process.env });
}
