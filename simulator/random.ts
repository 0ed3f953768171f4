/**
 * mulberry32: a small, fast seeded generator. Everything that draws at random for a reproducible
 * run (the simulated services, the fuzzer, the tests' fault schedules) takes its draws from one
 * of these, so a failing run replays with its seed.
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
