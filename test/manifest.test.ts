/**
 * The manifest (src/file-set/manifest.ts): a file the log needs and does not
 * find is reported, never served as a smaller log (issue 15, cases 2 and 3).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import { runCheck } from '../cli/check.js';
import { ExitCode } from '../cli/errors.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { isRaftlogError } from '../src/errors.js';
import { MANIFEST_NAME, fileIdQueue, fileIdSeq, logFileName, parseLogFileName } from '../src/file-names.js';
import { recoverLog } from '../src/recovery/log.js';
import { FILE_FLAG_MANIFEST, FILE_HEADER_SIZE, decodeFileHeader, encodeFileHeader } from '../src/format/layout.js';
import type { FileSystem } from '../src/filesystem.js';
import {
  MANIFEST_SLOT_SIZE,
  Manifest,
  emptyManifestState,
  decodeManifestSlot,
  encodeManifestSlot,
  readManifest,
  spillRanges,
  type ManifestState,
} from '../src/file-set/manifest.js';
import { LogBatch } from '../src/log-batch.js';
import { RecoveryMode } from '../src/recovery/recovery.js';

const OPTIONS: Partial<EngineOptions> = { targetFileSize: 8192, preallocateBytes: 4096, recycleFiles: 0, seed: 15 };
const HARD_STATE = new TextEncoder().encode('hard_state');

async function open(fs: FileSystem, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs, ...OPTIONS, ...options });
  await engine.open();
  return engine;
}

async function append(engine: Engine, region: number, from: number, count: number, term = 1, size = 500): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const batch = new LogBatch();
    batch.addEntries(region, [{ index: i, term, data: new Uint8Array(size).fill(i & 0xff) }]);
    batch.put(region, HARD_STATE, Uint8Array.of(term, i & 0xff));
    await engine.write(batch, { sync: true });
  }
}

function names(list: string[], suffix: string): string[] {
  return list.filter((n) => n.endsWith(suffix)).sort();
}

async function refusal(fs: FileSystem, options: Partial<EngineOptions> = {}): Promise<Error> {
  const engine = new Engine({ fs, ...OPTIONS, ...options });
  try {
    await engine.open();
  } catch (error) {
    return error as Error;
  }
  await engine.close();
  assert.fail('the engine opened');
}

/** A log over several files with a GC checkpoint holding region 1's keys and entries. */
async function logWithCheckpoint(fs: FileSystem): Promise<void> {
  const engine = await open(fs, { purgeThreshold: 4 * 8192, rewriteMaxEntries: 64 });
  await append(engine, 1, 1, 2, 1, 10);
  await append(engine, 2, 1, 100);
  await engine.compactTo(2, 95, { sync: true });
  await engine.purgeExpiredFiles();
  assert.ok(names(await fs.list(), '.rewrite').length === 1, 'the purge wrote a checkpoint');
  await engine.close();
}

/**
 * Makes `fs` a directory as an engine before manifests wrote it: the same
 * files, with header flags as they were then (no FILE_FLAG_MANIFEST).
 */
async function writtenBeforeManifests(fs: FileSystem): Promise<void> {
  for (const name of await fs.list()) {
    if (parseLogFileName(name) === undefined) continue;
    const handle = await fs.open(name);
    const bytes = new Uint8Array(FILE_HEADER_SIZE);
    await handle.read(bytes, 0, FILE_HEADER_SIZE, 0);
    const header = decodeFileHeader(bytes);
    assert.ok(typeof header === 'object', `${name}: ${String(header)}`);
    assert.ok((header.flags & FILE_FLAG_MANIFEST) !== 0, `${name} was written under the MANIFEST`);
    await handle.write([encodeFileHeader({ ...header, flags: header.flags & ~FILE_FLAG_MANIFEST })], 0, { sync: true });
    await handle.close();
  }
}

/** Where each record of an append file starts, in order (the file's header verifies). */
async function recordStarts(fs: FileSystem, name: string): Promise<number[]> {
  const starts: number[] = [];
  const recovered = await recoverLog(fs, RecoveryMode.AbsoluteConsistency, new Map(), {
    dryRun: true,
    visit: (record, id) => {
      if (logFileName(fileIdQueue(id), fileIdSeq(id)) === name) starts.push(record.offset);
    },
  });
  await Promise.all([...recovered.log.files.map((f) => f.handle.close()), recovered.rewrite.checkpoint?.handle.close()]);
  return starts;
}

async function manifestState(fs: FileSystem): Promise<ManifestState> {
  const manifest = await readManifest(fs);
  assert.ok(manifest.kind === 'ok', manifest.kind);
  return manifest.state;
}

describe('manifest', () => {
  it('a slot round-trips, and a damaged slot leaves the other', () => {
    const state: ManifestState = {
      first: 3,
      last: 9,
      checkpoint: { seq: 2, watermark: 3, spilled: true },
      spilled: spillRanges([5, 6, 8]),
      spillOverflow: false,
      cleanEnd: 4096,
    };
    const slot = encodeManifestSlot(state, 7);
    assert.equal(slot.length, MANIFEST_SLOT_SIZE);
    assert.deepEqual(decodeManifestSlot(slot), { state, generation: 7 });
    assert.deepEqual(state.spilled, [
      [5, 6],
      [8, 8],
    ]);
    slot[100] ^= 1;
    assert.equal(decodeManifestSlot(slot), 'checksum');
  });

  it('case 2: deleting the newest .raftlog after a clean close is CORRUPTION in the default and Absolute modes and reported in Any', async () => {
    const fs = new MemFs();
    const engine = await open(fs);
    await append(engine, 1, 1, 40);
    await engine.close();
    const newest = names(await fs.list(), '.raftlog').at(-1)!;
    await fs.remove(newest);
    for (const recoveryMode of [RecoveryMode.TolerateTailCorruption, RecoveryMode.AbsoluteConsistency]) {
      const error = await refusal(fs, { recoveryMode });
      assert.ok(isRaftlogError(error, 'CORRUPTION'), String(error));
      assert.match(error.message, new RegExp(`${newest}: missing`));
    }
    const any = await open(fs, { recoveryMode: RecoveryMode.TolerateAnyCorruption });
    assert.ok(
      any.recoveryReport!.problems.some((p) => p.file === newest && /missing/.test(p.detail)),
      JSON.stringify(any.recoveryReport!.problems),
    );
    await any.close();
  });

  it('case 2: deleting the GC checkpoint file is CORRUPTION in the default mode and reported in Any', async () => {
    const fs = new MemFs();
    await logWithCheckpoint(fs);
    const checkpoint = names(await fs.list(), '.rewrite')[0]!;
    await fs.remove(checkpoint);
    const error = await refusal(fs);
    assert.ok(isRaftlogError(error, 'CORRUPTION'), String(error));
    assert.match(error.message, new RegExp(`${checkpoint}: missing`));
    const any = await open(fs, { recoveryMode: RecoveryMode.TolerateAnyCorruption });
    assert.ok(any.recoveryReport!.problems.some((p) => p.file === checkpoint));
    await any.close();
  });

  it('case 2: raftlog check exits 4 when the newest file is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-manifest-'));
    try {
      const engine = await open(new PosixFs(dir));
      await append(engine, 1, 1, 40);
      await engine.close();
      const clean = await runCheck(dir, { strict: false });
      assert.equal(clean.exitCode, ExitCode.OK);
      const newest = names(await new PosixFs(dir).list(), '.raftlog').at(-1)!;
      await unlink(join(dir, newest));
      const result = await runCheck(dir, { strict: false });
      assert.equal(result.exitCode, ExitCode.CORRUPTION);
      assert.equal(result.status, 'damaged');
      assert.ok(
        result.problems.some((p) => p.file === newest),
        JSON.stringify(result.problems),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('case 3: reopening a spilled log without spillFs is CORRUPTION saying spillFs is missing', async () => {
    const primary = new FaultFs(new MemFs(), { seed: 3 });
    const spill = new MemFs();
    let engine = await open(primary, { spillFs: spill });
    await append(engine, 1, 1, 10);
    const full = primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
    await append(engine, 1, 11, 30, 9);
    assert.equal(engine.stats().gc.spilling, true);
    await engine.close();
    full.remove();
    const spilled = names(await spill.list(), '.raftlog');
    assert.ok(spilled.length > 0);
    for (const recoveryMode of [RecoveryMode.TolerateTailCorruption, RecoveryMode.AbsoluteConsistency]) {
      const error = await refusal(primary, { recoveryMode });
      assert.ok(isRaftlogError(error, 'CORRUPTION'), String(error));
      assert.match(error.message, /spillFs is missing/);
      assert.ok(
        spilled.some((name) => error.message.includes(name)),
        error.message,
      );
    }
    const any = await open(primary, { recoveryMode: RecoveryMode.TolerateAnyCorruption });
    assert.ok(any.recoveryReport!.problems.some((p) => /spillFs is missing/.test(p.detail)));
    await any.close();
    // With the spill FileSystem: the whole log, hard state included.
    engine = await open(primary, { spillFs: spill });
    assert.deepEqual(engine.recoveryReport!.problems, []);
    assert.equal(engine.lastIndex(1), 40);
    assert.deepEqual([...engine.get(1, HARD_STATE)!], [9, 40]);
    await engine.close();
  });

  it('a directory without a manifest (the format before it) opens as it is and gains one', async () => {
    const fs = new MemFs();
    const engine = await open(fs);
    await append(engine, 1, 1, 30);
    await engine.close();
    await fs.remove(MANIFEST_NAME);
    await writtenBeforeManifests(fs);
    const legacy = await open(fs);
    assert.equal(legacy.lastIndex(1), 30);
    assert.deepEqual(legacy.recoveryReport!.problems, []);
    const manifest = await readManifest(fs);
    assert.equal(manifest.kind, 'ok');
    await legacy.close();
    // And from now on a missing file is caught.
    await fs.remove(names(await fs.list(), '.raftlog').at(-1)!);
    assert.ok(isRaftlogError(await refusal(fs), 'CORRUPTION'));
  });

  it('a deleted MANIFEST is CORRUPTION naming MANIFEST in the default and Absolute modes, reported and rebuilt in Any', async () => {
    const fs = new MemFs();
    await logWithCheckpoint(fs);
    const engine = await open(fs);
    await append(engine, 1, 3, 20);
    await engine.close();
    await fs.remove(MANIFEST_NAME);
    for (const recoveryMode of [RecoveryMode.TolerateTailCorruption, RecoveryMode.AbsoluteConsistency]) {
      const error = await refusal(fs, { recoveryMode });
      assert.ok(isRaftlogError(error, 'CORRUPTION'), String(error));
      assert.match(error.message, /^MANIFEST: missing/);
    }
    const any = await open(fs, { recoveryMode: RecoveryMode.TolerateAnyCorruption });
    assert.ok(
      any.recoveryReport!.problems.some((p) => p.file === MANIFEST_NAME && /missing/.test(p.detail)),
      JSON.stringify(any.recoveryReport!.problems),
    );
    assert.equal(any.lastIndex(1), 22);
    await any.close();
    assert.equal((await readManifest(fs)).kind, 'ok', 'TolerateAnyCorruption rebuilt the MANIFEST');
    const again = await open(fs, { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.deepEqual(again.recoveryReport!.problems, []);
    assert.equal(again.lastIndex(1), 22);
    await again.close();
  });

  it('a deleted MANIFEST of a log with one file is detected too, and raftlog check exits 4', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-manifest-'));
    try {
      const engine = await open(new PosixFs(dir));
      await append(engine, 1, 1, 3);
      await engine.close();
      assert.equal(names(await new PosixFs(dir).list(), '.raftlog').length, 1);
      await unlink(join(dir, MANIFEST_NAME));
      const result = await runCheck(dir, { strict: false });
      assert.equal(result.exitCode, ExitCode.CORRUPTION);
      assert.ok(
        result.problems.some((p) => p.file === MANIFEST_NAME),
        JSON.stringify(result.problems),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a last file cut exactly at a record boundary after a clean close is CORRUPTION (seal gone, or seal and records gone), reported in Any, check exits 4', async () => {
    for (const lost of [1, 2]) {
      const dir = await mkdtemp(join(tmpdir(), 'raftlog-clean-end-'));
      try {
        const fs = new PosixFs(dir);
        const engine = await open(fs);
        await append(engine, 1, 1, 40);
        await engine.close();
        const newest = names(await fs.list(), '.raftlog').at(-1)!;
        const starts = await recordStarts(fs, newest);
        // Drop the seal (lost 1), or the last data record and the seal (lost 2).
        const cut = starts[starts.length - lost]!;
        await truncate(join(dir, newest), cut);
        for (const recoveryMode of [RecoveryMode.TolerateTailCorruption, RecoveryMode.AbsoluteConsistency]) {
          const error = await refusal(fs, { recoveryMode });
          assert.ok(isRaftlogError(error, 'CORRUPTION'), String(error));
          assert.match(error.message, new RegExp(`${newest}: valid data ends at ${cut}, but the MANIFEST records that a clean close`));
        }
        const result = await runCheck(dir, { strict: false });
        assert.equal(result.exitCode, ExitCode.CORRUPTION);
        assert.ok(
          result.problems.some((p) => p.file === newest),
          JSON.stringify(result.problems),
        );
        const any = await open(fs, { recoveryMode: RecoveryMode.TolerateAnyCorruption });
        assert.ok(any.recoveryReport!.problems.some((p) => p.file === newest && /clean close/.test(p.detail)));
        assert.equal(any.lastIndex(1), lost === 1 ? 40 : 39);
        await any.close();
        // Reported once: the log TolerateAny opened is the log from now on.
        const again = await open(fs, { recoveryMode: RecoveryMode.AbsoluteConsistency });
        assert.deepEqual(again.recoveryReport!.problems, []);
        await again.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  it('the clean end never condemns a log written after the close: writes then a crash, a reopen without writes, a rotation', async () => {
    const fs = new FaultFs(new MemFs(), { seed: 5 });
    let engine = await open(fs);
    await append(engine, 1, 1, 5);
    await engine.close();
    assert.ok((await manifestState(fs)).cleanEnd > 0, 'the close recorded its clean end');
    engine = await open(fs);
    await engine.close();
    engine = await open(fs);
    await append(engine, 1, 6, 3);
    assert.equal((await manifestState(fs)).cleanEnd, 0, 'the first write cleared it');
    const image = await fs.crash('keepPrefix');
    engine = await open(image, { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.deepEqual(engine.recoveryReport!.problems, []);
    assert.equal(engine.lastIndex(1), 8);
    await append(engine, 1, 9, 40);
    await engine.close();
    engine = await open(image, { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.deepEqual(engine.recoveryReport!.problems, []);
    assert.equal(engine.lastIndex(1), 48);
    await engine.close();
  });

  it('a manifest update that fails with NO_SPACE can be retried (the generation did not advance), and a close on a full disk still closes', async () => {
    const fs = new FaultFs(new MemFs(), { seed: 21 });
    await fs.init();
    const state = { ...emptyManifestState(), first: 1, last: 1 };
    const manifest = await Manifest.create(fs, state);
    const full = fs.inject({ ops: ['write'], path: MANIFEST_NAME, when: { probability: 1 }, error: 'ENOSPC' });
    await assert.rejects(
      manifest.update(() => ({ ...state, last: 2 })),
      (error: unknown) => isRaftlogError(error, 'NO_SPACE'),
    );
    full.remove();
    await manifest.update(() => ({ ...state, last: 2 }));
    await manifest.close();
    const read = await readManifest(fs);
    assert.ok(read.kind === 'ok');
    assert.equal(read.generation, 2);
    assert.equal(read.state.last, 2);

    const engineFs = new FaultFs(new MemFs(), { seed: 22 });
    const engine = await open(engineFs);
    await append(engine, 1, 1, 5);
    const noRoom = engineFs.inject({ ops: ['write'], path: MANIFEST_NAME, when: { probability: 1 }, error: 'ENOSPC' });
    await engine.close();
    noRoom.remove();
    assert.equal((await manifestState(engineFs)).cleanEnd, 0, 'the clean end could not be recorded');
    const again = await open(engineFs, { recoveryMode: RecoveryMode.AbsoluteConsistency });
    assert.equal(again.lastIndex(1), 5);
    assert.deepEqual(again.recoveryReport!.problems, []);
    await again.close();
  });

  it('a crash at any operation of a rotation reopens to an acknowledged state, never a missing file', async () => {
    // Count the operations of a run, then cut the power after each one.
    const run = async (fs: FaultFs): Promise<number> => {
      let acknowledged = 0;
      try {
        const engine = await open(fs);
        for (let i = 1; i <= 30; i++) {
          await append(engine, 1, i, 1);
          acknowledged = i;
        }
        await engine.close();
      } catch {
        // The power went out.
      }
      return acknowledged;
    };
    const probe = new FaultFs(new MemFs(), { seed: 9 });
    await run(probe);
    const total = probe.opIndex;
    for (let cut = 0; cut < total; cut += 3) {
      const fs = new FaultFs(new MemFs(), { seed: 9 });
      fs.freezeAt(cut);
      const acknowledged = await run(fs);
      const image = await fs.crash('mixed');
      const engine = await open(image, { recoveryMode: RecoveryMode.AbsoluteConsistency });
      const last = engine.lastIndex(1) ?? 0;
      assert.ok(last >= acknowledged, `cut after op ${cut}: ${last} < ${acknowledged} acknowledged`);
      await engine.close();
      const again = await open(image, { recoveryMode: RecoveryMode.AbsoluteConsistency });
      assert.equal(again.lastIndex(1) ?? 0, last);
      assert.deepEqual(again.recoveryReport!.problems, []);
      await again.close();
    }
  });
});
