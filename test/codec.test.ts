/**
 * The record codec against every cut and every bit flip: reading a damaged
 * file yields a prefix of the records that were written, byte for byte, and
 * then stops with "torn tail" or damage; it never yields a wrong batch.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { decodeFileHeader, FILE_HEADER_SIZE, isAllZero } from '../src/format/layout.js';
import { RecordScanner } from '../src/recovery/scanner.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

interface Original {
  offset: number;
  /** End of the record's bytes on disk, before alignment padding. */
  end: number;
  payload: Buffer;
}

async function writeSampleLog(seed: number): Promise<{ bytes: Uint8Array; records: Original[]; salt: number }> {
  const fs = new MemFs();
  const engine = new Engine({ fs, seed, preallocateBytes: 0, compressionThreshold: 256 });
  await engine.open();
  const rng = new Random(seed);
  for (let i = 1; i <= 4; i++) {
    const batch = new LogBatch();
    batch.addEntries(1, [{ index: i, term: 1, data: rng.bytes(20 + rng.below(40)) }]);
    if (i === 2) batch.addEntries(2, [{ index: 1, term: 3, data: new Uint8Array(600).fill(7) }]); // compressed
    if (i === 3) batch.put(1, 'k', rng.bytes(5));
    if (i === 4) batch.compactTo(1, 2);
    await engine.write(batch, { sync: true });
  }
  await engine.close();
  const [name] = (await fs.list()).filter((n) => n.endsWith('.raftlog'));
  const bytes = fs.snapshot().get(name!)!;
  const header = decodeFileHeader(bytes);
  assert.ok(typeof header === 'object');
  const records = await scanAll(bytes, header.salt);
  assert.equal(records.records.length, 5, 'four batches and the seal of the clean close');
  assert.equal(records.stop, 'eof');
  return { bytes, records: records.records, salt: header.salt };
}

async function scanAll(bytes: Uint8Array, salt: number): Promise<{ records: Original[]; stop: string }> {
  const fs = new MemFs();
  const handle = await fs.open('f', { create: true });
  await handle.write([bytes], 0);
  const scanner = new RecordScanner(handle, bytes.length, salt);
  const records: Original[] = [];
  let offset = FILE_HEADER_SIZE;
  for (let guard = 0; guard < 100; guard++) {
    const result = await scanner.read(offset);
    if (!('header' in result)) {
      await handle.close();
      return { records, stop: result.kind };
    }
    records.push({ offset, end: offset + 24 + result.header.payloadLength, payload: Buffer.from(result.payload) });
    offset = result.end;
  }
  throw new Error('scanner did not stop');
}

function assertPrefix(got: Original[], want: Original[], context: string): void {
  assert.ok(got.length <= want.length, `${context}: more records than written`);
  for (let i = 0; i < got.length; i++) {
    assert.equal(got[i]!.offset, want[i]!.offset, `${context}: record ${i} offset`);
    assert.ok(got[i]!.payload.equals(want[i]!.payload), `${context}: record ${i} differs from what was written`);
  }
}

describe('record codec under damage', () => {
  const seed = testSeed(11);

  it(`a cut at every byte yields a prefix and then a torn tail (seed ${seed})`, async () => {
    const { bytes, records, salt } = await writeSampleLog(seed);
    for (let cut = FILE_HEADER_SIZE; cut < bytes.length; cut++) {
      const { records: got, stop } = await scanAll(bytes.subarray(0, cut), salt);
      assertPrefix(got, records, `seed ${seed} cut ${cut}`);
      const complete = records.filter((r) => r.end <= cut).length;
      assert.equal(got.length, complete, `seed ${seed} cut ${cut}: every complete record is read`);
      if (got.length < records.length) assert.notEqual(stop, 'zero-tail', `seed ${seed} cut ${cut}`);
    }
  });

  it(`a flip of any single bit never yields a wrong record (seed ${seed})`, async () => {
    const { bytes, records, salt } = await writeSampleLog(seed);
    for (let bit = FILE_HEADER_SIZE * 8; bit < bytes.length * 8; bit++) {
      const damaged = Uint8Array.from(bytes);
      damaged[bit >>> 3]! ^= 1 << (bit & 7);
      const { records: got, stop } = await scanAll(damaged, salt);
      assertPrefix(got, records, `seed ${seed} bit ${bit}`);
      const inPadding = got.length === records.length;
      if (!inPadding) assert.equal(stop, 'damage', `seed ${seed} bit ${bit}: damage is reported`);
    }
  });

  it('tells a zeroed (preallocated) tail from damage', async () => {
    const { bytes, records, salt } = await writeSampleLog(seed);
    const withTail = new Uint8Array(bytes.length + 4096);
    withTail.set(bytes);
    const clean = await scanAll(withTail, salt);
    assert.equal(clean.stop, 'zero-tail');
    assert.equal(clean.records.length, records.length);
    withTail[bytes.length + 2000] = 1;
    assert.equal((await scanAll(withTail, salt)).stop, 'damage');
  });

  it('rejects records written under another salt (a recycled file)', async () => {
    const { bytes, salt } = await writeSampleLog(seed);
    const { records } = await scanAll(bytes, (salt + 1) >>> 0);
    assert.equal(records.length, 0);
  });
});

describe('isAllZero', () => {
  it('finds a single non-zero byte anywhere, at any length and alignment', () => {
    // Lengths around the small-input cut-over (64) and the compare block (64 KiB), and a preallocated tail's size.
    const lengths = [0, 1, 7, 64, 65, 4095, 65535, 65536, 65537, 3 * 65536 + 5, 8 << 20];
    for (const length of lengths) {
      for (const shift of [0, 3]) {
        const backing = new Uint8Array(length + shift);
        const bytes = backing.subarray(shift);
        assert.equal(isAllZero(bytes), true, `all zero, length ${length}, shift ${shift}`);
        const spots = new Set([0, 1, 63, 64, 65535, 65536, length - 1].filter((at) => at >= 0 && at < length));
        for (const at of spots) {
          bytes[at] = 0x80;
          assert.equal(isAllZero(bytes), false, `byte ${at} of ${length} set, shift ${shift}`);
          bytes[at] = 0;
        }
      }
    }
  });
});
