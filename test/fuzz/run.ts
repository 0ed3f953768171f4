/**
 * `npm run fuzz [-- --seed N --cases N]`: the OpenAPI fuzzer at full size against a server over
 * a fresh database (DATABASE_URL's PostgreSQL, or an embedded one). Prints the answers by status,
 * every failure, and the heap before and after (after a forced GC). Exits 1 on any failure.
 */
import { parseArgs } from 'node:util';
import { fuzz } from './openapi-fuzzer.js';
import { fuzzServer } from './server.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, cases: { type: 'string', default: '200' } } });
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const cases = Number(values.cases);

const s = await fuzzServer();
try {
  await fuzz({ port: s.port, tokens: s.tokens, seed: 1, casesPerOperation: 2 });
  const before = s.heapAfterGc();
  const started = Date.now();
  let last = 0;
  const report = await fuzz({
    port: s.port,
    tokens: s.tokens,
    seed,
    casesPerOperation: cases,
    onProgress: (done, total) => {
      if (Date.now() - last > 2_000 || done === total) {
        last = Date.now();
        process.stderr.write(`\r${done}/${total} requests`);
      }
    },
  });
  const after = s.heapAfterGc();
  process.stderr.write('\n');
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(`seed ${seed}: ${report.requests} requests over ${report.operations} operations in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`answers: ${Object.entries(report.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  console.log(`heap after GC: ${mb(before)} MB before, ${mb(after)} MB after`);
  console.log(report.failures.length === 0 ? 'failures: none' : `failures: ${report.failures.length}`);
  for (const f of report.failures.slice(0, 50)) console.log(`  ${f.operation} [${f.mutation}] -> ${f.status}: ${f.detail}`);
  process.exitCode = report.failures.length === 0 ? 0 : 1;
} finally {
  await s.close();
}
