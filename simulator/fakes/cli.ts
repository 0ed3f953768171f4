/**
 * Runs the marketplace fakes on fixed ports until interrupted, and prints the variables that
 * point Concord at them:
 *
 *   npx tsx simulator/fakes/cli.ts --shopify-port 4010 --ml-port 4020 --skus 20
 */
import { parseArgs } from 'node:util';
import { startMarketplaceFakes } from './index.js';

const { values } = parseArgs({
  options: {
    'shopify-port': { type: 'string', default: '4010' },
    'ml-port': { type: 'string', default: '4020' },
    skus: { type: 'string', default: '10' },
  },
});

const fakes = await startMarketplaceFakes({
  shopify: { port: Number(values['shopify-port']) },
  mercadolibre: { port: Number(values['ml-port']) },
  seedSkus: Array.from({ length: Number(values.skus) }, (_, i) => ({ sku: `DEMO-${String(i + 1).padStart(3, '0')}`, quantity: 10 })),
});
for (const [k, v] of Object.entries(fakes.env)) console.log(`${k}=${v}`);
const stop = () => void fakes.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
