import { afterAll, beforeAll, expect, it } from 'vitest';
import { fuzz, prng } from './openapi-fuzzer.js';
import { fuzzServer } from './server.js';

/**
 * Every route of the OpenAPI document under hostile input: no 5xx, every 4xx a problem document,
 * no hang, and the heap back near where it started. CI runs a fixed seed (the same cases on every
 * run); `npm run fuzz` runs 200 cases per operation with a fresh seed (FUZZ_SEED and FUZZ_CASES
 * set them) and prints the report.
 */
const CASES = Number(process.env.FUZZ_CASES ?? 16);
const SEED = process.env.FUZZ_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED ?? 20261207);

let s: Awaited<ReturnType<typeof fuzzServer>>;
beforeAll(async () => {
  s = await fuzzServer();
});
afterAll(async () => s.close());

it('answers every hostile request below 500, as a problem document, and gives its memory back', async () => {
  // warm-up: the first request of each route compiles code and fills caches that stay
  await fuzz({ port: s.port, tokens: s.tokens, seed: 1, casesPerOperation: 2 });
  const before = s.heapAfterGc();
  const started = Date.now();
  let last = 0;
  const report = await fuzz({
    port: s.port,
    tokens: s.tokens,
    seed: SEED,
    casesPerOperation: CASES,
    timeoutMs: 15_000,
    onProgress: (done, total) => {
      if (Date.now() - last > 5_000) {
        last = Date.now();
        process.stderr.write(`fuzz: ${done}/${total} requests\n`);
      }
    },
  });
  const after = s.heapAfterGc();
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    [
      `fuzz seed ${SEED}: ${report.requests} requests over ${report.operations} operations in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      `answers: ${Object.entries(report.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')}`,
      `heap after GC: ${mb(before)} MB before, ${mb(after)} MB after`,
      `failures: ${report.failures.length}`,
    ].join('\n'),
  );
  expect(report.operations).toBeGreaterThan(30);
  expect(report.failures, JSON.stringify(report.failures.slice(0, 10), null, 1)).toEqual([]);
  // the run must have gone through several kinds of refusal, or it proved nothing
  expect(Object.keys(report.byStatus).filter((k) => /^4\d\d$/.test(k)).length).toBeGreaterThan(3);
  expect(after - before).toBeLessThan(32 * 1024 * 1024);
}, 60 * 60_000);

it('the generator is deterministic for a seed', () => {
  const a = prng(42);
  const b = prng(42);
  expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
});
