/**
 * `raftlog stress`: many Raft groups appending concurrently, the workload the
 * engine exists for, measured.
 *
 * Shape: `writers` async loops share one Engine. Each owns a disjoint set of
 * regions (region r belongs to writer r mod writers), so a region is never
 * appended by two writers at once and every batch's indexes are valid when it
 * reaches the queue; the concurrency across writers is what group commit
 * batches. One op = one `engine.write()` of `batchEntries` entries for each
 * of `regionsPerBatch` of the writer's regions, timed from call to resolve.
 *
 * Memory stays bounded: a region that holds more than `keep` entries (plus a
 * slack, so the compaction item is not in every batch) gets a compactTo in
 * the same batch, keeping its last `keep`; a timer calls
 * `purgeExpiredFiles()` every `purgeInterval` seconds, as an application
 * would, and the report sums what the purges did.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { randomFillSync } from 'node:crypto';
import cliProgress from 'cli-progress';
import { Engine, type EngineStats } from '../src/engine.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import type { Entry } from '../src/protos.js';
import { buildFileSystem, type BackendName } from './backends.js';
import { CliError, ExitCode } from './errors.js';
import { claimStressDirectory } from './stress-directory.js';
import { formatBytes, formatDuration, formatNumber, table } from './output.js';

export interface StressOptions {
  dir: string;
  /** Seconds. */
  duration: number;
  backend: BackendName;
  encrypt: boolean;
  direct: boolean;
  regions: number;
  writers: number;
  /** Bytes of `data` per entry. */
  entrySize: number;
  /** Entries per region per batch. */
  batchEntries: number;
  /** Regions per batch (each from the writer's own set). */
  regionsPerBatch: number;
  sync: boolean;
  /** Entries each region keeps; older ones are compacted away. */
  keep: number;
  /** Seconds between purge calls; 0 disables. */
  purgeInterval: number;
  targetFileSize: number;
  /** Progress on stderr: a bar on a TTY, a line a second otherwise, or nothing. */
  progress: boolean;
  /** Delete a log in `dir` that stress did not create (see stress-directory.ts). */
  yes: boolean;
}

export interface LatencySummary {
  /** All in microseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface GcSummary {
  /** purgeExpiredFiles() calls made during the run, and milliseconds spent in them. */
  purgeCalls: number;
  purgeMillis: number;
  /** Summed over the purges. */
  filesRemoved: number;
  filesRecycled: number;
  bytesRewritten: number;
  /** Regions purges asked to compact (summed: a region asked twice counts twice). */
  compactionRequests: number;
  /** Log files (append + rewrite) on the backend at the end. */
  files: number;
  /** Bytes of those files (preallocation included). */
  diskBytes: number;
  /** Entries dropped by the writers' compaction (--keep). */
  compactedEntries: number;
  /** From the engine: file bytes / live bytes, and (written + rewritten) / written. */
  spaceAmplification: number;
  writeAmplification: number;
}

export interface StressResult {
  /** The options the run used (without where it ran and how it reported), and the backend's description. */
  config: Omit<StressOptions, 'dir' | 'duration' | 'progress' | 'yes'> & { description: string; durationSeconds: number };
  interrupted: boolean;
  elapsedSeconds: number;
  ops: number;
  opsPerSecond: number;
  entries: number;
  entriesPerSecond: number;
  /** Entry data bytes appended (what the application asked to store). */
  payloadBytes: number;
  /** Bytes the engine wrote to the log (records, headers, padding). */
  bytesWritten: number;
  /** bytesWritten per second, in MB (10^6). */
  mbPerSecond: number;
  latencyMicros: LatencySummary;
  groups: number;
  syncs: number;
  averageGroupSize: number;
  rotations: number;
  memtable: { regions: number; entries: number; indexBytes: number; bytesPerEntry: number };
  gc: GcSummary;
  heapUsedBytes: number;
  rssBytes: number;
}

export function validateStressOptions(o: StressOptions): void {
  if (o.writers > o.regions) {
    throw new CliError(`--writers (${o.writers}) must not exceed --regions (${o.regions}): each writer owns its own regions`, ExitCode.USAGE);
  }
  const smallestShare = Math.floor(o.regions / o.writers);
  if (o.regionsPerBatch > smallestShare) {
    throw new CliError(
      `--regions-per-batch (${o.regionsPerBatch}) must not exceed the regions each writer owns (${smallestShare})`,
      ExitCode.USAGE,
    );
  }
  if (o.keep < o.batchEntries) throw new CliError(`--keep (${o.keep}) must be at least --batch-entries (${o.batchEntries})`, ExitCode.USAGE);
}

interface Counters {
  ops: number;
  entries: number;
  compacted: number;
  errors: unknown[];
}

/** Random entry data, sliced at varying offsets: realistic (incompressible) and cheap per op. */
function dataPool(entrySize: number): Uint8Array {
  const pool = new Uint8Array(Math.max(1 << 20, entrySize * 2));
  randomFillSync(pool);
  return pool;
}

async function writer(
  engine: Engine,
  own: number[],
  options: StressOptions,
  pool: Uint8Array,
  histogram: RecordableHistogram,
  counters: Counters,
  shouldStop: () => boolean,
): Promise<void> {
  const next = new Map<number, number>(own.map((region) => [region, 1]));
  const first = new Map<number, number>(own.map((region) => [region, 1]));
  // Compact once a region is this far past `keep`: one compaction item per slack/batchEntries batches.
  const slack = Math.max(options.batchEntries, Math.floor(options.keep / 8));
  const entries: Entry[] = Array.from({ length: options.batchEntries }, () => ({ index: 0, term: 1, data: pool.subarray(0, 0) }));
  const batch = new LogBatch();
  let cursor = 0;
  let poolOffset = (own[0]! * 4099) % (pool.length - options.entrySize);
  let lastYield = performance.now();
  while (!shouldStop()) {
    // On a backend whose I/O completes synchronously (mem), writes resolve in
    // microtasks only and would starve timers and progress; yield now and then.
    if (performance.now() - lastYield > 20) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
    batch.clear();
    for (let r = 0; r < options.regionsPerBatch; r++) {
      const region = own[cursor]!;
      cursor = (cursor + 1) % own.length;
      const index = next.get(region)!;
      for (let i = 0; i < options.batchEntries; i++) {
        const entry = entries[i]!;
        entry.index = index + i;
        entry.data = pool.subarray(poolOffset, poolOffset + options.entrySize);
        poolOffset = (poolOffset + 4099) % (pool.length - options.entrySize);
      }
      batch.addEntries(region, entries);
      const last = index + options.batchEntries - 1;
      next.set(region, last + 1);
      if (last - first.get(region)! + 1 > options.keep + slack) {
        const keepFrom = last - options.keep + 1;
        batch.compactTo(region, keepFrom);
        counters.compacted += keepFrom - first.get(region)!;
        first.set(region, keepFrom);
      }
    }
    const start = process.hrtime.bigint();
    await engine.write(batch, { sync: options.sync });
    histogram.record(process.hrtime.bigint() - start || 1n);
    counters.ops++;
    counters.entries += options.batchEntries * options.regionsPerBatch;
  }
}

/** Bytes of every file on `fs` (log files and anything else the backend keeps there, e.g. the key dictionary). */
async function diskBytes(fs: FileSystem): Promise<{ files: number; bytes: number }> {
  let bytes = 0;
  let files = 0;
  for (const name of await fs.list()) {
    if (!/\.(raftlog|rewrite)$/.test(name)) continue;
    const handle = await fs.open(name, { readOnly: true });
    try {
      bytes += await handle.size();
      files++;
    } finally {
      await handle.close();
    }
  }
  return { files, bytes };
}

/** Live progress on stderr while the run lasts. */
class Progress {
  readonly #bar: cliProgress.SingleBar | undefined;
  readonly #started = performance.now();
  #lastLine = 0;

  constructor(
    readonly enabled: boolean,
    readonly durationSeconds: number,
  ) {
    if (enabled && process.stderr.isTTY === true) {
      this.#bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'stress {bar} {percentage}% | {elapsed}/{total}s | {ops} ops/s | {mbps} MB/s | p99 {p99}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: true,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(durationSeconds, 0, { elapsed: '0.0', ops: '-', mbps: '-', p99: '-' });
    }
  }

  update(opsPerSecond: number, mbPerSecond: number, p99Ns: number): void {
    if (!this.enabled) return;
    const elapsed = (performance.now() - this.#started) / 1000;
    const payload = {
      elapsed: elapsed.toFixed(1),
      ops: formatNumber(Math.round(opsPerSecond)),
      mbps: mbPerSecond.toFixed(1),
      p99: p99Ns > 0 ? formatDuration(p99Ns) : '-',
    };
    if (this.#bar !== undefined) {
      this.#bar.update(Math.min(elapsed, this.durationSeconds), payload);
    } else if (elapsed - this.#lastLine >= 1) {
      // Not a terminal (CI, a pipe): a line a second instead of redrawing one.
      this.#lastLine = Math.floor(elapsed);
      process.stderr.write(
        `stress: ${payload.elapsed}/${this.durationSeconds}s  ${payload.ops} ops/s  ${payload.mbps} MB/s  p99 ${payload.p99}\n`,
      );
    }
  }

  stop(): void {
    this.#bar?.stop();
  }
}

export interface StressIo {
  /** One-line notes for the user (stderr). */
  note(text: string): void;
  /** Resolves when the user asks to stop early (SIGINT). */
  interrupted: Promise<void>;
}

export async function runStress(options: StressOptions, io: StressIo): Promise<StressResult> {
  validateStressOptions(options);
  // Backend first: an unavailable one must fail before the directory is touched.
  const built = await buildFileSystem(options.backend, options.dir, { encrypt: options.encrypt, direct: options.direct });
  try {
    if (built.onDisk) await claimStressDirectory(options.dir, built.base, options.yes);
  } catch (error) {
    await built.fs.close().catch(() => undefined);
    throw error;
  }
  for (const note of built.notes) io.note(note);
  const engine = new Engine({ fs: built.fs, targetFileSize: options.targetFileSize });
  try {
    await engine.open();
  } catch (error) {
    await built.fs.close().catch(() => undefined);
    throw error;
  }
  const histogram = createHistogram();
  const counters: Counters = { ops: 0, entries: 0, compacted: 0, errors: [] };
  const pool = dataPool(options.entrySize);
  const gc = { calls: 0, millis: 0, filesRemoved: 0, filesRecycled: 0, bytesRewritten: 0, compactionRequests: 0 };
  let stop = false;
  let interrupted = false;
  void io.interrupted.then(() => {
    interrupted = true;
    stop = true;
  });

  const progress = new Progress(options.progress, options.duration);
  const started = performance.now();
  // Throughput over the last second, from samples taken every 250 ms.
  const samples: { at: number; ops: number; bytes: number }[] = [{ at: started, ops: 0, bytes: 0 }];
  const ticker = setInterval(() => {
    const now = performance.now();
    const bytes = engine.stats().bytesWritten;
    samples.push({ at: now, ops: counters.ops, bytes });
    while (samples.length > 5) samples.shift();
    const oldest = samples[0]!;
    const seconds = Math.max((now - oldest.at) / 1000, 1e-3);
    progress.update((counters.ops - oldest.ops) / seconds, (bytes - oldest.bytes) / seconds / 1e6, histogram.count > 0 ? histogram.percentile(99) : 0);
  }, 250);
  // Checked by the writers themselves, not only by a timer, so a run ends on time even if timers are late.
  const deadlineAt = started + options.duration * 1000;
  let purging: Promise<void> = Promise.resolve();
  let failure: unknown;
  // Purges run between write groups (the engine serialises them with the queue), as an application's timer would.
  const purgeTimer =
    options.purgeInterval > 0
      ? setInterval(() => {
          purging = purging.then(async () => {
            if (stop || failure !== undefined) return;
            const t = performance.now();
            const ask = await engine.purgeExpiredFiles();
            gc.millis += performance.now() - t;
            gc.calls++;
            gc.compactionRequests += ask.length;
            const last = engine.stats().gc.lastPurge;
            if (last !== undefined) {
              gc.filesRemoved += last.filesRemoved;
              gc.filesRecycled += last.filesRecycled;
              gc.bytesRewritten += last.bytesRewritten;
            }
          });
        }, options.purgeInterval * 1000)
      : undefined;

  const shares: number[][] = Array.from({ length: options.writers }, () => []);
  for (let region = 1; region <= options.regions; region++) shares[(region - 1) % options.writers]!.push(region);
  try {
    const results = await Promise.allSettled(
      shares.map((own) => writer(engine, own, options, pool, histogram, counters, () => stop || failure !== undefined || performance.now() >= deadlineAt)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) failure = failed.reason;
  } finally {
    clearInterval(ticker);
    if (purgeTimer !== undefined) clearInterval(purgeTimer);
    progress.stop();
  }
  const elapsedSeconds = (performance.now() - started) / 1000;
  try {
    await purging;
  } catch (error) {
    failure ??= error;
  }
  let stats: EngineStats;
  let disk: { files: number; bytes: number };
  try {
    if (failure !== undefined) throw failure;
    stats = engine.stats();
    disk = await diskBytes(built.fs);
  } finally {
    await engine.close().catch((error: unknown) => {
      failure ??= error;
    });
    await built.fs.close().catch(() => undefined);
  }
  if (failure !== undefined) throw failure;

  const memory = process.memoryUsage();
  const us = (ns: number): number => Math.round(ns / 100) / 10;
  const count = histogram.count;
  return {
    config: {
      backend: options.backend,
      description: built.fs.description,
      encrypt: options.encrypt,
      direct: options.direct,
      regions: options.regions,
      writers: options.writers,
      entrySize: options.entrySize,
      batchEntries: options.batchEntries,
      regionsPerBatch: options.regionsPerBatch,
      sync: options.sync,
      keep: options.keep,
      purgeInterval: options.purgeInterval,
      targetFileSize: options.targetFileSize,
      durationSeconds: options.duration,
    },
    interrupted,
    elapsedSeconds,
    ops: counters.ops,
    opsPerSecond: counters.ops / elapsedSeconds,
    entries: counters.entries,
    entriesPerSecond: counters.entries / elapsedSeconds,
    payloadBytes: counters.entries * options.entrySize,
    bytesWritten: stats.bytesWritten,
    mbPerSecond: stats.bytesWritten / elapsedSeconds / 1e6,
    latencyMicros: {
      p50: count > 0 ? us(histogram.percentile(50)) : 0,
      p90: count > 0 ? us(histogram.percentile(90)) : 0,
      p99: count > 0 ? us(histogram.percentile(99)) : 0,
      p999: count > 0 ? us(histogram.percentile(99.9)) : 0,
      max: count > 0 ? us(histogram.max) : 0,
      mean: count > 0 ? us(histogram.mean) : 0,
    },
    groups: stats.groups,
    syncs: stats.syncs,
    averageGroupSize: stats.groups === 0 ? 0 : stats.writes / stats.groups,
    rotations: stats.rotations,
    memtable: {
      regions: stats.regions,
      entries: stats.entries,
      indexBytes: stats.memtableIndexBytes,
      bytesPerEntry: stats.indexBytesPerEntry,
    },
    gc: {
      purgeCalls: gc.calls,
      purgeMillis: gc.millis,
      filesRemoved: gc.filesRemoved,
      filesRecycled: gc.filesRecycled,
      bytesRewritten: gc.bytesRewritten,
      compactionRequests: gc.compactionRequests,
      files: disk.files,
      diskBytes: disk.bytes,
      compactedEntries: counters.compacted,
      spaceAmplification: stats.gc.spaceAmplification,
      writeAmplification: stats.gc.writeAmplification,
    },
    heapUsedBytes: memory.heapUsed,
    rssBytes: memory.rss,
  };
}

/** The human-readable report: a config line, then one metric per row. */
export function formatStressReport(r: StressResult): string {
  const c = r.config;
  const lat = (micros: number): string => formatDuration(micros * 1000);
  const header =
    `raftlog stress on ${c.description}${c.encrypt ? ' (encrypted)' : ''}: ${c.regions} regions, ${c.writers} writers, ` +
    `${c.regionsPerBatch} region(s) x ${c.batchEntries} entries x ${formatBytes(c.entrySize)} per batch, ` +
    `${c.sync ? 'sync' : 'no sync'}, keep ${c.keep}, ${r.elapsedSeconds.toFixed(1)} s${r.interrupted ? ' (interrupted)' : ''}\n\n`;
  const rows: (string | number)[][] = [
    ['metric', 'value'],
    ['ops/s', Math.round(r.opsPerSecond)],
    ['entries/s', Math.round(r.entriesPerSecond)],
    ['MB/s written', r.mbPerSecond.toFixed(1)],
    ['latency p50', lat(r.latencyMicros.p50)],
    ['latency p90', lat(r.latencyMicros.p90)],
    ['latency p99', lat(r.latencyMicros.p99)],
    ['latency p99.9', lat(r.latencyMicros.p999)],
    ['latency max', lat(r.latencyMicros.max)],
    ['ops', r.ops],
    ['entries', r.entries],
    ['groups', r.groups],
    ['syncs', r.syncs],
    ['avg group size', r.averageGroupSize.toFixed(2)],
    ['bytes written', formatBytes(r.bytesWritten)],
    ['entry data', formatBytes(r.payloadBytes)],
    ['file rotations', r.rotations],
    ['memtable entries', r.memtable.entries],
    ['memtable bytes/entry', r.memtable.bytesPerEntry.toFixed(2)],
    ['compacted entries', r.gc.compactedEntries],
    ['gc: purges', `${r.gc.purgeCalls} (${r.gc.purgeMillis.toFixed(0)} ms)`],
    ['gc: files removed', r.gc.filesRemoved],
    ['gc: files recycled', r.gc.filesRecycled],
    ['gc: bytes rewritten', formatBytes(r.gc.bytesRewritten)],
    ['gc: compaction requests', r.gc.compactionRequests],
    ['gc: log files', r.gc.files],
    ['gc: bytes on disk', formatBytes(r.gc.diskBytes)],
    ['gc: space amplification', r.gc.spaceAmplification.toFixed(2)],
    ['gc: write amplification', r.gc.writeAmplification.toFixed(2)],
    ['heap used', formatBytes(r.heapUsedBytes)],
  ];
  return header + table(rows);
}
