/**
 * The memtable (src/memtable.ts) on its own: which entries a region holds and
 * where each lives, after appends, overwrites, compactions, cleans and
 * relocations. Every case is checked against a plain model (index → where it
 * was written), through the public methods only, so the checks survive any
 * change of the typed-array layout underneath.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError } from '../src/errors.js';
import { RECORD_HEADER_SIZE } from '../src/format/layout.js';
import { decodeIndexCheckpoint, encodeIndexCheckpoint } from '../src/format/index-checkpoint.js';
import {
  LoadedColumns,
  RegionMemtable,
  newEntryLocation,
  type EntryLocation,
  type KeyValue,
  type RecordLocation,
} from '../src/memtable.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

/** Where the model says an entry lives: what `locate` must report. */
type Where = Omit<EntryLocation, 'entryOffset'> & { entryOffset: number };

/** A record placement for a run; payload offsets and lengths derived from the index so each entry is distinct. */
interface Run {
  first: number;
  count: number;
  fileId: number;
  compressed?: boolean;
  recordOffset?: number;
}

function payloadOffset(index: number, i: number): number {
  return 40 + i * 32 + (index % 7);
}

function entryLength(index: number): number {
  return 10 + (index % 5);
}

function columnsFor(run: Run): { record: RecordLocation; offsets: Uint32Array; lengths: Uint32Array; start: number } {
  // Start the run inside larger columns, as a batch with several items does.
  const start = 2;
  const offsets = new Uint32Array(start + run.count + 3);
  const lengths = new Uint32Array(start + run.count + 3);
  for (let i = 0; i < run.count; i++) {
    offsets[start + i] = payloadOffset(run.first + i, i);
    lengths[start + i] = entryLength(run.first + i);
  }
  const record: RecordLocation = {
    fileId: run.fileId,
    recordOffset: run.recordOffset ?? 64,
    payloadLength: 40 + run.count * 32,
    compressed: run.compressed === true,
  };
  return { record, offsets, lengths, start };
}

/** The model: index → where it lives; mirrors the memtable's documented behaviour. */
class Model {
  entries = new Map<number, Where>();

  place(run: Run): void {
    const { record } = columnsFor(run);
    for (let i = 0; i < run.count; i++) {
      const index = run.first + i;
      this.entries.set(index, {
        fileId: record.fileId,
        compressed: record.compressed,
        entryOffset: (record.compressed ? 0 : record.recordOffset + RECORD_HEADER_SIZE) + payloadOffset(index, i),
        entryLength: entryLength(index),
        recordOffset: record.compressed ? record.recordOffset : 0,
        payloadLength: record.compressed ? record.payloadLength : 0,
      });
    }
  }

  append(run: Run): void {
    const last = this.last();
    // An append at or below the last index replaces everything from there; one at or below the first replaces all.
    if (last === undefined) return this.place(run);
    for (const index of [...this.entries.keys()]) if (index >= run.first) this.entries.delete(index);
    this.place(run);
  }

  compactTo(index: number): number {
    let dropped = 0;
    for (const key of [...this.entries.keys()]) {
      if (key < index) {
        this.entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  first(): number | undefined {
    return this.entries.size === 0 ? undefined : Math.min(...this.entries.keys());
  }

  last(): number | undefined {
    return this.entries.size === 0 ? undefined : Math.max(...this.entries.keys());
  }
}

function apply(memtable: RegionMemtable, model: Model, op: Op): number | undefined {
  switch (op.op) {
    case 'append': {
      const { record, offsets, lengths, start } = columnsFor(op);
      memtable.append(op.first, op.count, record, offsets, lengths, start);
      model.append(op);
      return undefined;
    }
    case 'relocate': {
      const { record, offsets, lengths, start } = columnsFor(op);
      memtable.relocate(op.first, op.count, record, offsets, lengths, start);
      model.place(op);
      return undefined;
    }
    case 'compact': {
      const dropped = memtable.compactTo(op.index);
      assert.equal(dropped, model.compactTo(op.index), `compactTo(${op.index}) drops what lay below`);
      return dropped;
    }
    case 'clean':
      memtable.clean();
      model.entries.clear();
      return undefined;
  }
}

/** Checks every observable of the memtable against the model. */
function check(memtable: RegionMemtable, model: Model, context: string): void {
  assert.equal(memtable.firstIndex(), model.first(), `${context}: firstIndex`);
  assert.equal(memtable.lastIndex(), model.last(), `${context}: lastIndex`);
  assert.equal(memtable.entryCount, model.entries.size, `${context}: entryCount`);
  const low = (model.first() ?? 0) - 3;
  const high = (model.last() ?? 0) + 3;
  const out = newEntryLocation();
  for (let index = low; index <= high; index++) {
    const expected = model.entries.get(index);
    const found = memtable.locate(index, out);
    assert.equal(found, expected !== undefined, `${context}: locate(${index}) found`);
    if (expected !== undefined) assert.deepEqual({ ...out }, expected, `${context}: locate(${index})`);
  }
  assert.equal(memtable.locate(low + 3.5, out), false, `${context}: a fractional index is never held`);
  // File runs: consecutive, covering exactly the held range, each run in one file.
  let next = model.first();
  let bytes = 0;
  memtable.forEachFileRun((fileId, first, count) => {
    assert.equal(first, next, `${context}: file runs are consecutive`);
    assert.ok(count > 0, `${context}: no empty file run`);
    for (let index = first; index < first + count; index++) {
      assert.equal(model.entries.get(index)!.fileId, fileId, `${context}: run of ${index}`);
    }
    next = first + count;
  });
  if (model.first() !== undefined) assert.equal(next, model.last()! + 1, `${context}: file runs end at the last entry`);
  for (const where of model.entries.values()) bytes += where.entryLength;
  assert.equal(memtable.liveEntryBytes(), bytes, `${context}: liveEntryBytes`);
  const files = [...model.entries.values()].map((where) => where.fileId);
  const oldest = files.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...files);
  assert.equal(memtable.oldestFileId(), oldest, `${context}: oldestFileId`);
}

type Op = ({ op: 'append' } & Run) | ({ op: 'relocate' } & Run) | { op: 'compact'; index: number } | { op: 'clean' };

const A = (first: number, count: number, fileId = 1, compressed = false): Op => {
  return { op: 'append', first, count, fileId, compressed };
};
const R = (first: number, count: number, fileId: number): Op => {
  return { op: 'relocate', first, count, fileId, recordOffset: 4096 };
};
const C = (index: number): Op => ({ op: 'compact', index });
const CLEAN: Op = { op: 'clean' };

/** A random change to a region as `model` holds it: mostly appends (some overwriting), then compactions, relocations, cleans. */
function randomOp(rng: Random, model: Model, files: { next: number }, step: number): Op {
  const first = model.first();
  const last = model.last();
  const roll = rng.below(100);
  if (last === undefined || roll < 55) {
    const at = last === undefined ? 1 + rng.below(100) : Math.max(1, last + 1 - (rng.below(4) === 0 ? rng.below(20) : 0));
    if (rng.below(10) === 0) files.next++;
    return A(at, 1 + rng.below(40), files.next, rng.below(4) === 0);
  }
  if (roll < 80) return C(first! + rng.below(last - first! + 3));
  if (roll < 83) return CLEAN;
  const from = first! + rng.below(last - first! + 1);
  return R(from, 1 + rng.below(last - from + 1), 0x8000_0000 + step);
}

const cases: { name: string; ops: Op[]; first: number | undefined; last: number | undefined; compacted?: number }[] = [
  { name: 'append to an empty region', ops: [A(1, 3)], first: 1, last: 3 },
  { name: 'append at any index when empty', ops: [A(1000, 2)], first: 1000, last: 1001 },
  { name: 'consecutive appends, one file', ops: [A(1, 3), A(4, 2)], first: 1, last: 5 },
  { name: 'consecutive appends across files', ops: [A(1, 3, 1), A(4, 2, 2), A(6, 1, 3)], first: 1, last: 6 },
  { name: 'overwrite from the middle truncates the tail', ops: [A(1, 10, 1), A(5, 3, 2)], first: 1, last: 7 },
  { name: 'overwrite at the last index', ops: [A(1, 5, 1), A(5, 1, 2)], first: 1, last: 5 },
  { name: 'overwrite at the first index replaces everything', ops: [A(5, 5, 1), A(5, 2, 2)], first: 5, last: 6 },
  { name: 'overwrite below the first index replaces everything', ops: [A(5, 5, 1), A(2, 2, 2)], first: 2, last: 3 },
  {
    name: 'overwrite dropping whole file runs',
    ops: [A(1, 2, 1), A(3, 2, 2), A(5, 2, 3), A(2, 1, 4)],
    first: 1,
    last: 2,
  },
  { name: 'compressed records', ops: [A(1, 3, 1, true), A(4, 3, 1, true), A(7, 2, 2)], first: 1, last: 8 },
  { name: 'overwrite inside a compressed record', ops: [A(1, 6, 1, true), A(3, 2, 2, true)], first: 1, last: 4 },
  { name: 'compact drops below the index', ops: [A(1, 10), C(4)], first: 4, last: 10, compacted: 3 },
  { name: 'compact at or below the first index drops nothing', ops: [A(5, 3), C(5)], first: 5, last: 7, compacted: 0 },
  {
    name: 'compact past the last index empties the region',
    ops: [A(5, 3), C(100)],
    first: undefined,
    last: undefined,
    compacted: 3,
  },
  {
    name: 'compact across file runs keeps the run holding the new first',
    ops: [A(1, 3, 1), A(4, 3, 2), A(7, 3, 3), C(5)],
    first: 5,
    last: 9,
    compacted: 4,
  },
  {
    name: 'compact across compressed records',
    ops: [A(1, 3, 1, true), A(4, 3, 2, true), C(5)],
    first: 5,
    last: 6,
    compacted: 4,
  },
  { name: 'append after compaction continues', ops: [A(1, 4), C(3), A(5, 2, 2)], first: 3, last: 6 },
  {
    name: 'append after emptying compaction may start anywhere',
    ops: [A(1, 4), C(10), A(50, 2, 2)],
    first: 50,
    last: 51,
  },
  { name: 'clean empties the region', ops: [A(1, 4, 1), A(5, 1, 2), CLEAN], first: undefined, last: undefined },
  { name: 'append after clean starts anew', ops: [A(1, 4), CLEAN, A(9, 1, 2)], first: 9, last: 9 },
  { name: 'relocate a prefix into another file', ops: [A(1, 6, 1), R(1, 3, 9)], first: 1, last: 6 },
  { name: 'relocate the middle keeps what follows in its file', ops: [A(1, 6, 1), R(3, 2, 9)], first: 1, last: 6 },
  {
    name: 'relocate compressed entries out of their record',
    ops: [A(1, 4, 1, true), A(5, 2, 2), R(1, 5, 9)],
    first: 1,
    last: 6,
  },
  { name: 'relocate everything', ops: [A(1, 3, 1), A(4, 3, 2), R(1, 6, 9)], first: 1, last: 6 },
];

describe('memtable', () => {
  for (const c of cases) {
    it(c.name, () => {
      const memtable = new RegionMemtable(7);
      const model = new Model();
      let compacted: number | undefined;
      c.ops.forEach((op, step) => {
        compacted = apply(memtable, model, op) ?? compacted;
        check(memtable, model, `${c.name}, after step ${step + 1} (${op.op})`);
      });
      assert.equal(memtable.firstIndex(), c.first);
      assert.equal(memtable.lastIndex(), c.last);
      if (c.compacted !== undefined) assert.equal(compacted, c.compacted);
    });
  }

  it('entryBytes sums the lengths of a held range', () => {
    const memtable = new RegionMemtable(1);
    const model = new Model();
    apply(memtable, model, A(10, 6));
    let expected = 0;
    for (let index = 12; index < 15; index++) expected += entryLength(index);
    assert.equal(memtable.entryBytes(12, 3), expected);
    assert.equal(memtable.entryBytes(10, 0), 0);
  });

  it('key-value pairs live beside the entries, and clean drops them too', () => {
    const memtable = new RegionMemtable(1);
    memtable.kv.set('hard-state', { value: Uint8Array.of(1), fileId: 3 });
    apply(memtable, new Model(), A(1, 2));
    memtable.clean();
    assert.equal(memtable.kv.size, 0);
    assert.equal(memtable.entryCount, 0);
  });

  it('index memory grows with entries and is given back after compaction', () => {
    const memtable = new RegionMemtable(1);
    const model = new Model();
    const small = memtable.indexBytes();
    for (let first = 1; first <= 5000; first += 50) apply(memtable, model, A(first, 50, 1 + Math.floor(first / 1000)));
    const big = memtable.indexBytes();
    assert.ok(big >= 5000 * 8, `8 bytes per entry at least, got ${big}`);
    apply(memtable, model, C(4990));
    check(memtable, model, 'after compacting nearly everything');
    // Each compaction halves the columns at most once: memory comes back over a few compactions.
    assert.ok(memtable.indexBytes() < big, `compaction gives memory back: ${memtable.indexBytes()} of ${big}`);
    assert.ok(memtable.indexBytes() >= small);
  });

  // Programming errors: they were INVALID_ARGUMENT (the caller's fault) before the assert helper.
  const bugs: { name: string; ops: Op[]; bad: Op; message: RegExp }[] = [
    { name: 'an append that leaves a gap', ops: [A(1, 3)], bad: A(5, 1), message: /append at 5 leaves a gap after 3/ },
    { name: 'an empty append', ops: [A(1, 3)], bad: A(4, 0), message: /at least one entry/ },
    {
      name: 'a relocation of entries the region does not hold',
      ops: [A(5, 3)],
      bad: R(4, 2, 9),
      message: /cannot relocate 4\+2/,
    },
    { name: 'a relocation past the last entry', ops: [A(5, 3)], bad: R(6, 3, 9), message: /cannot relocate 6\+3/ },
    { name: 'a relocation in an empty region', ops: [], bad: R(1, 1, 9), message: /cannot relocate/ },
    {
      name: 'a relocation into a compressed record',
      ops: [A(1, 3)],
      bad: { op: 'relocate', first: 1, count: 1, fileId: 9, compressed: true },
      message: /uncompressed/,
    },
  ];
  for (const b of bugs) {
    it(`${b.name} is a BUG, and leaves the region as it was`, () => {
      const memtable = new RegionMemtable(3);
      const model = new Model();
      for (const op of b.ops) apply(memtable, model, op);
      assert.throws(
        () => apply(memtable, new Model(), b.bad),
        (error: unknown) => error instanceof BugError && error.code === 'BUG' && b.message.test(error.message),
      );
      check(memtable, model, `after refusing ${b.name}`);
    });
  }

  // Found by the random case below (seed 19), fixed with these tests:
  it('regression: relocating from the first entry of a compacted region leaves no empty run for the old file', () => {
    const memtable = new RegionMemtable(1);
    const model = new Model();
    // File 1 holds 1..3, file 2 holds 4..6; after compacting to 2 and moving 2..3, file 1 holds nothing.
    for (const op of [A(1, 3, 1), A(4, 3, 2), C(2), R(2, 2, 9)]) apply(memtable, model, op);
    const runs: number[][] = [];
    memtable.forEachFileRun((fileId, first, count) => runs.push([fileId, first, count]));
    assert.deepEqual(runs, [
      [9, 2, 2],
      [2, 4, 3],
    ]);
    // Before, an empty run of file 1 made the region look like it still
    // referenced file 1, and the purge planner kept the watermark there.
    assert.equal(memtable.oldestFileId(), 2);
    check(memtable, model, 'after the relocation');
  });

  it('regression: relocating a prefix of a compressed record keeps the rest of it readable', () => {
    const memtable = new RegionMemtable(1);
    const model = new Model();
    // Two compressed records in file 1 (1..3 at 64, 4..6 at 512); entries 1..5 move, 6 stays in the second record.
    const ops: Op[] = [
      { op: 'append', first: 1, count: 3, fileId: 1, compressed: true, recordOffset: 64 },
      { op: 'append', first: 4, count: 3, fileId: 1, compressed: true, recordOffset: 512 },
      R(1, 5, 9),
    ];
    for (const op of ops) apply(memtable, model, op);
    const out = newEntryLocation();
    assert.ok(memtable.locate(6, out));
    // Before, the second record's row went with the range, and entry 6 was
    // read from whatever row was left (here the first record's).
    assert.equal(out.recordOffset, 512);
    assert.deepEqual({ ...out }, model.entries.get(6));
    check(memtable, model, 'after the relocation');
  });

  it('random appends, overwrites, compactions, cleans and relocations agree with the model', () => {
    const seed = testSeed(19);
    const rng = new Random(seed);
    const memtable = new RegionMemtable(1);
    const model = new Model();
    const files = { next: 1 };
    for (let step = 0; step < 1500; step++) {
      const op = randomOp(rng, model, files, step);
      apply(memtable, model, op);
      check(memtable, model, `seed=${seed} step ${step} (${JSON.stringify(op)})`);
    }
  });

  it('regions loaded from a checkpoint share its columns: each agrees with its model through later changes, none reaches another, and the shared buffer is let go', async () => {
    const seed = testSeed(1818);
    const rng = new Random(seed);
    const files = { next: 1 };
    // Regions of every shape: empty, keys only, one run, many runs, compressed records.
    const regions = Array.from({ length: 400 }, (_, i) => ({
      memtable: new RegionMemtable(i * 7 + 1),
      model: new Model(),
      keys: [] as [string, KeyValue][],
    }));
    for (const [i, { memtable, model }] of regions.entries()) {
      const steps = i % 5 === 0 ? 0 : rng.below(25);
      for (let step = 0; step < steps; step++) apply(memtable, model, randomOp(rng, model, files, step));
      if (i % 3 === 0) memtable.kv.set(`key ${i}`, { value: Uint8Array.of(i & 0xff, 1, 2), fileId: 1 + (i % 4) });
      regions[i]!.keys = [...memtable.kv];
    }
    const covered = { manifestGeneration: 1, first: 1, last: 1, rewriteSeq: 0, lastEnd: 64, sealAt: 32, files: [] };
    const decoded = decodeIndexCheckpoint(
      encodeIndexCheckpoint(
        covered,
        regions.map((r) => r.memtable.exportIndex()),
      ),
    );
    assert.ok(typeof decoded === 'object', `seed=${seed}: ${String(decoded)}`);
    assert.equal(decoded.regionCount, regions.length);
    const shared = new LoadedColumns(decoded.columns, decoded.columnBytes);
    const loaded: RegionMemtable[] = [];
    decoded.forEachRegion((region) => loaded.push(RegionMemtable.fromLoaded(region, shared)));
    const arena = shared.arena;
    assert.ok(arena.liveBytes * 2 >= arena.byteLength && arena.liveBytes <= arena.byteLength, 'the regions use the whole buffer');
    const checkAll = (context: string): void => {
      for (const [i, memtable] of loaded.entries()) {
        assert.equal(memtable.region, regions[i]!.memtable.region);
        check(memtable, regions[i]!.model, `seed=${seed} region ${i}, ${context}`);
        assert.deepEqual([...memtable.kv], regions[i]!.keys, `seed=${seed} region ${i} keys, ${context}`);
      }
    };
    checkAll('as loaded');
    // Changes that stay inside a region's rows (compactions, overwrites, relocations) and ones that move it out.
    for (let step = 0; step < 3000; step++) {
      const i = rng.below(loaded.length);
      const op = randomOp(rng, regions[i]!.model, files, step);
      apply(loaded[i]!, regions[i]!.model, op);
      if (op.op === 'clean') regions[i]!.keys = [];
      check(loaded[i]!, regions[i]!.model, `seed=${seed} region ${i} step ${step} (${JSON.stringify(op)})`);
      if (step % 500 === 0) checkAll(`step ${step}`);
    }
    checkAll('after the changes');
    // Growing every region moves it out; past half of the buffer dead, the rest moves out at once.
    for (const [i, memtable] of loaded.entries()) {
      const last = regions[i]!.model.last() ?? 0;
      apply(memtable, regions[i]!.model, A(last + 1, 40, files.next));
      if (arena.evacuations === 0) assert.ok(arena.liveBytes * 2 >= arena.byteLength, `seed=${seed}: at most half of the buffer is dead`);
    }
    assert.equal(arena.evacuations, 1, `seed=${seed}: the regions left in the buffer began to move out once`);
    // They move out between other work: the memtables stay right meanwhile.
    checkAll('while moving out');
    while (arena.evacuating) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(arena.liveBytes, 0, `seed=${seed}: nothing uses the buffer any more`);
    checkAll('after growth');
  });
});
