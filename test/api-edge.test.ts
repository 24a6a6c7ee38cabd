/**
 * One validator at the edge (issue 16, cases 2 and 3): every bad argument
 * or option is INVALID_ARGUMENT naming it, nothing is written, and the
 * engine stays usable. Each test is a case that behaved differently on the
 * old main (a silently unsynced write, an untyped TypeError or RangeError, a
 * wrong answer, a LOCKED reopen).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { Engine, type EngineOptions, type ScanOptions, type WriteOptions } from '../src/engine.js';
import { isRaftlogError } from '../src/errors.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { RaftStorage } from '../src/raft/storage.js';
import { eraftpb, type Entry } from '../src/protos.js';
import { posixTarget } from './support/engines.js';

const enc = new TextEncoder();

function entries(first: number, count: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: first + i, term: 1, data: enc.encode(`e${first + i}`) }));
}

async function openEngine(fs: FileSystem = new MemFs(), options: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs, seed: 3, ...options });
  await engine.open();
  return engine;
}

function refused(name: RegExp): { code: string; message: RegExp } {
  return { code: 'INVALID_ARGUMENT', message: name };
}

/** Nothing was written: the counters of writes and bytes did not move. */
function writeCounters(engine: Engine): [number, number, number] {
  const stats = engine.stats();
  return [stats.writes, stats.bytesWritten, stats.syncs];
}

describe('write options: sync must be a boolean', () => {
  for (const [label, options] of [
    ['{ sync: 1 }', { sync: 1 }],
    ["{ sync: 'true' }", { sync: 'true' }],
    ['{ sync: null }', { sync: null }],
    ['null', null],
    ['a number', 5],
    ['a string', 'sync'],
    ['an array', [true]],
  ] as const) {
    it(`write(batch, ${label}) is refused with INVALID_ARGUMENT and writes nothing`, async () => {
      const engine = await openEngine();
      try {
        const batch = new LogBatch();
        batch.addEntries(1, entries(1, 2));
        const before = writeCounters(engine);
        await assert.rejects(engine.write(batch, options as unknown as WriteOptions), refused(/write options/));
        assert.deepEqual(writeCounters(engine), before);
        assert.equal(engine.lastIndex(1), undefined);
        await assert.rejects(engine.compactTo(1, 1, options as unknown as WriteOptions), refused(/compactTo options/));
        await assert.rejects(engine.clean(1, options as unknown as WriteOptions), refused(/clean options/));
        // Still usable: the same batch goes through with valid options.
        assert.ok((await engine.write(batch, { sync: true })) > 0);
        assert.equal(engine.lastIndex(1), 2);
      } finally {
        await engine.close();
      }
    });
  }

  it('write(batch), write(batch, {}) and { sync: false } are unsynced; { sync: true } syncs', async () => {
    const engine = await openEngine();
    try {
      for (const options of [undefined, {}, { sync: false }]) {
        const batch = new LogBatch();
        batch.addEntries(1, entries((engine.lastIndex(1) ?? 0) + 1, 1));
        const syncs = engine.stats().syncs;
        await engine.write(batch, options);
        assert.equal(engine.stats().syncs, syncs, `options ${JSON.stringify(options)} must not sync`);
      }
      const batch = new LogBatch();
      batch.addEntries(1, entries(4, 1));
      const syncs = engine.stats().syncs;
      await engine.write(batch, { sync: true });
      assert.equal(engine.stats().syncs, syncs + 1);
    } finally {
      await engine.close();
    }
  });
});

describe('integers must be safe integers', () => {
  it('a BigInt region or index is INVALID_ARGUMENT everywhere, not a TypeError', async () => {
    const engine = await openEngine();
    try {
      const batch = new LogBatch();
      batch.addEntries(1, entries(1, 5));
      await engine.write(batch);
      const big = 1n as unknown as number;
      assert.throws(() => new LogBatch().addEntries(big, entries(1, 1)), refused(/region/));
      assert.throws(() => new LogBatch().compactTo(1, big), refused(/index/));
      assert.throws(() => new LogBatch().compactTo(big, 1), refused(/region/));
      assert.throws(() => new LogBatch().clean(big), refused(/region/));
      assert.throws(() => new LogBatch().put(big, 'k', enc.encode('v')), refused(/region/));
      await assert.rejects(engine.compactTo(1, 3n as unknown as number), refused(/index/));
      await assert.rejects(engine.compactTo(big, 3), refused(/region/));
      await assert.rejects(engine.clean(big), refused(/region/));
      await assert.rejects(engine.fetchEntriesTo(big, 1, 2), refused(/region/));
      await assert.rejects(engine.fetchEntriesTo(1, big, 2), refused(/begin/));
      await assert.rejects(engine.fetchEntriesTo(1, 1, 2n as unknown as number), refused(/end/));
      await assert.rejects(engine.getEntry(1, big), refused(/index/));
      assert.throws(() => engine.firstIndex(big), refused(/region/));
      assert.throws(() => new LogBatch().addEntries(1, [{ index: big, term: 1, data: enc.encode('x') }]), refused(/index/));
      assert.throws(() => new LogBatch().addEntries(1, [{ index: 6, term: big, data: enc.encode('x') }]), refused(/term/));
      assert.throws(() => new RaftStorage(engine, big), refused(/region/));
      assert.deepEqual([engine.firstIndex(1), engine.lastIndex(1)], [1, 5]);
    } finally {
      await engine.close();
    }
  });

  for (const [label, value] of [
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a fraction', 1.5],
    ['a negative', -1],
    ['2^53', 2 ** 53],
    ['a numeric string', '1'],
  ] as const) {
    it(`${label} as a region, index or bound is INVALID_ARGUMENT`, async () => {
      const engine = await openEngine();
      try {
        const v = value as unknown as number;
        assert.throws(() => new LogBatch().addEntries(v, entries(1, 1)), refused(/region/));
        assert.throws(() => new LogBatch().addEntries(1, [{ index: v, term: 1, data: new Uint8Array() }]), { code: 'INVALID_ARGUMENT' });
        assert.throws(() => new LogBatch().compactTo(1, v), refused(/index/));
        await assert.rejects(engine.getEntry(1, v), refused(/index/));
        await assert.rejects(engine.fetchEntriesTo(1, v, 2), refused(/begin/));
        if (value !== Number.POSITIVE_INFINITY) await assert.rejects(engine.fetchEntriesTo(1, 1, 2, v), refused(/maxBytes/));
        // Infinity is a valid bound ("no limit") for scan's limit and maxBytes.
        if (value !== Number.POSITIVE_INFINITY) assert.throws(() => engine.scan(1, { limit: v }), refused(/limit/));
        assert.throws(() => new Engine({ fs: new MemFs(), readCacheBytes: v }), refused(/readCacheBytes/));
        assert.throws(() => new Engine({ fs: new MemFs(), compressionThreshold: v }), refused(/compressionThreshold/));
      } finally {
        await engine.close();
      }
    });
  }
});

describe('scan', () => {
  it('scan({ limit: -1 }) and { limit: NaN } are refused, not n-1 and 0 pairs', async () => {
    const engine = await openEngine();
    try {
      const batch = new LogBatch();
      for (const key of ['a', 'b', 'c']) batch.put(1, key, enc.encode(key));
      await engine.write(batch);
      assert.throws(() => engine.scan(1, { limit: -1 }), refused(/scan options\.limit/));
      assert.throws(() => engine.scan(1, { limit: Number.NaN }), refused(/scan options\.limit/));
      assert.throws(() => engine.scan(1, null as unknown as ScanOptions), refused(/scan options/));
      assert.throws(() => engine.scan(1, { start: 5 as unknown as string }), refused(/scan options\.start/));
      assert.throws(() => engine.scan(1, { reverse: 'yes' as unknown as boolean }), refused(/scan options\.reverse/));
      // Checked even for a region that holds nothing.
      assert.throws(() => engine.scan(99, { limit: -1 }), refused(/limit/));
      assert.equal(engine.scan(1, { limit: 0 }).length, 0);
      assert.equal(engine.scan(1, { limit: 2 }).length, 2);
      assert.equal(engine.scan(1, { limit: Number.POSITIVE_INFINITY }).length, 3);
    } finally {
      await engine.close();
    }
  });
});

describe('keys and values', () => {
  it('keys and values of the wrong type are INVALID_ARGUMENT naming them', async () => {
    const engine = await openEngine();
    try {
      assert.throws(() => new LogBatch().put(1, 5 as unknown as string, enc.encode('v')), refused(/key/));
      assert.throws(() => new LogBatch().put(1, 'k', 'v' as unknown as Uint8Array), refused(/value/));
      assert.throws(() => new LogBatch().put(1, 'k', [1, 2] as unknown as Uint8Array), refused(/value/));
      assert.throws(() => new LogBatch().delete(1, null as unknown as string), refused(/key/));
      assert.throws(() => engine.get(1, {} as unknown as string), refused(/key/));
      assert.throws(() => new LogBatch().putMessage(1, 'k', { $type: 5 } as never), refused(/putMessage/));
    } finally {
      await engine.close();
    }
  });

  it('getMessage on a value stored with another type is INVALID_ARGUMENT, not a RangeError', async () => {
    const engine = await openEngine();
    try {
      const truncated = Uint8Array.of(0x0a, 0x05);
      assert.throws(() => eraftpb.SnapshotMetadata.decode(truncated), RangeError, 'protobufjs alone throws a RangeError here');
      const batch = new LogBatch();
      batch.put(1, 'snapshot', truncated);
      batch.put(1, 'text', enc.encode('hello world'));
      await engine.write(batch);
      assert.throws(() => engine.getMessage(1, 'snapshot', eraftpb.SnapshotMetadata), refused(/does not decode/));
      assert.throws(() => engine.getMessage(1, 'text', eraftpb.SnapshotMetadata), refused(/does not decode/));
      assert.throws(() => engine.getMessage(1, 'text', 5 as never), refused(/type/));
      assert.throws(() => engine.getMessage(1, 'absent', null as never), refused(/type/));
      assert.equal(engine.getMessage(1, 'absent', eraftpb.HardState), undefined);
    } finally {
      await engine.close();
    }
  });
});

describe('engine options', () => {
  it('every option of the wrong type is INVALID_ARGUMENT naming it', () => {
    const fs = new MemFs();
    const bad: [Partial<Record<keyof EngineOptions, unknown>>, RegExp][] = [
      [{ targetFileSize: 10 }, /targetFileSize/],
      [{ targetFileSize: 2 ** 40 }, /targetFileSize/],
      [{ targetFileSize: 1n << 20n }, /targetFileSize/],
      [{ preallocateBytes: -1 }, /preallocateBytes/],
      [{ purgeThreshold: '1' }, /purgeThreshold/],
      [{ rewriteMaxEntries: 0.5 }, /rewriteMaxEntries/],
      [{ forceRewriteAfter: null }, /forceRewriteAfter/],
      [{ maxSpaceAmplification: 0.5 }, /maxSpaceAmplification/],
      [{ maxSpaceAmplification: '1.3' }, /maxSpaceAmplification/],
      [{ maxSpaceAmplification: Number.POSITIVE_INFINITY }, /maxSpaceAmplification/],
      [{ recycleFiles: Number.NaN }, /recycleFiles/],
      [{ prefillFiles: {} }, /prefillFiles/],
      [{ readCacheBytes: -5 }, /readCacheBytes/],
      [{ recoveryMode: 'Sometimes' }, /recoveryMode/],
      [{ seed: 'x' }, /seed/],
      [{ spillFs: {} }, /spillFs/],
    ];
    for (const [options, name] of bad) {
      assert.throws(
        () => new Engine({ fs, ...options } as EngineOptions),
        refused(name),
        JSON.stringify(options, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
      );
    }
    for (const options of [undefined, null, 5, 'fs', [], {}, { fs: {} }, { fs: { open: () => undefined } }]) {
      assert.throws(() => new Engine(options as unknown as EngineOptions), { code: 'INVALID_ARGUMENT' });
    }
  });
});

describe('close()', () => {
  it('a second close() while the first runs returns the same promise, so an immediate reopen is not LOCKED', async () => {
    const disk = await posixTarget.make();
    try {
      const engine = await openEngine(disk.fs);
      const batch = new LogBatch();
      batch.addEntries(1, entries(1, 3));
      void engine.write(batch);
      const first = engine.close();
      const second = engine.close();
      assert.equal(first, second);
      await second;
      // Resolving `second` means the lock is gone: a reopen succeeds at once.
      const reopened = await openEngine(disk.reopen());
      try {
        assert.equal(reopened.lastIndex(1), 3);
      } finally {
        await reopened.close();
      }
      await first;
      assert.equal(engine.close(), first, 'a close() after the close finished returns it too');
    } finally {
      await disk.cleanup();
    }
  });

  it('close() on an engine never opened is INVALID_ARGUMENT, on a failed open resolves', async () => {
    const engine = new Engine({ fs: new MemFs() });
    await assert.rejects(engine.close(), { code: 'INVALID_ARGUMENT' });
    const fs = new MemFs();
    const holder = await openEngine(fs);
    const loser = new Engine({ fs });
    await assert.rejects(loser.open(), (error: unknown) => isRaftlogError(error, 'LOCKED'));
    await loser.close();
    await holder.close();
  });
});
