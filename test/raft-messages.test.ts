/**
 * The typed Raft state codecs (src/raft/messages.ts) against the protobufjs
 * eraftpb types they replace as the documented path: same bytes, same values,
 * both ways; plain numbers, refused beyond 2^53 - 1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { Engine, LogBatch, MemFs } from '../index.js';
import { ConfState, Entry, EntryType, HardState, SnapshotMetadata, type ConfStateInit } from '../src/raft/messages.js';
import { eraftpb } from '../src/protos.js';
import { testSeed } from './support/seed.js';

const u64 = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 }), fc.maxSafeNat());
const u64List = fc.array(u64, { maxLength: 5 });
const plain = { noNullPrototype: true } as const;
const hardStateArb = fc.record({ term: u64, vote: u64, commit: u64 }, plain);
const confStateArb = fc.record(
  {
    voters: u64List,
    learners: u64List,
    votersOutgoing: u64List,
    learnersNext: u64List,
    autoLeave: fc.boolean(),
  },
  plain,
);
const snapshotArb = fc.record({ confState: confStateArb, index: u64, term: u64 }, plain);

/** protobufjs writes every field set on the object, defaults included; canonical output sets only the others. */
function nonDefault(value: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (
      Array.isArray(field)
        ? field.length > 0
        : typeof field === 'object'
          ? Object.keys(nonDefault(field)).length > 0
          : field !== 0 && field !== false
    ) {
      out[key] = typeof field === 'object' && !Array.isArray(field) ? nonDefault(field) : field;
    }
  }
  return out;
}

const asNumbers = { longs: Number, defaults: true, arrays: true } as const;

/** The same messages with their repeated fields packed, as raft-rs (proto3, prost) writes them. */
const packed = protobuf
  .parse(
    `syntax = "proto3"; package p;
   message ConfState {
     repeated uint64 voters = 1 [packed = true]; repeated uint64 learners = 2 [packed = true];
     repeated uint64 voters_outgoing = 3 [packed = true]; repeated uint64 learners_next = 4 [packed = true];
     bool auto_leave = 5; }`,
  )
  .root.lookupType('p.ConfState');

const cases = [
  { name: 'HardState', ours: HardState, theirs: eraftpb.HardState, arb: hardStateArb },
  { name: 'ConfState', ours: ConfState, theirs: eraftpb.ConfState, arb: confStateArb },
  { name: 'SnapshotMetadata', ours: SnapshotMetadata, theirs: eraftpb.SnapshotMetadata, arb: snapshotArb },
] as const;

describe('typed Raft state codecs', () => {
  const seed = testSeed(16);

  for (const { name, ours, theirs, arb } of cases) {
    it(`${name}: the bytes protobufjs writes for the non-default fields, and the values both ways (seed ${seed})`, () => {
      const codec = ours as { encode(m: object): Uint8Array; decode(b: Uint8Array): object };
      fc.assert(
        fc.property(arb as fc.Arbitrary<object>, (value) => {
          const bytes = codec.encode(value);
          const theirBytes = theirs.encode(theirs.fromObject(nonDefault(value))).finish();
          assert.deepEqual(Buffer.from(bytes), Buffer.from(theirBytes));
          // Ours reads what protobufjs writes with every field set, defaults too.
          assert.deepEqual(codec.decode(theirs.encode(theirs.fromObject(value)).finish()), value);
          // protobufjs reads what we write.
          assert.deepEqual(theirs.toObject(theirs.decode(bytes), asNumbers), value);
        }),
        { seed, numRuns: 300 },
      );
    });
  }

  it(`ConfState reads packed repeated fields, as raft-rs writes them (seed ${seed})`, () => {
    fc.assert(
      fc.property(confStateArb, (value) => {
        assert.deepEqual(ConfState.decode(packed.encode(packed.fromObject(value)).finish()), value);
      }),
      { seed, numRuns: 200 },
    );
  });

  it('decodes to plain numbers, never Long', () => {
    const bytes = eraftpb.HardState.encode(eraftpb.HardState.fromObject({ term: 7, vote: 2, commit: 2 ** 52 })).finish();
    const hs = HardState.decode(bytes);
    assert.equal(typeof hs.commit, 'number');
    assert.deepEqual(hs, { term: 7, vote: 2, commit: 2 ** 52 });
  });

  it('encode refuses what is not a safe non-negative integer, naming the field', () => {
    const bad: unknown[] = [2 ** 53, -1, 1.5, Number.NaN, 5n, '5', null, { low: 5, high: 0 }];
    for (const value of bad) {
      assert.throws(
        () => HardState.encode({ commit: value as number }),
        { code: 'INVALID_ARGUMENT', message: /HardState\.commit/ },
        String(value),
      );
      assert.throws(() => SnapshotMetadata.encode({ index: value as number }), {
        code: 'INVALID_ARGUMENT',
        message: /SnapshotMetadata\.index/,
      });
      assert.throws(() => ConfState.encode({ voters: [1, value as number] }), {
        code: 'INVALID_ARGUMENT',
        message: /ConfState\.voters\[1\]/,
      });
      // The entry path also takes protobufjs Longs and bigints (what eraftpb.Entry.decode gives), so only these:
      if (typeof value !== 'bigint' && typeof value !== 'object') {
        assert.throws(() => Entry.encode({ index: value as number, term: 1, data: new Uint8Array(0) }), { code: 'INVALID_ARGUMENT' });
      }
    }
    assert.throws(() => ConfState.encode({ autoLeave: 1 as unknown as boolean }), { code: 'INVALID_ARGUMENT', message: /autoLeave/ });
    assert.throws(() => ConfState.encode({ voters: 3 as unknown as number[] }), { code: 'INVALID_ARGUMENT', message: /voters/ });
    assert.throws(() => HardState.encode(null as unknown as HardState), { code: 'INVALID_ARGUMENT' });
  });

  it('decode reports values beyond 2^53 - 1 and malformed bytes as CORRUPTION', () => {
    const beyond = eraftpb.HardState.encode(eraftpb.HardState.fromObject({ commit: '9007199254740993' })).finish();
    assert.throws(() => HardState.decode(beyond), { code: 'CORRUPTION', message: /commit is beyond/ });
    const entryBeyond = eraftpb.Entry.encode(eraftpb.Entry.fromObject({ index: '18446744073709551615', term: 1 })).finish();
    assert.throws(() => Entry.decode(entryBeyond), { code: 'CORRUPTION' });
    const packedBeyond = packed.encode(packed.fromObject({ learners: [1, '9007199254740992'] })).finish();
    assert.throws(() => ConfState.decode(packedBeyond), { code: 'CORRUPTION', message: /learners/ });
    assert.throws(() => HardState.decode(new Uint8Array([0x08])), { code: 'CORRUPTION', message: /truncated/ });
    assert.throws(() => SnapshotMetadata.decode(new Uint8Array([0x0a, 0x05, 0x08])), { code: 'CORRUPTION', message: /overruns/ });
    assert.throws(() => HardState.decode(new Uint8Array([0x0a, 0x00])), { code: 'CORRUPTION', message: /wire type/ });
    assert.throws(() => HardState.decode('x' as unknown as Uint8Array), { code: 'INVALID_ARGUMENT' });
  });

  it('decode skips unknown fields', () => {
    // field 9 varint, field 10 bytes, field 11 fixed64, field 12 fixed32, then commit = 3.
    const bytes = new Uint8Array([0x48, 0x01, 0x52, 0x01, 0xff, 0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0x65, 1, 2, 3, 4, 0x18, 0x03]);
    assert.deepEqual(HardState.decode(bytes), { term: 0, vote: 0, commit: 3 });
  });

  it('Entry: the log codec as a typed value; EntryType names the eraftpb values', () => {
    const entry = Entry.create({ index: 9, term: 3, data: new Uint8Array([1]), entryType: EntryType.EntryConfChange });
    assert.deepEqual(Entry.decode(Entry.encode(entry)), entry);
    const theirs = eraftpb.Entry.toObject(eraftpb.Entry.decode(Entry.encode(entry)), asNumbers);
    assert.equal(theirs.index, 9);
    assert.equal(theirs.entryType, 1);
  });

  it('the types reject misspelled fields and give numbers at compile time (tsc checks this file)', () => {
    // @ts-expect-error misspelled field; refused at run time too, for callers without the types
    assert.throws(() => HardState.encode({ trem: 1 }), { code: 'INVALID_ARGUMENT', message: /no field "trem"/ });
    // @ts-expect-error misspelled nested field
    assert.throws(() => SnapshotMetadata.create({ confState: { voter: [1] } }), {
      code: 'INVALID_ARGUMENT',
      message: /confState has no field "voter"/,
    });
    const init: ConfStateInit = { voters: [1] };
    // @ts-expect-error commit is a number, not a Long
    const long: { toNumber(): number } = HardState.create({ commit: 1 }).commit;
    void long;
    assert.deepEqual(ConfState.create(init).voters, [1]);
  });
});

describe('typed messages through the engine', () => {
  it('getMessage with a typed codec returns plain numbers (issue 16 case 5), and reads what a protobufjs message stored', async () => {
    const engine = new Engine({ fs: new MemFs() });
    await engine.open();
    try {
      const batch = new LogBatch();
      batch.putMessage(1, 'hard_state', HardState, { term: 2, vote: 1, commit: 5 });
      batch.putMessage(1, 'legacy', eraftpb.HardState.create({ term: 3, commit: 4 }));
      // @ts-expect-error misspelled field in the typed path
      assert.throws(() => batch.putMessage(1, 'typo', HardState, { trem: 1 }), { code: 'INVALID_ARGUMENT' });
      await engine.write(batch, { sync: true });
      const hs = engine.getMessage(1, 'hard_state', HardState)!;
      const commit: number = hs.commit;
      assert.equal(commit, 5);
      assert.equal(typeof hs.term, 'number');
      assert.deepEqual(engine.getMessage(1, 'legacy', HardState), { term: 3, vote: 0, commit: 4 });
      assert.equal(engine.get(1, 'typo'), undefined);
      assert.throws(() => new LogBatch().putMessage(1, 'k', HardState, { term: -1 }), {
        code: 'INVALID_ARGUMENT',
        message: /HardState\.term/,
      });
      assert.throws(() => new LogBatch().putMessage(1, 'k', {} as never), { code: 'INVALID_ARGUMENT' });
    } finally {
      await engine.close();
    }
  });
});
