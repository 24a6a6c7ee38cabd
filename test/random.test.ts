/**
 * The shared seeded generator (test/support/random.ts): replayable, on the
 * reference MT19937 stream, and its draws stay inside their ranges.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from './support/random.js';

const draws = (random: Random, count: number): number[] => Array.from({ length: count }, () => random.u32());

describe('Random', () => {
  it('is the reference MT19937 stream (seed 5489, the reference default)', () => {
    // The first outputs of the reference implementation's genrand_int32 after init_genrand(5489).
    assert.deepEqual(draws(new Random(5489), 3), [3499211612, 581869302, 3890346734]);
  });

  it('replays: the same seed or the same labels give the same draws, others differ', () => {
    assert.deepEqual(draws(new Random(7), 50), draws(new Random(7), 50));
    assert.notDeepEqual(draws(new Random(7), 50), draws(new Random(8), 50));
    assert.deepEqual(draws(Random.derive(7, 'ops', 2), 50), draws(Random.derive(7, 'ops', 2), 50));
    assert.notDeepEqual(draws(Random.derive(7, 'ops', 2), 50), draws(Random.derive(7, 'ops', 3), 50));
    assert.notDeepEqual(draws(Random.derive(7, 'ops'), 50), draws(Random.derive(7 + 2 ** 32, 'ops'), 50), 'the high half of a seed counts');
  });

  it('keeps every draw in its range', () => {
    const random = new Random(11);
    for (let i = 0; i < 2000; i++) {
      const n = 1 + random.below(1000);
      const below = random.below(n);
      assert.ok(Number.isInteger(below) && below >= 0 && below < n, `below(${n}) = ${below}`);
      const between = random.between(-n, n);
      assert.ok(Number.isInteger(between) && between >= -n && between <= n, `between(${-n}, ${n}) = ${between}`);
      const next = random.next();
      assert.ok(next >= 0 && next < 1, `next() = ${next}`);
    }
    assert.throws(() => random.below(0), RangeError);
    assert.throws(() => random.pick([]), RangeError);
  });

  it('weighted never picks a key of weight 0, and picks the others in proportion', () => {
    const random = new Random(3);
    const counts = { never: 0, once: 0, thrice: 0 };
    for (let i = 0; i < 8000; i++) counts[random.weighted({ never: 0, once: 1, thrice: 3 })]++;
    assert.equal(counts.never, 0);
    assert.ok(counts.thrice > 2.5 * counts.once && counts.thrice < 3.5 * counts.once, JSON.stringify(counts));
    assert.throws(() => random.weighted({ a: 0 }), RangeError);
  });

  it('bytes fills every length, the tail of a partial word included', () => {
    for (let length = 0; length <= 9; length++) assert.equal(new Random(1).bytes(length).length, length);
    // A prefix of a longer draw: the same words, cut.
    assert.deepEqual(new Random(1).bytes(7), new Random(1).bytes(8).subarray(0, 7));
    const many = new Random(2).bytes(4096);
    assert.ok(new Set(many).size > 200, 'the bytes spread over the byte values');
  });
});
