/**
 * Parallel replay (src/recovery/prescan.ts) against the serial replay it must
 * equal: on random logs, intact, torn, and with bit flips in the middle and at
 * the tail, in every recovery mode, the two give the same memtables, the same
 * RecoveryReport (or the same error), and leave the same bytes on disk. Tiny
 * chunks put many chunk boundaries inside records, so the searches for a
 * chunk's first record and the serial reads of records that straddle chunks
 * are exercised too.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import { EncryptedFs } from '../backends/encrypted.js';
import type { Memtables } from '../src/apply.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { isRaftlogError } from '../src/errors.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { recoverLog } from '../src/recovery/log.js';
import { prescanCounters, type ParallelReplayOptions } from '../src/recovery/prescan.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { scanChunk } from '../src/recovery/replay-chunk.js';
import { ReplayPool, liveReplayWorkers } from '../src/recovery/replay-pool.js';
import { FILE_HEADER_SIZE, decodeFileHeader } from '../src/format/layout.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

type Files = Map<string, Uint8Array>;
const MODES = [RecoveryMode.AbsoluteConsistency, RecoveryMode.TolerateTailCorruption, RecoveryMode.TolerateAnyCorruption];
const KEY = new Uint8Array(32).fill(0x5c);

/** A random history: appends (some overwriting), keys, compactions, cleans, over several small files; closed cleanly or not. */
async function randomLog(fs: FileSystem, rng: Random): Promise<void> {
  const options: EngineOptions = {
    fs,
    seed: 7,
    targetFileSize: 24 << 10,
    preallocateBytes: 4096,
    compressionThreshold: 256,
    indexCheckpoint: false,
    recoveryThreads: 0,
  };
  const engine = new Engine(options);
  await engine.open();
  const next = new Map<number, number>();
  const writes = 40 + rng.below(80);
  for (let w = 0; w < writes; w++) {
    const batch = new LogBatch();
    const region = 1 + rng.below(5);
    const roll = rng.below(20);
    if (roll < 14) {
      const last = (next.get(region) ?? 1) - 1;
      const from = Math.max(1, last + 1 - rng.below(3));
      const count = 1 + rng.below(4);
      const entries = Array.from({ length: count }, (_, i) => {
        const size = rng.below(700);
        // Half compressible, so some records are lz4 and their payloads come back decompressed.
        const data = rng.below(2) === 0 ? new Uint8Array(size).fill(i + w) : rng.bytes(size);
        return { index: from + i, term: 1 + rng.below(3), data };
      });
      batch.addEntries(region, entries);
      next.set(region, from + count);
    } else if (roll < 17) {
      batch.put(region, Uint8Array.of(rng.below(4)), rng.bytes(rng.below(40)));
    } else if (roll < 18) {
      batch.delete(region, Uint8Array.of(rng.below(4)));
    } else if (roll < 19 && next.has(region)) {
      batch.compactTo(region, Math.max(1, (next.get(region) ?? 1) - rng.below(4)));
    } else {
      batch.clean(region);
      next.delete(region);
    }
    await engine.write(batch, { sync: rng.below(3) === 0 });
  }
  if (rng.below(2) === 0) await engine.close();
}

/** Damage of one kind (or none) to a copy of `files`. */
function damaged(files: Files, rng: Random): { files: Files; what: string } {
  const copy = new Map([...files].map(([name, bytes]) => [name, bytes.slice()]));
  const logs = [...copy.keys()].filter((n) => n.endsWith('.raftlog') && copy.get(n)!.length > FILE_HEADER_SIZE).sort();
  if (logs.length === 0) return { files: copy, what: 'none' };
  const last = logs[logs.length - 1]!;
  const kind = rng.below(5);
  const flip = (name: string, from: number, to: number): string => {
    const bytes = copy.get(name)!;
    const at = from + rng.below(Math.max(1, to - from));
    bytes[at]! ^= 1 << rng.below(8);
    return `bit flip in ${name} at ${at}`;
  };
  switch (kind) {
    case 0:
      return { files: copy, what: 'none' };
    case 1: {
      const bytes = copy.get(last)!;
      const cut = FILE_HEADER_SIZE + rng.below(bytes.length - FILE_HEADER_SIZE);
      copy.set(last, bytes.slice(0, cut));
      return { files: copy, what: `torn tail: ${last} cut at ${cut}` };
    }
    case 2: {
      const name = logs[rng.below(logs.length)]!;
      return { files: copy, what: flip(name, FILE_HEADER_SIZE, copy.get(name)!.length) };
    }
    case 3: {
      const size = copy.get(last)!.length;
      return { files: copy, what: flip(last, Math.max(FILE_HEADER_SIZE, size - 2048), size) };
    }
    default: {
      const name = logs[rng.below(logs.length)]!;
      const bytes = copy.get(name)!;
      const at = FILE_HEADER_SIZE + rng.below(bytes.length - FILE_HEADER_SIZE);
      bytes.fill(0, at, at + 64);
      return { files: copy, what: `zeros in ${name} at ${at}` };
    }
  }
}

function describeMemtables(memtables: Memtables): string {
  const regions = [...memtables.values()].sort((a, b) => a.region - b.region).map((m) => m.exportIndex());
  return JSON.stringify(regions, (_, value: unknown) => (ArrayBuffer.isView(value) ? Array.from(value as Uint8Array) : value));
}

/** What one recovery gives: the state and report, or the error; and the log files it leaves. */
async function recoverOnce(fs: FileSystem, mode: RecoveryMode, parallel: ParallelReplayOptions | undefined): Promise<string> {
  const memtables: Memtables = new Map();
  let outcome: unknown;
  try {
    const state = await recoverLog(fs, mode, memtables, { parallel });
    const files = state.log.files.map((f) => ({ name: f.name, end: f.end, provenEnd: f.provenEnd, sealed: f.sealed, sealAt: f.sealAt }));
    for (const file of state.log.files) await file.handle.close();
    await state.rewrite.checkpoint?.handle.close();
    outcome = { report: state.log.report, files, nextSeq: state.log.nextSeq, memtables: describeMemtables(memtables) };
  } catch (error) {
    if (!isRaftlogError(error)) throw error;
    outcome = { code: error.code, message: error.message, file: error.file, offset: error.offset };
  }
  assert.equal(liveReplayWorkers(), 0, 'every replay worker is gone once recovery returns or throws');
  return JSON.stringify(outcome);
}

function randomParallel(rng: Random): ParallelReplayOptions {
  return {
    threads: 1 + rng.below(3),
    chunkBytes: [256, 1024, 4096, 16384][rng.below(4)]!,
    minFileBytes: 0,
    mainVerifies: rng.below(2) === 0,
  };
}

async function memFiles(fs: MemFs): Promise<Files> {
  const files = fs.snapshot();
  files.delete('LOCK');
  return files;
}

describe('parallel replay', () => {
  it('gives the serial replay state, report and files on random damaged logs, in every mode (MemFs)', async () => {
    const seed = testSeed(1801);
    const rng = new Random(seed);
    const { workerChunks, records } = prescanCounters;
    for (let round = 0; round < 10; round++) {
      const fs = new MemFs();
      await randomLog(fs, rng);
      const base = await memFiles(fs);
      const { files, what } = damaged(base, rng);
      for (const mode of MODES) {
        const parallel = randomParallel(rng);
        const serialFs = MemFs.fromSnapshot(files);
        const parallelFs = MemFs.fromSnapshot(files);
        const serial = await recoverOnce(serialFs, mode, undefined);
        const fromWorkers = await recoverOnce(parallelFs, mode, parallel);
        const context = `seed ${seed}, round ${round}, ${what}, ${mode}, ${JSON.stringify(parallel)}`;
        assert.equal(fromWorkers, serial, context);
        assert.deepEqual(await memFiles(parallelFs), await memFiles(serialFs), `files left on disk: ${context}`);
      }
    }
    assert.ok(
      prescanCounters.workerChunks > workerChunks && prescanCounters.records > records,
      `seed ${seed}: the parallel path served records`,
    );
  });

  it('gives the serial replay state on real files (PosixFs), torn and flipped', async () => {
    const seed = testSeed(1802);
    const rng = new Random(seed);
    const root = await mkdtemp(join(tmpdir(), 'raftlog-parallel-'));
    try {
      for (let round = 0; round < 4; round++) {
        const fs = new MemFs();
        await randomLog(fs, rng);
        const { files, what } = damaged(await memFiles(fs), rng);
        for (const mode of MODES) {
          const outcomes: string[] = [];
          const left: Files[] = [];
          for (const parallel of [undefined, randomParallel(rng)]) {
            const dir = await mkdtemp(join(root, 'log-'));
            for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
            const posix = new PosixFs(dir);
            await posix.init();
            outcomes.push(await recoverOnce(posix, mode, parallel));
            const after: Files = new Map();
            for (const name of await readdir(dir)) after.set(name, new Uint8Array(await readFile(join(dir, name))));
            left.push(after);
          }
          const context = `seed ${seed}, round ${round}, ${what}, ${mode}`;
          assert.equal(outcomes[1], outcomes[0], context);
          assert.deepEqual(left[1], left[0], `files left on disk: ${context}`);
        }
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('reads through EncryptedFs: workers see the plaintext its read path decrypts', async () => {
    const seed = testSeed(1803);
    const rng = new Random(seed);
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY });
    await randomLog(fs, rng);
    const files = await memFiles(inner);
    const before = prescanCounters.workerChunks;
    const served = prescanCounters.records;
    const serial = await recoverOnce(
      new EncryptedFs(MemFs.fromSnapshot(files), { masterKey: KEY }),
      RecoveryMode.TolerateTailCorruption,
      undefined,
    );
    const parallel = await recoverOnce(
      new EncryptedFs(MemFs.fromSnapshot(files), { masterKey: KEY }),
      RecoveryMode.TolerateTailCorruption,
      {
        threads: 2,
        chunkBytes: 2048,
        minFileBytes: 0,
        mainVerifies: false,
      },
    );
    assert.equal(parallel, serial, `seed ${seed}`);
    assert.ok(prescanCounters.workerChunks > before, 'workers verified chunks');
    assert.ok(prescanCounters.records > served, 'records were served from the chunks');
  });

  it('a worker verifies a chunk exactly as the main thread does, and the pool leaves no worker behind', async () => {
    const fs = new MemFs();
    await randomLog(fs, new Random(testSeed(1804)));
    const files = await memFiles(fs);
    const name = [...files.keys()].filter((n) => n.endsWith('.raftlog')).sort()[0]!;
    const bytes = files.get(name)!;
    const header = decodeFileHeader(bytes);
    assert.ok(typeof header === 'object');
    const pool = new ReplayPool(2);
    try {
      for (const [base, exactStart] of [
        [FILE_HEADER_SIZE, true],
        [FILE_HEADER_SIZE + 1000, false],
      ] as const) {
        const slot = new SharedArrayBuffer(bytes.length);
        new Uint8Array(slot).set(bytes.subarray(base));
        const index = pool.share(slot);
        const job = { id: 0, slot: index, length: bytes.length - base, base, chunkEnd: bytes.length, salt: header.salt, exactStart };
        const pooled = pool.run(job);
        const fromWorker = await pooled.result;
        assert.equal(pooled.claim(), false, 'a worker had claimed the job');
        const here = scanChunk(job, slot);
        assert.ok(here.records.length > 0, 'the chunk holds records');
        assert.deepEqual(fromWorker, here);
      }
      assert.equal(liveReplayWorkers(), 2);
    } finally {
      await pool.close();
    }
    assert.equal(liveReplayWorkers(), 0);
  });

  it('an engine replays a log of 16 MiB and more on its workers to the state a serial open gives', async () => {
    const root = await mkdtemp(join(tmpdir(), 'raftlog-parallel-engine-'));
    try {
      const rng = new Random(testSeed(1805));
      const engine = new Engine({ fs: new PosixFs(root), indexCheckpoint: false });
      await engine.open();
      const data = rng.bytes(1 << 16);
      for (let i = 0; i < 300; i++) {
        const batch = new LogBatch();
        const region = 1 + (i % 7);
        batch.addEntries(region, [{ index: Math.floor(i / 7) + 1, term: 1, data: data.subarray(rng.below(1024), 60_000) }]);
        if (i % 5 === 0) batch.put(region, Uint8Array.of(i & 3), data.subarray(0, 10 + rng.below(100)));
        await engine.write(batch);
      }
      // No close: the reopen replays the whole log, as after a crash.
      const states: string[] = [];
      for (const recoveryThreads of [0, 2]) {
        const copy = await mkdtemp(join(root, 'copy-'));
        for (const name of await readdir(root))
          if (name.endsWith('.raftlog') || name === 'MANIFEST') await writeFile(join(copy, name), await readFile(join(root, name)));
        const reopened = new Engine({ fs: new PosixFs(copy), indexCheckpoint: false, recoveryThreads });
        await reopened.open();
        const regions = [];
        for (const region of reopened.raftGroups()) {
          const first = reopened.firstIndex(region)!;
          const last = reopened.lastIndex(region)!;
          const entries = await reopened.fetchEntriesTo(region, first, last + 1);
          regions.push({
            region,
            first,
            last,
            entries: entries.map((e) => Buffer.from(e.data).toString('base64')),
            keys: reopened.scan(region).length,
          });
        }
        states.push(JSON.stringify({ regions, report: reopened.recoveryReport }));
        assert.equal(liveReplayWorkers(), 0);
        await reopened.close();
      }
      assert.equal(states[1], states[0]);
      await engine.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('regression: a job offered to a closed pool, then claimed by the main thread, leaves no unhandled rejection', async () => {
    const pool = new ReplayPool(1);
    await pool.close();
    const slot = pool.share(new SharedArrayBuffer(64));
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const job = pool.run({ id: 0, slot, length: 0, base: FILE_HEADER_SIZE, chunkEnd: FILE_HEADER_SIZE, salt: 0, exactStart: true });
      assert.equal(job.claim(), true, 'the main thread takes a job no worker can');
      // Unhandled rejections are reported once the microtasks after the one that rejected have run.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', listener);
    }
    assert.deepEqual(unhandled, []);
  });

  it('refuses a bad recoveryThreads', () => {
    for (const bad of [-1, 1.5, '2', 65, Number.NaN]) {
      assert.throws(
        () => new Engine({ fs: new MemFs(), recoveryThreads: bad as number }),
        (error: unknown) => isRaftlogError(error, 'INVALID_ARGUMENT') && /recoveryThreads/.test(error.message),
        String(bad),
      );
    }
    for (const good of [0, 1, 64]) new Engine({ fs: new MemFs(), recoveryThreads: good });
  });
});
