/**
 * Garbage collection beside the write path (issue 15): writes flow while a
 * purge copies (case 6), what changed meanwhile is not undone by the swap,
 * and a GC pass that fails leaves nothing that stops a later open (case 4).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { GatedFs } from './support/gated-fs.js';
import { Random } from './support/random.js';

const OPTIONS: Partial<EngineOptions> = {
  targetFileSize: 8192,
  preallocateBytes: 0,
  purgeThreshold: 4 * 8192,
  rewriteMaxEntries: 1000,
  recycleFiles: 0,
  seed: 6,
};
const HARD_STATE = new TextEncoder().encode('hard_state');

async function open(fs: FileSystem, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs, ...OPTIONS, ...options });
  await engine.open();
  return engine;
}

async function append(engine: Engine, region: number, from: number, count: number, size: number, term = 1): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const batch = new LogBatch();
    batch.addEntries(region, [{ index: i, term, data: new Uint8Array(size).fill((i * term) & 0xff) }]);
    await engine.write(batch, { sync: true });
  }
}

/** Region 1 (few small entries, a key) in the oldest files, under region 2's compacted bulk: a purge rewrites region 1. */
async function oldLeftovers(engine: Engine, withKey: boolean): Promise<void> {
  await append(engine, 1, 1, 6, 16);
  if (withKey) {
    const batch = new LogBatch();
    batch.put(1, HARD_STATE, Uint8Array.of(1));
    await engine.write(batch, { sync: true });
  }
  await append(engine, 2, 1, 80, 900);
  await engine.compactTo(2, 78, { sync: true });
}

async function state(engine: Engine): Promise<string> {
  const out: unknown[] = [];
  for (const region of engine.raftGroups()) {
    const first = engine.firstIndex(region);
    const last = engine.lastIndex(region);
    const entries = first === undefined ? [] : await engine.fetchEntriesTo(region, first, last! + 1);
    out.push([region, entries.map((e) => [e.index, e.term, e.data[0]]), engine.scan(region).map((p) => [...p.value])]);
  }
  return JSON.stringify(out);
}

describe('GC beside the write path', () => {
  it('case 6: synced writes complete while a purge is copying, and what they change survives the swap', { timeout: 30_000 }, async () => {
    const gated = new GatedFs(new MemFs());
    const engine = await open(gated);
    await oldLeftovers(engine, true);
    // Hold the checkpoint's first write: the purge has planned and read its copy, and waits there.
    const gate = gated.gate('write', /\.rewrite$/);
    const purge = engine.purgeExpiredFiles();
    await gate.reached;
    // Each of these is acknowledged while the purge waits (before this change they queued behind it).
    await append(engine, 3, 1, 3, 100);
    await append(engine, 1, 4, 2, 16, 2); // overwrites copied entries 4..6 with a new term
    const batch = new LogBatch();
    batch.put(1, HARD_STATE, Uint8Array.of(2)); // overwrites the copied key
    await engine.write(batch, { sync: true });
    await engine.compactTo(1, 2, { sync: true }); // drops copied entry 1
    const expected = await state(engine);
    gate.release();
    await purge;
    assert.ok(engine.stats().gc.lastPurge!.bytesRewritten > 0, 'the purge rewrote leftovers');
    assert.equal(engine.metrics().histograms.purgeStallMicros.count, 1, 'one swap held the queue');
    assert.equal(await state(engine), expected, 'the swap kept every change made during the copy');
    assert.deepEqual([...engine.get(1, HARD_STATE)!], [2]);
    assert.equal(engine.firstIndex(1), 2);
    assert.equal((await engine.getEntry(1, 5))!.term, 2);
    await engine.close();
    const reopened = await open(gated, { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.equal(await state(reopened), expected, 'and so does recovery');
    await reopened.close();
  });

  it('a purge that copies compressed and plain entries points every one at the copy before the old files go', async () => {
    const fs = new MemFs();
    const engine = await open(fs, { compressionThreshold: 256 });
    // Region 1: compressible records (lz4); region 3: small plain ones; both in the oldest files.
    for (let i = 1; i <= 4; i++) {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: i, term: 1, data: new Uint8Array(300).fill(i) }]);
      await engine.write(batch, { sync: true });
      const plain = new LogBatch();
      plain.addEntries(3, [{ index: i, term: 1, data: Uint8Array.of(i) }]);
      await engine.write(plain, { sync: true });
    }
    // Region 2: incompressible bulk, compacted away.
    const random = new Random(0x9e3779b9);
    for (let i = 1; i <= 80; i++) {
      const batch = new LogBatch();
      const data = random.bytes(900);
      batch.addEntries(2, [{ index: i, term: 1, data }]);
      await engine.write(batch, { sync: true });
    }
    await engine.compactTo(2, 78, { sync: true });
    const expected = await state(engine);
    await engine.purgeExpiredFiles();
    assert.ok(engine.stats().gc.lastPurge!.bytesRewritten > 0);
    assert.ok(!(await fs.list()).includes('0000000000000001.raftlog'), 'the old files are gone');
    assert.equal(await state(engine), expected);
    await engine.close();
  });

  it('case 4: a purge that hits NO_SPACE writing its checkpoint, then a purge that removes files, leave a directory that opens', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 4 });
    const engine = await open(fault);
    await oldLeftovers(engine, false);
    // The checkpoint's header fits, its record does not: a partial .rewrite file.
    const full = fault.inject({
      ops: ['write', 'preallocate'],
      path: /\.rewrite$/,
      when: { afterBytes: 64, partial: true },
      error: 'ENOSPC',
    });
    // And it stays: removing it fails, here and in the next pass.
    const stuck = fault.inject({ ops: ['remove'], path: /\.rewrite$/, when: { script: '2*fail' }, error: 'EIO' });
    await assert.rejects(engine.purgeExpiredFiles(), (error: Error & { code?: string }) => error.code === 'NO_SPACE');
    assert.equal(engine.stats().failed, false, 'a failed purge leaves the engine writable');
    full.remove();
    assert.equal((await fault.list()).filter((n) => n.endsWith('.rewrite')).length, 1, 'the partial checkpoint is there');
    // Nothing live below the active file now: this pass needs no checkpoint and removes the old files.
    await engine.compactTo(1, 7, { sync: true });
    await engine.compactTo(2, 81, { sync: true });
    await append(engine, 3, 1, 2, 100);
    await engine.purgeExpiredFiles().catch(() => undefined);
    assert.ok(engine.stats().gc.lastPurge === undefined || engine.stats().gc.lastPurge!.watermark > 1);
    assert.ok(!(await fault.list()).includes('0000000000000001.raftlog'), 'files below the watermark are gone');
    assert.equal((await fault.list()).filter((n) => n.endsWith('.rewrite')).length, 1, 'the partial checkpoint is still there');
    const expected = await state(engine);
    await engine.close();
    stuck.remove();
    for (const recoveryMode of [RecoveryMode.TolerateTailCorruption, RecoveryMode.AbsoluteConsistency]) {
      const reopened = await open(fault, { recoveryMode });
      assert.equal(await state(reopened), expected);
      await reopened.close();
    }
    // A power loss instead of a clean close: the same.
    const crashed = await open(await fault.crash('mixed'), { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.equal(await state(crashed), expected);
    // The next pass removes the garbage.
    await crashed.purgeExpiredFiles();
    await crashed.close();
  });
});
