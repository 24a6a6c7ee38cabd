import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEntry, encodeEntry, encodedEntrySize, normalizeEntry } from '../src/format/entry-codec.js';
import { eraftpb } from '../src/protos.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

describe('eraftpb.Entry wire codec', () => {
  const seed = testSeed(7);
  const rng = new Random(seed);
  const samples = [
    { index: 0, term: 0, data: new Uint8Array(0) },
    { index: 1, term: 1, data: new Uint8Array([1, 2, 3]) },
    { index: 2 ** 53 - 1, term: 2 ** 40 + 3, data: new Uint8Array(300), entryType: 2, context: new Uint8Array([9]) },
    ...Array.from({ length: 200 }, () => ({
      index: rng.below(2 ** 31) * 2 ** rng.below(22),
      term: rng.below(1000),
      data: rng.bytes(rng.below(400)),
      entryType: rng.below(3),
      context: rng.bytes(rng.below(3)),
    })),
  ];

  // protobufjs writes a field whenever it is set on the object, even to its
  // default; canonical proto3 (raft-rs, Go) omits defaults. Compare against
  // protobufjs given only the non-default fields: that is the canonical form.
  it(`writes canonical proto3, as protobufjs does for non-default fields (seed ${seed})`, () => {
    for (const sample of samples) {
      const fields = normalizeEntry(sample);
      const ours = new Uint8Array(encodedEntrySize(fields));
      assert.equal(encodeEntry(ours, 0, fields), ours.length);
      const nonDefault = Object.fromEntries(Object.entries(fields).filter(([, v]) => (v instanceof Uint8Array ? v.length > 0 : v !== 0)));
      const theirs = eraftpb.Entry.encode(eraftpb.Entry.fromObject(nonDefault)).finish();
      assert.deepEqual(Buffer.from(ours), Buffer.from(theirs), `seed ${seed}: index ${sample.index}`);
    }
  });

  it(`reads what protobufjs writes, including unknown fields (seed ${seed})`, () => {
    for (const sample of samples) {
      const fields = normalizeEntry(sample);
      const bytes = eraftpb.Entry.encode(eraftpb.Entry.fromObject({ ...sample, syncLog: true })).finish();
      const decoded = decodeEntry(bytes);
      assert.equal(decoded.index, fields.index);
      assert.equal(decoded.term, fields.term);
      assert.equal(decoded.entryType, fields.entryType);
      assert.ok(Buffer.from(decoded.data).equals(Buffer.from(fields.data)));
      assert.ok(Buffer.from(decoded.context).equals(Buffer.from(fields.context)));
    }
  });

  it('accepts protobufjs Long values and rejects unsafe numbers', () => {
    const message = eraftpb.Entry.decode(eraftpb.Entry.encode(eraftpb.Entry.fromObject({ index: 5, term: 6 })).finish()) as unknown as {
      index: { toNumber(): number };
      term: { toNumber(): number };
    };
    assert.equal(normalizeEntry({ index: message.index, term: message.term, data: new Uint8Array(0) }).index, 5);
    assert.throws(() => normalizeEntry({ index: 2 ** 53, term: 1, data: new Uint8Array(0) }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => normalizeEntry({ index: -1, term: 1, data: new Uint8Array(0) }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => normalizeEntry({ index: 1, term: 1, data: 'x' as unknown as Uint8Array }), { code: 'INVALID_ARGUMENT' });
  });

  it('reports malformed bytes', () => {
    assert.throws(() => decodeEntry(new Uint8Array([0x22, 0x05, 1])), /truncated/);
    assert.throws(() => decodeEntry(new Uint8Array([0x08])), /truncated varint/);
  });
});
