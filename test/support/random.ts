/**
 * The one seeded random source of the tests and benchmarks: pure-rand's
 * Mersenne Twister (MT19937) behind the few draws they need. A seed names a
 * whole run, so a failing randomized test prints its seed and `SEED=n`
 * (test/support/seed.ts) replays it. `Math.random` is never used: a
 * failure that cannot be replayed cannot be fixed.
 *
 * MT19937 rather than pure-rand's xoroshiro128+: its seeding spreads a small
 * seed over the whole state, so neighbouring seeds (1, 2, 3, … as the
 * torture suite runs them) start on unrelated streams, where xoroshiro128+
 * returns the seed itself as its first draw.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { mersenne } from 'pure-rand/generator/mersenne';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

export class Random {
  readonly #generator: RandomGenerator;

  /** Any safe integer: the high half is folded into the low one (xor), so it changes the stream too. */
  constructor(seed: number) {
    this.#generator = mersenne((seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0);
  }

  /**
   * A stream keyed by `seed` and `labels` (FNV-1a over the labels). Each
   * concern of a scenario draws from its own stream, so adding a draw in one
   * (say, entry sizes) does not shift the choices of another (say, crash
   * policies): a seed keeps meaning roughly the same scenario while the
   * generator that uses it evolves.
   */
  static derive(seed: number, ...labels: (string | number)[]): Random {
    let h = (seed ^ 0x811c9dc5) >>> 0;
    for (const label of labels) {
      const text = String(label);
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
      h = Math.imul(h ^ 0xff, 0x01000193) >>> 0;
    }
    h = Math.imul(h ^ Math.floor(seed / 0x1_0000_0000), 0x01000193) >>> 0;
    return new Random(h);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return uniformFloat64(this.#generator);
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    if (!(n >= 1)) throw new RangeError(`below(${n}): the range is empty`);
    return uniformInt(this.#generator, 0, n - 1);
  }

  /** Uniform integer in [min, max], inclusive. */
  between(min: number, max: number): number {
    return uniformInt(this.#generator, min, max);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  /** Picks a key with probability proportional to its weight (weights must not all be 0). */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = (Object.keys(weights) as K[]).filter((key) => weights[key] > 0);
    if (keys.length === 0) throw new RangeError('weighted: every weight is 0');
    let total = 0;
    for (const key of keys) total += weights[key];
    let at = this.next() * total;
    for (const key of keys) {
      at -= weights[key];
      if (at < 0) return key;
    }
    return keys.at(-1)!;
  }

  /** A 32-bit unsigned integer, for seeding further engines and FaultFs instances. */
  u32(): number {
    return this.#generator.next() >>> 0;
  }

  /** `length` uniform bytes (incompressible: four per draw). */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      let word = this.#generator.next();
      for (let k = i; k < Math.min(i + 4, length); k++, word >>>= 8) out[k] = word & 0xff;
    }
    return out;
  }
}
