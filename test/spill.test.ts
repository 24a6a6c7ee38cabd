import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { FaultFs } from '../backends/fault.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import type { FileSystem } from '../src/filesystem.js';

const OPTIONS: Partial<EngineOptions> = { targetFileSize: 16384, preallocateBytes: 4096, recycleFiles: 0, seed: 8 };

async function append(engine: Engine, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const batch = new LogBatch();
    batch.addEntries(1, [{ index: i, term: 1, data: new Uint8Array(700).fill(i & 0xff) }]);
    await engine.write(batch, { sync: true });
  }
}

async function logNames(fs: FileSystem): Promise<string[]> {
  return (await fs.list()).filter((n) => n.endsWith('.raftlog'));
}

describe('spill directory', () => {
  it('keeps writing to the spill FileSystem when the primary is full, reads both, and returns when space frees', async () => {
    const primary = new FaultFs(new MemFs(), { seed: 1 });
    const spill = new MemFs();
    let engine = new Engine({ fs: primary, spillFs: spill, ...OPTIONS });
    await engine.open();
    await append(engine, 1, 20);
    const full = primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
    await append(engine, 21, 60);
    assert.ok(full.fired > 0, 'the primary ran out of space');
    assert.equal(engine.stats().failed, false, 'no write failed');
    assert.equal(engine.stats().gc.spilling, true);
    assert.ok((await logNames(spill)).length >= 2, 'new files went to the spill directory');
    const all = await engine.fetchEntriesTo(1, 1, 81);
    assert.equal(all.length, 80);
    assert.ok(all.every((e) => e.data[0] === (e.index & 0xff)));
    await engine.close();

    // Reopen over both directories: one log.
    engine = new Engine({ fs: primary, spillFs: spill, ...OPTIONS });
    await engine.open();
    assert.equal(engine.lastIndex(1), 80);
    assert.deepEqual(engine.recoveryReport?.problems, []);
    // Space comes back (the operator freed some); GC removes old files and new ones return to the primary.
    full.remove();
    await engine.compactTo(1, 78, { sync: true });
    await engine.purgeExpiredFiles();
    await append(engine, 81, 60);
    const primaryFiles = (await logNames(primary)).sort();
    const spillFiles = (await logNames(spill)).sort();
    const newest = [...primaryFiles, ...spillFiles].sort().at(-1)!;
    assert.ok(
      primaryFiles.includes(newest),
      `the newest file is back on the primary: ${primaryFiles.join(', ')} | ${spillFiles.join(', ')}`,
    );
    assert.equal(engine.stats().gc.spilling, false);
    assert.equal((await engine.fetchEntriesTo(1, 78, 141)).length, 63);
    await engine.close();
  });

  it('without a spill directory, a full disk is NO_SPACE and fail-stops, losing nothing acknowledged', async () => {
    const primary = new FaultFs(new MemFs(), { seed: 2 });
    const engine = new Engine({ fs: primary, ...OPTIONS });
    await engine.open();
    await append(engine, 1, 10);
    primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
    let failedAt = 0;
    try {
      await append(engine, 11, 100);
    } catch (error) {
      assert.equal((error as { code: string }).code, 'NO_SPACE');
      failedAt = engine.lastIndex(1)!;
    }
    assert.ok(failedAt >= 10);
    await engine.close();
    const recovered = new Engine({ fs: await primary.crash('dropUnsynced'), ...OPTIONS });
    await recovered.open();
    assert.equal(recovered.lastIndex(1), failedAt, 'every acknowledged write survives');
    await recovered.close();
  });
});
