/**
 * The space bound end to end (issue 15, item 7): under a seeded churn
 * workload (appends, hard-state puts, compactions, a cold region and a
 * lagging one that never compact) on real files through PosixFs, after every
 * purge the log's files on disk (append, rewrite and recycled files, by
 * stat) stay within 1.3 × live bytes + one target file + the preallocation,
 * and nothing the workload still holds is lost.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixFs } from '../backends/posix.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { SPACE_BOUND } from '../src/purge.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const TARGET = 32 * 1024;
const PREALLOCATE = 8 * 1024;
const OPTIONS: Omit<EngineOptions, 'fs'> = { targetFileSize: TARGET, preallocateBytes: PREALLOCATE, rewriteMaxEntries: 64, seed: 15 };

/** What the bench counts: every log file, recycled ones included (they hold disk space while they wait). */
async function logFileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (/\.(raftlog|rewrite|recycle)$/.test(name)) total += (await stat(join(dir, name))).size;
  return total;
}

interface Region {
  first: number;
  next: number;
  /** Entries kept at each compaction; 0: never compacted (cold or lagging). */
  keep: number;
}

interface ChurnResult {
  purges: number;
  spaceRewrites: number;
  worstBoundUse: number;
  writeAmplification: number;
}

/**
 * Runs the churn and checks the bound at every purge. Hot regions keep a
 * seeded number of entries at each compaction round; region 1 is written
 * once and never compacted (cold data pinning the oldest file); region 2
 * takes an entry now and then and is never compacted either (a lagging
 * follower: its log is live and long).
 */
async function churn(seed: number, options: Partial<EngineOptions>): Promise<ChurnResult> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-gc-space-'));
  const rng = new Random(seed);
  const regions = new Map<number, Region>();
  regions.set(1, { first: 1, next: 1, keep: 0 });
  regions.set(2, { first: 1, next: 1, keep: 0 });
  for (let id = 3; id <= 24; id++) regions.set(id, { first: 1, next: 1, keep: 4 + rng.below(40) });
  let engine = new Engine({ fs: new PosixFs(dir), ...OPTIONS, ...options });
  const result: ChurnResult = { purges: 0, spaceRewrites: 0, worstBoundUse: 0, writeAmplification: 1 };
  try {
    await engine.open();
    const append = async (id: number, count: number, size: number): Promise<void> => {
      const region = regions.get(id)!;
      const batch = new LogBatch();
      batch.addEntries(
        id,
        Array.from({ length: count }, (_, i) => ({ index: region.next + i, term: 1, data: rng.bytes(size) })),
      );
      batch.put(id, 'hard_state', rng.bytes(16));
      region.next += count;
      await engine.write(batch, { sync: false });
    };
    await append(1, 40, 300);
    for (let step = 1; step <= 3000; step++) {
      if (step % 7 === 0) await append(2, 1, 200 + rng.below(200));
      else await append(3 + rng.below(22), 1 + rng.below(4), 100 + rng.below(900));
      if (step % 100 !== 0) continue;
      for (const [id, region] of regions) {
        if (region.keep === 0 || region.next - region.first <= region.keep) continue;
        region.first = region.next - region.keep;
        await engine.compactTo(id, region.first);
      }
      const asked = await engine.purgeExpiredFiles();
      // Regions 1 and 2 ignore the request, as a region that cannot compact yet would.
      for (const id of asked) assert.ok(regions.has(id), `purge asked to compact unknown region ${id}`);
      const { gc } = engine.stats();
      result.purges++;
      if (gc.lastPurge?.spaceRewrite === true) result.spaceRewrites++;
      const disk = await logFileBytes(dir);
      const bound = SPACE_BOUND * gc.liveBytes + TARGET + PREALLOCATE;
      result.worstBoundUse = Math.max(result.worstBoundUse, disk / bound);
      assert.ok(
        disk <= bound,
        `seed ${seed}, purge ${result.purges}: ${disk} bytes of log files > ${SPACE_BOUND} × ${gc.liveBytes} live + ${TARGET} + ${PREALLOCATE} = ${Math.floor(bound)}`,
      );
    }
    result.writeAmplification = engine.stats().gc.writeAmplification;
    // Nothing live went missing, in this engine or after a reopen.
    const expect = async (): Promise<void> => {
      for (const [id, region] of regions) {
        assert.equal(engine.firstIndex(id), region.first, `seed ${seed}: region ${id} first index`);
        assert.equal(engine.lastIndex(id), region.next - 1, `seed ${seed}: region ${id} last index`);
        const entries = await engine.fetchEntriesTo(id, region.first, region.next);
        assert.equal(entries.length, region.next - region.first, `seed ${seed}: region ${id} entries`);
      }
    };
    await expect();
    await engine.close();
    engine = new Engine({ fs: new PosixFs(dir), ...OPTIONS, ...options });
    await engine.open();
    await expect();
    return result;
  } finally {
    await engine.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

describe('GC space bound', () => {
  const seed = testSeed(1507);

  it('with a recycle pool: log files ≤ 1.3 × live + one target file + preallocation after every purge', async () => {
    const result = await churn(seed, { recycleFiles: 1 });
    // The workload does make the rule act (else the bound above would hold vacuously).
    assert.ok(result.spaceRewrites > 0, `seed ${seed}: no purge rewrote for space`);
  });

  it('without a recycle pool the log itself may use the target file of slack, and stays within the same bound', async () => {
    const result = await churn(seed, { recycleFiles: 0 });
    assert.ok(result.spaceRewrites > 0, `seed ${seed}: no purge rewrote for space`);
  });
});

describe('a clean close keeps only what the log holds', () => {
  const seed = testSeed(1508);

  /** Writes until a purge has put files in the recycle pool; returns what is on disk before close. */
  async function filledPool(
    dir: string,
    options: Partial<EngineOptions>,
    endAfterRotation: boolean,
  ): Promise<{ engine: Engine; written: Map<number, number> }> {
    const rng = new Random(seed);
    const engine = new Engine({ fs: new PosixFs(dir), ...OPTIONS, preallocateBytes: TARGET, ...options });
    await engine.open();
    const next = new Map<number, number>();
    for (let step = 0; step < 400; step++) {
      const region = 1 + rng.below(4);
      const index = next.get(region) ?? 1;
      const batch = new LogBatch();
      batch.addEntries(region, [{ index, term: 1, data: rng.bytes(500) }]);
      await engine.write(batch, { sync: step % 10 === 0 });
      next.set(region, index + 1);
      if (step % 50 === 49) {
        for (const [id, last] of next) await engine.compactTo(id, Math.max(1, last - 5));
        await engine.purgeExpiredFiles();
      }
    }
    const pool = (await readdir(dir)).filter((n) => n.endsWith('.recycle'));
    assert.ok(pool.length > 0, `seed ${seed}: the workload left nothing in the recycle pool`);
    if (!endAfterRotation) return { engine, written: next };
    // End just after a rotation, so the active file holds one small record in a file of the target size.
    const newest = async (): Promise<string> =>
      (await readdir(dir))
        .filter((n) => n.endsWith('.raftlog'))
        .sort()
        .at(-1)!;
    const active = await newest();
    for (let index = next.get(1)!; (await newest()) === active; index++) {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index, term: 1, data: rng.bytes(500) }]);
      await engine.write(batch, { sync: false });
      next.set(1, index + 1);
    }
    return { engine, written: next };
  }

  async function sizes(dir: string): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    for (const name of await readdir(dir)) result.set(name, (await lstat(join(dir, name))).size);
    return result;
  }

  it('removes the recycle pool and cuts the active file to its last record, and the log reopens and grows again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-close-space-'));
    try {
      const { engine, written } = await filledPool(dir, { recycleFiles: 2 }, true);
      const active = [...(await sizes(dir)).keys()]
        .filter((n) => n.endsWith('.raftlog'))
        .sort()
        .at(-1)!;
      const before = (await sizes(dir)).get(active)!;
      assert.equal(before, TARGET, 'the active file was preallocated to the target size');
      await engine.close();
      const after = await sizes(dir);
      assert.deepEqual(
        [...after.keys()].filter((n) => n.endsWith('.recycle')),
        [],
        'no recycled file outlives the close',
      );
      const cut = after.get(active)!;
      assert.ok(cut < before && cut % 4096 === 0, `active file ${active}: ${before} bytes before close, ${cut} after`);
      // The closed log is whole, reads back, and takes writes into the cut file again.
      const reopened = new Engine({ fs: new PosixFs(dir), ...OPTIONS, preallocateBytes: TARGET, recycleFiles: 2 });
      await reopened.open();
      try {
        assert.equal(reopened.recoveryReport?.problems.length, 0);
        for (const [id, next] of written) {
          assert.equal(reopened.lastIndex(id), next - 1);
          assert.equal((await reopened.fetchEntriesTo(id, reopened.firstIndex(id)!, next)).length, next - reopened.firstIndex(id)!);
        }
        const batch = new LogBatch();
        batch.addEntries(1, [{ index: written.get(1)!, term: 1, data: new Uint8Array(3 * TARGET) }]);
        await reopened.write(batch, { sync: true });
        assert.equal(reopened.lastIndex(1), written.get(1));
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps as many recycled files as prefillFiles asks for, since the next open would write them again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-close-space-'));
    const recycled = async (): Promise<number[]> => [...(await sizes(dir))].filter(([n]) => n.endsWith('.recycle')).map(([, size]) => size);
    try {
      // Each open finds what the close before it kept (the first one prefills 3).
      let pool = 3;
      for (const prefillFiles of [3, 1, 0]) {
        const engine = new Engine({ fs: new PosixFs(dir), ...OPTIONS, recycleFiles: 3, prefillFiles });
        await engine.open();
        assert.equal((await recycled()).length, pool, `prefillFiles ${prefillFiles}: the pool at open`);
        await engine.close();
        pool = prefillFiles;
        assert.deepEqual(await recycled(), Array(pool).fill(TARGET), `prefillFiles ${prefillFiles}: kept at close`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
