/**
 * raft-engine parity (issue 16, "What to build" 6): LogBatch.merge,
 * isEmpty and approximateSize; Engine.isEmpty, getUsedSize and fileSpan;
 * reverse scan; write() resolving to the bytes written.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import type { Entry } from '../src/protos.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { posixTarget } from './support/engines.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function entries(first: number, count: number, tag = 'e', repeat = 10): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: first + i, term: 1, data: enc.encode(`${tag}${first + i}-`.repeat(repeat)) }));
}

async function openEngine(fs: FileSystem, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs, seed: 11, ...options });
  await engine.open();
  return engine;
}

async function texts(engine: Engine, region: number): Promise<string[]> {
  const first = engine.firstIndex(region);
  const last = engine.lastIndex(region);
  if (first === undefined || last === undefined) return [];
  return (await engine.fetchEntriesTo(region, first, last + 1)).map((e) => `${e.index}:${dec.decode(e.data).slice(0, 6)}`);
}

describe('LogBatch.merge', () => {
  for (const compressionThreshold of [1 << 20, 64]) {
    it(`moves the other batch's items after this one's and leaves it empty (compressionThreshold ${compressionThreshold})`, async () => {
      const fs = new MemFs();
      const engine = await openEngine(fs, { compressionThreshold });
      const a = new LogBatch();
      a.addEntries(1, entries(1, 3, 'a'));
      a.put(1, 'k1', enc.encode('one'));
      const b = new LogBatch();
      b.addEntries(1, entries(4, 2, 'b'));
      b.addEntries(2, entries(1, 2, 'c'));
      b.put(2, 'k2', enc.encode('two'));
      b.delete(1, 'k1');
      const sizes = a.approximateSize() + b.approximateSize();
      a.merge(b);
      assert.ok(b.isEmpty());
      assert.equal(b.approximateSize(), 0);
      assert.equal(a.approximateSize(), sizes);
      assert.equal(a.itemCount, 6);
      assert.equal(a.entryCount, 7);
      await engine.write(a, { sync: true });
      const expect1 = ['1:a1-a1-', '2:a2-a2-', '3:a3-a3-', '4:b4-b4-', '5:b5-b5-'];
      assert.deepEqual(await texts(engine, 1), expect1);
      assert.deepEqual(await texts(engine, 2), ['1:c1-c1-', '2:c2-c2-']);
      assert.equal(engine.get(1, 'k1'), undefined, 'the merged delete comes after the put');
      assert.equal(dec.decode(engine.get(2, 'k2')!), 'two');
      await engine.close();
      const reopened = await openEngine(fs, { compressionThreshold, recoveryMode: RecoveryMode.AbsoluteConsistency });
      try {
        assert.deepEqual(await texts(reopened, 1), expect1);
        assert.equal(reopened.get(1, 'k1'), undefined);
        assert.equal(dec.decode(reopened.get(2, 'k2')!), 'two');
      } finally {
        await reopened.close();
      }
    });
  }

  it('refuses a merge that leaves a gap, a batch into itself, and a non-batch, changing neither batch', () => {
    const a = new LogBatch();
    a.addEntries(1, entries(1, 3));
    const gap = new LogBatch();
    gap.addEntries(1, entries(5, 1));
    const shape = (batch: LogBatch): number[] => [batch.itemCount, batch.entryCount, batch.approximateSize()];
    const before = [shape(a), shape(gap)];
    assert.throws(() => a.merge(gap), { code: 'INVALID_ARGUMENT', message: /gap/ });
    assert.deepEqual([shape(a), shape(gap)], before);
    assert.throws(() => a.merge(a), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => a.merge({} as LogBatch), { code: 'INVALID_ARGUMENT' });
    // A compaction past the batch's entries lets the next ones start anywhere, as in addEntries.
    const after = new LogBatch();
    after.compactTo(1, 10);
    after.addEntries(1, entries(10, 1));
    a.merge(after);
    assert.equal(a.entryCount, 4);
    // The merged batch keeps checking gaps against what it now holds.
    assert.throws(() => a.addEntries(1, entries(12, 1)), { code: 'INVALID_ARGUMENT', message: /gap/ });
  });

  it('merging into a batch whose write is in flight changes nothing that write stores', async () => {
    const engine = await openEngine(new MemFs());
    try {
      const a = new LogBatch();
      a.addEntries(1, entries(1, 2, 'a'));
      const pending = engine.write(a, { sync: true });
      const b = new LogBatch();
      b.addEntries(1, entries(3, 2, 'b'));
      a.merge(b);
      await pending;
      assert.deepEqual(await texts(engine, 1), ['1:a1-a1-', '2:a2-a2-']);
      await engine.write(a);
      assert.deepEqual(await texts(engine, 1), ['1:a1-a1-', '2:a2-a2-', '3:b3-b3-', '4:b4-b4-']);
    } finally {
      await engine.close();
    }
  });
});

describe('LogBatch.isEmpty and approximateSize', () => {
  it('track what the batch holds', () => {
    const batch = new LogBatch();
    assert.ok(batch.isEmpty());
    assert.equal(batch.approximateSize(), 0);
    batch.put(1, 'k', enc.encode('value'));
    assert.ok(!batch.isEmpty());
    const one = batch.approximateSize();
    assert.ok(one >= 'k'.length + 'value'.length);
    batch.addEntries(1, entries(1, 2));
    assert.ok(batch.approximateSize() > one + 2 * 20);
    batch.clear();
    assert.ok(batch.isEmpty());
    assert.equal(batch.approximateSize(), 0);
  });
});

describe('Engine.isEmpty', () => {
  it('is true for a new log and again once every region is cleaned, across a reopen', async () => {
    const fs = new MemFs();
    let engine = await openEngine(fs);
    assert.equal(engine.isEmpty(), true);
    const batch = new LogBatch();
    batch.addEntries(1, entries(1, 2));
    batch.put(2, 'k', enc.encode('v'));
    await engine.write(batch);
    assert.equal(engine.isEmpty(), false);
    await engine.clean(1);
    assert.equal(engine.isEmpty(), false, 'region 2 still holds a key');
    await engine.close();
    engine = await openEngine(fs);
    assert.equal(engine.isEmpty(), false);
    await engine.clean(2, { sync: true });
    assert.equal(engine.isEmpty(), true);
    await engine.close();
    engine = await openEngine(fs);
    assert.equal(engine.isEmpty(), true);
    await engine.close();
  });
});

describe('write() resolves to the bytes written', () => {
  it('is the record size (8-byte aligned, 24-byte header included), 0 for an empty batch, and adds up to bytesWritten', async () => {
    const engine = await openEngine(new MemFs());
    try {
      assert.equal(await engine.write(new LogBatch()), 0);
      let total = 0;
      for (let i = 0; i < 5; i++) {
        const batch = new LogBatch();
        batch.addEntries(1, entries(i * 3 + 1, 3));
        const before = engine.stats().bytesWritten;
        const bytes = await engine.write(batch);
        assert.equal(bytes % 8, 0);
        assert.ok(bytes >= 24 + batch.approximateSize());
        assert.equal(engine.stats().bytesWritten - before, bytes);
        total += bytes;
      }
      assert.ok(total > 0);
    } finally {
      await engine.close();
    }
  });
});

describe('Engine.getUsedSize', () => {
  it('equals the bytes of the log files in the directory, through rotation and purge', async () => {
    const disk = await posixTarget.make();
    const dir = (disk.fs as PosixFs).root;
    try {
      const engine = await openEngine(disk.fs, { targetFileSize: 8192, preallocateBytes: 0, recycleFiles: 1 });
      const onDisk = async (): Promise<number> => {
        let sum = 0;
        for (const name of await readdir(dir)) if (name !== 'LOCK') sum += (await stat(join(dir, name))).size;
        return sum;
      };
      assert.equal(engine.getUsedSize(), await onDisk());
      for (let i = 0; i < 40; i++) {
        const batch = new LogBatch();
        batch.addEntries(1, entries(i * 4 + 1, 4, 'e', 40));
        await engine.write(batch);
      }
      assert.ok(engine.stats().rotations >= 3);
      assert.equal(engine.getUsedSize(), await onDisk());
      await engine.compactTo(1, 150, { sync: true });
      await engine.purgeExpiredFiles();
      assert.equal(engine.getUsedSize(), await onDisk(), 'after a purge (one file kept for reuse)');
      await engine.close();
    } finally {
      await disk.cleanup();
    }
  });
});

describe('Engine.fileSpan', () => {
  it('names the first and last files holding the region entries, and follows compaction', async () => {
    const engine = await openEngine(new MemFs(), { targetFileSize: 8192, preallocateBytes: 0 });
    try {
      assert.equal(engine.fileSpan(1), undefined);
      for (let i = 0; i < 40; i++) {
        const batch = new LogBatch();
        batch.addEntries(1, entries(i * 4 + 1, 4, 'e', 40));
        if (i === 0) batch.addEntries(2, entries(1, 1));
        batch.put(3, 'only-a-key', enc.encode('v'));
        await engine.write(batch);
      }
      const active = engine.stats().activeFileSeq;
      assert.ok(active >= 4);
      assert.deepEqual(engine.fileSpan(1), { first: { queue: 'append', seq: 1 }, last: { queue: 'append', seq: active } });
      assert.deepEqual(engine.fileSpan(2), { first: { queue: 'append', seq: 1 }, last: { queue: 'append', seq: 1 } });
      assert.equal(engine.fileSpan(3), undefined, 'keys alone are not entries');
      await engine.compactTo(1, 160);
      assert.deepEqual(engine.fileSpan(1), { first: { queue: 'append', seq: active }, last: { queue: 'append', seq: active } });
      await engine.compactTo(1, 161);
      assert.equal(engine.fileSpan(1), undefined);
    } finally {
      await engine.close();
    }
  });
});

describe('reverse scan', () => {
  it('returns pairs in descending key order, the limit taking the last ones of the range', async () => {
    const engine = await openEngine(new MemFs());
    try {
      const batch = new LogBatch();
      for (const key of ['a', 'b', 'c', 'd', 'e']) batch.put(1, key, enc.encode(key.toUpperCase()));
      batch.put(1, Uint8Array.of(0xff), enc.encode('high'));
      await engine.write(batch);
      const keys = (options: Parameters<Engine['scan']>[1]): string[] =>
        engine.scan(1, options).map((p) => Buffer.from(p.key).toString('latin1'));
      assert.deepEqual(keys({ reverse: true }), ['\xff', 'e', 'd', 'c', 'b', 'a']);
      assert.deepEqual(keys({ reverse: true, limit: 2 }), ['\xff', 'e']);
      assert.deepEqual(keys({ reverse: true, start: 'b', end: 'e' }), ['d', 'c', 'b']);
      assert.deepEqual(keys({ reverse: false, start: 'b', end: 'e', limit: 2 }), ['b', 'c']);
      assert.deepEqual(
        engine.scan(1, { reverse: true, limit: 1 }).map((p) => dec.decode(p.value)),
        ['high'],
      );
    } finally {
      await engine.close();
    }
  });
});
