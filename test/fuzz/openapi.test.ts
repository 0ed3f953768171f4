import { afterAll, beforeAll, expect, it } from 'vitest';
import { fuzz, prng } from './openapi-fuzzer.js';
import { fuzzServer } from './server.js';

/**
 * Every route of the OpenAPI document under hostile input, with a fixed seed (the same cases on
 * every run; `npm run fuzz` runs more with other seeds): no 5xx, every 4xx a problem document,
 * no hang, and the heap back near where it started.
 */
let s: Awaited<ReturnType<typeof fuzzServer>>;
beforeAll(async () => {
  s = await fuzzServer();
});
afterAll(async () => s.close());

it('answers every hostile request below 500, as a problem document, and gives its memory back', async () => {
  // warm-up: the first request of each route compiles code and fills caches that stay
  await fuzz({ port: s.port, tokens: s.tokens, seed: 1, casesPerOperation: 2 });
  const before = s.heapAfterGc();
  const report = await fuzz({ port: s.port, tokens: s.tokens, seed: 20261207, casesPerOperation: 16, timeoutMs: 15_000 });
  const after = s.heapAfterGc();
  expect(report.operations).toBeGreaterThan(30);
  expect(report.failures, JSON.stringify(report.failures.slice(0, 10), null, 1)).toEqual([]);
  // the fuzz run itself must have gone through every kind of answer, or it proved nothing
  expect(Object.keys(report.byStatus).filter((k) => /^4\d\d$/.test(k)).length).toBeGreaterThan(3);
  expect(after - before).toBeLessThan(32 * 1024 * 1024);
}, 240_000);

it('the generator is deterministic for a seed', () => {
  const a = prng(42);
  const b = prng(42);
  expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
});
