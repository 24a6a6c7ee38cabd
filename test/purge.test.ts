/**
 * The purge planner (src/purge.ts) on its own: given what each region holds
 * and where, and the append files with their sizes, what one GC pass
 * decides: the watermark, what to copy into a checkpoint, which regions to
 * ask to compact instead, whether a checkpoint is needed at all, and when
 * the space rule (files ≤ SPACE_BOUND × live + slack) raises the watermark.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileId } from '../src/file-names.js';
import { Queue } from '../src/format/layout.js';
import { RegionMemtable } from '../src/memtable.js';
import { planPurge, SPACE_BOUND, type AppendFileInfo, type PurgeOptions, type PurgePlan, type PurgeSpace } from '../src/purge.js';

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

const OPTIONS: PurgeOptions = { purgeThreshold: 5000, rewriteMaxEntries: 10, forceRewriteAfter: 3, maxSpaceAmplification: SPACE_BOUND };

interface Case {
  name: string;
  regions: Record<number, RegionSpec>;
  /** Append files 1..files (1000 bytes each); the last is active. */
  files: number;
  checkpointExists?: boolean;
  strikes?: Record<number, number>;
  options?: Partial<PurgeOptions>;
  /** Default: the current checkpoint (when it exists) 100 bytes, and a slack so large the space rule never binds. */
  space?: Partial<PurgeSpace>;
  expect: {
    watermark: number;
    entries?: PurgePlan['entries'];
    keys?: Record<number, string[]>;
    laggards?: number[];
    checkpoint: boolean;
    spaceRewrite?: boolean;
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

/** A threshold never reached: only the space rule moves the watermark past the oldest reference. */
const SPACE_ONLY: Partial<PurgeOptions> = { purgeThreshold: 1e9 };

/** Ten 1000-byte files: files 1 and 2 hold 100 live bytes each, files 3..10 two 400-byte entries each (live 6600). */
const mostlyDeadOldest = (): ReturnType<typeof run>[] => [
  run('a1', 1, 1, 100),
  run('a2', 2, 1, 100),
  ...[3, 4, 5, 6, 7, 8, 9, 10].map((seq) => run(`a${seq}`, 3 + 2 * (seq - 3), 2, 400)),
];

// The space rule, with 1000-byte files: after the pass, the append files
// kept plus the checkpoint it leaves must fit in 1.3 × live + slack. The
// checkpoint a watermark leaves holds the live bytes below it (or, when
// nothing retires, is the current one).
const spaceCases: Case[] = [
  {
    name: 'within the bound: nothing is copied, the oldest reference holds the watermark',
    // Live 10 × 800 = 8000; 1.3 × 8000 = 10400 ≥ 10 × 1000.
    regions: { 1: { runs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((seq) => run(`a${seq}`, 1 + 8 * (seq - 1), 8, 100)) } },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: 0 },
    expect: { watermark: 1, checkpoint: false, spaceRewrite: false },
  },
  {
    name: "over the bound: the oldest files' live data is copied, up to the lowest watermark that fits",
    // Live 100 + 100 + 8 × 800 = 6600, limit 8580. Watermark 2 leaves 9000 + 268, 3 leaves 8000 + 408: fits.
    regions: { 1: { runs: mostlyDeadOldest() } },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: 0 },
    expect: { watermark: 3, entries: [{ region: 1, first: 1, count: 2 }], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'a slack (room the recycle pool and the active file leave of one target file + preallocation) absorbs dead bytes',
    // As above, with a slack of 2000: the limit is 10580 ≥ 10000.
    regions: { 1: { runs: mostlyDeadOldest() } },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: 2000 },
    expect: { watermark: 1, checkpoint: false, spaceRewrite: false },
  },
  {
    name: 'a smaller slack moves the watermark less far',
    // Slack 1000: limit 9580; watermark 2 leaves 9000 + 268.
    regions: { 1: { runs: mostlyDeadOldest() } },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: 1000 },
    expect: { watermark: 2, entries: [{ region: 1, first: 1, count: 1 }], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'a negative slack (the pool and a recycled active file take more than that room) moves the watermark further',
    // Slack −300: limit 8280; watermark 3 leaves 8408, 4 leaves 7000 + 1256.
    regions: { 1: { runs: mostlyDeadOldest() } },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: -300 },
    expect: { watermark: 4, entries: [{ region: 1, first: 1, count: 4 }], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'keys below the watermark the space rule picks are copied with the entries',
    // hard_state: 10 + 90 = 100 bytes in file 1, 200 in file 2; live 6700, limit 8710. Watermark 3 leaves 8000 + 500.
    regions: {
      1: {
        keys: [key('hard_state', 'a1', 90)],
        runs: [run('a2', 1, 1, 200), ...[3, 4, 5, 6, 7, 8, 9, 10].map((seq) => run(`a${seq}`, 2 + 2 * (seq - 3), 2, 400))],
      },
    },
    files: 10,
    options: SPACE_ONLY,
    space: { slackBytes: 0 },
    expect: {
      watermark: 3,
      entries: [{ region: 1, first: 1, count: 1 }],
      keys: { 1: ['hard_state'] },
      checkpoint: true,
      spaceRewrite: true,
    },
  },
  {
    name: 'a mostly dead checkpoint counts: retiring one file replaces it with a small one',
    // Live 100 (rewrite queue) + 4 × 800 = 3300, limit 4290. Keeping everything: 4000 + the 3000-byte checkpoint;
    // watermark 2: 3000 + 128 + 140 + 848.
    regions: { 1: { runs: [run('r1', 1, 1, 100), ...[1, 2, 3, 4].map((seq) => run(`a${seq}`, 2 + 2 * (seq - 1), 2, 400))] } },
    files: 4,
    options: SPACE_ONLY,
    space: { slackBytes: 0, checkpointBytes: 3000 },
    expect: { watermark: 2, entries: [{ region: 1, first: 1, count: 3 }], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'a region with many old entries is copied for space, and still asked to compact',
    // Region 5: 20 × 25 bytes in file 1 (copied: 500 + 160 + 32); region 1: 840 in each of files 2..4.
    // Live 3020, limit 3926: keeping everything is 4000; watermark 2 leaves 3000 + 128 + 692.
    regions: {
      1: { runs: [2, 3, 4].map((seq) => run(`a${seq}`, 1 + 2 * (seq - 2), 2, 420)) },
      5: { runs: [run('a1', 1, 20, 25)] },
    },
    files: 4,
    options: SPACE_ONLY,
    space: { slackBytes: 0 },
    expect: { watermark: 2, entries: [{ region: 5, first: 1, count: 20 }], laggards: [5], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'when no watermark fits (dead bytes in the active file), the one leaving the fewest bytes is taken',
    // Live 100 in file 1, limit 130: watermark 4 leaves the active file (1000) + 268, the least there is.
    regions: { 1: { runs: [run('a1', 1, 1, 100)] } },
    files: 4,
    options: SPACE_ONLY,
    space: { slackBytes: 0 },
    expect: { watermark: 4, entries: [{ region: 1, first: 1, count: 1 }], checkpoint: true, spaceRewrite: true },
  },
  {
    name: 'a space rewrite never goes below a watermark the threshold rule already reached',
    // Over the threshold, file 1's small leftover is copied and the watermark goes to the target, 7;
    // 4 × 1000 + the copied 20 bytes (+ 176) is within 1.3 × (20 + 500 + 3000), so the space rule adds nothing.
    regions: {
      1: { runs: [run('a1', 1, 2, 10)] },
      2: { runs: [run('a7', 1, 5, 100), ...[8, 9, 10].map((seq) => run(`a${seq}`, 6 + 10 * (seq - 8), 10, 100))] },
    },
    files: 10,
    space: { slackBytes: 0 },
    expect: { watermark: 7, entries: [{ region: 1, first: 1, count: 2 }], checkpoint: true, spaceRewrite: false },
  },
];

describe('purge planner', () => {
  for (const c of [...cases, ...spaceCases]) {
    it(c.name, () => {
      const files = filesUpTo(c.files);
      const strikes = new Map(Object.entries(c.strikes ?? {}).map(([region, count]) => [Number(region), count]));
      const options = { ...OPTIONS, ...c.options };
      const space: PurgeSpace = { checkpointBytes: c.checkpointExists === true ? 100 : 0, slackBytes: 1e9, ...c.space };
      const plan = planPurge(memtablesOf(c.regions), files, c.files, strikes, options, space);
      assert.equal(plan.watermark, c.expect.watermark, 'watermark');
      assert.deepEqual(plan.entries, c.expect.entries ?? [], 'entries to copy');
      assert.deepEqual(Object.fromEntries(plan.keys), c.expect.keys ?? {}, 'keys to copy');
      assert.deepEqual(plan.laggards, c.expect.laggards ?? [], 'regions asked to compact');
      assert.equal(plan.checkpoint, c.expect.checkpoint, 'checkpoint');
      assert.equal(plan.spaceRewrite, c.expect.spaceRewrite ?? false, 'space rewrite');
      // Whatever the case: the watermark never passes the active file nor falls below the first.
      assert.ok(plan.watermark <= c.files && plan.watermark >= 1);
    });
  }

  it('the space bound is the one the issue states (1.3 × live)', () => {
    assert.equal(SPACE_BOUND, 1.3);
  });

  it('maxSpaceAmplification 0 turns the space rule off', () => {
    const c = spaceCases[1]!;
    const plan = planPurge(
      memtablesOf(c.regions),
      filesUpTo(c.files),
      c.files,
      new Map(),
      { ...OPTIONS, ...SPACE_ONLY, maxSpaceAmplification: 0 },
      { checkpointBytes: 0, slackBytes: 0 },
    );
    assert.equal(plan.watermark, 1);
    assert.equal(plan.spaceRewrite, false);
  });

  it('a looser maxSpaceAmplification copies less', () => {
    // The case above with bound 1.45: limit 9570; watermark 2 leaves 9000 + 268.
    const c = spaceCases[1]!;
    const plan = planPurge(
      memtablesOf(c.regions),
      filesUpTo(c.files),
      c.files,
      new Map(),
      { ...OPTIONS, ...SPACE_ONLY, maxSpaceAmplification: 1.45 },
      { checkpointBytes: 0, slackBytes: 0 },
    );
    assert.equal(plan.watermark, 2);
    assert.deepEqual(plan.entries, [{ region: 1, first: 1, count: 1 }]);
  });

  it('planning changes nothing it reads', () => {
    const memtables = memtablesOf({ 1: { runs: [run('a1', 1, 2, 10)], keys: [key('k', 'a1', 4)] } });
    const strikes = new Map([[1, 1]]);
    const space: PurgeSpace = { checkpointBytes: 0, slackBytes: 0 };
    const first = planPurge(memtables, filesUpTo(10), 10, strikes, OPTIONS, space);
    const second = planPurge(memtables, filesUpTo(10), 10, strikes, OPTIONS, space);
    assert.deepEqual(second, first);
    assert.equal(memtables.get(1)!.entryCount, 2);
    assert.deepEqual([...strikes], [[1, 1]]);
  });
});
