/**
 * Issue 4's sustained run (W3's shape): 100 regions, 8 concurrent writers,
 * each op one synced batch of 4 × 1 KiB entries plus a hard-state put; every
 * 1,000 writes each region is compacted to its last 256 entries; purge every
 * second. Every second it compares the real directory size (stat of every
 * log, rewrite and recycled file) with `stats().gc` and with the bound
 * 1.3 × live + one target file + the preallocation, and reports write
 * amplification from rewrites. Every synced write's latency is kept with its
 * start and end, so the slowest one during purges that rewrote can be set
 * against the slowest one while no purge ran, in the same run (GC runs
 * beside the write path; the queue is held only for its swap, whose length
 * the engine records as purgeStallMicros).
 *
 * Each entry is half seeded random bytes, half zeros (W2's entries). Two runs,
 * one after the other: the engine's defaults (such batches are
 * lz4-compressed, about 2:1), and compression off, where the log holds every
 * byte and the space rule has to rewrite. The directory is measured once
 * more after the clean close.
 *
 * Usage: node dist/bench/gc-sustained.js [--seconds 30] [--target-file-size 8388608] [--dir DIR]
 */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PosixFs } from '../backends/posix.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { machineInfo, machineLine, printTable, saveResults } from './support/report.js';
import { DataPool, halfRandomEntries } from './support/driver.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    'target-file-size': { type: 'string', default: String(8 << 20) },
    dir: { type: 'string', default: join(process.cwd(), 'bench', 'results', 'tmp') },
  },
});
const seconds = Number(values.seconds);
const target = Number(values['target-file-size']);
const REGIONS = 100;
const WRITERS = 8;

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  // Recycled files count: they take disk space even while they wait for reuse.
  for (const name of await readdir(dir)) if (/\.(raftlog|rewrite|recycle)$/.test(name)) total += (await stat(join(dir, name))).size;
  return total;
}

await mkdir(values.dir!, { recursive: true });
const PREALLOCATE = 1 << 20;

async function run(compression: 'default' | 'off'): Promise<{ row: Record<string, number | string>; samples: Sample[] }> {
  const dir = await mkdtemp(join(values.dir!, 'gc-'));
  const engine = new Engine({
    fs: new PosixFs(dir),
    targetFileSize: target,
    purgeThreshold: 4 * target,
    preallocateBytes: PREALLOCATE,
    ...(compression === 'off' ? { compressionThreshold: Number.MAX_SAFE_INTEGER } : {}),
  });
  await engine.open();
  const next = new Array<number>(REGIONS).fill(1);
  // W2's entries: each its own 512 random bytes, then zeros.
  const pool = new DataPool(1024);
  const entrySets = Array.from({ length: 64 }, () => halfRandomEntries(4, 1024, pool));
  const hardState = new Uint8Array(32);
  let writes = 0;
  let stop = false;
  let worstRatio = 0;
  let worstBoundUse = 0;
  /** Writers keep going while the directory is read, so the two differ by what was written in between. */
  let largestDifference = 0;
  const samples: Sample[] = [];
  /** Synced writes as [start, end] in ms since the run began. */
  const writeSpans: [number, number][] = [];
  /** Purges as [start, end, bytes rewritten]. */
  const purgeSpans: [number, number, number][] = [];
  /** Purges whose rewrite the space rule asked for (maxSpaceAmplification). */
  let spaceRewrites = 0;

  async function writer(w: number): Promise<void> {
    // Writer w owns regions w, w+8, …: a region is never appended by two writers at once.
    for (let k = 0; !stop; k++) {
      const region = w + WRITERS * (k % Math.ceil((REGIONS - w) / WRITERS));
      const batch = new LogBatch();
      const first = next[region]!;
      batch.addEntries(
        region + 1,
        entrySets[k % entrySets.length]!.map((data, i) => ({ index: first + i, term: 1, data })),
      );
      batch.put(region + 1, 'hard_state', hardState);
      next[region] = first + 4;
      const began = performance.now();
      await engine.write(batch, { sync: true });
      writeSpans.push([began, performance.now()]);
      if (++writes % 1000 === 0) {
        for (let r = 0; r < REGIONS; r++) if (next[r]! > 257) await engine.compactTo(r + 1, next[r]! - 256);
      }
    }
  }

  const started = Date.now();
  const workers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  while (Date.now() - started < seconds * 1000) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const purgeBegan = performance.now();
    await engine.purgeExpiredFiles();
    purgeSpans.push([purgeBegan, performance.now(), engine.stats().gc.lastPurge?.bytesRewritten ?? 0]);
    if (engine.stats().gc.lastPurge?.spaceRewrite === true) spaceRewrites++;
    const { gc } = engine.stats();
    const diskBytes = await directoryBytes(dir);
    const bound = 1.3 * gc.liveBytes + target + PREALLOCATE;
    const statsBytes = gc.appendFileBytes + gc.rewriteFileBytes + gc.recycledFileBytes;
    largestDifference = Math.max(largestDifference, Math.abs(diskBytes - statsBytes));
    worstRatio = Math.max(worstRatio, diskBytes / gc.liveBytes);
    worstBoundUse = Math.max(worstBoundUse, diskBytes / bound);
    samples.push({ t: (Date.now() - started) / 1000, diskBytes, statsBytes, liveBytes: gc.liveBytes, bound });
  }
  stop = true;
  await Promise.all(workers);
  const stats = engine.stats();
  const stall = engine.metrics().histograms.purgeStallMicros;
  await engine.close();
  const closedBytes = await directoryBytes(dir);

  /** Slowest synced write (ms) among those overlapping a purge that `pick`s, or none. */
  function slowest(overlaps: (span: [number, number]) => boolean): number {
    let worst = 0;
    for (const span of writeSpans) if (overlaps(span)) worst = Math.max(worst, span[1] - span[0]);
    return worst;
  }
  const during = (filter: (rewritten: number) => boolean) => (span: [number, number]) =>
    purgeSpans.some(([from, to, rewritten]) => filter(rewritten) && span[0] < to && span[1] > from);
  const duringRewrite = during((rewritten) => rewritten > 0);
  const duringAny = during(() => true);
  const sorted = writeSpans.map(([a, b]) => b - a).sort((a, b) => a - b);
  await rm(dir, { recursive: true, force: true });

  const row = {
    compression: compression === 'off' ? 'off' : 'default (lz4 over 4 KiB)',
    seconds,
    'writes/s': writes / seconds,
    'live MiB (end)': stats.gc.liveBytes / 2 ** 20,
    'disk MiB (end)': samples.at(-1)!.diskBytes / 2 ** 20,
    'worst disk/live': worstRatio,
    'worst disk / (1.3 live + target + prealloc)': worstBoundUse,
    'disk/live after close': closedBytes / stats.gc.liveBytes,
    'purges that rewrote': purgeSpans.filter(([, , rewritten]) => rewritten > 0).length,
    'purges that rewrote for space': spaceRewrites,
    'slowest synced write ms, during rewriting purges': slowest(duringRewrite),
    'slowest synced write ms, no purge running': slowest((span) => !duringAny(span)),
    'median synced write ms': sorted[Math.floor(sorted.length / 2)] ?? 0,
    // Histogram buckets: the bound of the highest bucket holding a sample.
    'longest queue hold by a purge ≤ ms': highestBucket(stall.bounds, stall.counts) / 1000,
    'mean queue hold by a purge ms': stall.count === 0 ? 0 : stall.sum / stall.count / 1000,
    'largest |stats − directory| MiB': largestDifference / 2 ** 20,
    'rewrite MiB': stats.gc.rewriteBytes / 2 ** 20,
    'write amplification': stats.gc.writeAmplification,
    purges: stats.gc.purges,
    'recycled files': stats.gc.recycledFiles,
  };
  return { row, samples };
}

interface Sample {
  t: number;
  diskBytes: number;
  statsBytes: number;
  liveBytes: number;
  bound: number;
}

function highestBucket(bounds: readonly number[], counts: readonly number[]): number {
  for (let i = counts.length - 1; i >= 0; i--) if (counts[i]! > 0) return bounds[i]!;
  return 0;
}

const compressed = await run('default');
const plain = await run('off');
const rows = [compressed.row, plain.row];
const machine = machineInfo(values.dir);
printTable(`Sustained append-compact-purge (100 regions, 8 writers, targetFileSize ${target / 2 ** 20} MiB, PosixFs)`, rows);
console.log(`\nmachine: ${machineLine(machine)}`);
console.log(`saved: ${saveResults('gc-sustained', { rows, samples: { compressed: compressed.samples, plain: plain.samples } }, machine)}`);
