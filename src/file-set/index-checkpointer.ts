/**
 * Periodic index checkpoints: while the engine runs, once enough has been
 * written since the last one, write the memtables to `INDEX` so that an open
 * after a crash loads them and replays only what came after (see
 * src/recovery/index-checkpoint.ts), instead of the whole log.
 *
 * Writes keep flowing while a checkpoint is written. The only step taken with
 * the write queue held is `afterCommit`, which the engine calls at the end of
 * a write group, when the memtables reflect exactly the records up to the
 * active file's offset: it takes the position and copies the index columns
 * (typed arrays, copied in bulk: no per-entry work; keys and values are
 * shared, they are never changed in place). Encoding and the file writes run
 * after it, beside new writes.
 *
 * The position must be durable before a checkpoint names it (else a power
 * cut could leave the memtables holding records the log lost), so it is
 * taken only at the end of a group that carried a barrier (a synced write or
 * `sync()`): the checkpointer never issues a barrier of its own, whose
 * failure would fail-stop the engine with no caller to tell. A workload
 * that never syncs gets checkpoints only at a clean close.
 *
 * When: at the first synced group after `intervalBytes` appended (default 64 MiB), but never more often
 * than every 4 × the last checkpoint's size, so the checkpoints add at most a
 * quarter to the bytes written however large the index grows. Bytes rather
 * than rotations: the replay a crash costs is bounded by the bytes written
 * since the last checkpoint, whatever the file size; a purge makes the
 * checkpoint stale (it changes the files the memtables point into), so one
 * is due again right after it.
 */
import type { Memtables } from '../apply.js';
import type { RegionIndex } from '../format/index-checkpoint.js';
import type { FileSet, IndexCheckpointPosition } from './file-set.js';

export interface IndexCheckpointerStats {
  /** Periodic checkpoints written. */
  written: number;
  /** Periodic checkpoints abandoned (an I/O error, a full disk). */
  failed: number;
  /** Size of the last checkpoint written, in bytes. */
  lastBytes: number;
  /** How long the last and the longest snapshot held the write queue, in microseconds. */
  lastStallMicros: number;
  maxStallMicros: number;
}

export interface IndexCheckpointerOptions {
  files: FileSet;
  memtables: Memtables;
  /** Bytes appended between periodic checkpoints; 0 disables them. */
  intervalBytes: number;
}

export class IndexCheckpointer {
  readonly #options: IndexCheckpointerOptions;
  /** files.bytesWritten at the last checkpoint taken. */
  #takenAt = 0;
  /** The file set's purge epoch at the last checkpoint taken (a purge makes that one stale). */
  #epoch = 0;
  #running: Promise<void> | undefined;
  #stopped = false;
  readonly #stats: IndexCheckpointerStats = { written: 0, failed: 0, lastBytes: 0, lastStallMicros: 0, maxStallMicros: 0 };

  constructor(options: IndexCheckpointerOptions) {
    this.#options = options;
  }

  stats(): IndexCheckpointerStats {
    return { ...this.#stats };
  }

  /**
   * At the end of a write group, with the write queue held (`synced`: the
   * group carried a barrier, so everything up to the active offset is
   * durable): takes a checkpoint when one is due. Synchronous.
   */
  afterCommit(synced: boolean): void {
    const { files, intervalBytes } = this.#options;
    if (!synced || intervalBytes === 0 || this.#stopped || this.#running !== undefined) return;
    const interval = Math.max(intervalBytes, 4 * this.#stats.lastBytes);
    const since = files.bytesWritten - this.#takenAt;
    if (since < interval && (files.purgeEpoch === this.#epoch || since === 0)) return;
    const began = performance.now();
    const position = files.indexCheckpointPosition();
    if (position === undefined) return;
    const regions = exportRegions(this.#options.memtables, true);
    const stall = (performance.now() - began) * 1000;
    this.#stats.lastStallMicros = stall;
    this.#stats.maxStallMicros = Math.max(this.#stats.maxStallMicros, stall);
    this.#takenAt = files.bytesWritten;
    this.#epoch = files.purgeEpoch;
    this.#running = this.#write(position, regions).finally(() => {
      this.#running = undefined;
    });
  }

  /** Waits for the checkpoint being written, and takes no more (a close writes its own after this). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #write(position: IndexCheckpointPosition, regions: RegionIndex[]): Promise<void> {
    const { files } = this.#options;
    // An optimization only: on any failure a crash before the next one replays more of the log.
    try {
      this.#stats.lastBytes = await files.writeIndexCheckpointAt(position, regions);
      this.#stats.written++;
    } catch {
      this.#stats.failed++;
    }
  }
}

/**
 * Every region's index as `RegionMemtable.exportIndex` gives it; with `copy`,
 * the columns are copied (the memtables go on changing while the checkpoint
 * is written), else views of the live columns (a close: nothing changes).
 */
export function exportRegions(memtables: Memtables, copy: boolean): RegionIndex[] {
  const regions: RegionIndex[] = [];
  for (const memtable of memtables.values()) {
    const r = memtable.exportIndex();
    regions.push(
      copy
        ? {
            ...r,
            offsets: r.offsets.slice(),
            lengths: r.lengths.slice(),
            runFirsts: r.runFirsts.slice(),
            runFiles: r.runFiles.slice(),
            packedFirsts: r.packedFirsts.slice(),
            packedOffsets: r.packedOffsets.slice(),
            packedLengths: r.packedLengths.slice(),
          }
        : r,
    );
  }
  return regions;
}
