/**
 * Payload lz4 (src/format/compression.ts): the addon's codec and lz4-napi
 * write and read the same format, so each decodes the other's blocks; the
 * addon's never writes past its limit, and malformed blocks give an error,
 * never an access outside the given ranges. A log written with either codec
 * reopens and reads with the other.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { compressSync, uncompressSync } from 'lz4-napi';

import { MemFs } from '../backends/memfs.js';
import { loadNativeLz4 } from '../hardware/native.js';
import { Engine } from '../src/engine.js';
import { Lz4DecodeFailure, Lz4FormatError, decompress, installCompression, portableLz4, type Lz4Codec } from '../src/format/compression.js';
import { LogBatch } from '../src/log-batch.js';
import type { Entry } from '../src/protos.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const native = loadNativeLz4();
const noNative = native === undefined ? 'the native addon is not built here' : false;
const FAILURES = new Set<number>(Object.values(Lz4DecodeFailure));
const CANARY = 0xa5;
const WORDS = ['raft', 'log', 'entry', 'term', 'index', 'commit', 'the', 'a', 'of', 'region', 'snapshot', 'vote'];

type Kind = 'random' | 'zeros' | 'half' | 'pattern' | 'text';
const KINDS: readonly Kind[] = ['random', 'zeros', 'half', 'pattern', 'text'];
const SIZES = [...Array.from({ length: 41 }, (_, i) => i), 4096, 64 << 10, 1 << 20];

function input(prng: Random, kind: Kind, size: number, period = 1 + prng.below(8)): Uint8Array {
  switch (kind) {
    case 'random':
      return prng.bytes(size);
    case 'zeros':
      return new Uint8Array(size);
    case 'half': {
      const out = new Uint8Array(size);
      out.set(prng.bytes(size >> 1));
      return out;
    }
    case 'pattern': {
      // A period of 1..8 bytes: matches overlap their own output (offset < length).
      const unit = prng.bytes(period);
      return Uint8Array.from({ length: size }, (_, i) => unit[i % period]!);
    }
    case 'text': {
      let text = '';
      while (text.length < size) text += `${prng.pick(WORDS)}${prng.chance(0.1) ? '.\n' : ' '}`;
      return new TextEncoder().encode(text.slice(0, size));
    }
  }
}

/** `bytes` placed at `at` in a larger array of canaries, to see writes outside a range. */
function withCanaries(length: number, at: number, tail: number): Uint8Array {
  return new Uint8Array(at + length + tail).fill(CANARY);
}

function assertCanaries(bytes: Uint8Array, start: number, end: number, message: string): void {
  for (let i = 0; i < start; i++) assert.equal(bytes[i], CANARY, `${message}: byte ${i} before the range changed`);
  for (let i = end; i < bytes.length; i++) assert.equal(bytes[i], CANARY, `${message}: byte ${i} after the range changed`);
}

/** Compresses with `codec` into a fresh array at an offset; returns just the framed block. */
function compressWith(codec: Lz4Codec, src: Uint8Array, message: string): Uint8Array {
  const at = 3;
  const room = src.length + Math.ceil(src.length / 255) + 16 + 4;
  const dst = withCanaries(room, at, 5);
  const padded = new Uint8Array(src.length + 7);
  padded.set(src, 2);
  const written = codec.compress(padded, 2, 2 + src.length, dst, at, at + room);
  assert.ok(written > 4, `${message}: compresses into room for the worst case`);
  assertCanaries(dst, at, at + written, message);
  return dst.slice(at, at + written);
}

function decompressWith(codec: Lz4Codec, block: Uint8Array, size: number, message: string): Uint8Array {
  const at = 5;
  const dst = withCanaries(size, at, 9);
  const result = codec.decompress(block, 0, block.length, dst, at, at + size);
  assert.equal(result, size, `${message}: decodes to its size`);
  assertCanaries(dst, at, at + size, message);
  return dst.slice(at, at + size);
}

describe('lz4 codecs', () => {
  it('the addon round-trips its own blocks, and each of it and lz4-napi decodes the other, over sizes and inputs', {
    skip: noNative,
  }, () => {
    const seed = testSeed(41);
    const prng = new Random(seed);
    for (const size of SIZES) {
      for (const kind of KINDS) {
        const message = `seed ${seed}, ${kind}, ${size} bytes`;
        const src = input(prng, kind, size);
        const ours = compressWith(native!, src, message);
        assert.deepEqual(decompressWith(native!, ours, size, message), src, `${message}: native → native`);
        assert.deepEqual(new Uint8Array(uncompressSync(Buffer.from(ours))), src, `${message}: native → lz4-napi`);
        const theirs = compressSync(Buffer.from(src));
        assert.deepEqual(decompressWith(native!, theirs, size, message), src, `${message}: lz4-napi → native`);
        if (kind !== 'random' && size >= 4096) assert.ok(ours.length < size * 0.6, `${message}: compresses (${ours.length} bytes)`);
      }
    }
  });

  it('the addon decodes overlapping matches of every period from 1 to 8, at every length up to 300', { skip: noNative }, () => {
    const seed = testSeed(42);
    const prng = new Random(seed);
    for (let period = 1; period <= 8; period++) {
      for (let size = 13; size <= 300; size++) {
        const message = `seed ${seed}, period ${period}, ${size} bytes`;
        const src = input(prng, 'pattern', size, period);
        for (const block of [compressWith(native!, src, message), compressSync(Buffer.from(src))]) {
          assert.deepEqual(decompressWith(native!, block, size, message), src, message);
        }
      }
    }
  });

  it('the portable codec (lz4-napi) round-trips through the same calls', () => {
    const seed = testSeed(43);
    const prng = new Random(seed);
    for (const size of [0, 1, 13, 40, 4096, 64 << 10]) {
      for (const kind of KINDS) {
        const message = `seed ${seed}, ${kind}, ${size} bytes`;
        const src = input(prng, kind, size);
        assert.deepEqual(decompressWith(portableLz4, compressWith(portableLz4, src, message), size, message), src, message);
      }
    }
  });

  it('compress returns 0 and writes nothing past dstLimit when the output would not fit, and fits in exactly its length', {
    skip: noNative,
  }, () => {
    const seed = testSeed(44);
    const prng = new Random(seed);
    for (let round = 0; round < 300; round++) {
      const kind = prng.pick(KINDS);
      const size = prng.pick([prng.below(64), 4096, 4224, 16 << 10]);
      const message = `seed ${seed}, round ${round}, ${kind}, ${size} bytes`;
      const src = input(prng, kind, size);
      const exact = compressWith(native!, src, message).length;
      const at = prng.below(16);
      const limit = at + exact - 1 - prng.below(Math.min(exact, 40));
      const dst = withCanaries(exact, at, 8);
      assert.equal(native!.compress(src, 0, size, dst, at, limit), 0, `${message}: ${limit - at} bytes of room for ${exact}`);
      assertCanaries(dst, at, limit, message);
      assert.equal(native!.compress(src, 0, size, dst, at, at + exact), exact, `${message}: exactly enough room`);
      assertCanaries(dst, at, at + exact, message);
    }
    // "Only if it shrinks": incompressible input is refused.
    const random = prng.bytes(4224);
    assert.equal(native!.compress(random, 0, random.length, new Uint8Array(random.length), 0, random.length), 0, `seed ${seed}`);
  });

  it('refuses bad ranges and overlapping source and destination with a TypeError', { skip: noNative }, () => {
    const bytes = new Uint8Array(64);
    assert.throws(() => native!.compress(bytes, 10, 5, new Uint8Array(8), 0, 8), TypeError);
    assert.throws(() => native!.compress(bytes, 0, 65, new Uint8Array(8), 0, 8), TypeError);
    assert.throws(() => native!.decompress(bytes, 0, 8, new Uint8Array(8), 0, 9), TypeError);
    assert.throws(() => native!.compress(bytes, 0, 32, bytes, 16, 64), /overlap/);
    assert.throws(() => native!.decompress(bytes, 32, 64, bytes.subarray(40), 0, 8), /overlap/);
  });

  it('malformed blocks (truncated, bit-flipped, random) decode to an error or to their declared size, never outside the destination', {
    skip: noNative,
  }, () => {
    const seed = testSeed(45);
    const prng = new Random(seed);
    const failures = new Map<number, number>();
    for (let round = 0; round < 3000; round++) {
      const kind = prng.pick(KINDS);
      const size = prng.pick([prng.below(200), 1000 + prng.below(4000)]);
      const message = `seed ${seed}, round ${round}, ${kind}, ${size} bytes`;
      const src = input(prng, kind, size);
      const block = prng.chance(0.5) ? compressWith(native!, src, message) : new Uint8Array(compressSync(Buffer.from(src)));
      let bad: Uint8Array;
      const damage = prng.pick(['truncate', 'flip', 'garbage', 'prefix'] as const);
      if (damage === 'truncate') {
        bad = block.slice(0, prng.below(block.length));
      } else if (damage === 'flip') {
        bad = block.slice();
        for (let n = 1 + prng.below(3); n > 0; n--) bad[4 + prng.below(bad.length - 4)] ^= 1 << prng.below(8);
      } else if (damage === 'garbage') {
        bad = block.slice();
        bad.set(prng.bytes(bad.length - 4), 4);
      } else {
        bad = block.slice();
        new DataView(bad.buffer).setUint32(0, prng.below(size * 2 + 8), true);
      }
      const declared = bad.length >= 4 ? new DataView(bad.buffer).getUint32(0, true) : 0;
      // Now and then less room than the prefix declares.
      const room = prng.chance(0.1) ? Math.max(0, declared - 1 - prng.below(4)) : Math.max(declared, size) + prng.below(8);
      const at = prng.below(8);
      const dst = withCanaries(room, at, 16);
      const result = native!.decompress(bad, 0, bad.length, dst, at, at + room);
      assert.ok(result === declared || FAILURES.has(result), `${message}, ${damage}: result ${result} (declared ${declared})`);
      assertCanaries(dst, at, at + room, `${message}, ${damage}`);
      if (result < 0) failures.set(result, (failures.get(result) ?? 0) + 1);
      if (damage === 'truncate') assert.ok(result < 0, `${message}: a truncated block is an error`);
    }
    // The corruptions reach every check the decoder makes.
    for (const code of Object.values(Lz4DecodeFailure)) assert.ok(failures.has(code), `seed ${seed}: no corruption gave ${code}`);
  });
});

describe('decompress()', () => {
  after(() => installCompression(undefined));

  it('refuses, with lz4-napi too, a size prefix larger than the block can decode to, and wraps its errors', () => {
    installCompression(undefined);
    const block = new Uint8Array(compressSync(Buffer.from(new Uint8Array(5000))));
    assert.equal(decompress(block).length, 5000);
    const huge = block.slice();
    new DataView(huge.buffer).setUint32(0, 0xffffffff, true);
    assert.throws(
      () => decompress(huge),
      (error: unknown) => error instanceof Lz4FormatError && /declares 4294967295 bytes/.test(error.message),
    );
    assert.throws(
      () => decompress(block.subarray(0, block.length - 1)),
      (error: unknown) => error instanceof Lz4FormatError && /^lz4: /.test(error.message),
    );
  });

  it('with the addon installed throws Lz4FormatError saying what is wrong', { skip: noNative }, () => {
    installCompression(native);
    const block = new Uint8Array(compressSync(Buffer.from(new Uint8Array(5000))));
    assert.equal(decompress(block).length, 5000);
    assert.throws(
      () => decompress(block.subarray(0, 3)),
      (error: unknown) => {
        return error instanceof Lz4FormatError && /4-byte size prefix/.test(error.message);
      },
    );
    assert.throws(() => decompress(block.subarray(0, block.length - 1)), /lz4: the block is truncated/);
    const huge = block.slice();
    new DataView(huge.buffer).setUint32(0, 0xffffffff, true);
    assert.throws(() => decompress(huge), /declares 4294967295 bytes, more than a \d+-byte block can decode to/);
    const short = block.slice();
    new DataView(short.buffer).setUint32(0, 4000, true);
    assert.throws(() => decompress(short), /more bytes than its size prefix declares/);
  });
});

/** Four 1 KiB entries, half random and half zeros, and a hard state: the typical Raft batch. */
function batchOf(prng: Random, region: number, first: number, random = false): { batch: LogBatch; entries: Entry[] } {
  const entries: Entry[] = Array.from({ length: 4 }, (_, i) => ({
    index: first + i,
    term: 1,
    data: input(prng, random ? 'random' : 'half', 1024),
  }));
  const batch = new LogBatch();
  batch.addEntries(region, entries);
  batch.put(region, 'hard_state', input(prng, 'random', 16));
  return { batch, entries };
}

describe('a log written with one lz4 codec reads with the other', { skip: noNative }, () => {
  after(() => installCompression(undefined));

  for (const [writer, reader] of [
    ['addon', 'lz4-napi'],
    ['lz4-napi', 'addon'],
  ] as const) {
    it(`written with ${writer} (and ${reader} after a reopen), read back with ${reader}`, async () => {
      const seed = testSeed(46);
      const prng = new Random(seed);
      const codecOf = (name: string): Lz4Codec | undefined => (name === 'addon' ? native : undefined);
      const fs = new MemFs();
      const options = { fs, compressionThreshold: 1024, preallocateBytes: 0, seed: 3 };
      const expected = new Map<number, Entry>();
      let stored = 0;
      let plain = 0;
      // Two lives: records of both codecs end up in the log.
      for (const [life, codec] of [writer, reader].entries()) {
        installCompression(codecOf(codec));
        const engine = new Engine(options);
        await engine.open();
        for (let i = 0; i < 20; i++) {
          const first = life * 80 + i * 4 + 1;
          const { batch, entries } = batchOf(prng, 1, first, i % 5 === 4);
          for (const entry of entries) expected.set(entry.index, entry);
          plain += batch.approximateSize();
          stored += await engine.write(batch, { sync: i % 3 === 0 });
        }
        await engine.close();
      }
      assert.ok(stored < plain * 0.75, `seed ${seed}: the records are compressed (${stored} of ${plain} bytes)`);
      installCompression(codecOf(reader));
      const engine = new Engine(options);
      await engine.open();
      const read = await engine.fetchEntriesTo(1, 1, 161);
      assert.equal(read.length, 160, `seed ${seed}`);
      for (const entry of read)
        assert.deepEqual(new Uint8Array(entry.data), expected.get(entry.index)!.data, `seed ${seed}, entry ${entry.index}`);
      assert.deepEqual((await engine.verify()).problems, [], `seed ${seed}`);
      await engine.close();
    });
  }
});
