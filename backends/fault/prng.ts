/**
 * The only source of randomness in FaultFs. `Math.random` is banned in the
 * simulation because a failing run must replay exactly from its seed.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128 bits of state, 32-bit
 * output, good statistical quality and a few lines of integer arithmetic that
 * JavaScript does exactly with `Math.imul` and `>>> 0`. Its state is filled
 * by splitmix32 from a 32-bit key, as the authors recommend (an all-zero
 * state would be a fixed point).
 *
 * Streams are derived by key, not drawn from one shared generator: every
 * concern (a probability rule, a crash of one file, the bit-flip picker) gets
 * `derivePrng(seed, 'concern', 'path', …)`. Consuming numbers for one file
 * therefore never shifts the numbers another file sees, so interleaving
 * operations on unrelated files does not change outcomes (Pebble's
 * `errorfs.Randomly` keys its PRNG by path for the same reason).
 */

/** FNV-1a over the UTF-16 code units of `text`, continuing from `hash`. */
function fnv1a(hash: number, text: string): number {
  let h = hash >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** One splitmix32 step: a strong 32-bit mixer used to expand a key into state. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Seeds the 128-bit state from a 32-bit key through splitmix32. */
  constructor(key: number) {
    let x = key >>> 0;
    x = splitmix32(x);
    this.#s0 = x;
    x = splitmix32(x);
    this.#s1 = x;
    x = splitmix32(x);
    this.#s2 = x;
    x = splitmix32(x);
    this.#s3 = x;
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n) for 0 < n ≤ 2^32; 0 when n ≤ 1. */
  below(n: number): number {
    if (n <= 1) return 0;
    // Multiply-shift instead of modulo: unbiased enough for fault picking and
    // exact in doubles because both factors are < 2^32.
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] inclusive. */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.below(items.length)];
    if (item === undefined) throw new RangeError('Prng.pick: empty list');
    return item;
  }

  /** Fills `target` with random bytes. */
  fill(target: Uint8Array): void {
    for (let i = 0; i < target.length; i += 4) {
      let word = this.nextU32();
      for (let j = i; j < Math.min(i + 4, target.length); j++) {
        target[j] = word & 0xff;
        word >>>= 8;
      }
    }
  }
}

/**
 * Folds a user seed (any safe integer, negative allowed) and a list of keys
 * into a 32-bit key. Both halves of the seed count, so seeds that differ only
 * above bit 32 still give different streams.
 */
export function streamKey(seed: number, keys: readonly (string | number)[]): number {
  const lo = Number(BigInt.asUintN(32, BigInt(Math.trunc(seed))));
  const hi = Number(BigInt.asUintN(32, BigInt(Math.trunc(seed)) >> 32n));
  let h = fnv1a(0x811c9dc5, `${lo}:${hi}`);
  for (const key of keys) h = fnv1a(splitmix32(h), `/${String(key)}`);
  return splitmix32(h);
}

/** A fresh generator for one concern, independent of every other stream. */
export function derivePrng(seed: number, ...keys: (string | number)[]): Prng {
  return new Prng(streamKey(seed, keys));
}
