/**
 * consistencyCheck(): per region, the last index whose entries are intact,
 * on an open engine and on a closed directory, with damage written into a
 * real file at a known record.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../src/engine.js';
import { consistencyCheck, type RegionConsistency } from '../src/consistency-check.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import type { Entry } from '../src/protos.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { ENGINE_TARGETS, memTarget, posixTarget } from './support/engines.js';

const FIRST_FILE = '0000000000000001.raftlog';

function entries(first: number, count: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    index: first + i,
    term: 1,
    data: new TextEncoder().encode(`entry ${first + i} `.repeat(8)),
  }));
}

/** One synced record per call; returns where it starts and ends in the active file. */
async function record(engine: Engine, runs: [region: number, first: number, count: number][]): Promise<{ start: number; end: number }> {
  const start = engine.stats().activeFileOffset;
  const batch = new LogBatch();
  for (const [region, first, count] of runs) batch.addEntries(region, entries(first, count));
  await engine.write(batch, { sync: true });
  return { start, end: engine.stats().activeFileOffset };
}

/** Flips every bit of one byte in place, as bit rot would. */
async function flipByte(fs: FileSystem, name: string, offset: number): Promise<void> {
  const handle = await fs.open(name);
  try {
    const byte = new Uint8Array(1);
    assert.equal(await handle.read(byte, 0, 1, offset), 1);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write([byte], offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function byRegion(regions: RegionConsistency[]): Record<number, Omit<RegionConsistency, 'region'>> {
  return Object.fromEntries(regions.map(({ region, ...rest }) => [region, rest]));
}

/**
 * r1 and r2 have entries in the damaged record (the third), with more after
 * it; r3 has none there.
 */
async function writeScenario(engine: Engine): Promise<{ start: number; end: number }> {
  await record(engine, [
    [1, 1, 5],
    [2, 1, 5],
  ]);
  await record(engine, [
    [1, 6, 5],
    [3, 1, 5],
  ]);
  const damaged = await record(engine, [
    [1, 11, 5],
    [2, 6, 5],
  ]);
  await record(engine, [
    [1, 16, 5],
    [2, 11, 5],
    [3, 6, 5],
  ]);
  await record(engine, [[1, 21, 5]]);
  return damaged;
}

for (const target of ENGINE_TARGETS) {
  describe(`consistencyCheck on ${target.name}`, () => {
    it('reports every region intact through its last index on an undamaged log', async () => {
      const { fs, reopen, cleanup } = await target.make();
      try {
        const engine = new Engine({ fs, preallocateBytes: 0, seed: 7 });
        await engine.open();
        await writeScenario(engine);
        const online = await engine.consistencyCheck();
        assert.deepEqual(online.problems, []);
        assert.deepEqual(byRegion(online.regions), {
          1: { firstIndex: 1, lastIndex: 25, lastIntactIndex: 25, damaged: [] },
          2: { firstIndex: 1, lastIndex: 15, lastIntactIndex: 15, damaged: [] },
          3: { firstIndex: 1, lastIndex: 10, lastIntactIndex: 10, damaged: [] },
        });
        for (const r of online.regions) assert.equal(r.lastIntactIndex, engine.lastIndex(r.region));
        assert.equal(online.records, 5);
        // The engine still writes after the check held the queue.
        await record(engine, [[3, 11, 1]]);
        await engine.close();
        const closed = await consistencyCheck(reopen());
        assert.equal(closed.records, 7, 'six records and the seal of the clean close');
        assert.equal(byRegion(closed.regions)[3]!.lastIntactIndex, 11);
      } finally {
        await cleanup();
      }
    });

    it('a bit flip in a record in the middle: its regions are intact up to the index before their entries in it', async () => {
      const { fs, reopen, cleanup } = await target.make();
      try {
        const engine = new Engine({ fs, preallocateBytes: 0, seed: 7 });
        await engine.open();
        const damaged = await writeScenario(engine);
        // Bit rot under a running engine: the check reads the files, not the memtables.
        await flipByte(fs, FIRST_FILE, damaged.start + 24 + 40);
        const expected = {
          1: { firstIndex: 1, lastIndex: 25, lastIntactIndex: 10, damaged: [{ first: 11, last: 15 }] },
          2: { firstIndex: 1, lastIndex: 15, lastIntactIndex: 5, damaged: [{ first: 6, last: 10 }] },
          3: { firstIndex: 1, lastIndex: 10, lastIntactIndex: 10, damaged: [] },
        };
        const online = await engine.consistencyCheck();
        assert.deepEqual(byRegion(online.regions), expected);
        assert.deepEqual(
          online.problems.map((p) => [p.file, p.offset, p.action, p.bytesDropped]),
          [[FIRST_FILE, damaged.start, 'skipped', damaged.end - damaged.start]],
          'the damaged record, and only its bytes',
        );
        await engine.close();
        const closed = await consistencyCheck(reopen());
        assert.deepEqual(byRegion(closed.regions), expected);
        // What an engine opening it in TolerateAnyCorruption keeps is another matter (it keeps the run after the hole).
        const salvage = new Engine({ fs: reopen(), recoveryMode: RecoveryMode.TolerateAnyCorruption });
        await salvage.open();
        assert.deepEqual(byRegion((await salvage.consistencyCheck()).regions), expected);
        await salvage.close();
      } finally {
        await cleanup();
      }
    });

    it('a tail overwrite from below a hole, or a compaction past it, makes the region whole again', async () => {
      const { fs, reopen, cleanup } = await target.make();
      try {
        const engine = new Engine({ fs, preallocateBytes: 0, seed: 7 });
        await engine.open();
        const damaged = await writeScenario(engine);
        // Raft overwrites r1 from index 9 (a new leader's conflicting tail); r2 is compacted past its hole.
        await record(engine, [[1, 9, 3]]);
        await engine.compactTo(2, 12, { sync: true });
        await engine.close();
        await flipByte(reopen(), FIRST_FILE, damaged.start + 24 + 40);
        const report = await consistencyCheck(reopen());
        assert.deepEqual(byRegion(report.regions), {
          1: { firstIndex: 1, lastIndex: 11, lastIntactIndex: 11, damaged: [] },
          2: { firstIndex: 12, lastIndex: 15, lastIntactIndex: 15, damaged: [] },
          3: { firstIndex: 1, lastIndex: 10, lastIntactIndex: 10, damaged: [] },
        });
        assert.equal(report.problems.length, 1, 'the damaged record is still reported');
      } finally {
        await cleanup();
      }
    });
  });
}

describe('consistencyCheck: dropped bytes', () => {
  it('counts the bytes of a torn write, not the preallocated zeros after it', async () => {
    const { fs, reopen, cleanup } = await posixTarget.make();
    try {
      const engine = new Engine({ fs, preallocateBytes: 1 << 20, seed: 7 });
      await engine.open();
      await writeScenario(engine);
      const end = engine.stats().activeFileOffset;
      await engine.close();
      // The seal of the clean close follows `end`; garbage right after it is a torn write.
      const garbage = reopen();
      const handle = await garbage.open(FIRST_FILE);
      const seal = 24;
      // A clean close cut the preallocated tail; a crashed engine leaves it: put it back.
      await handle.truncate(1 << 20);
      await handle.write([new TextEncoder().encode('torn write!')], end + seal);
      assert.ok((await handle.size()) >= 1 << 20, 'the file is preallocated');
      await handle.close();
      const report = await consistencyCheck(reopen());
      assert.deepEqual(
        report.problems.map((p) => [p.offset, p.action, p.bytesDropped]),
        [[end + seal, 'cut', 16]],
      );
    } finally {
      await cleanup();
    }
  });
});

describe('consistencyCheck after GC', () => {
  it('reads the GC checkpoint first and agrees with the engine on every region, with writes queued around it', async () => {
    const { fs, reopen, cleanup } = await memTarget.make();
    try {
      const engine = new Engine({
        fs,
        targetFileSize: 8192,
        preallocateBytes: 4096,
        purgeThreshold: 4 * 8192,
        rewriteMaxEntries: 8,
        seed: 5,
      });
      await engine.open();
      await record(engine, [[2, 1, 3]]);
      for (let i = 0; i < 600; i++) {
        await record(engine, [[1, 1 + i, 1]]);
        if (i % 10 === 9) await engine.compactTo(1, i - 2);
      }
      await engine.purgeExpiredFiles();
      assert.ok(
        (await fs.list()).some((name) => name.endsWith('.rewrite')),
        'GC wrote a checkpoint',
      );
      // Writes before and after the check: it runs between write groups, seeing the first and not the second.
      const before = record(engine, [[2, 4, 2]]);
      const report = engine.consistencyCheck();
      const after = record(engine, [[2, 6, 2]]);
      await Promise.all([before, after]);
      const expected = {
        1: { firstIndex: engine.firstIndex(1)!, lastIndex: 600, lastIntactIndex: 600, damaged: [] },
        2: { firstIndex: 1, lastIndex: 5, lastIntactIndex: 5, damaged: [] },
      };
      assert.deepEqual(byRegion((await report).regions), expected);
      assert.deepEqual((await report).problems, []);
      await engine.close();
      assert.deepEqual(byRegion((await consistencyCheck(reopen())).regions), {
        ...expected,
        2: { ...expected[2], lastIndex: 7, lastIntactIndex: 7 },
      });
    } finally {
      await cleanup();
    }
  });
});
