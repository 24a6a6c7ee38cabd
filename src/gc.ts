/**
 * Garbage collection at run time: the collector. It decides (with the plans
 * of src/purge.ts) and the file set (src/file-set/) executes; it holds no
 * file handle of its own.
 *
 * A purge pass runs beside the write path; writes keep flowing while it
 * plans, copies and syncs:
 *  1. plan from the memtables, capturing where every live entry and key below
 *     the watermark is;
 *  2. when the plan needs a checkpoint, read those entries and keys and write
 *     them, with the watermark, to a new rewrite file, durable (not yet part
 *     of the log: recovery ignores a checkpoint the manifest does not list);
 *  3. a durability barrier (an ordinary queued sync): every compaction, clean
 *     and overwrite the plan saw, or that happened since, is durable before
 *     the files that hold the older state go;
 *  4. commit: the manifest's first file becomes the watermark and its
 *     checkpoint the new one (one in-place write and barrier);
 *  5. swap, with the write queue held and no I/O: point the memtables at the
 *     copies, each one only if it still points where the copy was taken from
 *     (an entry or key overwritten, compacted or cleaned meanwhile keeps its
 *     newer state), and retire the dead files;
 *  6. the file set closes and removes (or recycles) the retired files once no
 *     read that may have planned on them is in flight.
 * A crash or failure before 4 leaves the old log whole (a stray rewrite file
 * is garbage); after 4 the files below the watermark are dead whether or not
 * their removal happened.
 */
import type { Memtables } from './apply.js';
import type { EntryReader } from './entry-reader.js';
import { ItemKind } from './format/batch-codec.js';
import type { FileSet, WrittenCheckpoint } from './file-set/file-set.js';
import { LogBatch, type SealedRecord } from './log-batch.js';
import { newEntryLocation, type EntryLocation, type KeyValue } from './memtable.js';
import { planPurge, type AppendFileInfo, type PurgeOptions, type PurgePlan } from './purge.js';
import type { StoredEntry } from './protos.js';
import { continuesRun } from './entry-reader.js';

export interface GcOptions extends PurgeOptions {
  /** The log's file size and the active file's preallocation: the space bound's slack. */
  targetFileSize: number;
  preallocateBytes: number;
  /** Retired append files kept for reuse instead of removed (0 disables recycling). */
  recycleFiles: number;
}

export interface PurgeResult {
  /** Regions whose old entries keep files alive: compact them. */
  regionsToCompact: number[];
  filesRemoved: number;
  filesRecycled: number;
  bytesRewritten: number;
  watermark: number;
  /** Whether the pass copied live data to keep the log within the space bound (src/purge.ts). */
  spaceRewrite: boolean;
}

export interface GcStats {
  /** Bytes of entry data and key-value pairs the engine holds. */
  liveBytes: number;
  appendFiles: number;
  appendFileBytes: number;
  rewriteFileBytes: number;
  recycledFiles: number;
  recycledFileBytes: number;
  /** (append + rewrite file bytes) / live bytes: what the log costs on disk beyond what it holds. */
  spaceAmplification: number;
  /** Bytes written into the rewrite queue by GC. */
  rewriteBytes: number;
  purges: number;
}

export interface GcDeps {
  files: FileSet;
  options: GcOptions;
  memtables: Memtables;
  reader: EntryReader;
  /**
   * Goes through the write queue behind every write submitted so far (and
   * fails if the engine has failed); with `sync`, resolves once everything
   * applied to the memtables is durable (a queued sync).
   */
  barrier: (sync: boolean) => Promise<void>;
  /** Runs `swap` with the write queue held (the engine records how long). */
  exclusive: (swap: () => void) => Promise<void>;
}

/** Where the plan found what it copies, to compare with at the swap. */
interface Copied {
  /** Region → first copied index and each entry's location then. */
  entries: Map<number, { first: number; locations: EntryLocation[] }>;
  /** Region → key → the memtable's value object then (a put replaces it). */
  keys: Map<number, Map<string, KeyValue>>;
}

export class GarbageCollector {
  readonly #deps: GcDeps;
  readonly #strikes = new Map<number, number>();
  /** Passes run one at a time. */
  #running: Promise<unknown> = Promise.resolve();
  rewriteBytes = 0;
  purges = 0;

  constructor(deps: GcDeps) {
    this.#deps = deps;
  }

  /** One GC pass (see the steps above). */
  purge(): Promise<PurgeResult> {
    const run = this.#running.then(() => this.#purge());
    this.#running = run.catch(() => undefined);
    return run;
  }

  stats(): GcStats {
    let liveBytes = 0;
    for (const memtable of this.#deps.memtables.values()) {
      liveBytes += memtable.liveEntryBytes();
      for (const [key, kv] of memtable.kv) liveBytes += key.length + kv.value.length;
    }
    const files = this.#deps.files.stats();
    return {
      liveBytes,
      appendFiles: files.appendFiles,
      appendFileBytes: files.appendFileBytes,
      rewriteFileBytes: files.rewriteFileBytes,
      recycledFiles: files.recycledFiles,
      recycledFileBytes: files.recycledFileBytes,
      spaceAmplification: liveBytes === 0 ? 0 : (files.appendFileBytes + files.rewriteFileBytes) / liveBytes,
      rewriteBytes: this.rewriteBytes,
      purges: this.purges,
    };
  }

  /** Waits for a pass in progress (on engine close). */
  async idle(): Promise<void> {
    await this.#running;
  }

  async #purge(): Promise<PurgeResult> {
    const { memtables, options, files } = this.#deps;
    // A pass comes after the writes submitted before it, as a write would.
    await this.#deps.barrier(false);
    this.purges++;
    const appendFiles = files.appendFiles();
    const activeSeq = appendFiles[appendFiles.length - 1]!.seq;
    // The active file counts as written: its preallocated tail is not dead data a purge could free.
    const planned = appendFiles.map((file) => (file.seq === activeSeq ? { seq: file.seq, bytes: files.activeOffset } : file));
    const plan = planPurge(memtables, planned, activeSeq, this.#strikes, options, {
      checkpointBytes: files.checkpoint?.bytes ?? 0,
      slackBytes: options.targetFileSize + options.preallocateBytes - this.#reservedBytes(planned),
    });
    for (const region of [...this.#strikes.keys()]) if (!plan.laggards.includes(region)) this.#strikes.delete(region);
    for (const region of plan.laggards) this.#strikes.set(region, (this.#strikes.get(region) ?? 0) + 1);
    const result: PurgeResult = {
      regionsToCompact: plan.laggards,
      filesRemoved: 0,
      filesRecycled: 0,
      bytesRewritten: 0,
      watermark: plan.watermark,
      spaceRewrite: plan.spaceRewrite,
    };
    let written: WrittenCheckpoint | undefined;
    let copied: Copied | undefined;
    let record: SealedRecord | undefined;
    const retires = plan.watermark > (appendFiles[0]?.seq ?? activeSeq);
    if (plan.checkpoint) {
      const token = files.beginRead();
      try {
        copied = this.#capture(plan);
        record = await this.#checkpointRecord(plan.watermark, copied);
      } finally {
        files.endRead(token);
      }
      written = await files.writeCheckpoint(record, plan.watermark);
      result.bytesRewritten = record.bytes.length;
      this.rewriteBytes += record.bytes.length;
    }
    if (retires || written !== undefined) {
      try {
        await this.#deps.barrier(true);
        await files.commitPurge(plan.watermark, written);
      } catch (error) {
        if (written !== undefined) await files.discardCheckpoint(written);
        throw error;
      }
      await this.#deps.exclusive(() => {
        if (written !== undefined) relocateUnchanged(memtables, record!, copied!, written);
        for (const id of files.retire(plan.watermark, written)) this.#deps.reader.forgetFile(id);
      });
    }
    const reaped = await files.reap();
    result.filesRemoved = reaped.removed;
    result.filesRecycled = reaped.recycled;
    return result;
  }

  /**
   * Disk bytes beside the log's data, which the space bound's one target
   * file and preallocation must cover: the active file's allocated,
   * unwritten tail (preallocated, or a recycled file's old length), and the
   * recycle pool as this pass may leave it (filled by retired files, each
   * counted as large as the largest closed file).
   */
  #reservedBytes(planned: readonly AppendFileInfo[]): number {
    const { files, options } = this.#deps;
    const stats = files.stats();
    let largest = 0;
    for (let i = 0; i < planned.length - 1; i++) largest = Math.max(largest, planned[i]!.bytes);
    const poolRoom = Math.max(0, options.recycleFiles - stats.recycledFiles);
    return files.activeBytes - files.activeOffset + stats.recycledFileBytes + Math.min(poolRoom, planned.length - 1) * largest;
  }

  /** Where every entry and key the plan copies is now (synchronous: one consistent view). */
  #capture(plan: PurgePlan): Copied {
    const { memtables } = this.#deps;
    const copied: Copied = { entries: new Map(), keys: new Map() };
    for (const range of plan.entries) {
      const memtable = memtables.get(range.region)!;
      const locations: EntryLocation[] = [];
      for (let i = 0; i < range.count; i++) {
        const location = newEntryLocation();
        memtable.locate(range.first + i, location);
        locations.push(location);
      }
      copied.entries.set(range.region, { first: range.first, locations });
    }
    for (const [region, keys] of plan.keys) {
      const kv = memtables.get(region)!.kv;
      copied.keys.set(region, new Map(keys.map((key) => [key, kv.get(key)!])));
    }
    return copied;
  }

  /** The checkpoint record: the watermark, every copied entry (read back) and key. */
  async #checkpointRecord(watermark: number, copied: Copied): Promise<SealedRecord> {
    const batch = new LogBatch();
    batch.markCheckpoint(watermark);
    for (const [region, { locations }] of copied.entries) batch.addEntries(region, await this.#read(locations));
    for (const [region, keys] of copied.keys) {
      for (const [key, kv] of keys) batch.put(region, Buffer.from(key, 'latin1'), kv.value);
    }
    // Uncompressed, so every entry's new location is a plain file offset.
    return batch.seal(Number.POSITIVE_INFINITY);
  }

  async #read(locations: readonly EntryLocation[]): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    let start = 0;
    for (let i = 1; i <= locations.length; i++) {
      if (i < locations.length && continuesRun(locations[i - 1]!, locations[i]!)) continue;
      await this.#deps.reader.readRun(locations.slice(start, i), out);
      start = i;
    }
    return out;
  }
}

function sameLocation(a: EntryLocation, b: EntryLocation): boolean {
  return (
    a.fileId === b.fileId &&
    a.compressed === b.compressed &&
    a.entryOffset === b.entryOffset &&
    a.entryLength === b.entryLength &&
    a.recordOffset === b.recordOffset
  );
}

/**
 * Points each copied entry and key at its place in the checkpoint record,
 * but only where the memtable still holds what was copied: anything
 * overwritten, compacted or cleaned while the copy was made keeps its newer
 * state (raft-engine's rewrite compares the same way).
 */
function relocateUnchanged(memtables: Memtables, record: SealedRecord, copied: Copied, written: WrittenCheckpoint): void {
  const location = { fileId: written.id, recordOffset: written.offset, payloadLength: record.payloadLength, compressed: false };
  const now = newEntryLocation();
  for (const item of record.items.items) {
    const memtable = memtables.get(item.region);
    if (memtable === undefined) continue;
    if (item.kind === ItemKind.Entries) {
      const before = copied.entries.get(item.region)!;
      let runStart = -1;
      for (let i = 0; i <= item.count; i++) {
        const index = item.index + i;
        const unchanged = i < item.count && memtable.locate(index, now) && sameLocation(now, before.locations[index - before.first]!);
        if (unchanged && runStart < 0) runStart = index;
        if (!unchanged && runStart >= 0) {
          const offset = item.entryStart + (runStart - item.index);
          memtable.relocate(runStart, index - runStart, location, record.items.entryOffsets, record.items.entryLengths, offset);
          runStart = -1;
        }
      }
    } else if (item.kind === ItemKind.Put) {
      const key = Buffer.from(record.payload.buffer, record.payload.byteOffset + item.keyOffset, item.keyLength).toString('latin1');
      const kv = memtable.kv.get(key);
      if (kv !== undefined && kv === copied.keys.get(item.region)?.get(key)) kv.fileId = written.id;
    }
  }
}
