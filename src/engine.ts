/**
 * The public engine: many Raft groups sharing one append-only log stream.
 *
 * Write path: seal the batch (encode once, checksum, maybe lz4), validate
 * the sealed record's items against the engine's state (including batches
 * queued ahead of it), so what is checked is exactly what will be written,
 * then queue it for group commit. The group's leader writes every record of
 * the group with one vectored write carrying one barrier if any member asked
 * for sync, then applies the records to the memtables in order.
 *
 * Failure model: an error on the write path (I/O, no space, failed barrier)
 * fail-stops the engine. Reads keep working; writes are refused until the
 * engine is reopened, which re-derives the truth from disk. The engine never
 * retries a barrier: after a failed fdatasync the kernel may have dropped the
 * dirty pages, and a retry would report success over lost data.
 */
import { applyBatch, keyString, type Memtables } from './apply.js';
import { EntryReader, continuesRun } from './entry-reader.js';
import { ClosedError, EngineFailedError, InvalidArgumentError, NotFoundError, RaftlogError, isRaftlogError } from './errors.js';
import { LOCK_NAME } from './file-names.js';
import type { DirectoryLock, FileSystem } from './filesystem.js';
import { ItemKind, type BatchItems } from './format/batch-codec.js';
import { RECORD_FLAG_LZ4 } from './format/layout.js';
import { LogBatch, keyBytes, type Key, type SealedRecord } from './log-batch.js';
import { checkEngineOptions } from './engine-options.js';
import { decodeStoredMessage, fileSpanOf, scanKeys, type FileSpan } from './engine-reads.js';
import type { ReadCacheStats } from './read-cache.js';
import { describeValue, optionalBound, optionsObject, requireInteger, requireRegion, syncOption } from './validate.js';
import { newEntryLocation, type EntryLocation, type RecordLocation, type RegionMemtable } from './memtable.js';
import type { MessageType, StoredEntry } from './protos.js';
import { RecoveryMode, type RecoveryReport } from './recovery/recovery.js';
import { RegionTracker, type ConsistencyReport } from './consistency-check.js';
import { EngineEvents, type EngineEventName, type EngineListener } from './engine-events.js';
import { SCRUB_DEFAULTS, Scrubber, type ScrubOptions } from './scrub.js';
import { verifyPass, type VerifyPassOptions, type VerifyReport } from './verify.js';
import { GarbageCollector, type GcStats, type PurgeResult } from './gc.js';
import { SPACE_BOUND } from './purge.js';
import { FileSet } from './file-set/file-set.js';
import { IndexCheckpointer, type IndexCheckpointerStats } from './file-set/index-checkpointer.js';
import { MetricsRecorder, type EngineMetrics } from './metrics.js';
import { WriteQueue, type QueuedWrite } from './write-queue.js';

export interface EngineOptions {
  /** Where the log lives. The engine does all its I/O through it. */
  fs: FileSystem;
  /** Files rotate once they reach this size. Default 128 MiB. */
  targetFileSize?: number;
  /**
   * Payloads larger than this are lz4-compressed when that makes them
   * smaller. Default 4 KiB: a typical Raft append (4 × 1 KiB entries and the
   * hard state) is compressed, as LevelDB's Snappy would.
   */
  compressionThreshold?: number;
  /** How recovery treats damaged records. Default TolerateTailCorruption. */
  recoveryMode?: RecoveryMode;
  /** The active file is preallocated this far ahead of the write offset. Default 8 MiB; 0 disables. */
  preallocateBytes?: number;
  /**
   * Seed for the per-file salts. Leave unset in production (salts come from
   * the OS random source); tests set it so runs replay byte for byte.
   */
  seed?: number;
  /** `purgeExpiredFiles()` rewrites old leftovers once the log holds more than this. Default 8 × targetFileSize. */
  purgeThreshold?: number;
  /** Regions with at most this many entries in old files are rewritten by GC; more, and GC asks for compaction. Default 1024. */
  rewriteMaxEntries?: number;
  /** A region asked to compact this many purges in a row is rewritten by GC anyway. Default 3. */
  forceRewriteAfter?: number;
  /**
   * After a purge the log's files hold at most this many bytes per live byte,
   * plus one target file and the preallocation (recycled files and the active
   * file's unwritten tail count against those): GC copies the oldest files'
   * live data as far as needed. Default 1.3; 0 disables.
   */
  maxSpaceAmplification?: number;
  /**
   * Purged files kept (renamed) for reuse by later files instead of removed.
   * They count as disk space while they wait. Default 1; 0 disables recycling.
   */
  recycleFiles?: number;
  /** Files of zeros written at open into the recycle pool, so appends overwrite written blocks from the start. Default 0. */
  prefillFiles?: number;
  /**
   * A second FileSystem for when `fs` is full: on NO_SPACE while reserving
   * space, new files go here and the engine keeps writing; reads use both.
   * New files return to `fs` at the next rotation once it has room.
   */
  spillFs?: FileSystem;
  /**
   * Byte budget of the cache of decompressed records that reads of
   * compressed entries go through (least recently used out first). A record
   * larger than the budget is read without being cached. Default 64 MiB; 0
   * disables the cache.
   */
  readCacheBytes?: number;
  /**
   * Write an index checkpoint (the memtables) at a clean close and every
   * `indexCheckpointInterval` bytes written, and at open load the newest one
   * that covers a prefix of the log and replay only the records after it
   * (README, recovery: what open then verifies). Default true; false always
   * replays every record (an existing checkpoint is invalidated).
   */
  indexCheckpoint?: boolean;
  /**
   * Bytes appended between periodic index checkpoints (at least 4 × the last
   * checkpoint's size, so they add at most a quarter to the bytes written),
   * each taken at the first synced write group after it. Bounds what an open
   * after a crash replays. Default 64 MiB; 0: only at a clean close.
   */
  indexCheckpointInterval?: number;
  /**
   * A background scrub: every `intervalMs`, a pass like `verify()` at most
   * `bytesPerSecond`, stepping aside for queued writes. Damage shows in
   * `metrics()` (scrubPasses, scrubBytes, corruptionsFound) and as a
   * 'corruption' event. Off unless given; `{}` takes the defaults (an hour, 4 MiB/s).
   */
  scrub?: ScrubOptions;
  /**
   * Worker threads that verify and decode the log while the main thread
   * applies it in order, when open replays an append file of 16 MiB or more
   * (no index checkpoint, or after a crash); both give the same state.
   * Default 0: replay on the main thread alone, because on a shared 2-core
   * machine workers measured slower (their start-up and the hand-offs cost
   * more than the checksums they take over; `npm run bench:replay`).
   */
  recoveryThreads?: number;
}

export interface WriteOptions {
  /** Resolve only once the batch, and every batch acknowledged before it, is durable. A boolean; absent means false. */
  sync?: boolean;
}

export interface ScanOptions {
  /** Inclusive lower bound. */
  start?: Key;
  /** Exclusive upper bound. */
  end?: Key;
  /** At most this many pairs (a safe integer ≥ 0, or Infinity). Default no limit. */
  limit?: number;
  /** Descending key order: the `limit` pairs are the last ones of the range. Default false. */
  reverse?: boolean;
}

export interface KeyValuePair {
  key: Uint8Array;
  value: Uint8Array;
}

export interface EngineStats {
  regions: number;
  entries: number;
  /** Bytes held by the memtables' typed-array index columns (capacity). */
  memtableIndexBytes: number;
  /** memtableIndexBytes / entries. */
  indexBytesPerEntry: number;
  keys: number;
  files: number;
  activeFileSeq: number;
  activeFileOffset: number;
  bytesWritten: number;
  bytesRead: number;
  writes: number;
  groups: number;
  syncs: number;
  rotations: number;
  failed: boolean;
  recovery: RecoveryReport | undefined;
  /** The decompressed-record cache of reads (see `readCacheBytes`). */
  readCache: ReadCacheStats;
  /** Periodic index checkpoints (see `indexCheckpointInterval`). */
  indexCheckpoints: IndexCheckpointerStats;
  /** Space accounting and GC (see `purgeExpiredFiles`). */
  gc: GcStats & {
    /** (bytes written + bytes GC rewrote) / bytes written. */
    writeAmplification: number;
    lastPurge: PurgeResult | undefined;
    /** New files currently go to `spillFs`. */
    spilling: boolean;
    /** Times the engine switched to `spillFs` because `fs` was full. */
    spills: number;
  };
}

type State = 'new' | 'opening' | 'open' | 'closing' | 'closed';

interface ProjectedRegion {
  first: number | undefined;
  last: number | undefined;
}

/** Longest stretch a verification pass keeps the event loop before it yields, ms. */
const PASS_SLICE_MS = 2;

/** Regions of one batch #validate finds by scanning its columns; past this many, by a Map. */
const SCAN_REGIONS = 8;

/** #validate's reused columns: region, and its first and last index as the batch leaves them (NaN: none). */
class RegionScratch {
  regions: Float64Array = new Float64Array(8);
  first: Float64Array = new Float64Array(8);
  last: Float64Array = new Float64Array(8);
  /** region → column, for batches past SCAN_REGIONS regions; empty between batches. */
  readonly slots = new Map<number, number>();

  grow(): void {
    const size = this.regions.length * 2;
    const widen = (from: Float64Array): Float64Array => {
      const to = new Float64Array(size);
      to.set(from);
      return to;
    };
    this.regions = widen(this.regions);
    this.first = widen(this.first);
    this.last = widen(this.last);
  }
}

/** Reads of one fetch in flight at once: enough to cover a Raft read of the last few appends, bounded for huge ranges. */
const FETCH_PARALLEL_RUNS = 16;

const DEFAULTS = {
  targetFileSize: 128 << 20,
  compressionThreshold: 4 << 10,
  recoveryMode: RecoveryMode.TolerateTailCorruption,
  preallocateBytes: 8 << 20,
  rewriteMaxEntries: 1024,
  forceRewriteAfter: 3,
  maxSpaceAmplification: SPACE_BOUND,
  recycleFiles: 1,
  prefillFiles: 0,
  readCacheBytes: 64 << 20,
  indexCheckpoint: true,
  indexCheckpointInterval: 64 << 20,
  recoveryThreads: 0,
};

export class Engine implements AsyncDisposable {
  readonly #options: Required<Omit<EngineOptions, 'fs' | 'seed' | 'spillFs' | 'scrub'>>;
  /** The log's files: the only owner of handles, the writer, the manifest. */
  readonly #files: FileSet;
  readonly #gc: GarbageCollector;
  readonly #checkpointer: IndexCheckpointer;
  #lastPurge: PurgeResult | undefined;
  readonly #nextSalt: () => number;
  readonly #memtables: Memtables = new Map();
  readonly #reader: EntryReader;
  readonly #metrics = new MetricsRecorder();
  readonly #queue = new WriteQueue(
    (group) => this.#commit(group),
    (size) => this.#metrics.groupSize.observe(size),
  );
  /** Entry ranges as they will be once queued batches apply; validates writes made before earlier ones land. */
  readonly #projected = new Map<number, ProjectedRegion>();
  readonly #validateScratch = new RegionScratch();
  readonly #location = newEntryLocation();
  #state: State = 'new';
  #failure: RaftlogError | undefined;
  #lock: DirectoryLock | undefined;
  #recovery: RecoveryReport | undefined;
  #writes = 0;
  /** The close in progress or done; every close() call returns it. */
  #closing: Promise<void> | undefined;
  readonly #events = new EngineEvents();
  readonly #scrub: Scrubber | undefined;
  /** Verification passes in flight: close waits them out (they stop at their next step). */
  readonly #passes = new Set<Promise<unknown>>();
  /** Problems already reported (counted, emitted), by file, offset and kind: a damaged record is news once. */
  readonly #reported = new Set<string>();

  constructor(options: EngineOptions) {
    checkEngineOptions(options);
    this.#options = {
      targetFileSize: options.targetFileSize ?? DEFAULTS.targetFileSize,
      compressionThreshold: options.compressionThreshold ?? DEFAULTS.compressionThreshold,
      recoveryMode: options.recoveryMode ?? DEFAULTS.recoveryMode,
      preallocateBytes: options.preallocateBytes ?? DEFAULTS.preallocateBytes,
      purgeThreshold: options.purgeThreshold ?? 8 * (options.targetFileSize ?? DEFAULTS.targetFileSize),
      rewriteMaxEntries: options.rewriteMaxEntries ?? DEFAULTS.rewriteMaxEntries,
      forceRewriteAfter: options.forceRewriteAfter ?? DEFAULTS.forceRewriteAfter,
      maxSpaceAmplification: options.maxSpaceAmplification ?? DEFAULTS.maxSpaceAmplification,
      recycleFiles: options.recycleFiles ?? DEFAULTS.recycleFiles,
      prefillFiles: options.prefillFiles ?? DEFAULTS.prefillFiles,
      readCacheBytes: options.readCacheBytes ?? DEFAULTS.readCacheBytes,
      indexCheckpoint: options.indexCheckpoint ?? DEFAULTS.indexCheckpoint,
      indexCheckpointInterval: options.indexCheckpointInterval ?? DEFAULTS.indexCheckpointInterval,
      recoveryThreads: options.recoveryThreads ?? DEFAULTS.recoveryThreads,
    };
    this.#nextSalt = saltSource(options.seed);
    this.#files = new FileSet({
      fs: options.fs,
      spillFs: options.spillFs,
      targetFileSize: this.#options.targetFileSize,
      preallocateBytes: this.#options.preallocateBytes,
      recycleFiles: this.#options.recycleFiles,
      recoveryThreads: this.#options.recoveryThreads,
      nextSalt: this.#nextSalt,
      onBarrier: (micros) => this.#metrics.syncLatency.observe(micros),
    });
    this.#checkpointer = new IndexCheckpointer({
      files: this.#files,
      memtables: this.#memtables,
      intervalBytes: this.#options.indexCheckpoint ? this.#options.indexCheckpointInterval : 0,
    });
    this.#reader = new EntryReader((id) => this.#files.handle(id));
    this.#reader.cache.setBudget(this.#options.readCacheBytes);
    this.#gc = new GarbageCollector({
      files: this.#files,
      options: this.#options,
      memtables: this.#memtables,
      reader: this.#reader,
      barrier: async (sync) => {
        await this.#queue.submit(undefined, sync);
      },
      exclusive: (swap) => this.#swapExclusive(swap),
    });
    if (options.scrub !== undefined) {
      this.#scrub = new Scrubber(
        {
          intervalMs: options.scrub.intervalMs ?? SCRUB_DEFAULTS.intervalMs,
          bytesPerSecond: options.scrub.bytesPerSecond ?? SCRUB_DEFAULTS.bytesPerSecond,
        },
        {
          pass: async (pace) => {
            this.#announce('scrub', await this.#verifyPass({ pace, memtables: () => this.#memtables.values() }));
          },
          busy: () => this.#queue.hasPending,
          onBytes: (bytes) => (this.#metrics.scrubBytes += bytes),
          onPassEnd: (error) => {
            // A pass that failed (an I/O error, the engine closing) is not a pass; the next one tries again.
            if (error === undefined) this.#metrics.scrubPasses++;
          },
        },
      );
    }
  }

  /** Takes the directory lock and recovers the log. */
  async open(): Promise<void> {
    if (this.#state !== 'new') throw new InvalidArgumentError(`open() called on an engine that is ${this.#state}`);
    this.#state = 'opening';
    try {
      await this.#files.fs.init();
      this.#lock = await this.#files.fs.lock(LOCK_NAME);
      const { log } = await this.#files.open(this.#options.recoveryMode, this.#memtables, this.#options.indexCheckpoint);
      this.#recovery = log.report;
      await this.#files.prefill(this.#options.prefillFiles);
      this.#state = 'open';
      this.#scrub?.start();
    } catch (error) {
      await this.#releaseAll();
      this.#state = 'closed';
      throw error;
    }
  }

  /** What recovery found and did (cut tails, skipped records). */
  get recoveryReport(): RecoveryReport | undefined {
    return this.#recovery;
  }

  /**
   * Writes a batch atomically and resolves to the bytes it took in the log
   * (its record: header, payload, padding; 0 for an empty batch). With
   * `{ sync: true }` it resolves once the batch and every batch acknowledged
   * before it are durable. Bad input is rejected before anything is written.
   * The write owns what it writes from this call on: the batch may be
   * cleared, added to or written again at once (see LogBatch.clear).
   */
  async write(batch: LogBatch, options?: WriteOptions): Promise<number> {
    return (await this.#submit(batch, syncOption(options, 'write'))).bytes;
  }

  /** A durability barrier for everything acknowledged so far. */
  async sync(): Promise<void> {
    this.#assertWritable();
    await this.#queue.submit(undefined, true);
  }

  /** Drops the region's entries below `index` (afterwards `firstIndex(region) === index`). Returns how many were dropped. */
  async compactTo(region: number, index: number, options?: WriteOptions): Promise<number> {
    const sync = syncOption(options, 'compactTo');
    const batch = new LogBatch();
    batch.compactTo(region, index);
    return (await this.#submit(batch, sync)).compacted;
  }

  /** Removes the region's entries and keys. */
  async clean(region: number, options?: WriteOptions): Promise<void> {
    const sync = syncOption(options, 'clean');
    const batch = new LogBatch();
    batch.clean(region);
    await this.#submit(batch, sync);
  }

  firstIndex(region: number): number | undefined {
    this.#assertReadable();
    return this.#memtables.get(requireRegion(region))?.firstIndex();
  }

  lastIndex(region: number): number | undefined {
    this.#assertReadable();
    return this.#memtables.get(requireRegion(region))?.lastIndex();
  }

  /** The entry at `index`, or undefined when the region does not hold it. */
  async getEntry(region: number, index: number): Promise<StoredEntry | undefined> {
    this.#assertReadable();
    const memtable = this.#memtables.get(requireRegion(region));
    requireInteger(index, 'index');
    if (memtable === undefined || !memtable.locate(index, this.#location)) return undefined;
    const out: StoredEntry[] = [];
    // Taken before any await, so the file the location names stays readable.
    const read = this.#files.beginRead();
    try {
      await this.#reader.readRun([{ ...this.#location }], out);
    } finally {
      this.#files.endRead(read);
    }
    return out[0];
  }

  /**
   * Entries `[begin, end)` in order, stopping once their data adds up to
   * `maxBytes` (at least one entry is always returned). Fails with NOT_FOUND
   * when part of the range is compacted or not yet written.
   */
  async fetchEntriesTo(region: number, begin: number, end: number, maxBytes?: number): Promise<StoredEntry[]> {
    this.#assertReadable();
    requireRegion(region);
    requireInteger(begin, 'begin');
    requireInteger(end, 'end');
    maxBytes = optionalBound(maxBytes, 'maxBytes', Number.POSITIVE_INFINITY, 1);
    if (end < begin) throw new InvalidArgumentError(`fetchEntriesTo: end ${end} is before begin ${begin}`);
    if (begin === end) return [];
    const memtable = this.#memtables.get(region);
    const first = memtable?.firstIndex();
    const last = memtable?.lastIndex();
    if (memtable === undefined || first === undefined || last === undefined || begin < first || end > last + 1) {
      throw new NotFoundError(
        `region ${region} holds ${first === undefined ? 'no entries' : `entries ${first}..${last}`}, not all of [${begin}, ${end})`,
      );
    }
    const out: StoredEntry[] = [];
    // Every file the plan below names stays open and on disk until this read
    // ends, even if a purge retires it meanwhile.
    const read = this.#files.beginRead();
    try {
      await this.#fetchRuns(memtable, begin, end, maxBytes, out);
    } finally {
      this.#files.endRead(read);
    }
    return out;
  }

  async #fetchRuns(memtable: RegionMemtable, begin: number, end: number, maxBytes: number, out: StoredEntry[]): Promise<void> {
    const runs: EntryLocation[][] = [];
    let planned = 0;
    let bytes = 0;
    let index = begin;
    while (index < end && (planned === 0 || bytes < maxBytes)) {
      const run: EntryLocation[] = [];
      while (index < end) {
        const location = newEntryLocation();
        memtable.locate(index, location);
        if (run.length > 0 && !continuesRun(run[run.length - 1]!, location)) break;
        if (planned + run.length > 0 && bytes + location.entryLength > maxBytes) {
          index = end;
          break;
        }
        run.push(location);
        bytes += location.entryLength;
        index++;
      }
      if (run.length === 0) break;
      runs.push(run);
      planned += run.length;
    }
    // Runs are independent reads: issue them together, so a range spread
    // over several records costs one round trip to the backend, not one per
    // record (Raft reads the last few appends of a region, each its own record).
    for (let i = 0; i < runs.length; i += FETCH_PARALLEL_RUNS) {
      const batch = runs.slice(i, i + FETCH_PARALLEL_RUNS).map((run) => {
        const part: StoredEntry[] = [];
        return this.#reader.readRun(run, part).then(() => part);
      });
      // Settle all before failing: no read may outlive the GC pin released by the caller.
      const settled = await Promise.allSettled(batch);
      for (const result of settled) {
        if (result.status === 'rejected') throw result.reason;
        for (const entry of result.value) out.push(entry);
      }
    }
  }

  /**
   * Garbage collection, in collaboration with the caller. Removes (or keeps
   * for reuse) append files nothing references; when the log is above
   * `purgeThreshold`, rewrites small live leftovers of old files (regions with
   * few old entries, and every key) into a checkpoint so those files can go
   * too. Returns the regions whose old entries block GC: compact them. A
   * region that stays on the list `forceRewriteAfter` times is rewritten
   * anyway. Crash-safe at every step. Writes keep flowing while it runs: it
   * holds the write queue only for a short in-memory swap (src/gc.ts).
   */
  async purgeExpiredFiles(): Promise<number[]> {
    this.#assertWritable();
    const began = performance.now();
    let result: PurgeResult;
    try {
      result = await this.#gc.purge();
    } catch (error) {
      // Every step of a purge leaves a state recovery accepts, and the
      // memtables only move to a checkpoint once the manifest lists it, so a
      // failed purge leaves the engine usable; a failed barrier (of the log
      // or of the manifest) still fail-stops, as anywhere else.
      if (isRaftlogError(error, 'FSYNC_FAILED')) this.#failure ??= error;
      throw error;
    }
    this.#metrics.filesRemoved += result.filesRemoved;
    this.#metrics.filesRecycled += result.filesRecycled;
    this.#metrics.purgeLatency.observe((performance.now() - began) * 1000);
    this.#lastPurge = result;
    return result.regionsToCompact;
  }

  /** A purge's swap: the write queue is held only for this (no I/O), and the hold is recorded. */
  async #swapExclusive(swap: () => void): Promise<void> {
    await this.#queue.runExclusive(async () => {
      if (this.#failure !== undefined) throw this.#refusal();
      const began = performance.now();
      swap();
      this.#metrics.purgeStall.observe((performance.now() - began) * 1000);
      return 0;
    });
  }

  /**
   * Reads back and verifies every record of every file the log uses, and
   * checks that every entry the memtables index lies in a record that
   * verified (src/verify.ts). Open does not do this when it loads the index
   * checkpoint, and reads check only what they read. Writes go on while it
   * reads: it verifies the log as it was when it started (between two write
   * groups), and a purge meanwhile removes no file under it. Damage is in the
   * report, and each problem not reported before is counted in `metrics()`
   * (corruptionsFound) and emitted as a 'corruption' event.
   */
  async verify(): Promise<VerifyReport> {
    const report = await this.#verifyPass({ memtables: () => this.#memtables.values() });
    this.#announce('verify', report);
    return report;
  }

  /**
   * Reads and verifies every record of every log file and reports, per
   * region, the last index whose entries are intact (see
   * src/consistency-check.ts): the records of the same pass as `verify()`,
   * followed region by region. Like it, it runs beside writes and purges.
   */
  async consistencyCheck(): Promise<ConsistencyReport> {
    const tracker = new RegionTracker();
    const report = await this.#verifyPass({ visit: (record) => tracker.visit(record.items) });
    this.#announce('verify', report);
    return {
      regions: tracker.regions(),
      problems: report.problems.map((p) => ({
        file: p.file,
        offset: p.offset,
        detail: p.detail,
        action: 'skipped' as const,
        bytesDropped: p.bytes,
      })),
      records: report.records,
      bytesScanned: report.bytesVerified,
    };
  }

  /** Listens for the engine's events: 'corruption' (see `verify()` and the `scrub` option). */
  on<K extends EngineEventName>(event: K, listener: EngineListener<K>): void {
    this.#events.on(event, listener);
  }

  off<K extends EngineEventName>(event: K, listener: EngineListener<K>): void {
    this.#events.off(event, listener);
  }

  /**
   * One verification pass over the files the log uses between two write
   * groups, pinned for its length; ends with CLOSED when the engine closes under it.
   */
  async #verifyPass(options: Omit<VerifyPassOptions, 'pace'> & { pace?: (bytes: number) => Promise<void> }): Promise<VerifyReport> {
    this.#assertReadable();
    let read: number | undefined;
    let targets: ReturnType<FileSet['verifyTargets']> = [];
    await this.#queue.runExclusive(async () => {
      // Queued behind writes that a close then waited out: the files are about to go.
      if (this.#state !== 'open') throw new ClosedError('the engine is closed');
      read = this.#files.beginRead();
      targets = this.#files.verifyTargets();
      return 0;
    });
    let yielded = performance.now();
    const pace = async (bytes: number): Promise<void> => {
      if (this.#state !== 'open') throw new ClosedError('the engine closed during a verification pass');
      // CRC, lz4 and decoding run on this thread: give the event loop (write
      // completions, new writes) a turn every few milliseconds of it, or a
      // window of compressed records holds writes for tens of them.
      if (performance.now() - yielded >= PASS_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        yielded = performance.now();
      }
      await options.pace?.(bytes);
    };
    const pass = verifyPass(targets, { ...options, pace }).finally(() => this.#files.endRead(read!));
    const tracked = pass.catch(() => undefined);
    this.#passes.add(tracked);
    try {
      return await pass;
    } finally {
      this.#passes.delete(tracked);
    }
  }

  /** Counts and emits each problem of `report` not reported before. */
  #announce(source: 'verify' | 'scrub', report: VerifyReport): void {
    for (const problem of report.problems) {
      const key = `${problem.kind} ${problem.file} ${problem.offset} ${problem.region ?? ''} ${problem.entries?.first ?? ''}`;
      if (this.#reported.has(key)) continue;
      this.#reported.add(key);
      this.#metrics.corruptionsFound++;
      this.#events.emit('corruption', { source, problem });
    }
  }

  /** The value under `key`, or undefined. */
  get(region: number, key: Key): Uint8Array | undefined {
    this.#assertReadable();
    const memtable = this.#memtables.get(requireRegion(region));
    const keyText = keyString(keyBytes(key));
    const value = memtable?.kv.get(keyText)?.value;
    return value?.slice();
  }

  /**
   * Decodes the value under `key` with a codec: a typed one such as `HardState`
   * (plain numbers, see src/raft/messages.ts), or a protobufjs type. A value
   * that does not decode as `type` (its checksum passed, so the bytes are what
   * was written: it was stored with another type) is INVALID_ARGUMENT.
   */
  getMessage<T>(region: number, key: Key, type: MessageType<T>): T | undefined {
    return decodeStoredMessage(this.get(region, key), type, region);
  }

  /**
   * Key-value pairs of a region in key byte order (descending with
   * `reverse`), within `[start, end)`, at most `limit` of them.
   */
  scan(region: number, options?: ScanOptions): KeyValuePair[] {
    this.#assertReadable();
    const memtable = this.#memtables.get(requireRegion(region));
    const pairs = scanKeys(memtable?.kv, optionsObject(options, 'scan options'));
    return pairs.map((k) => ({ key: Uint8Array.from(Buffer.from(k, 'latin1')), value: memtable!.kv.get(k)!.value.slice() }));
  }

  /** True when no region holds entries or keys (raft-engine's `is_empty`). */
  isEmpty(): boolean {
    this.#assertReadable();
    return this.#memtables.size === 0;
  }

  /**
   * Bytes the log's files take on disk (written or preallocated): append
   * files, the GC rewrite file, purged files kept for reuse, and the MANIFEST.
   */
  getUsedSize(): number {
    this.#assertReadable();
    const files = this.#files.stats();
    return files.appendFileBytes + files.rewriteFileBytes + files.recycledFileBytes + files.manifestBytes;
  }

  /**
   * The first and last log files holding the region's entries, each as
   * `{ queue, seq }` (a GC rewrite file, queue 'rewrite', holds the oldest
   * entries of the regions it rewrote), or undefined when it holds none.
   */
  fileSpan(region: number): FileSpan | undefined {
    this.#assertReadable();
    return fileSpanOf(this.#memtables.get(requireRegion(region)));
  }

  /** Ids of the regions that hold entries or keys, ascending. */
  raftGroups(): number[] {
    this.#assertReadable();
    return [...this.#memtables.keys()].sort((a, b) => a - b);
  }

  stats(): EngineStats {
    let entries = 0;
    let keys = 0;
    let memtableIndexBytes = 0;
    for (const memtable of this.#memtables.values()) {
      entries += memtable.entryCount;
      keys += memtable.kv.size;
      memtableIndexBytes += memtable.indexBytes();
    }
    const files = this.#files;
    return {
      regions: this.#memtables.size,
      entries,
      memtableIndexBytes,
      indexBytesPerEntry: entries === 0 ? 0 : memtableIndexBytes / entries,
      keys,
      files: files.openFiles,
      activeFileSeq: files.hasWriter ? files.activeSeq : 0,
      activeFileOffset: files.activeOffset,
      bytesWritten: files.bytesWritten,
      bytesRead: this.#reader.bytesRead,
      writes: this.#writes,
      groups: this.#queue.groups,
      syncs: files.syncs,
      rotations: files.rotations,
      failed: this.#failure !== undefined,
      recovery: this.#recovery,
      readCache: this.#reader.cache.stats(),
      indexCheckpoints: this.#checkpointer.stats(),
      gc: {
        ...this.#gc.stats(),
        writeAmplification: files.bytesWritten === 0 ? 1 : (files.bytesWritten + this.#gc.rewriteBytes) / files.bytesWritten,
        lastPurge: this.#lastPurge,
        spilling: files.spilling,
        spills: files.spills,
      },
    };
  }

  /** Counters, gauges and latency histograms (see src/metrics.ts; `raftlog/prometheus` exports them). */
  metrics(): EngineMetrics {
    const stats = this.stats();
    const m = this.#metrics;
    return {
      counters: {
        writes: stats.writes,
        writeErrors: m.writeErrors,
        bytesWritten: stats.bytesWritten,
        groups: stats.groups,
        syncs: stats.syncs,
        rotations: stats.rotations,
        purges: stats.gc.purges,
        filesRemoved: m.filesRemoved,
        filesRecycled: m.filesRecycled,
        bytesRewritten: stats.gc.rewriteBytes,
        entriesCompacted: m.entriesCompacted,
        scrubPasses: m.scrubPasses,
        scrubBytes: m.scrubBytes,
        corruptionsFound: m.corruptionsFound,
      },
      gauges: {
        regions: stats.regions,
        entries: stats.entries,
        memtableIndexBytes: stats.memtableIndexBytes,
        readCacheBytes: stats.readCache.bytes,
        liveBytes: stats.gc.liveBytes,
        logFiles: stats.gc.appendFiles,
        logFileBytes: stats.gc.appendFileBytes + stats.gc.rewriteFileBytes,
        failed: stats.failed ? 1 : 0,
      },
      histograms: {
        writeLatencyMicros: m.writeLatency.snapshot(),
        syncLatencyMicros: m.syncLatency.snapshot(),
        groupSize: m.groupSize.snapshot(),
        purgeLatencyMicros: m.purgeLatency.snapshot(),
        purgeStallMicros: m.purgeStall.snapshot(),
      },
    };
  }

  /**
   * Waits for queued writes, makes what they wrote durable (unless the engine
   * has failed), then releases files and the directory lock.
   */
  close(): Promise<void> {
    // Every call gets the one close in progress (or done): a second close()
    // resolving before the first released the lock made a reopen fail LOCKED.
    if (this.#closing !== undefined) return this.#closing;
    // An engine whose open() failed has released everything already.
    if (this.#state === 'closed') return Promise.resolve();
    if (this.#state !== 'open') return Promise.reject(new InvalidArgumentError(`close() called on an engine that is ${this.#state}`));
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    try {
      // Verification passes stop at their next step ('closing' ends them).
      await this.#scrub?.stop();
      await Promise.all(this.#passes);
      await this.#gc.idle();
      await this.#checkpointer.stop();
      await this.#queue.idle();
      if (this.#failure === undefined) {
        await this.#files.seal().catch(async (error: unknown) => {
          // As on the write path: the failed barrier may have dropped the pages
          // a reopen without a reboot would otherwise replay.
          await this.#files.discardUnsynced();
          throw error;
        });
        // On a full disk the space just stays held (as the seal's proof and the index checkpoint may be skipped there): nothing is lost.
        await this.#files.releaseSpace(this.#options.prefillFiles).catch((error: unknown) => {
          if (!isRaftlogError(error, 'NO_SPACE')) throw error;
        });
        // Only after the seal is durable: the checkpoint covers the sealed log.
        // It is an optimization, so a full disk costs the next open a full replay, not the close.
        if (this.#options.indexCheckpoint) {
          await this.#files.writeIndexCheckpoint(this.#memtables).catch((error: unknown) => {
            if (!isRaftlogError(error, 'NO_SPACE')) throw error;
          });
        }
      }
    } finally {
      await this.#releaseAll();
      this.#state = 'closed';
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #submit(batch: LogBatch, sync: boolean): Promise<{ bytes: number; compacted: number }> {
    if (!(batch instanceof LogBatch)) throw new InvalidArgumentError(`write() needs a LogBatch as batch, got ${describeValue(batch)}`);
    this.#assertWritable();
    if (batch.isEmpty()) {
      if (sync) await this.#queue.submit(undefined, true);
      return { bytes: 0, compacted: 0 };
    }
    const record = batch.seal(this.#options.compressionThreshold);
    try {
      this.#validate(record.items);
    } catch (error) {
      record.settled = true;
      throw error;
    }
    this.#writes++;
    const began = performance.now();
    try {
      const compacted = await this.#queue.submit(record, sync);
      this.#metrics.entriesCompacted += compacted;
      return { bytes: record.bytes.length, compacted };
    } catch (error) {
      this.#metrics.writeErrors++;
      throw error;
    } finally {
      // The write is done with the record's memory: the batch may reuse it.
      record.settled = true;
      this.#metrics.writeLatency.observe((performance.now() - began) * 1000);
    }
  }

  /**
   * Checks a batch against the region state it will meet: the memtables plus
   * every batch queued ahead of it. Throws before anything is queued.
   */
  #validate(batch: BatchItems): void {
    // Per-region state as this batch leaves it, in reused columns (NaN: no
    // entries), so validating a write allocates nothing; committed to
    // #projected only once every item passed, so a refused batch leaves no
    // trace. A typical batch touches a region or two, found by a linear
    // scan; past SCAN_REGIONS the slots are looked up in a reused Map, so a
    // batch across thousands of regions stays linear.
    const scratch = this.#validateScratch;
    const slots = scratch.slots;
    let regions = 0;
    for (const item of batch.items) {
      let at = 0;
      if (regions <= SCAN_REGIONS) {
        while (at < regions && scratch.regions[at] !== item.region) at++;
      } else {
        at = slots.get(item.region) ?? regions;
      }
      if (at === regions) {
        if (regions === scratch.regions.length) scratch.grow();
        if (regions === SCAN_REGIONS) {
          // Cleared here, not only after a batch: a refused batch throws before the end.
          slots.clear();
          for (let i = 0; i < regions; i++) slots.set(scratch.regions[i]!, i);
        }
        if (regions >= SCAN_REGIONS) slots.set(item.region, at);
        const projected = this.#projected.get(item.region);
        const memtable = projected === undefined ? this.#memtables.get(item.region) : undefined;
        scratch.regions[at] = item.region;
        scratch.first[at] = (projected !== undefined ? projected.first : memtable?.firstIndex()) ?? Number.NaN;
        scratch.last[at] = (projected !== undefined ? projected.last : memtable?.lastIndex()) ?? Number.NaN;
        regions++;
      }
      const first = scratch.first[at]!;
      const last = scratch.last[at]!;
      if (item.kind === ItemKind.Entries) {
        if (!Number.isNaN(last) && item.index > last + 1) {
          throw new InvalidArgumentError(`region ${item.region}: entries starting at ${item.index} leave a gap after last index ${last}`);
        }
        if (Number.isNaN(first) || Number.isNaN(last) || item.index < first) scratch.first[at] = item.index;
        scratch.last[at] = item.index + item.count - 1;
      } else if (item.kind === ItemKind.Compact) {
        if (!Number.isNaN(first) && !Number.isNaN(last) && item.index > first) {
          if (item.index > last) scratch.first[at] = scratch.last[at] = Number.NaN;
          else scratch.first[at] = item.index;
        }
      } else if (item.kind === ItemKind.Clean) {
        scratch.first[at] = scratch.last[at] = Number.NaN;
      }
    }
    if (regions > SCAN_REGIONS) slots.clear();
    for (let at = 0; at < regions; at++) {
      const first = scratch.first[at]!;
      const last = scratch.last[at]!;
      const region = scratch.regions[at]!;
      const state = this.#projected.get(region);
      if (state !== undefined) {
        state.first = Number.isNaN(first) ? undefined : first;
        state.last = Number.isNaN(last) ? undefined : last;
      } else {
        this.#projected.set(region, { first: Number.isNaN(first) ? undefined : first, last: Number.isNaN(last) ? undefined : last });
      }
    }
  }

  async #commit(group: QueuedWrite[]): Promise<void> {
    if (this.#failure !== undefined) throw this.#refusal();
    const records: SealedRecord[] = [];
    let sync = false;
    for (const member of group) {
      if (member.record !== undefined) records.push(member.record);
      sync ||= member.sync;
    }
    if (!this.#files.hasWriter && records.length === 0) return;
    try {
      // Creating a file (the first, or at rotation) includes barriers (header,
      // directory, manifest): a failure there fail-stops like any other.
      const placed = await this.#files.append(records, sync);
      let next = 0;
      for (const member of group) {
        const record = member.record;
        if (record === undefined) continue;
        const at = placed[next++]!;
        member.result = applyBatch(
          this.#memtables,
          record.items,
          record.payload,
          recordLocation(at.fileId, at.offset, record),
          'error',
        ).compacted;
      }
      this.#checkpointer.afterCommit(sync);
    } catch (error) {
      this.#failure = isRaftlogError(error) ? error : new EngineFailedError(`write path failed: ${String(error)}`, { cause: error });
      // A barrier that fails with ENOSPC drops the dirty pages just as EIO does.
      if (isRaftlogError(error, 'FSYNC_FAILED') || isRaftlogError(error, 'NO_SPACE')) await this.#files.discardUnsynced();
      throw this.#failure;
    } finally {
      if (!this.#queue.hasPending) this.#projected.clear();
    }
  }

  #refusal(): RaftlogError {
    const failure = this.#failure!;
    return new EngineFailedError(`the engine stopped accepting writes after an earlier failure (${failure.code}); reopen it`, {
      cause: failure,
    });
  }

  #assertWritable(): void {
    this.#assertReadable();
    if (this.#failure !== undefined) throw this.#refusal();
  }

  #assertReadable(): void {
    if (this.#state !== 'open') {
      throw this.#state === 'new' || this.#state === 'opening'
        ? new InvalidArgumentError('the engine is not open; call open() first')
        : new ClosedError('the engine is closed');
    }
  }

  async #releaseAll(): Promise<void> {
    await this.#files.close();
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release();
  }
}

function recordLocation(id: number, offset: number, record: SealedRecord): RecordLocation {
  return { fileId: id, recordOffset: offset, payloadLength: record.payloadLength, compressed: (record.flags & RECORD_FLAG_LZ4) !== 0 };
}

/** Per-file salts: from the OS random source, or a seeded generator for replayable tests. */
function saltSource(seed: number | undefined): () => number {
  if (seed === undefined) {
    const word = new Uint32Array(1);
    return () => {
      crypto.getRandomValues(word);
      return word[0]! || 1;
    };
  }
  let state = seed >>> 0;
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0 || 1;
  };
}
