/**
 * engine.verify() and the background scrub: every record re-read and
 * verified on demand, every memtable entry checked to lie in a record that
 * verified; damage reported in the report, metrics() and a 'corruption'
 * event. The damage is real: a byte of a real file (PosixFs) flipped with
 * node:fs, in a log reopened from its index checkpoint, so open did not read it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open as openFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixFs } from '../backends/posix.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import type { CorruptionEvent } from '../src/engine-events.js';
import { LogBatch } from '../src/log-batch.js';
import type { Entry } from '../src/protos.js';
import { runCheck } from '../cli/check.js';

const FIRST_FILE = '0000000000000001.raftlog';

function entries(first: number, count: number, size = 100): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: first + i, term: 1, data: new Uint8Array(size).fill((first + i) & 0xff) }));
}

/** One record per call: `count` entries of each region; returns where the record starts and ends in the active file. */
async function record(
  engine: Engine,
  regions: number[],
  first: number,
  count: number,
  size = 100,
): Promise<{ start: number; end: number }> {
  const start = engine.stats().activeFileOffset;
  const batch = new LogBatch();
  for (const region of regions) batch.addEntries(region, entries(first, count, size));
  await engine.write(batch);
  return { start, end: engine.stats().activeFileOffset };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-verify-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Flips every bit of one byte of a closed file, as bit rot would. */
async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await openFile(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    assert.equal((await handle.read(byte, 0, 1, offset)).bytesRead, 1);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Five records in the first file, regions 1 and 2 in each; the third is
 * damaged after a clean close. Returns the damaged record's span.
 */
async function damagedLog(dir: string): Promise<{ start: number; end: number }> {
  const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, seed: 3 });
  await engine.open();
  let damaged = { start: 0, end: 0 };
  for (let i = 0; i < 5; i++) {
    const span = await record(engine, [1, 2], 1 + i * 4, 4);
    if (i === 2) damaged = span;
  }
  await engine.close();
  // In the middle of the record's payload: its header still verifies, its payload CRC does not.
  await flipByte(join(dir, FIRST_FILE), damaged.start + 24 + 200);
  return damaged;
}

async function reopenFromCheckpoint(dir: string, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, seed: 3, ...options });
  await engine.open();
  assert.equal(engine.recoveryReport?.indexCheckpoint?.used, true, 'open loaded the index checkpoint: it read none of the records');
  assert.equal(engine.recoveryReport?.records, 0);
  return engine;
}

describe('engine.verify()', () => {
  it('a clean log verifies clean: every file, record and indexed entry', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({ fs: new PosixFs(dir), targetFileSize: 8192, preallocateBytes: 0, seed: 1 });
      await engine.open();
      for (let i = 0; i < 40; i++) await record(engine, [1, 2, 3], 1 + i * 2, 2);
      await engine.compactTo(2, 30);
      const report = await engine.verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.records, 41, 'forty records and the compaction');
      assert.equal(report.files, engine.stats().files);
      assert.ok(report.files > 3, 'the log spans several files');
      assert.equal(report.entriesChecked, engine.stats().entries);
      assert.ok(report.bytesVerified > 40 * 6 * 100);
      assert.equal(engine.metrics().counters.corruptionsFound, 0);
      await engine.close();
    });
  });

  it('checks entries of lz4 records against the record and its decompressed length', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, compressionThreshold: 1024, seed: 2 });
      await engine.open();
      const spans = [];
      // 8 × 2 KiB of one repeated byte per record: lz4 shrinks it.
      for (let i = 0; i < 4; i++) spans.push(await record(engine, [1], 1 + i * 8, 8, 2048));
      assert.ok(spans[1]!.end - spans[1]!.start < 8 * 2048, 'the records are compressed');
      const clean = await engine.verify();
      assert.deepEqual(clean.problems, []);
      assert.equal(clean.entriesChecked, 32);
      await engine.close();
      await flipByte(join(dir, FIRST_FILE), spans[1]!.start + 24 + 8);
      const reopened = await reopenFromCheckpoint(dir);
      const report = await reopened.verify();
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.offset, p.region, p.entries]),
        [
          ['record', spans[1]!.start, undefined, undefined],
          ['index', spans[1]!.start, 1, { first: 9, last: 16 }],
        ],
      );
      await reopened.close();
    });
  });

  it('finds a damaged record in a closed file that open, loading the index checkpoint, did not read', async () => {
    await withDir(async (dir) => {
      const damaged = await damagedLog(dir);
      const engine = await reopenFromCheckpoint(dir);
      const events: CorruptionEvent[] = [];
      engine.on('corruption', (event) => events.push(event));
      const report = await engine.verify();
      const records = report.problems.filter((p) => p.kind === 'record');
      assert.deepEqual(
        records.map((p) => [p.file, p.offset, p.bytes, p.detail]),
        [[FIRST_FILE, damaged.start, damaged.end - damaged.start, 'payload checksum mismatch']],
      );
      // Both regions' entries 9..12 are in the damaged record: the index points at bytes that did not verify.
      const index = report.problems.filter((p) => p.kind === 'index');
      assert.deepEqual(
        index.map((p) => [p.region, p.entries, p.file]),
        [
          [1, { first: 9, last: 12 }, FIRST_FILE],
          [2, { first: 9, last: 12 }, FIRST_FILE],
        ],
      );
      assert.equal(report.records, 5, 'four records verified, and the seal of the clean close');
      assert.deepEqual(
        events.map((e) => [e.source, e.problem.kind]),
        [
          ['verify', 'record'],
          ['verify', 'index'],
          ['verify', 'index'],
        ],
      );
      assert.equal(engine.metrics().counters.corruptionsFound, 3);
      // The same damage found again is not news.
      await engine.verify();
      assert.equal(events.length, 3);
      assert.equal(engine.metrics().counters.corruptionsFound, 3);
      // Reads still verify what they read.
      await assert.rejects(engine.getEntry(1, 10), { code: 'CORRUPTION' });
      assert.equal((await engine.getEntry(1, 13))?.index, 13);
      await engine.close();
    });
  });

  it('the background scrub finds the same damage: event, metrics, and a clean stop at close', async () => {
    await withDir(async (dir) => {
      const damaged = await damagedLog(dir);
      const engine = await reopenFromCheckpoint(dir, { scrub: { intervalMs: 0, bytesPerSecond: 1 << 30 } });
      // The scrub's timer does not keep a process alive (unref): this test does, while it waits.
      const keepAlive = setInterval(() => undefined, 1000);
      const event = await new Promise<CorruptionEvent>((resolve) => engine.on('corruption', resolve)).finally(() =>
        clearInterval(keepAlive),
      );
      assert.equal(event.source, 'scrub');
      assert.deepEqual([event.problem.kind, event.problem.file, event.problem.offset], ['record', FIRST_FILE, damaged.start]);
      // The pass that found it finishes; later passes find nothing new.
      while (engine.metrics().counters.scrubPasses < 2) await new Promise((resolve) => setTimeout(resolve, 1));
      const { counters } = engine.metrics();
      assert.equal(counters.corruptionsFound, 3, 'the record and the two regions whose entries point into it, once each');
      assert.ok(counters.scrubBytes >= 2 * (damaged.end - 32), 'two passes read the file');
      await engine.close();
      // Closed mid-pass or between passes alike: nothing runs after close.
      const after = engine.metrics().counters.scrubBytes;
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(engine.metrics().counters.scrubBytes, after);
    });
  });

  it('is off by default, and its options are checked', async () => {
    await withDir(async (dir) => {
      await damagedLog(dir);
      const engine = await reopenFromCheckpoint(dir);
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(engine.metrics().counters.scrubBytes, 0);
      await engine.close();
      assert.throws(() => new Engine({ fs: new PosixFs(dir), scrub: { bytesPerSecond: 0 } }), { code: 'INVALID_ARGUMENT' });
      assert.throws(() => new Engine({ fs: new PosixFs(dir), scrub: { intervalMs: -1 } }), { code: 'INVALID_ARGUMENT' });
    });
  });

  it('runs beside writes and a purge: clean, with files retired under it', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({
        fs: new PosixFs(dir),
        targetFileSize: 16384,
        preallocateBytes: 0,
        purgeThreshold: 4 * 16384,
        rewriteMaxEntries: 8,
        seed: 9,
      });
      await engine.open();
      await record(engine, [2], 1, 3);
      for (let i = 0; i < 400; i++) {
        await record(engine, [1], 1 + i, 1, 400);
        if (i % 20 === 19) await engine.compactTo(1, i - 5);
      }
      const filesBefore = engine.stats().gc.appendFiles;
      const verifying = engine.verify();
      const writes = (async () => {
        for (let i = 400; i < 440; i++) await record(engine, [1], 1 + i, 1, 400);
      })();
      const purge = engine.purgeExpiredFiles();
      const [report] = await Promise.all([verifying, writes, purge]);
      assert.ok(engine.fileSpan(2)?.first.queue === 'rewrite', 'the purge rewrote region 2 into a GC checkpoint');
      assert.deepEqual(report.problems, []);
      assert.ok(report.files > 10);
      // Retired at once; removed (or recycled) only once no pass or read that began before needs them.
      assert.ok(engine.stats().gc.appendFiles < filesBefore, 'the purge retired files the pass was reading');
      assert.deepEqual((await engine.verify()).problems, [], 'and the log after the purge verifies too');
      await engine.close();
    });
  });

  it('consistencyCheck() no longer holds writes for its whole scan', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, seed: 4 });
      await engine.open();
      for (let i = 0; i < 256; i++) await record(engine, [1, 2, 3, 4], 1 + i * 4, 4, 2048);
      const order: string[] = [];
      const check = engine.consistencyCheck().then(() => order.push('check'));
      const write = record(engine, [5], 1, 1).then(() => order.push('write'));
      await Promise.all([check, write]);
      assert.deepEqual(order, ['write', 'check'], 'a write queued after the check began lands while the check reads');
      await engine.close();
    });
  });

  it('a close during a pass ends the pass (CLOSED) and closes cleanly', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, seed: 5 });
      await engine.open();
      for (let i = 0; i < 64; i++) await record(engine, [1, 2], 1 + i * 4, 4, 4096);
      const verifying = engine.verify().then(
        () => 'finished',
        (error: { code?: string }) => error.code,
      );
      await engine.close();
      assert.ok(['finished', 'CLOSED'].includes(String(await verifying)));
      await assert.rejects(engine.verify(), { code: 'CLOSED' });
    });
  });

  it('raftlog check checks the index checkpoint open would load against the records', async () => {
    await withDir(async (dir) => {
      const engine = new Engine({ fs: new PosixFs(dir), preallocateBytes: 0, seed: 3 });
      await engine.open();
      for (let i = 0; i < 5; i++) await record(engine, [1, 2], 1 + i * 4, 4);
      await engine.close();
      const clean = await runCheck(dir, { strict: false });
      assert.equal(clean.status, 'clean');
      assert.equal(clean.indexCheckpoint.status, 'checked');
      assert.equal(clean.indexCheckpoint.report?.entriesChecked, 40);
      assert.deepEqual(clean.indexCheckpoint.report?.problems, []);
    });
    await withDir(async (dir) => {
      await damagedLog(dir);
      const damaged = await runCheck(dir, { strict: false });
      assert.equal(damaged.status, 'damaged');
      assert.deepEqual(
        damaged.indexCheckpoint.report?.problems.filter((p) => p.kind === 'index').map((p) => [p.region, p.entries]),
        [
          [1, { first: 9, last: 12 }],
          [2, { first: 9, last: 12 }],
        ],
      );
      // check changed nothing: open still loads the checkpoint.
      await (await reopenFromCheckpoint(dir)).close();
    });
  });
});
