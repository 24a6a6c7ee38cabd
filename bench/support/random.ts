/**
 * The benchmarks' randomness: the tests' seeded generator
 * (test/support/random.ts) under one fixed seed, so every run drives every
 * store through the same region choices and the same bytes, and a
 * difference between two runs is the store's, not the dice's.
 */
import { Random } from '../../test/support/random.js';

const BENCH_SEED = 0x5eed_be4c;

/** The stream for one concern of a benchmark (`'w3-reads'`, `'data'`, …). */
export function benchRandom(concern: string): Random {
  return Random.derive(BENCH_SEED, concern);
}
