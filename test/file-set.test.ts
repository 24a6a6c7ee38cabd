/**
 * The file set (src/file-set/): the one owner of the log's files. Unit tests
 * drive it directly (rotation, recycling, spill placement, retirement with
 * reads in flight, the manifest it keeps); the engine tests below cover what
 * it fixes (issue 15, case 8: a read racing a purge).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import type { Memtables } from '../src/apply.js';
import { Engine } from '../src/engine.js';
import { FileSet, type FileSetOptions } from '../src/file-set/file-set.js';
import { readManifest } from '../src/file-set/manifest.js';
import { fileId } from '../src/file-names.js';
import { Queue } from '../src/format/layout.js';
import { LogBatch, type SealedRecord } from '../src/log-batch.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { GatedFs } from './support/gated-fs.js';

function options(fs: FileSetOptions['fs'], extra: Partial<FileSetOptions> = {}): FileSetOptions {
  let salt = 1;
  return { fs, targetFileSize: 4096, preallocateBytes: 0, recycleFiles: 1, nextSalt: () => salt++, ...extra };
}

function record(region: number, index: number, bytes = 900): SealedRecord {
  const batch = new LogBatch();
  batch.addEntries(region, [{ index, term: 1, data: new Uint8Array(bytes).fill(index & 0xff) }]);
  return batch.seal(Number.POSITIVE_INFINITY);
}

async function openSet(fs: FileSetOptions['fs'], extra: Partial<FileSetOptions> = {}): Promise<FileSet> {
  const set = new FileSet(options(fs, extra));
  await set.open(RecoveryMode.AbsoluteConsistency, new Map() as Memtables);
  return set;
}

function appendNames(list: string[]): string[] {
  return list.filter((n) => n.endsWith('.raftlog')).sort();
}

describe('file set', () => {
  it('rotates at the target size and lists every file in the manifest before writing into it', async () => {
    const fs = new MemFs();
    const set = await openSet(fs);
    for (let i = 1; i <= 12; i++) await set.append([record(1, i)], true);
    assert.ok(set.rotations >= 2, `${set.rotations} rotations`);
    const names = appendNames(await fs.list());
    assert.equal(names.length, set.rotations + 1);
    const manifest = await readManifest(fs);
    assert.equal(manifest.kind, 'ok');
    if (manifest.kind === 'ok') {
      assert.equal(manifest.state.first, 1);
      assert.equal(manifest.state.last, set.activeSeq);
    }
    assert.deepEqual(
      set.appendFiles().map((f) => f.seq),
      names.map((_, i) => i + 1),
    );
    await set.close();
  });

  it('recycles a retired file and reuses it for the next file', async () => {
    const fs = new MemFs();
    const set = await openSet(fs);
    for (let i = 1; i <= 12; i++) await set.append([record(1, i)], true);
    const active = set.activeSeq;
    assert.ok(active >= 3);
    await set.commitPurge(active, undefined);
    set.retire(active, undefined);
    const reaped = await set.reap();
    assert.equal(reaped.recycled, 1, 'one file kept for reuse');
    assert.equal(reaped.removed, active - 2);
    assert.equal(set.stats().recycledFiles, 1);
    for (let i = 13; set.activeSeq === active; i++) await set.append([record(1, i)], true);
    assert.equal(set.stats().recycledFiles, 0, 'the next file reused it');
    assert.equal((await fs.list()).filter((n) => n.endsWith('.recycle')).length, 0);
    await set.close();
  });

  it('places new files on the spill FileSystem when the primary is full, and records where', async () => {
    const primary = new FaultFs(new MemFs(), { seed: 4 });
    const spill = new MemFs();
    const set = await openSet(primary, { spillFs: spill, preallocateBytes: 1024 });
    await set.append([record(1, 1)], true);
    primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
    for (let i = 2; i <= 10; i++) await set.append([record(1, i)], true);
    assert.equal(set.spilling, true);
    const spilled = appendNames(await spill.list());
    assert.ok(spilled.length >= 1);
    const manifest = await readManifest(primary);
    assert.equal(manifest.kind, 'ok');
    if (manifest.kind === 'ok') {
      const first = Number(spilled[0]!.slice(0, 16));
      const last = Number(spilled.at(-1)!.slice(0, 16));
      assert.deepEqual(manifest.state.spilled, [[first, last]]);
    }
    await set.close();
  });

  it('keeps a retired file open and on disk until every read that began before its retirement ends', async () => {
    const fs = new MemFs();
    const set = await openSet(fs, { recycleFiles: 0 });
    for (let i = 1; i <= 8; i++) await set.append([record(1, i)], true);
    const oldest = fileId(Queue.Append, 1);
    const before = set.beginRead();
    await set.commitPurge(2, undefined);
    set.retire(2, undefined);
    const after = set.beginRead();
    await set.reap();
    assert.ok(set.handle(oldest) !== undefined, 'still readable by the earlier read');
    assert.ok((await fs.list()).includes('0000000000000001.raftlog'), 'still on disk');
    const bytes = new Uint8Array(32);
    assert.equal(await set.handle(oldest)!.read(bytes, 0, 32, 0), 32);
    set.endRead(after);
    assert.ok(set.handle(oldest) !== undefined, 'a read that began later does not hold it');
    set.endRead(before);
    await set.reap();
    assert.equal(set.handle(oldest), undefined);
    assert.ok(!(await fs.list()).includes('0000000000000001.raftlog'), 'removed once the read ended');
    await set.close();
  });

  it('the manifest round-trips: a reopened set knows the same files, checkpoint and spill placement', async () => {
    const primary = new FaultFs(new MemFs(), { seed: 6 });
    const spill = new MemFs();
    let set = await openSet(primary, { spillFs: spill, preallocateBytes: 1024 });
    for (let i = 1; i <= 4; i++) await set.append([record(1, i)], true);
    const full = primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
    for (let i = 5; i <= 8; i++) await set.append([record(1, i)], true);
    full.remove();
    const checkpointRecord = (() => {
      const batch = new LogBatch();
      batch.markCheckpoint(2);
      return batch.seal(Number.POSITIVE_INFINITY);
    })();
    const written = await set.writeCheckpoint(checkpointRecord, 2);
    await set.commitPurge(2, written);
    set.retire(2, written);
    await set.reap();
    const files = set.appendFiles().map((f) => f.seq);
    const before = await readManifest(primary);
    await set.close();
    set = await openSet(primary, { spillFs: spill, preallocateBytes: 1024 });
    assert.deepEqual(await readManifest(primary), before);
    assert.deepEqual(
      set.appendFiles().map((f) => f.seq),
      files,
    );
    assert.deepEqual(set.checkpoint?.seq, written.seq);
    assert.equal(before.kind === 'ok' && before.state.checkpoint?.watermark, 2);
    assert.ok(before.kind === 'ok' && before.state.spilled.length === 1);
    await set.close();
  });
});

describe('reads racing a purge (issue 15, case 8)', () => {
  it('a fetch that planned on a file a purge then retires still reads it', async () => {
    const gated = new GatedFs(new MemFs());
    const engine = new Engine({
      fs: gated,
      targetFileSize: 8192,
      preallocateBytes: 0,
      purgeThreshold: 4 * 8192,
      rewriteMaxEntries: 1000,
      recycleFiles: 0,
      seed: 8,
    });
    await engine.open();
    // Region 1: 40 one-entry records (40 runs: three rounds of parallel reads) in the oldest files.
    for (let i = 1; i <= 40; i++) {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: i, term: 1, data: new Uint8Array(20).fill(i) }]);
      await engine.write(batch, { sync: true });
    }
    for (let i = 1; i <= 80; i++) {
      const batch = new LogBatch();
      batch.addEntries(2, [{ index: i, term: 1, data: new Uint8Array(900).fill(i) }]);
      await engine.write(batch, { sync: true });
    }
    await engine.compactTo(2, 75, { sync: true });
    // Hold the fetch's first read; purge meanwhile (it copies region 1 into a checkpoint and retires file 1).
    const gate = gated.gate('read', /^0000000000000001\.raftlog$/);
    const fetch = engine.fetchEntriesTo(1, 1, 41);
    await gate.reached;
    await engine.purgeExpiredFiles();
    assert.ok(engine.stats().gc.lastPurge!.watermark > 1, 'the purge retired file 1');
    gate.release();
    const entries = await fetch;
    assert.equal(entries.length, 40);
    assert.ok(entries.every((e, i) => e.index === i + 1 && e.data[0] === i + 1));
    // Once the read is over, the file goes.
    await engine.purgeExpiredFiles();
    assert.ok(!(await gated.list()).includes('0000000000000001.raftlog'));
    assert.equal((await engine.fetchEntriesTo(1, 1, 41)).length, 40);
    await engine.close();
  });
});
