/**
 * The persistent-memory crash model (FaultFs policy `pmem`, fault/pmem.ts)
 * and the engine under it, on MemFs and on PmemFs itself.
 *
 * Model properties checked over many seeds: synced data always survives;
 * every aligned 8-byte word of a crashed file is one version of that word
 * (durable or after some pending store), never a mix of bytes; an untorn line
 * is one version as a whole; the size is one of its versions; all outcomes
 * (dropped, kept, intermediate version, torn) actually occur.
 *
 * The engine torture: random batches over several regions, some synced,
 * some concurrent (group commit), small files so rotation happens; then a
 * pmem power loss, a restart (on PmemFs, from the crash image copied into a
 * fresh directory), and the check that the engine holds exactly the state
 * after some prefix of the attempted writes no shorter than the last
 * acknowledged sync. SEED=n replays a run.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FaultFs, type CrashPolicySpec } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { PmemFs, type PmemFlushPath } from '../backends/pmem.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import type { FileSystem } from '../src/filesystem.js';
import { runConformance } from './conformance/suite.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const SEED = testSeed(0x9e3e);
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const WORD = 8;

/** Bytes that differ from every other tag's at every offset (so a mixed word shows). */
function chunk(length: number, tag: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 31 + tag * 17) % 251) + 1;
  return out;
}

async function readAll(fs: FileSystem, name: string): Promise<Uint8Array> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const out = new Uint8Array(await handle.size());
    assert.equal(await handle.read(out, 0, out.length, 0), out.length);
    return out;
  } finally {
    await handle.close();
  }
}

function withSize(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(bytes.subarray(0, Math.min(size, bytes.length)));
  return out;
}

function sameWord(a: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = at; i < at + WORD; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return false;
  return true;
}

/** A file with `durable` synced (and its creation synced), ready for pending operations. */
async function fileWith(seed: number, durable: Uint8Array): Promise<{ fault: FaultFs; file: Awaited<ReturnType<FaultFs['open']>> }> {
  const fault = new FaultFs(new MemFs(), { seed });
  await fault.init();
  const file = await fault.open('f', { create: true });
  await fault.syncDir();
  if (durable.length > 0) await file.write([durable], 0, { sync: true });
  return { fault, file };
}

const PMEM_KEEP_DIR: CrashPolicySpec = { data: 'pmem', dir: 'keepAll' };

describe('pmem crash model', () => {
  it('every word is one version of itself, untorn lines are one version, the size is one of its values; all outcomes occur', async () => {
    const old = chunk(4096, 1);
    const seen = { dropped: 0, newest: 0, intermediate: 0, torn: 0, oldSize: 0, newSize: 0 };
    for (let i = 0; i < 150; i++) {
      const seed = SEED + i;
      const { fault, file } = await fileWith(seed, old);
      await file.write([chunk(4096, 2)], 0);
      await file.write([chunk(1000, 3)], 1000);
      await file.write([chunk(500, 4)], 4096);
      // The versions each byte can have: after 0, 1, 2 or 3 of the pending writes.
      const v1 = withSize(old, 4096);
      v1.set(chunk(4096, 2), 0);
      const v2 = v1.slice();
      v2.set(chunk(1000, 3), 1000);
      const v3 = withSize(v2, 4596);
      v3.set(chunk(500, 4), 4096);
      const versions = [withSize(old, 4596), withSize(v1, 4596), withSize(v2, 4596), v3];
      const got = await readAll(await fault.crash(PMEM_KEEP_DIR), 'f');
      try {
        assert.ok(got.length === 4096 || got.length === 4596, `size ${got.length} is one of its versions`);
        if (got.length === 4096) seen.oldSize++;
        else seen.newSize++;
        for (let line = 0; line * 64 < got.length; line++) {
          const start = line * 64;
          const words: number[][] = [];
          for (let at = start; at < Math.min(start + 64, got.length); at += WORD) {
            const matches = versions.map((v, k) => (sameWord(got, v, at) ? k : -1)).filter((k) => k >= 0);
            assert.ok(matches.length > 0, `word at ${at} is a version of itself`);
            words.push(matches);
          }
          // A line is whole when one version explains every word of it.
          const whole = [0, 1, 2, 3].filter((k) => words.every((m) => m.includes(k)));
          if (whole.length === 0) seen.torn++;
          else if (whole.includes(0)) seen.dropped++;
          else if (whole.includes(3)) seen.newest++;
          else seen.intermediate++;
        }
      } catch (error) {
        throw new Error(`[seed=${seed}] ${(error as Error).message}\n${fault.describe()}`, { cause: error });
      }
    }
    for (const [outcome, count] of Object.entries(seen)) assert.ok(count > 0, `outcome ${outcome} occurred (${JSON.stringify(seen)})`);
  });

  it('synced data is never lost, and a logical shrink comes back as a size, not as lost bytes', async () => {
    for (let i = 0; i < 100; i++) {
      const seed = SEED + 1000 + i;
      const { fault, file } = await fileWith(seed, chunk(3000, 5));
      await file.truncate(100);
      await file.truncate(2000); // exposes zeros: stores that may not reach the media
      const got = await readAll(await fault.crash('pmem'), 'f');
      assert.ok([3000, 100, 2000].includes(got.length), `[seed=${seed}] size ${got.length}`);
      assert.deepEqual(got.subarray(0, 100), chunk(100, 5), `[seed=${seed}] bytes below every size are the synced ones`);
      for (let at = 104; at + WORD <= got.length; at += WORD) {
        const zero = got.subarray(at, at + WORD).every((b) => b === 0);
        assert.ok(zero || sameWord(got, chunk(3000, 5), at), `[seed=${seed}] word at ${at} is the old one or the zeros`);
      }
    }
  });

  it('the zeros in a gap before a write past the end are stores too: lost ones let old bytes show', async () => {
    let oldInGap = 0;
    let zeroInGap = 0;
    for (let i = 0; i < 100; i++) {
      const seed = SEED + 2000 + i;
      const { fault, file } = await fileWith(seed, chunk(3000, 5));
      await file.truncate(100);
      await file.write([chunk(100, 6)], 2000);
      const got = await readAll(await fault.crash('pmem'), 'f');
      assert.ok([3000, 100, 2100].includes(got.length), `[seed=${seed}] size ${got.length}`);
      const future = withSize(chunk(100, 5), 2100);
      future.set(chunk(100, 6), 2000);
      for (let at = 104; at + WORD <= got.length; at += WORD) {
        const old = sameWord(got, chunk(3000, 5), at);
        assert.ok(old || sameWord(got, future, at), `[seed=${seed}] word at ${at} is old or new`);
        if (got.length === 2100 && at < 2000) {
          if (old) oldInGap++;
          else zeroInGap++;
        }
      }
    }
    assert.ok(oldInGap > 0 && zeroInGap > 0, `gap words: ${oldInGap} old, ${zeroInGap} zero`);
  });

  it('keepProbability 0 is dropUnsynced; 1 with no tearing is the written image', async () => {
    const { fault: a, file: fa } = await fileWith(SEED, chunk(500, 1));
    await fa.write([chunk(700, 2)], 300);
    assert.deepEqual(await readAll(await a.crash({ data: 'pmem', dir: 'keepAll', keepProbability: 0 }), 'f'), chunk(500, 1));
    const { fault: b, file: fb } = await fileWith(SEED, chunk(500, 1));
    await fb.write([chunk(700, 2)], 300);
    const expected = withSize(chunk(500, 1), 1000);
    expected.set(chunk(700, 2), 300);
    assert.deepEqual(await readAll(await b.crash({ data: 'pmem', dir: 'keepAll', keepProbability: 1, tornProbability: 0 }), 'f'), expected);
  });

  it('replays from the seed, and a fresh 8 MiB preallocation costs no line decisions', async () => {
    const images: string[] = [];
    for (let k = 0; k < 2; k++) {
      const { fault, file } = await fileWith(SEED, chunk(256, 1));
      await file.write([chunk(4000, 2)], 100);
      await file.preallocate(0, 8 << 20);
      images.push(Buffer.from(await readAll(await fault.crash('pmem'), 'f')).toString('base64'));
      const detail = fault.log
        .filter((e) => e.kind === 'crash' && e.path === 'f')
        .map((e) => e.detail)
        .join(' ');
      assert.match(
        detail,
        /data pmem: kept \d+\/64 unflushed line/,
        'only the lines of bytes 100..4100 count: the preallocated zeros do not',
      );
    }
    assert.equal(images[0], images[1]);
  });

  it('validates its parameters, and mixed never picks pmem (existing seeds replay unchanged)', async () => {
    const { fault } = await fileWith(SEED, chunk(10, 1));
    await assert.rejects(fault.crashImage({ data: 'pmem', dir: 'keepAll', lineSize: 48 }), RangeError);
    await assert.rejects(fault.crashImage({ data: 'pmem', dir: 'keepAll', lineSize: 4 }), RangeError);
    await assert.rejects(fault.crashImage({ data: 'pmem', dir: 'keepAll', tornProbability: 2 }), RangeError);
    await fault.crashImage({ data: 'pmem', dir: 'keepAll', lineSize: 256 });
    for (let i = 0; i < 60; i++) {
      const { fault: f, file } = await fileWith(SEED + i, chunk(10, 1));
      await file.write([chunk(10, 2)], 10);
      await f.crash('mixed');
      assert.ok(!f.log.some((e) => /data pmem/.test(e.detail)), 'mixed chose pmem');
    }
  });
});

// The shared contract with pmem power losses, over MemFs and over PmemFs.
runConformance<FaultFs>({
  name: 'fault(memfs), crash pmem',
  async make() {
    const fs = new FaultFs(new MemFs(), { seed: SEED });
    return { fs, cleanup: () => fs.close().catch(() => undefined) };
  },
  crash: (fs) => fs.crash('pmem'),
});

if (PmemFs.unavailableReason() === undefined) {
  runConformance<FaultFs>({
    name: 'fault(pmem, cacheline), crash pmem',
    async make() {
      const dir = mkdtempSync(join(SHM, 'raftlog-fault-pmem-'));
      const inner = new PmemFs(join(dir, 'root'), { flush: 'cacheline' });
      const fs = new FaultFs(inner, { seed: SEED });
      return {
        fs,
        cleanup: async () => {
          await inner.close().catch(() => undefined);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    crash: (fs) => fs.crash('pmem'),
  });
}

// ---------------------------------------------------------------------------
// The engine under pmem power losses.

interface Written {
  readonly region: number;
  readonly first: number;
  readonly data: readonly Uint8Array[];
}

/** Where the engine runs: the restarted FileSystem is built from a crash image. */
interface Disk {
  readonly name: string;
  /** The FileSystem a (re)started engine gets, holding `image` (undefined: empty). */
  start(image: MemFs | undefined): Promise<FileSystem>;
  cleanup(): Promise<void>;
}

function memDisk(): Disk {
  return { name: 'memfs', start: async (image) => image ?? new MemFs(), cleanup: async () => undefined };
}

/** PmemFs under /dev/shm; each restart copies the crash image into a fresh directory, as a rebooted machine's pmem holds it. */
function pmemDisk(flush: PmemFlushPath): Disk {
  const dir = mkdtempSync(join(SHM, 'raftlog-torture-pmem-'));
  const made: PmemFs[] = [];
  let restarts = 0;
  return {
    name: `pmem, ${flush}`,
    async start(image) {
      const fs = new PmemFs(join(dir, `boot-${restarts++}`), { flush });
      made.push(fs);
      await fs.init();
      if (image !== undefined) {
        for (const name of await image.list()) {
          const bytes = await readAll(image, name);
          const file = await fs.open(name, { create: true, exclusive: true });
          await file.write([bytes], 0, { sync: true });
          await file.close();
        }
        await fs.syncDir();
      }
      return fs;
    },
    async cleanup() {
      for (const fs of made) await fs.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface TortureStats {
  crashes: number;
  lostWrites: number;
  cuts: number;
}

async function torture(seed: number, disk: Disk, rounds: number, stats: TortureStats): Promise<void> {
  const rng = new Random(seed);
  const history: Written[] = [];
  let floor = 0; // writes [0, floor) are durable
  let fault = new FaultFs(await disk.start(undefined), { seed });
  const options = { targetFileSize: 32 * 1024, preallocateBytes: 8 * 1024, seed };
  let engine = new Engine({ fs: fault, ...options });
  await engine.open();
  const lastOf = (region: number, upTo: number): number | undefined => {
    let last: number | undefined;
    for (let i = 0; i < upTo; i++) {
      const w = history[i]!;
      if (w.region === region) last = w.first + w.data.length - 1;
    }
    return last;
  };
  try {
    for (let round = 0; round < rounds; round++) {
      const writes = 10 + rng.below(40);
      for (let n = 0; n < writes; ) {
        // Sometimes several writers at once: one group, one barrier if any asks.
        const group = rng.next() < 0.2 ? 2 + rng.below(3) : 1;
        const pending: Array<Promise<unknown>> = [];
        let syncAt = -1;
        for (let g = 0; g < group; g++, n++) {
          const region = 1 + rng.below(4);
          const first = (lastOf(region, history.length) ?? 0) + 1;
          const data = Array.from({ length: 1 + rng.below(4) }, () => rng.bytes(1 + rng.below(rng.next() < 0.1 ? 6000 : 600)));
          history.push({ region, first, data });
          const batch = new LogBatch();
          batch.addEntries(
            region,
            data.map((d, k) => ({ index: first + k, term: 1, data: d })),
          );
          const sync = rng.next() < 0.3;
          if (sync) syncAt = history.length;
          pending.push(engine.write(batch, { sync }));
        }
        await Promise.all(pending);
        if (syncAt >= 0) floor = Math.max(floor, syncAt);
      }
      // Power loss, then a restart on what the pmem kept.
      const image = await fault.crash('pmem');
      stats.crashes++;
      await engine.close().catch(() => undefined); // the FaultFs is dead; this only lets go of the old engine
      fault = new FaultFs(await disk.start(image), { seed: seed + round + 1 });
      engine = new Engine({ fs: fault, ...options });
      await engine.open(); // a power loss alone must never make open fail
      stats.cuts += engine.recoveryReport?.problems.filter((p) => p.action === 'cut').length ?? 0;

      // Exactly some prefix [0, p) of the attempted writes, p >= floor.
      let prefix = -1;
      for (let p = history.length; p >= floor && prefix < 0; p--) {
        if ([1, 2, 3, 4].every((r) => engine.lastIndex(r) === lastOf(r, p))) prefix = p;
      }
      assert.ok(
        prefix >= 0,
        `recovered lastIndexes ${[1, 2, 3, 4].map((r) => engine.lastIndex(r)).join(',')} match no prefix >= ${floor} of ${history.length} writes`,
      );
      for (const w of history.slice(0, prefix)) {
        const got = await engine.fetchEntriesTo(w.region, w.first, w.first + w.data.length);
        assert.equal(got.length, w.data.length, `region ${w.region} entries ${w.first}..`);
        got.forEach((e, k) => assert.ok(Buffer.compare(e.data, w.data[k]!) === 0, `region ${w.region} entry ${e.index} data`));
      }
      stats.lostWrites += history.length - prefix;
      history.length = prefix;
      floor = prefix;
    }
  } catch (error) {
    throw new Error(`[seed=${seed} disk=${disk.name}] ${(error as Error).message}\n${fault.describe()}`, { cause: error });
  } finally {
    await engine.close().catch(() => undefined);
  }
}

describe('engine torture, pmem power loss', () => {
  const stats: TortureStats = { crashes: 0, lostWrites: 0, cuts: 0 };
  const disks: Disk[] = [];
  after(async () => {
    for (const disk of disks) await disk.cleanup();
  });

  it('on MemFs: 40 seeds × 3 power losses', async () => {
    for (let i = 0; i < 40; i++) await torture(SEED + i, memDisk(), 3, stats);
  });

  for (const flush of ['cacheline', 'msync'] as const) {
    it(`on PmemFs (${flush}) over /dev/shm: 10 seeds × 3 power losses`, { skip: PmemFs.unavailableReason() ?? false }, async () => {
      for (let i = 0; i < 10; i++) {
        const disk = pmemDisk(flush);
        disks.push(disk);
        await torture(SEED + 100 + i, disk, 3, stats);
      }
    });
  }

  it('the power losses lost writes and left torn tails for recovery to cut', () => {
    // Crashes that never lost or tore anything would not have tested recovery.
    assert.ok(stats.lostWrites > 0 && stats.cuts > 0, JSON.stringify(stats));
    process.stderr.write(`pmem torture: ${JSON.stringify(stats)}\n`);
  });
});
