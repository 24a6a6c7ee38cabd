/**
 * Each row of the recovery decision table (src/recovery/decision-table.ts) in each
 * mode, on logs damaged on purpose.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { RecordScanner, type WindowOptions } from '../src/recovery/scanner.js';
import { FILE_HEADER_SIZE, decodeFileHeader } from '../src/format/layout.js';
import { type Files, logNames, recordOffsets, withoutCleanEnd, writeLog } from './support/damaged-log.js';

async function reopen(files: Files, recoveryMode: RecoveryMode): Promise<{ fs: MemFs; engine: Engine }> {
  const fs = MemFs.fromSnapshot(files);
  const engine = new Engine({ fs, seed: 9, recoveryMode, targetFileSize: 1 << 20 });
  await engine.open();
  return { fs, engine };
}

function regionsPresent(engine: Engine): number[] {
  return engine.raftGroups();
}

const ALL_MODES = [RecoveryMode.AbsoluteConsistency, RecoveryMode.TolerateTailCorruption, RecoveryMode.TolerateAnyCorruption];

describe('read-ahead scanning', () => {
  /** Every record a scanner finds from the first one on: offset, payload length and payload CRC. */
  async function scanAll(bytes: Uint8Array, options: WindowOptions): Promise<string[]> {
    const header = decodeFileHeader(bytes);
    assert.ok(typeof header === 'object');
    const fs = new MemFs();
    const handle = await fs.open('f', { create: true });
    await handle.write([bytes], 0);
    const scanner = new RecordScanner(handle, bytes.length, header.salt, options);
    const found: string[] = [];
    for (let offset = FILE_HEADER_SIZE; ; ) {
      const result = await scanner.read(offset);
      if (!('header' in result)) {
        found.push(`stop ${result.kind} at ${offset}`);
        break;
      }
      found.push(`${offset}+${result.header.payloadLength}:${result.header.payloadCrc}:${result.payload.byteLength}`);
      offset = result.end;
    }
    await scanner.window.idle();
    return found;
  }

  it('finds exactly the records a plain scan finds, with records straddling windows, longer than a window, and a zero tail', async () => {
    const fs = new MemFs();
    const engine = new Engine({ fs, seed: 5, targetFileSize: 64 << 20, preallocateBytes: 0 });
    await engine.open();
    for (let r = 1; r <= 120; r++) {
      const batch = new LogBatch();
      // 100 B to 20 KiB entries: many records cross a 4 KiB window, some span several.
      const size = 100 + ((r * 7919) % 20_000);
      batch.addEntries(r, [{ index: 1, term: 1, data: new Uint8Array(size).map((_, i) => (i * r + 13) & 0xff) }]);
      await engine.write(batch, { sync: true });
    }
    await engine.close();
    const [name] = [...fs.snapshot().keys()].filter((n) => n.endsWith('.raftlog'));
    const written = fs.snapshot().get(name!)!;
    const bytes = new Uint8Array(written.length + 10_000); // and a preallocated zero tail
    bytes.set(written);
    const plain = await scanAll(bytes, {});
    assert.equal(plain.length, 122, 'every record (with the seal) and the stop');
    for (const windowBytes of [4096, 4104, 65536]) {
      assert.deepEqual(await scanAll(bytes, { readAhead: true, windowBytes }), plain, `read-ahead, ${windowBytes}-byte windows`);
    }
  });
});

describe('recovery case table', () => {
  it('zeros after the last record (preallocated tail) are the end of the log in every mode', async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    const padded = new Uint8Array(files.get(name!)!.length + 65536);
    padded.set(files.get(name!)!);
    files.set(name!, padded);
    for (const mode of ALL_MODES) {
      const { engine } = await reopen(files, mode);
      assert.deepEqual(regionsPresent(engine), [1, 2, 3], mode);
      assert.deepEqual(engine.recoveryReport?.problems, [], mode);
      await engine.close();
    }
  });

  it('A: a torn last record is cut in every mode, and the cut is physical (reopen twice: same state)', async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    const bytes = files.get(name!)!;
    const offsets = await recordOffsets(bytes);
    const torn = Uint8Array.from(bytes.subarray(0, offsets[2]! + 100)); // the third record loses its end
    withoutCleanEnd(files); // as a crash leaves it: the close never happened
    for (const mode of ALL_MODES) {
      files.set(name!, torn);
      const { fs, engine } = await reopen(files, mode);
      assert.deepEqual(regionsPresent(engine), [1, 2], mode);
      assert.equal(engine.recoveryReport?.problems[0]?.action, 'cut');
      assert.equal(engine.recoveryReport?.problems[0]?.offset, offsets[2]);
      await engine.close();
      const again = new Engine({ fs, seed: 9, recoveryMode: mode });
      await again.open();
      assert.deepEqual(regionsPresent(again), [1, 2]);
      assert.deepEqual(again.recoveryReport?.problems, [], `${mode}: nothing left to cut`);
      await again.close();
    }
  });

  it('A: garbage after the last record that nothing proves durable is cut, not reported as corruption', async () => {
    const files = await writeLog(2);
    const [name] = logNames(files);
    const bytes = files.get(name!)!;
    const garbage = new Uint8Array(bytes.length + 500);
    garbage.set(bytes);
    for (let i = bytes.length; i < garbage.length; i++) garbage[i] = (i * 131) & 0xff;
    files.set(name!, garbage);
    const { engine } = await reopen(files, RecoveryMode.AbsoluteConsistency);
    assert.deepEqual(regionsPresent(engine), [1, 2]);
    await engine.close();
  });

  it('B: damage in the last file that a later record proves durable', async () => {
    const files = await writeLog(5);
    const [name] = logNames(files);
    const offsets = await recordOffsets(files.get(name!)!);
    const damaged = Uint8Array.from(files.get(name!)!);
    damaged[offsets[1]! + 40]! ^= 0x10; // inside record 2's payload
    files.set(name!, damaged);

    await assert.rejects(reopen(files, RecoveryMode.AbsoluteConsistency), (error: unknown) => {
      const e = error as { code: string; file: string; offset: number };
      assert.equal(e.code, 'CORRUPTION');
      assert.equal(e.file, name);
      assert.equal(e.offset, offsets[1]);
      return true;
    });

    const tail = await reopen(files, RecoveryMode.TolerateTailCorruption);
    assert.deepEqual(regionsPresent(tail.engine), [1], 'TolerateTail cuts from the damaged record');
    assert.equal(tail.engine.recoveryReport?.problems[0]?.action, 'cut');
    await tail.engine.close();

    const any = await reopen(files, RecoveryMode.TolerateAnyCorruption);
    assert.deepEqual(regionsPresent(any.engine), [1, 3, 4, 5], 'TolerateAny skips only the damaged record');
    assert.equal(any.engine.recoveryReport?.problems[0]?.action, 'skipped');
    await any.engine.close();
  });

  it('B: after a clean close the seal record proves the last batch durable; without it (a crash) the same damage is a cut', async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    const sealed = files.get(name!)!;
    const offsets = await recordOffsets(sealed);
    assert.equal(offsets.length, 4, 'three batches and the seal');
    const damaged = Uint8Array.from(sealed);
    damaged[offsets[2]! + 40]! ^= 0x10; // inside the last batch's payload
    files.set(name!, damaged);
    await assert.rejects(reopen(files, RecoveryMode.AbsoluteConsistency), { code: 'CORRUPTION', offset: offsets[2] });
    // The same log as a crash leaves it: no seal after the last batch, and no clean end in the MANIFEST.
    const unsealed = Uint8Array.from(damaged);
    unsealed.fill(0, offsets[3]!);
    files.set(name!, unsealed);
    withoutCleanEnd(files);
    const { engine } = await reopen(files, RecoveryMode.AbsoluteConsistency);
    assert.deepEqual(regionsPresent(engine), [1, 2]);
    assert.equal(engine.recoveryReport?.problems[0]?.action, 'cut');
    await engine.close();
  });

  it('C: damage in an older file is corruption unless TolerateAny', async () => {
    const files = await writeLog(12, { targetFileSize: 4096 });
    const names = logNames(files);
    assert.ok(names.length >= 3, `${names.length} files`);
    const older = names[0]!;
    const offsets = await recordOffsets(files.get(older)!);
    const damaged = Uint8Array.from(files.get(older)!);
    damaged[offsets[offsets.length - 1]! + 30]! ^= 0x01; // last record of the oldest file
    files.set(older, damaged);
    for (const mode of [RecoveryMode.AbsoluteConsistency, RecoveryMode.TolerateTailCorruption]) {
      await assert.rejects(reopen(files, mode), { code: 'CORRUPTION', file: older }, mode);
    }
    const any = await reopen(files, RecoveryMode.TolerateAnyCorruption);
    assert.equal(regionsPresent(any.engine).length, 11);
    assert.ok(any.engine.recoveryReport!.problems.length >= 1);
    await any.engine.close();
  });

  it("D: an older file cut short is detected through its successor's header", async () => {
    const files = await writeLog(12, { targetFileSize: 4096 });
    const names = logNames(files);
    const older = names[0]!;
    const offsets = await recordOffsets(files.get(older)!);
    files.set(older, files.get(older)!.subarray(0, offsets[offsets.length - 1]!)); // drop its last record cleanly
    for (const mode of [RecoveryMode.AbsoluteConsistency, RecoveryMode.TolerateTailCorruption]) {
      await assert.rejects(reopen(files, mode), { code: 'CORRUPTION', message: /next file says/ }, mode);
    }
    const any = await reopen(files, RecoveryMode.TolerateAnyCorruption);
    assert.equal(any.engine.recoveryReport!.problems[0]!.action, 'reported');
    await any.engine.close();
  });

  it('E: a last file whose header never became durable is removed, and writing continues', async () => {
    const files = await writeLog(3);
    files.set('0000000000000002.raftlog', new Uint8Array(4096)); // created, header lost
    const { fs, engine } = await reopen(files, RecoveryMode.AbsoluteConsistency);
    assert.deepEqual(regionsPresent(engine), [1, 2, 3]);
    assert.equal(engine.recoveryReport!.problems[0]!.action, 'removed-file');
    const batch = new LogBatch();
    batch.addEntries(9, [{ index: 1, term: 1, data: new Uint8Array(3) }]);
    await engine.write(batch, { sync: true });
    await engine.close();
    const again = new Engine({ fs, seed: 9, recoveryMode: RecoveryMode.AbsoluteConsistency });
    await again.open();
    assert.deepEqual(regionsPresent(again), [1, 2, 3, 9]);
    await again.close();
  });

  it('F: a damaged header on an older file, or a missing file, is corruption unless TolerateAny', async () => {
    const files = await writeLog(12, { targetFileSize: 4096 });
    const names = logNames(files);
    const headerDamaged = new Map(files);
    const bytes = Uint8Array.from(files.get(names[0]!)!);
    bytes[20]! ^= 0xff;
    headerDamaged.set(names[0]!, bytes);
    await assert.rejects(reopen(headerDamaged, RecoveryMode.TolerateTailCorruption), { code: 'CORRUPTION', message: /header/ });
    const missing = new Map(files);
    missing.delete(names[1]!);
    await assert.rejects(reopen(missing, RecoveryMode.AbsoluteConsistency), { code: 'CORRUPTION', message: /missing/ });
    const any = await reopen(missing, RecoveryMode.TolerateAnyCorruption);
    assert.ok(any.engine.recoveryReport!.problems.some((p) => /missing/.test(p.detail)));
    await any.engine.close();
  });

  it('stale records from an earlier incarnation of a file never replay', async () => {
    // A file whose tail still holds records of an earlier file with the same
    // name and layout: what a recycled file looks like.
    const withTail = async (earlierSeed: number): Promise<number[]> => {
      const files = await writeLog(2);
      const earlier = await writeLog(4, { seed: earlierSeed });
      const [name] = logNames(files);
      const mine = files.get(name!)!;
      const end = (await recordOffsets(earlier.get(name!)!))[2]!; // where the earlier file's third record starts
      const mixed = Uint8Array.from(earlier.get(name!)!);
      mixed.set(mine.subarray(0, end));
      files.set(name!, mixed);
      // Mine's seal is gone: as a crash would leave it, without the MANIFEST's
      // clean end (which would catch the cut), so what is tested is the salt alone.
      withoutCleanEnd(files);
      const { engine } = await reopen(files, RecoveryMode.AbsoluteConsistency);
      const regions = regionsPresent(engine);
      await engine.close();
      return regions;
    };
    assert.deepEqual(await withTail(10), [1, 2], 'records signed with another salt are rejected');
    // Control: had the earlier incarnation used the same salt, its records would replay.
    assert.deepEqual(await withTail(9), [1, 2, 3, 4]);
  });
});
