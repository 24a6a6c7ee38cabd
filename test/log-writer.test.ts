/**
 * The log writer on its own (src/log-writer.ts), on real in-memory files
 * (MemFs) and, for failures, FaultFs over them: where records land, when
 * files rotate and what their headers record, how far preallocation
 * reserves, how a recycled file is reused, the seal, and what a failed
 * barrier is reported as and leaves behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { isRaftlogError } from '../src/errors.js';
import { fileIdSeq, logFileName } from '../src/file-names.js';
import type { FileSystem } from '../src/filesystem.js';
import { FILE_FLAG_RECYCLED, FILE_HEADER_SIZE, Queue, decodeFileHeader, type FileHeader } from '../src/format/layout.js';
import { LogBatch, type SealedRecord } from '../src/log-batch.js';
import { LogWriter, PREALLOCATE_MAX_GROUP_BYTES, type LogWriterOptions } from '../src/log-writer.js';
import { RecordScanner, type ScannedRecord } from '../src/recovery/scanner.js';

/** A sealed record of one entry with `dataBytes` of data (sealing is deterministic: same size every time). */
function record(dataBytes = 900, region = 1): SealedRecord {
  const batch = new LogBatch();
  batch.addEntries(region, [{ index: 1, term: 1, data: new Uint8Array(dataBytes).fill(region) }]);
  return batch.seal(Number.POSITIVE_INFINITY);
}

const RECORD = record().bytes.length;

/** Salts are never reused across writers: a recycled file's earlier life must not verify under its new one. */
let salt = 1000;

function options(fs: FileSystem, overrides: Partial<LogWriterOptions> = {}): LogWriterOptions {
  return { fs, queue: Queue.Append, targetFileSize: 1 << 20, preallocateBytes: 0, nextSalt: () => salt++, ...overrides };
}

async function readFile(fs: FileSystem, name: string): Promise<Uint8Array> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const bytes = new Uint8Array(await handle.size());
    await handle.read(bytes, 0, bytes.length, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}

async function header(fs: FileSystem, name: string): Promise<FileHeader> {
  const decoded = decodeFileHeader((await readFile(fs, name)).subarray(0, FILE_HEADER_SIZE));
  assert.ok(typeof decoded === 'object', `${name}: header ${String(decoded)}`);
  return decoded;
}

/** The records of a file, read back and verified the way recovery reads them. */
async function recordsOf(fs: FileSystem, name: string): Promise<Pick<ScannedRecord, 'offset' | 'end' | 'header'>[]> {
  const { salt } = await header(fs, name);
  const handle = await fs.open(name, { readOnly: true });
  try {
    const scanner = new RecordScanner(handle, await handle.size(), salt);
    const out: Pick<ScannedRecord, 'offset' | 'end' | 'header'>[] = [];
    for (let offset = FILE_HEADER_SIZE; ; ) {
      const result = await scanner.read(offset);
      if (!('header' in result)) break;
      out.push({ offset: result.offset, end: result.end, header: result.header });
      offset = result.end;
    }
    return out;
  } finally {
    await handle.close();
  }
}

const logName = (seq: number): string => logFileName(Queue.Append, seq);

describe('log writer: rotation', () => {
  // Groups never split across files and an empty file takes any group, so
  // what lands where follows from the target size alone.
  const cases: { name: string; target: number; groups: number[]; perFile: number[] }[] = [
    { name: 'three records fit exactly', target: FILE_HEADER_SIZE + 3 * RECORD, groups: [1, 1, 1, 1, 1, 1, 1], perFile: [3, 3, 1] },
    { name: 'one byte short of three', target: FILE_HEADER_SIZE + 3 * RECORD - 1, groups: [1, 1, 1, 1, 1], perFile: [2, 2, 1] },
    { name: 'a record larger than the target still goes into an empty file', target: 64, groups: [1, 1, 1], perFile: [1, 1, 1] },
    {
      name: 'a group that does not fit starts the next file whole',
      target: FILE_HEADER_SIZE + 3 * RECORD,
      groups: [2, 2, 1],
      perFile: [2, 3],
    },
    { name: 'a group larger than the target is not split', target: FILE_HEADER_SIZE + 2 * RECORD, groups: [1, 4, 1], perFile: [1, 4, 1] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const fs = new MemFs();
      const writer = await LogWriter.create(options(fs, { targetFileSize: c.target }), 1, 0);
      const retired: number[] = [];
      writer.onRotate = (old, active) => {
        assert.equal(active.seq, old.seq + 1);
        retired.push(old.seq);
      };
      const placedSeqs: number[] = [];
      for (const size of c.groups) {
        const placed = await writer.append(
          Array.from({ length: size }, () => record()),
          true,
        );
        assert.equal(new Set(placed.map((p) => p.fileId)).size, 1, 'one group, one file');
        placedSeqs.push(...placed.map((p) => fileIdSeq(p.fileId)));
      }
      await writer.close();
      const files = c.perFile.map((_, i) => logName(i + 1));
      assert.deepEqual((await fs.list()).sort(), files);
      assert.equal(writer.rotations, c.perFile.length - 1);
      assert.deepEqual(
        retired,
        files.slice(0, -1).map((_, i) => i + 1),
      );
      assert.deepEqual(
        files.map((_, i) => placedSeqs.filter((s) => s === i + 1).length),
        c.perFile,
        'records per file, as placed',
      );
      let previousLength = 0;
      for (const [i, name] of files.entries()) {
        const records = await recordsOf(fs, name);
        assert.equal(records.length, c.perFile[i], `${name}: records read back`);
        const h = await header(fs, name);
        assert.equal(h.seq, i + 1);
        // Recovery proves a cut in an older file by this length (docs/format.md).
        assert.equal(h.previousFileLength, previousLength, `${name}: the previous file's final length`);
        previousLength = records.at(-1)!.end;
      }
    });
  }

  it('places records back to back, each header naming its own offset and what was synced before it', async () => {
    const fs = new MemFs();
    const writer = await LogWriter.create(options(fs), 1, 0);
    const first = await writer.append([record(), record()], false);
    const second = await writer.append([record()], true);
    const third = await writer.append([record()], false);
    await writer.close();
    const offsets = [FILE_HEADER_SIZE, FILE_HEADER_SIZE + RECORD, FILE_HEADER_SIZE + 2 * RECORD, FILE_HEADER_SIZE + 3 * RECORD];
    assert.deepEqual(
      [...first, ...second, ...third].map((p) => p.offset),
      offsets,
    );
    const records = await recordsOf(fs, logName(1));
    assert.deepEqual(
      records.map((r) => r.offset),
      offsets,
    );
    // Nothing was synced before the first two groups; the third follows a synced group.
    assert.deepEqual(
      records.map((r) => r.header.syncedThrough),
      [FILE_HEADER_SIZE, FILE_HEADER_SIZE, FILE_HEADER_SIZE, offsets[3]],
    );
    assert.equal(writer.syncCount, 1);
    assert.equal(writer.bytesWritten, 4 * RECORD);
  });
});

describe('log writer: preallocation', () => {
  // Reserves `preallocateBytes` ahead of the write, never past the target
  // size, and never less than what the write needs.
  const target = 64 << 10;
  const cases: { name: string; preallocate: number; records: number; size: (end: number) => number }[] = [
    { name: 'off: the file is as long as its records', preallocate: 0, records: 3, size: (end) => end },
    { name: 'a chunk ahead of the first write', preallocate: 8192, records: 1, size: (end) => end + 8192 },
    { name: 'no new chunk while the reservation lasts', preallocate: 8192, records: 3, size: () => FILE_HEADER_SIZE + RECORD + 8192 },
    { name: 'capped at the target size', preallocate: 1 << 20, records: 1, size: () => target },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const fs = new MemFs();
      const writer = await LogWriter.create(options(fs, { targetFileSize: target, preallocateBytes: c.preallocate }), 1, 0);
      for (let i = 0; i < c.records; i++) await writer.append([record()], true);
      const end = writer.offset;
      assert.equal(end, FILE_HEADER_SIZE + c.records * RECORD);
      assert.equal(await writer.handle.size(), c.size(end));
      assert.equal(writer.fileBytes, c.size(end));
      await writer.close();
      // The zeros of the reservation are no record.
      assert.equal((await recordsOf(fs, logName(1))).length, c.records);
    });
  }

  it('groups of 64 KiB and more on average grow the file as written; smaller ones reserve ahead again', async () => {
    const fs = new MemFs();
    const writer = await LogWriter.create(options(fs, { targetFileSize: 64 << 20, preallocateBytes: 1 << 20 }), 1, 0);
    const big = record(PREALLOCATE_MAX_GROUP_BYTES);
    // The first large group still finds the average small: it reserves, then the average passes the limit.
    for (let i = 0; i < 40; i++) await writer.append([big], true);
    const grown = await writer.handle.size();
    for (let i = 0; i < 40; i++) await writer.append([big], true);
    assert.equal(await writer.handle.size(), writer.offset, 'large groups: no zeros reserved past the last record');
    assert.ok(writer.offset > grown, 'and the file grew with them');
    // Small groups bring the average down: a chunk is reserved ahead again.
    for (let i = 0; i < 40; i++) await writer.append([record()], true);
    assert.equal(await writer.handle.size(), writer.fileBytes);
    assert.ok(writer.fileBytes > writer.offset, `small groups: ${writer.fileBytes} bytes on disk for ${writer.offset} written`);
    await writer.close();
  });

  it('a record past the target reserves just what it needs', async () => {
    const fs = new MemFs();
    const writer = await LogWriter.create(options(fs, { targetFileSize: 256, preallocateBytes: 4096 }), 1, 0);
    await writer.append([record()], true);
    assert.equal(await writer.handle.size(), FILE_HEADER_SIZE + RECORD);
    await writer.close();
  });
});

describe('log writer: recycled files', () => {
  it('a recycled file takes the new name, keeps its blocks, is marked recycled, and its old bytes never read as records', async () => {
    const fs = new MemFs();
    // An earlier life: a full file of records under another salt.
    const earlier = await LogWriter.create(options(fs), 1, 0);
    for (let i = 0; i < 5; i++) await earlier.append([record(900, 7)], true);
    const oldSize = earlier.offset;
    await earlier.close();
    await fs.rename(logName(1), 'old.recycle');
    const pool = ['old.recycle'];
    const writer = await LogWriter.create(options(fs, { takeRecycled: () => pool.shift(), preallocateBytes: 4096 }), 2, 0);
    assert.deepEqual((await fs.list()).sort(), [logName(2)], 'renamed, not copied');
    assert.equal(writer.fileBytes, oldSize, 'its blocks count as allocated');
    await writer.append([record()], true);
    assert.equal(await writer.handle.size(), oldSize, 'overwritten in place, not extended');
    await writer.close();
    const h = await header(fs, logName(2));
    assert.equal(h.flags & FILE_FLAG_RECYCLED, FILE_FLAG_RECYCLED);
    assert.equal((await recordsOf(fs, logName(2))).length, 1, "the earlier life's records do not verify under the new salt");
  });

  it('without a recycled file the next file is created fresh', async () => {
    const fs = new MemFs();
    const writer = await LogWriter.create(options(fs, { takeRecycled: () => undefined }), 1, 0);
    await writer.close();
    assert.equal((await header(fs, logName(1))).flags & FILE_FLAG_RECYCLED, 0);
  });
});

describe('log writer: seal', () => {
  it('a seal appends one empty record that proves the records before it, once; appending again unseals', async () => {
    const fs = new MemFs();
    const writer = await LogWriter.create(options(fs), 1, 0);
    assert.equal(writer.sealed, true, 'an empty file needs no seal');
    await writer.append([record(), record()], false);
    assert.equal(writer.sealed, false);
    await writer.seal();
    const sealAt = FILE_HEADER_SIZE + 2 * RECORD;
    assert.equal(writer.sealOffset, sealAt);
    assert.equal(writer.endsWithSeal, true);
    assert.equal(writer.hasUnsynced, false);
    const end = writer.offset;
    await writer.seal();
    assert.equal(writer.offset, end, 'a second seal writes nothing');
    await writer.append([record()], true);
    assert.equal(writer.sealed, false);
    assert.equal(writer.sealOffset, 0);
    await writer.close();
    const records = await recordsOf(fs, logName(1));
    assert.equal(records[2]!.offset, sealAt);
    assert.equal(records[2]!.header.payloadLength, 0, 'the seal is empty');
    assert.equal(records[2]!.header.syncedThrough, sealAt, 'and says everything before it is durable');
  });
});

describe('log writer: failed barriers', () => {
  // A failed barrier is FSYNC_FAILED (the engine fail-stops); a full disk
  // stays NO_SPACE; a failed write without a barrier keeps its own code.
  const cases: { name: string; op: 'write' | 'sync'; error: 'EIO' | 'ENOSPC'; sync: boolean; code: string }[] = [
    { name: 'write with barrier, EIO', op: 'sync', error: 'EIO', sync: true, code: 'FSYNC_FAILED' },
    { name: 'write with barrier, ENOSPC', op: 'sync', error: 'ENOSPC', sync: true, code: 'NO_SPACE' },
    { name: 'write without barrier, EIO', op: 'write', error: 'EIO', sync: false, code: 'IO' },
    { name: 'write with barrier, the write itself fails with EIO', op: 'write', error: 'EIO', sync: true, code: 'FSYNC_FAILED' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const fault = new FaultFs(new MemFs(), { seed: 1 });
      const writer = await LogWriter.create(options(fault), 1, 0);
      await writer.append([record()], true);
      const synced = writer.offset;
      const rule = fault.inject({ ops: [c.op], path: logName(1), when: { script: 'fail' }, error: c.error });
      await assert.rejects(writer.append([record()], c.sync), (error: unknown) => isRaftlogError(error) && error.code === c.code);
      assert.equal(rule.fired, 1);
      assert.equal(writer.offset, synced, 'a failed group is not counted as written');
      await writer.close();
    });
  }

  it('after a failed barrier, discardUnsynced cuts the file back to what the last good barrier covered', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 1 });
    const writer = await LogWriter.create(options(fault), 1, 0);
    await writer.append([record()], true);
    const synced = writer.offset;
    await writer.append([record(), record()], false);
    fault.inject({ ops: ['sync'], path: logName(1), when: { script: 'fail' }, error: 'EIO' });
    await assert.rejects(writer.sync(), { code: 'FSYNC_FAILED' });
    assert.equal(writer.hasUnsynced, true, 'the failed barrier made nothing durable');
    await writer.discardUnsynced();
    assert.equal(await writer.handle.size(), synced);
    await writer.close();
    assert.equal((await recordsOf(fault, logName(1))).length, 1);
  });

  it('a file whose header barrier fails is removed, so the name is free again', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 1 });
    fault.inject({ ops: ['write'], path: logName(1), when: { script: 'fail' }, error: 'EIO' });
    await assert.rejects(LogWriter.create(options(fault), 1, 0), { code: 'FSYNC_FAILED' });
    assert.deepEqual(await fault.list(), []);
    const writer = await LogWriter.create(options(fault), 1, 0);
    await writer.close();
    assert.deepEqual(await fault.list(), [logName(1)]);
  });
});
