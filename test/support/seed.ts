/**
 * Seeds for randomized tests: SEED=n replays a run. Every randomized test
 * puts its seed in the failure message and draws from test/support/random.ts.
 */
export function testSeed(fallback: number): number {
  const fromEnv = process.env.SEED;
  if (fromEnv === undefined || fromEnv === '') return fallback;
  const seed = Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`SEED must be an integer, got ${fromEnv}`);
  return seed;
}
