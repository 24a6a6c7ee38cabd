/**
 * The write path's CRC32C: the small-input JS path and the addon's one-call
 * batch checksum must give exactly the bytes the binding gives call by call
 * (the format does not change with the path that computed it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32c as bindingCrc32c } from '@node-rs/crc32';

import { loadNativeBatchChecksum } from '../hardware/native.js';
import { decodePayload } from '../src/format/batch-codec.js';
import { checksumBatch, crc32c, installBatchChecksum, portableBatchChecksum } from '../src/format/checksum.js';
import { RECORD_HEADER_SIZE } from '../src/format/layout.js';
import { LogBatch } from '../src/log-batch.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const native = loadNativeBatchChecksum();
const noNative = native === undefined ? 'the addon (with CRC32C instructions) is not available here' : false;

/** A payload-like buffer with `count` entries at random places, each with 4 bytes of room before it. */
function randomLayout(prng: Random): {
  bytes: Uint8Array;
  start: number;
  end: number;
  offsets: Uint32Array;
  lengths: Uint32Array;
  count: number;
} {
  const start = prng.below(40);
  const count = prng.below(9);
  const offsets = new Uint32Array(Math.max(count, 1) + prng.below(3));
  const lengths = new Uint32Array(offsets.length);
  let at = prng.below(12);
  for (let i = 0; i < count; i++) {
    at += 4;
    offsets[i] = at;
    lengths[i] = prng.below(300);
    at += lengths[i]! + prng.below(20);
  }
  const end = start + at;
  const bytes = prng.bytes(end + prng.below(30));
  return { bytes, start, end, offsets, lengths, count };
}

describe('crc32c', () => {
  it('matches the standard check value and the binding for small inputs, under any seed', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
    const seed = testSeed(20);
    const prng = new Random(seed);
    for (let round = 0; round < 2000; round++) {
      const bytes = prng.bytes(prng.below(70));
      const salt = round % 3 === 0 ? 0xffffffff - prng.below(1000) : Math.floor(prng.next() * 2 ** 32);
      assert.equal(crc32c(bytes, salt), bindingCrc32c(Buffer.from(bytes), salt) >>> 0, `seed ${seed}, round ${round}`);
    }
  });
});

describe('checksumBatch', () => {
  it('the portable path writes each entry CRC before it and returns the payload CRC over them', () => {
    const seed = testSeed(21);
    const prng = new Random(seed);
    for (let round = 0; round < 200; round++) {
      const { bytes, start, end, offsets, lengths, count } = randomLayout(prng);
      const payloadCrc = portableBatchChecksum(bytes, start, end, offsets, lengths, count);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < count; i++) {
        const at = start + offsets[i]!;
        assert.equal(view.getUint32(at - 4, true), crc32c(bytes.subarray(at, at + lengths[i]!)), `seed ${seed}, round ${round}`);
      }
      assert.equal(payloadCrc, crc32c(bytes.subarray(start, end)), `seed ${seed}, round ${round}`);
    }
  });

  it("the addon gives the portable path's bytes and CRC in one call", { skip: noNative }, () => {
    const seed = testSeed(22);
    const prng = new Random(seed);
    for (let round = 0; round < 500; round++) {
      const layout = randomLayout(prng);
      const copy = layout.bytes.slice();
      const expected = portableBatchChecksum(copy, layout.start, layout.end, layout.offsets, layout.lengths, layout.count);
      const got = native!(layout.bytes, layout.start, layout.end, layout.offsets, layout.lengths, layout.count);
      assert.equal(got >>> 0, expected, `seed ${seed}, round ${round}`);
      assert.deepEqual(layout.bytes, copy, `seed ${seed}, round ${round}`);
    }
  });

  it('the addon refuses an entry outside the payload and writes nothing', { skip: noNative }, () => {
    const bytes = new Uint8Array(64).fill(9);
    const before = bytes.slice();
    const offsets = Uint32Array.of(8, 40);
    assert.throws(() => native!(bytes, 0, 48, offsets, Uint32Array.of(4, 9), 2), /outside the payload/);
    assert.throws(() => native!(bytes, 0, 48, Uint32Array.of(2), Uint32Array.of(4), 1), /outside the payload/);
    assert.throws(() => native!(bytes, 0, 65, offsets, Uint32Array.of(4, 4), 2), /out of range/);
    assert.throws(() => native!(bytes, 0, 48, offsets, Uint32Array.of(4, 4), 3), /out of range/);
    assert.deepEqual(bytes, before);
  });

  it('a batch, and an empty one, seals to the same record bytes with the addon installed and without', { skip: noNative }, () => {
    const seed = testSeed(23);
    const build = (): LogBatch => {
      const inner = new Random(seed);
      const batch = new LogBatch();
      for (let region = 1; region <= 3; region++) {
        batch.addEntries(
          region,
          Array.from({ length: 1 + inner.below(5) }, (_, i) => ({ index: 1 + i, term: 2, data: inner.bytes(inner.below(2000)) })),
        );
        batch.put(region, 'hard_state', inner.bytes(32));
      }
      return batch;
    };
    try {
      installBatchChecksum(undefined);
      const portable = build().seal(Number.POSITIVE_INFINITY);
      installBatchChecksum(native);
      const fast = build().seal(Number.POSITIVE_INFINITY);
      assert.deepEqual(fast.bytes.subarray(RECORD_HEADER_SIZE), portable.bytes.subarray(RECORD_HEADER_SIZE), `seed ${seed}`);
      assert.equal(fast.payloadCrc, portable.payloadCrc);
      // Every entry's CRC verifies where the format puts it.
      assert.equal(decodePayload(fast.payload, true).entryCount, fast.items.entryCount);
      // An empty batch (the seal record a clean close writes) has no buffer until sealed.
      assert.equal(new LogBatch().seal(Number.POSITIVE_INFINITY).payloadCrc, crc32c(new Uint8Array(0)));
      assert.equal(
        checksumBatch(
          fast.bytes,
          RECORD_HEADER_SIZE,
          RECORD_HEADER_SIZE + fast.payloadLength,
          fast.items.entryOffsets,
          fast.items.entryLengths,
          fast.items.entryCount,
        ),
        fast.payloadCrc,
      );
    } finally {
      installBatchChecksum(undefined);
    }
  });
});
