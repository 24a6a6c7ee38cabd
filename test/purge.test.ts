/**
 * The purge planner (src/purge.ts) on its own: given what each region holds
 * and where, and the append files with their sizes, what one GC pass
 * decides: the watermark, what to copy into a checkpoint, which regions to
 * ask to compact instead, and whether a checkpoint is needed at all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileId } from '../src/file-names.js';
import { Queue } from '../src/format/layout.js';
import { RegionMemtable } from '../src/memtable.js';
import { planPurge, type AppendFileInfo, type PurgeOptions, type PurgePlan } from '../src/purge.js';

/** `a3`: append file 3; `r1`: rewrite-queue file 1. */
type FileRef = `a${number}` | `r${number}`;

function idOf(file: FileRef): number {
  const seq = Number(file.slice(1));
  return fileId(file.startsWith('r') ? Queue.Rewrite : Queue.Append, seq);
}

interface RegionSpec {
  /** Entry runs, in index order: `count` entries of `bytes` each, from `first`, in `file`. */
  runs?: { file: FileRef; first: number; count: number; bytes: number }[];
  /** Key-value pairs: `bytes` of value, put in `file`. */
  keys?: { key: string; file: FileRef; bytes: number }[];
}

function memtablesOf(regions: Record<number, RegionSpec>): Map<number, RegionMemtable> {
  const memtables = new Map<number, RegionMemtable>();
  for (const [id, spec] of Object.entries(regions)) {
    const memtable = new RegionMemtable(Number(id));
    for (const run of spec.runs ?? []) {
      const offsets = Uint32Array.from({ length: run.count }, (_, i) => i * run.bytes);
      const lengths = new Uint32Array(run.count).fill(run.bytes);
      const payloadLength = run.count * run.bytes;
      const record = { fileId: idOf(run.file), recordOffset: 32, payloadLength, compressed: false };
      memtable.append(run.first, run.count, record, offsets, lengths, 0);
    }
    for (const kv of spec.keys ?? []) {
      memtable.kv.set(kv.key, { value: new Uint8Array(kv.bytes), fileId: idOf(kv.file) });
    }
    memtables.set(Number(id), memtable);
  }
  return memtables;
}

/** Append files 1..`count`, `bytes` each; the last one is the active file. */
function filesUpTo(count: number, bytes = 1000): AppendFileInfo[] {
  return Array.from({ length: count }, (_, i) => ({ seq: i + 1, bytes }));
}

type RunSpec = NonNullable<RegionSpec['runs']>[number];
type KeySpec = NonNullable<RegionSpec['keys']>[number];
const run = (file: FileRef, first: number, count: number, bytes: number): RunSpec => ({ file, first, count, bytes });
const key = (name: string, file: FileRef, bytes: number): KeySpec => ({ key: name, file, bytes });

const OPTIONS: PurgeOptions = { purgeThreshold: 5000, rewriteMaxEntries: 10, forceRewriteAfter: 3 };

interface Case {
  name: string;
  regions: Record<number, RegionSpec>;
  /** Append files 1..files (1000 bytes each); the last is active. */
  files: number;
  checkpointExists?: boolean;
  strikes?: Record<number, number>;
  options?: Partial<PurgeOptions>;
  expect: {
    watermark: number;
    entries?: PurgePlan['entries'];
    keys?: Record<number, string[]>;
    laggards?: number[];
    checkpoint: boolean;
  };
}

// With 10 files of 1000 bytes and a threshold of 5000, the planner aims to
// keep the newest files within 70% of the threshold (files 7..9 and the
// active 10), so the target watermark is 7.
const cases: Case[] = [
  {
    name: 'a single active file: nothing to retire',
    regions: { 1: { runs: [run('a1', 1, 5, 10)] } },
    files: 1,
    expect: { watermark: 1, checkpoint: false },
  },
  {
    name: 'no regions: every file below the active one retires, without a checkpoint',
    regions: {},
    files: 3,
    expect: { watermark: 3, checkpoint: false },
  },
  {
    name: 'files below the oldest reference retire; nothing live below them needs no checkpoint',
    regions: { 1: { runs: [run('a3', 1, 5, 10), run('a4', 6, 5, 10)] } },
    files: 4,
    expect: { watermark: 3, checkpoint: false },
  },
  {
    name: 'retiring with an earlier checkpoint writes a new one (the old one must go too)',
    regions: { 1: { runs: [run('a3', 1, 5, 10)] } },
    files: 4,
    checkpointExists: true,
    expect: { watermark: 3, checkpoint: true },
  },
  {
    name: 'under the threshold, an old leftover holds the watermark',
    regions: {
      1: { runs: [run('a1', 1, 2, 10)] },
      2: { runs: [run('a3', 1, 5, 10)] },
    },
    files: 4,
    expect: { watermark: 1, checkpoint: false },
  },
  {
    name: 'a key in an old file holds the watermark like an entry',
    regions: { 1: { keys: [key('hard-state', 'a2', 8)], runs: [run('a4', 1, 1, 10)] } },
    files: 4,
    expect: { watermark: 2, checkpoint: false },
  },
  {
    name: 'over the threshold, small leftovers are copied and the watermark moves to the target',
    regions: {
      1: { runs: [run('a1', 1, 2, 10)] },
      2: { runs: [run('a7', 1, 5, 10)] },
    },
    files: 10,
    expect: { watermark: 7, entries: [{ region: 1, first: 1, count: 2 }], checkpoint: true },
  },
  {
    name: 'over the threshold, keys below the target are copied',
    regions: { 1: { keys: [key('apply-state', 'a2', 8), key('new', 'a9', 8)] } },
    files: 10,
    expect: { watermark: 7, keys: { 1: ['apply-state'] }, checkpoint: true },
  },
  {
    name: 'only the old prefix of a region is copied',
    regions: { 1: { runs: [run('a2', 10, 3, 10), run('a8', 13, 4, 10)] } },
    files: 10,
    expect: { watermark: 7, entries: [{ region: 1, first: 10, count: 3 }], checkpoint: true },
  },
  {
    name: 'a region with more old entries than rewriteMaxEntries is asked to compact and holds the watermark',
    regions: {
      1: { runs: [run('a1', 1, 2, 10)] },
      5: { runs: [run('a3', 1, 50, 10)] },
    },
    files: 10,
    expect: { watermark: 3, entries: [{ region: 1, first: 1, count: 2 }], laggards: [5], checkpoint: true },
  },
  {
    name: 'a laggard asked fewer than forceRewriteAfter times is asked again',
    regions: { 5: { runs: [run('a3', 1, 50, 10)] } },
    files: 10,
    strikes: { 5: 2 },
    expect: { watermark: 3, laggards: [5], checkpoint: false },
  },
  {
    name: 'a laggard asked forceRewriteAfter times is copied anyway',
    regions: { 5: { runs: [run('a3', 1, 50, 10)] } },
    files: 10,
    strikes: { 5: 3 },
    expect: { watermark: 7, entries: [{ region: 5, first: 1, count: 50 }], checkpoint: true },
  },
  {
    name: 'a rewrite stops below a file whose live data would cost more than a tenth of what it frees',
    regions: {
      1: { runs: [run('a1', 1, 2, 10)] },
      2: { runs: [run('a4', 1, 7, 100)] },
    },
    files: 10,
    expect: { watermark: 4, entries: [{ region: 1, first: 1, count: 2 }], checkpoint: true },
  },
  {
    name: 'a rewrite that never pays leaves the watermark where the references put it',
    regions: { 1: { runs: [run('a1', 1, 8, 100)] } },
    files: 10,
    expect: { watermark: 1, checkpoint: false },
  },
  {
    name: 'rewrite-queue data lies below every watermark and is carried into the next checkpoint',
    regions: { 1: { runs: [run('r1', 1, 3, 10), run('a4', 4, 2, 10)] } },
    files: 4,
    checkpointExists: true,
    expect: { watermark: 4, entries: [{ region: 1, first: 1, count: 3 }], checkpoint: true },
  },
  {
    name: 'rewrite-queue data that stays put needs no new checkpoint while nothing retires',
    regions: { 1: { runs: [run('r1', 1, 3, 10), run('a1', 4, 2, 10)] } },
    files: 1,
    checkpointExists: true,
    expect: { watermark: 1, entries: [{ region: 1, first: 1, count: 3 }], checkpoint: false },
  },
];

describe('purge planner', () => {
  for (const c of cases) {
    it(c.name, () => {
      const files = filesUpTo(c.files);
      const strikes = new Map(Object.entries(c.strikes ?? {}).map(([region, count]) => [Number(region), count]));
      const options = { ...OPTIONS, ...c.options };
      const plan = planPurge(memtablesOf(c.regions), files, c.files, c.checkpointExists === true, strikes, options);
      assert.equal(plan.watermark, c.expect.watermark, 'watermark');
      assert.deepEqual(plan.entries, c.expect.entries ?? [], 'entries to copy');
      assert.deepEqual(Object.fromEntries(plan.keys), c.expect.keys ?? {}, 'keys to copy');
      assert.deepEqual(plan.laggards, c.expect.laggards ?? [], 'regions asked to compact');
      assert.equal(plan.checkpoint, c.expect.checkpoint, 'checkpoint');
      // Whatever the case: the watermark never passes the active file nor falls below the first.
      assert.ok(plan.watermark <= c.files && plan.watermark >= 1);
    });
  }

  it('planning changes nothing it reads', () => {
    const memtables = memtablesOf({ 1: { runs: [run('a1', 1, 2, 10)], keys: [key('k', 'a1', 4)] } });
    const strikes = new Map([[1, 1]]);
    const first = planPurge(memtables, filesUpTo(10), 10, false, strikes, OPTIONS);
    const second = planPurge(memtables, filesUpTo(10), 10, false, strikes, OPTIONS);
    assert.deepEqual(second, first);
    assert.equal(memtables.get(1)!.entryCount, 2);
    assert.deepEqual([...strikes], [[1, 1]]);
  });
});
