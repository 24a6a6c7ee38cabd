/**
 * The torture suite's only randomness: a seeded mulberry32 stream with the
 * few helpers the generator needs. Streams are derived by label from the
 * scenario seed, so adding a draw in one concern (say, entry sizes) does not
 * shift the choices of another (say, crash policies): a seed keeps meaning
 * roughly the same scenario while the generator evolves.
 */

export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A new stream keyed by this stream's seed material and `label`. */
  static derive(seed: number, ...labels: (string | number)[]): Rng {
    let h = (seed ^ 0x811c9dc5) >>> 0;
    for (const label of labels) {
      const text = String(label);
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
      h = Math.imul(h ^ 0xff, 0x01000193) >>> 0;
    }
    // Mix the high half of the seed too: seeds above 2^32 stay distinct.
    h = Math.imul(h ^ Math.floor(seed / 0x1_0000_0000), 0x01000193) >>> 0;
    return new Rng(h);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [min, max], inclusive. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  /** Picks a key with probability proportional to its weight (weights must not all be 0). */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const key of keys) total += weights[key];
    let at = this.next() * total;
    for (const key of keys) {
      at -= weights[key];
      if (at < 0 && weights[key] > 0) return key;
    }
    return keys.filter((k) => weights[k] > 0).at(-1)!;
  }

  /** A 32-bit integer, for seeding further engines and FaultFs instances. */
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
}
