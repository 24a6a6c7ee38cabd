/**
 * The file set (raft-engine's pipe log): the only owner of the log's files.
 *
 * It knows, for each queue (appends, GC checkpoints), every file's sequence
 * number, handle, size and home (primary or spill FileSystem); it runs the
 * active writer and its rotation, keeps the recycle pool, hands out read
 * handles, and retires and removes files. The MANIFEST (manifest.ts) is its
 * durable record, updated at every rotation and every purge.
 *
 * The engine appends and reads through it; the collector (src/gc.ts) decides
 * what to retire and the file set executes. A retired file stays open and on
 * disk until every read that started before its retirement has finished
 * (`beginRead`/`endRead`): a read plans on the memtables and then awaits, and
 * the file it planned on must still be there when it gets to it.
 */
import { isRaftlogError } from '../errors.js';
import {
  INDEX_CHECKPOINT_NAME,
  INDEX_CHECKPOINT_TMP_NAME,
  fileId,
  logFileName,
  parseRecycleFileName,
  recycleFileName,
} from '../file-names.js';
import {
  HOST_LITTLE_ENDIAN,
  INDEX_INVALID_BYTES,
  encodeIndexCheckpoint,
  type CoveredFile,
  type CoveredLog,
  type RegionIndex,
} from '../format/index-checkpoint.js';
import { readFully } from '../read-fully.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { FILE_HEADER_SIZE, Queue, decodeFileHeader } from '../format/layout.js';
import type { Memtables } from '../apply.js';
import type { SealedRecord } from '../log-batch.js';
import { LogWriter, type LogWriterOptions, type PlacedRecord } from '../log-writer.js';
import { exportRegions } from './index-checkpointer.js';
import type { RecoveryMode } from '../recovery/recovery.js';
import { recoverLog, type RecoveredState } from '../recovery/log.js';
import type { VerifyTarget } from '../verify.js';
import { MANIFEST_SIZE, Manifest, emptyManifestState, spillRanges, type ManifestState } from './manifest.js';
import { TieredFs } from './tiered-fs.js';

const PREFILL_CHUNK = 1 << 20;
/** A clean close cuts the active file at a multiple of this (a page, and an O_DIRECT block). */
const TRIM_ALIGNMENT = 4096;

export interface FileSetOptions {
  fs: FileSystem;
  spillFs?: FileSystem;
  targetFileSize: number;
  preallocateBytes: number;
  /** Retired append files kept for reuse instead of removed (0 disables recycling). */
  recycleFiles: number;
  /** Worker threads for replay at open (0: serial); see EngineOptions. */
  recoveryThreads?: number;
  nextSalt: () => number;
  /** Told how long each barrier of the append queue took, in microseconds. */
  onBarrier?: (micros: number) => void;
}

interface LogFile {
  queue: Queue;
  seq: number;
  name: string;
  handle: FileHandle;
  /** Bytes on disk (for the active file, asked of the writer). */
  bytes: number;
  /** From its header: an index checkpoint records it without reading the file. */
  salt: number;
}

interface Retired {
  file: LogFile;
  /** Reads that began before this epoch may still use the file. */
  epoch: number;
}

/** A GC checkpoint written but not yet committed (see `commitPurge`). */
export interface WrittenCheckpoint {
  seq: number;
  id: number;
  offset: number;
  fileBytes: number;
}

/** The log an index checkpoint taken now covers (see `indexCheckpointPosition`). */
export type IndexCheckpointPosition = CoveredLog;

export interface FileSetStats {
  appendFiles: number;
  appendFileBytes: number;
  rewriteFileBytes: number;
  recycledFiles: number;
  recycledFileBytes: number;
  /** The MANIFEST's fixed size once it exists, else 0. */
  manifestBytes: number;
  spilling: boolean;
  spills: number;
}

export class FileSet {
  readonly #options: FileSetOptions;
  readonly #tiered: TieredFs | undefined;
  /** The FileSystem the log lives on: the primary, or primary and spill seen as one. */
  readonly #fs: FileSystem;
  #manifest: Manifest | undefined;
  readonly #state: ManifestState = emptyManifestState();
  /** Append sequence numbers whose files live on the spill FileSystem. */
  readonly #spilled = new Set<number>();
  /** Files the log uses, readable: append files (the active one included) and checkpoints, by file id. */
  readonly #files = new Map<number, LogFile>();
  #retired: Retired[] = [];
  /** Reads in flight, by the epoch they began in. */
  readonly #reads = new Map<number, number>();
  #epoch = 0;
  #reaping: Promise<void> = Promise.resolve();
  #writer: LogWriter | undefined;
  /** Sequence number the active file will get, while there is none. */
  #nextSeq = 1;
  #previousLength = 0;
  #rewriteSeq = 0;
  #checkpoint: { seq: number; watermark: number; bytes: number } | undefined;
  /** Recycle-pool files with their sizes, oldest first. */
  #pool: { name: string; bytes: number }[] = [];
  #recycleSeq = 0;
  /** Files to remove: superseded, stale, or whose removal failed. */
  #doomed = new Set<string>();
  /** The last record `append` placed: where an index checkpoint's position verifies. */
  #lastPlaced: PlacedRecord | undefined;
  spills = 0;

  constructor(options: FileSetOptions) {
    this.#options = options;
    this.#tiered = options.spillFs === undefined ? undefined : new TieredFs(options.fs, options.spillFs);
    this.#fs = this.#tiered ?? options.fs;
  }

  /** The log's FileSystem (for the directory lock and init). */
  get fs(): FileSystem {
    return this.#fs;
  }

  /**
   * Recovers the log into `memtables` and takes over its files. Writes
   * nothing but what recovery itself may (a cut, the removal of a file whose
   * creation never completed), except that a directory without a MANIFEST
   * gains one here when there is room (else at its first new file).
   */
  async open(mode: RecoveryMode, memtables: Memtables, indexCheckpoint = false): Promise<RecoveredState> {
    const recovered = await recoverLog(this.#fs, mode, memtables, {
      spillGiven: this.#tiered !== undefined,
      indexCheckpoint,
      parallel: { threads: this.#options.recoveryThreads ?? 0 },
    });
    try {
      await this.#invalidateIndexCheckpoint(recovered.log.report.indexCheckpoint?.used === true);
    } catch (error) {
      for (const file of recovered.log.files) await file.handle.close().catch(() => undefined);
      await recovered.rewrite.checkpoint?.handle.close().catch(() => undefined);
      throw error;
    }
    const { rewrite, log, manifest } = recovered;
    this.#rewriteSeq = rewrite.maxSeq;
    const checkpoint = rewrite.checkpoint;
    if (checkpoint !== undefined) {
      this.#checkpoint = { seq: checkpoint.seq, watermark: checkpoint.watermark, bytes: checkpoint.bytes };
      const salt = await headerSalt(checkpoint.handle);
      this.#files.set(fileId(Queue.Rewrite, checkpoint.seq), {
        queue: Queue.Rewrite,
        seq: checkpoint.seq,
        name: checkpoint.name,
        handle: checkpoint.handle,
        bytes: checkpoint.bytes,
        salt,
      });
    }
    for (const name of [...rewrite.stale, ...log.superseded]) this.#doomed.add(name);
    for (const file of log.files) {
      this.#files.set(fileId(Queue.Append, file.seq), {
        queue: Queue.Append,
        seq: file.seq,
        name: file.name,
        handle: file.handle,
        bytes: await file.handle.size(),
        salt: file.salt,
      });
      if (this.#tiered?.tierOf(file.name) === 'spill') this.#spilled.add(file.seq);
    }
    for (const name of (await this.#fs.list()).sort()) {
      const number = parseRecycleFileName(name);
      if (number === undefined) continue;
      const handle = await this.#fs.open(name, { readOnly: true });
      this.#pool.push({ name, bytes: await handle.size() });
      await handle.close();
      this.#recycleSeq = Math.max(this.#recycleSeq, number);
    }
    const last = log.files[log.files.length - 1];
    if (manifest.kind === 'ok') {
      Object.assign(this.#state, manifest.state);
      this.#manifest = await Manifest.open(this.#options.fs, manifest.generation);
      // The clean end described the log as recovery found it; a log recovery
      // changed (a cut, a removal, a reported problem) it no longer describes.
      // On a full disk (an encrypting file system needs room even to write
      // in place) it stays set here and the first write clears it.
      if (this.#state.cleanEnd !== 0 && recovered.log.report.problems.length > 0) await ignoreNoSpace(this.#clearCleanEnd());
    } else {
      this.#state.first = log.files[0]?.seq ?? 0;
      this.#state.last = last?.seq ?? 0;
      this.#state.checkpoint =
        checkpoint === undefined
          ? undefined
          : { seq: checkpoint.seq, watermark: checkpoint.watermark, spilled: this.#tiered?.tierOf(checkpoint.name) === 'spill' };
      // A directory written before manifests gains one now, when there is
      // room; a full disk opens without one. An empty directory gets one
      // before its first file. Either way the first new file creates it.
      if (log.files.length > 0 || checkpoint !== undefined) {
        await this.#createManifest().catch((error: unknown) => {
          if (!isRaftlogError(error, 'NO_SPACE')) throw error;
        });
      }
    }
    if (log.writable !== undefined) {
      this.#adoptWriter(await LogWriter.resume(this.#writerOptions(), { ...log.writable, offset: log.writable.end }));
    } else {
      // Created at the first write, not here: opening must work on a full
      // disk, and a new file needs room for its header.
      this.#nextSeq = log.nextSeq;
      // 0 (unknown) unless the new file directly follows the last one read.
      this.#previousLength = last !== undefined && last.seq === log.nextSeq - 1 ? last.end : 0;
    }
    return recovered;
  }

  // --- the append queue -----------------------------------------------------

  get hasWriter(): boolean {
    return this.#writer !== undefined;
  }

  /** The active file's sequence number (the next one's, while there is none). */
  get activeSeq(): number {
    return this.#writer?.seq ?? this.#nextSeq;
  }

  /** Bytes the active file takes on disk. */
  get activeBytes(): number {
    return this.#writer?.fileBytes ?? 0;
  }

  get activeOffset(): number {
    return this.#writer?.offset ?? 0;
  }

  get bytesWritten(): number {
    return this.#writer?.bytesWritten ?? 0;
  }

  get syncs(): number {
    return this.#writer?.syncCount ?? 0;
  }

  get rotations(): number {
    return this.#writer?.rotations ?? 0;
  }

  get spilling(): boolean {
    return this.#tiered?.spilling ?? false;
  }

  /** Appends records in one write (creating the active file first if there is none); see LogWriter.append. */
  async append(records: readonly SealedRecord[], sync: boolean): Promise<PlacedRecord[]> {
    // The first write after an open that found a clean close: from here on
    // the last file is no longer what the close left (see seal()).
    if (this.#state.cleanEnd !== 0) await this.#clearCleanEnd();
    let writer = this.#writer;
    if (writer === undefined) {
      // The MANIFEST comes first, so the file is created under it (its header
      // says so: FILE_FLAG_MANIFEST) and a lost MANIFEST is noticed.
      if (this.#manifest === undefined) await this.#createManifest();
      writer = this.#adoptWriter(await LogWriter.create(this.#writerOptions(), this.#nextSeq, this.#previousLength));
    }
    const placed = await writer.append(records, sync);
    if (placed.length > 0) this.#lastPlaced = placed[placed.length - 1];
    return placed;
  }

  /** A barrier for everything appended so far. */
  async sync(): Promise<void> {
    await this.#writer?.sync();
  }

  /**
   * Settles the active file for a clean close (LogWriter.seal) and records in
   * the MANIFEST where its seal ends, so open can tell a last file cut at a
   * record boundary from one that ends there. Only when the file ends with a
   * seal (a seal that failed on a full disk leaves the end unproven).
   */
  async seal(): Promise<void> {
    const writer = this.#writer;
    if (writer === undefined) return;
    await writer.seal();
    if (this.#manifest === undefined || !writer.endsWithSeal || writer.seq !== this.#state.last) return;
    if (this.#state.cleanEnd === writer.offset) return;
    this.#state.cleanEnd = writer.offset;
    // A full disk must not fail a clean close (as for the seal): the log is
    // durable, only the proof of its end is missing, as after a crash.
    await ignoreNoSpace(this.#persist());
  }

  /**
   * A clean close's last step before the index checkpoint: the log keeps
   * only what it holds. The active file gives back its preallocated tail
   * (LogWriter.trim), and the recycle pool is removed but for `keepRecycled`
   * files (the `prefillFiles` an open would write again). Space held for
   * writing is a running engine's; a closed directory should cost no more
   * than its data. A failure here costs space, never data (the log is
   * sealed and durable), but it is an I/O error the caller hears of.
   */
  async releaseSpace(keepRecycled: number): Promise<void> {
    const { fixedCapacity, writeAlignment } = this.#fs.capabilities;
    // A file of fixed capacity could not grow back after the next open.
    if (!fixedCapacity) await this.#writer?.trim(Math.max(TRIM_ALIGNMENT, writeAlignment));
    if (this.#pool.length <= keepRecycled) return;
    // The oldest go first, as reuse takes them first.
    const released = this.#pool.splice(0, this.#pool.length - keepRecycled);
    for (const file of released) await this.#fs.remove(file.name);
    await this.#fs.syncDir();
  }

  /**
   * Writes the index checkpoint of a log just sealed by a clean close (see
   * `writeIndexCheckpointAt`). Returns false, writing nothing, when the log
   * is not in a state a checkpoint can describe (not sealed, no file, a
   * listed file not held after a salvage recovery).
   */
  async writeIndexCheckpoint(memtables: Memtables): Promise<boolean> {
    const writer = this.#writer;
    if (writer === undefined || !writer.sealed) return false;
    // A file with records must end in the seal record open checks for (none when a full disk refused it).
    if (writer.offset > FILE_HEADER_SIZE && writer.sealOffset === 0) return false;
    const position = this.indexCheckpointPosition(writer.sealOffset);
    if (position === undefined) return false;
    await this.writeIndexCheckpointAt(position, exportRegions(memtables, false));
    return true;
  }

  /**
   * Synchronous, between two write groups (the memtables then reflect
   * exactly the records up to the active file's offset): the position an
   * index checkpoint of the memtables covers, or undefined when no
   * checkpoint can describe the log now. The first file and GC checkpoint
   * are the ones the memtables use (a purge changes them at its swap, after
   * its manifest commit), so a checkpoint taken between the two is stale
   * at open, never wrong. `lastAt`: where the record ending at the offset
   * starts (default: the last one `append` placed).
   */
  indexCheckpointPosition(lastAt?: number): IndexCheckpointPosition | undefined {
    const writer = this.#writer;
    const manifest = this.#manifest;
    if (!HOST_LITTLE_ENDIAN || writer === undefined || manifest === undefined || this.#state.last !== writer.seq) return undefined;
    const through = writer.seq;
    if (lastAt === undefined) {
      const placed = this.#lastPlaced;
      lastAt = writer.offset === FILE_HEADER_SIZE ? 0 : placed !== undefined && placed.fileId === writer.fileId ? placed.offset : -1;
    }
    if (lastAt < 0) return undefined;
    // Salts and sizes as the file set knows them: taking a position does no I/O.
    const files: CoveredFile[] = [];
    let first = Number.POSITIVE_INFINITY;
    const rewriteSeq = this.#checkpoint?.seq ?? 0;
    for (const file of this.#files.values()) {
      if (file.queue === Queue.Append) first = Math.min(first, file.seq);
      // A rewrite file a purge wrote but has not swapped in yet is not what the memtables use.
      if (file.queue === Queue.Rewrite && file.seq !== rewriteSeq) continue;
      const bytes = file.queue === Queue.Append && file.seq === through ? writer.fileBytes : file.bytes;
      files.push({ seq: file.seq, queue: file.queue, salt: file.salt, size: bytes });
    }
    if (files.length !== (rewriteSeq === 0 ? 0 : 1) + through - first + 1) return undefined;
    return { manifestGeneration: manifest.generation, first, last: through, rewriteSeq, lastEnd: writer.offset, sealAt: lastAt, files };
  }

  /**
   * Writes the index checkpoint (src/format/index-checkpoint.ts) of
   * `regions` at `position` under INDEX.tmp, made durable, renamed to INDEX,
   * the rename made durable. A crash anywhere leaves the previous INDEX or
   * the new one, whole (INDEX.tmp is removed by the next open). The records
   * up to the position must be durable before it is called. Returns the
   * checkpoint's size in bytes.
   */
  async writeIndexCheckpointAt(position: IndexCheckpointPosition, regions: readonly RegionIndex[]): Promise<number> {
    const bytes = encodeIndexCheckpoint(position, regions);
    const fs = this.#options.fs;
    const alignment = fs.capabilities.writeAlignment;
    const padded = new Uint8Array(Math.ceil(bytes.length / alignment) * alignment);
    padded.set(bytes);
    if (await fs.exists(INDEX_CHECKPOINT_TMP_NAME)) await fs.remove(INDEX_CHECKPOINT_TMP_NAME);
    const handle = await fs.open(INDEX_CHECKPOINT_TMP_NAME, { create: true, capacityBytes: padded.length });
    try {
      await handle.write([padded], 0, { sync: true });
    } finally {
      await handle.close();
    }
    await fs.rename(INDEX_CHECKPOINT_TMP_NAME, INDEX_CHECKPOINT_NAME);
    await fs.syncDir();
    return bytes.length;
  }

  /**
   * Open removes a half-written checkpoint, and invalidates, durably, before
   * any write, one it did not use (`used` false): stale or damaged, or
   * disabled; the recovery that followed may have changed the log under it
   * (a cut), so it must never be loaded later. One it used stays: it covers
   * a prefix of the log recovery left, and writes only extend the tail (see
   * src/recovery/index-checkpoint.ts). It is
   * zeroed in place rather than removed, so open frees no space: a full disk
   * stays exactly as full as the engine found it (a backend writing through
   * a memory map of a sparse file faults, SIGBUS, if a few freed blocks let
   * it get that far). Where the in-place write itself needs space (an
   * encrypting FileSystem), it is removed instead.
   */
  async #invalidateIndexCheckpoint(used: boolean): Promise<void> {
    const fs = this.#options.fs;
    if (await fs.exists(INDEX_CHECKPOINT_TMP_NAME)) {
      await fs.remove(INDEX_CHECKPOINT_TMP_NAME);
      await fs.syncDir();
    }
    if (used || !(await fs.exists(INDEX_CHECKPOINT_NAME))) return;
    const handle = await fs.open(INDEX_CHECKPOINT_NAME);
    try {
      const head = new Uint8Array(INDEX_INVALID_BYTES);
      const read = await readFully(handle, head, 0, head.length, 0);
      if (head.subarray(0, read).every((byte) => byte === 0)) return;
      const block = new Uint8Array(Math.max(fs.capabilities.writeAlignment, INDEX_INVALID_BYTES));
      await handle.write([block], 0, { sync: true });
    } catch (error) {
      if (!isRaftlogError(error, 'NO_SPACE')) throw error;
      await handle.close().catch(() => undefined);
      await fs.remove(INDEX_CHECKPOINT_NAME);
      await fs.syncDir();
      return;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /** After a failed barrier: cut the active file back to what is durable (LogWriter.discardUnsynced). */
  async discardUnsynced(): Promise<void> {
    await this.#writer?.discardUnsynced();
  }

  // --- reads ------------------------------------------------------------------

  /** A read is about to plan on the memtables: files retired from now on stay readable until `endRead(token)`. */
  beginRead(): number {
    const epoch = this.#epoch;
    this.#reads.set(epoch, (this.#reads.get(epoch) ?? 0) + 1);
    return epoch;
  }

  endRead(token: number): void {
    const left = this.#reads.get(token)! - 1;
    if (left > 0) {
      this.#reads.set(token, left);
      return;
    }
    this.#reads.delete(token);
    if (this.#retired.some((r) => this.#free(r))) this.#scheduleReap();
  }

  /** The handle of a file the log uses, or of a retired one a read still may use. */
  handle(id: number): FileHandle | undefined {
    const file = this.#files.get(id);
    if (file !== undefined) return file.handle;
    for (const retired of this.#retired) {
      if (fileId(retired.file.queue, retired.file.seq) === id) return retired.file.handle;
    }
    return undefined;
  }

  /**
   * The files the log uses now, in log order (the GC rewrite file first,
   * then the append files by sequence), for a verification pass
   * (src/verify.ts): the active file up to the writer's offset. Take it
   * inside a read (`beginRead`), so the handles outlive a purge meanwhile.
   */
  verifyTargets(): VerifyTarget[] {
    const targets: VerifyTarget[] = [];
    for (const [id, file] of this.#files) {
      // A GC checkpoint written but not committed yet is not part of the log (and a failed pass closes it at once).
      if (file.queue === Queue.Rewrite && file.seq !== this.#checkpoint?.seq) continue;
      const active = file.queue === Queue.Append && file.seq === this.#writer?.seq;
      targets.push({
        id,
        name: file.name,
        handle: file.handle,
        end: active ? this.#writer!.offset : undefined,
        wholeFile: file.queue === Queue.Rewrite,
      });
    }
    // Rewrite ids carry the top bit: sorting them first, then by id, is log order.
    return targets.sort((a, b) => Number(b.wholeFile) - Number(a.wholeFile) || a.id - b.id);
  }

  // --- garbage collection (the collector decides, the file set executes) ------

  /** Append files by sequence number with their sizes, the active one last. */
  appendFiles(): { seq: number; bytes: number }[] {
    const files: { seq: number; bytes: number }[] = [];
    for (const file of this.#files.values()) {
      if (file.queue === Queue.Append && file.seq !== this.#writer?.seq) files.push({ seq: file.seq, bytes: file.bytes });
    }
    files.sort((a, b) => a.seq - b.seq);
    files.push({ seq: this.activeSeq, bytes: this.activeBytes });
    return files;
  }

  /** Counts purges that retired files (each changes what an index checkpoint must cover). */
  get purgeEpoch(): number {
    return this.#epoch;
  }

  get checkpoint(): { seq: number; watermark: number; bytes: number } | undefined {
    return this.#checkpoint;
  }

  /**
   * Writes a GC checkpoint record into a new rewrite file, durable when this
   * resolves. The file is not part of the log until `commitPurge` lists it
   * in the manifest: until then recovery ignores it, and a failed or crashed
   * pass leaves only garbage (removed here on failure, else by a later pass).
   */
  async writeCheckpoint(record: SealedRecord, watermark: number): Promise<WrittenCheckpoint> {
    const seq = ++this.#rewriteSeq;
    const name = logFileName(Queue.Rewrite, seq);
    let writer: LogWriter | undefined;
    try {
      writer = await LogWriter.create(
        {
          fs: this.#fs,
          queue: Queue.Rewrite,
          targetFileSize: Math.max(this.#options.targetFileSize, record.bytes.length + 4096),
          preallocateBytes: 0,
          nextSalt: this.#options.nextSalt,
          manifestGoverned: () => this.#manifest !== undefined,
        },
        seq,
        // A rewrite file's header records its checkpoint's watermark.
        watermark,
      );
      const [placed] = await writer.append([record], true);
      const id = fileId(Queue.Rewrite, seq);
      this.#files.set(id, { queue: Queue.Rewrite, seq, name, handle: writer.handle, bytes: writer.fileBytes, salt: writer.salt });
      return { seq, id, offset: placed!.offset, fileBytes: writer.fileBytes };
    } catch (error) {
      await writer?.close().catch(() => undefined);
      await this.#fs.remove(name).catch((removal: unknown) => {
        if (!isRaftlogError(removal, 'NOT_FOUND')) this.#doomed.add(name);
      });
      throw error;
    }
  }

  /**
   * Makes a purge durable: the manifest's first file becomes `watermark`
   * and its checkpoint `written` (when the pass wrote one). Files below the
   * watermark and the old checkpoint are dead from here on, whether or not
   * their removal reaches the disk; they stay readable until `retire`.
   */
  async commitPurge(watermark: number, written: WrittenCheckpoint | undefined): Promise<void> {
    if (written !== undefined) {
      this.#state.checkpoint = {
        seq: written.seq,
        watermark,
        spilled: this.#tiered?.tierOf(logFileName(Queue.Rewrite, written.seq)) === 'spill',
      };
    }
    if (this.#state.first !== 0) this.#state.first = Math.max(this.#state.first, watermark);
    await this.#persist();
  }

  /**
   * Retires what `commitPurge` made dead: append files below `watermark`
   * and, when a new checkpoint replaced it, the old checkpoint. Synchronous
   * (the engine calls it in the short step that swaps the file set): the
   * files leave the set now and are closed and removed (or recycled) once
   * every read that may have planned on them has finished.
   */
  retire(watermark: number, written: WrittenCheckpoint | undefined): number[] {
    const epoch = ++this.#epoch;
    const retired: number[] = [];
    for (const [id, file] of this.#files) {
      const dead =
        file.queue === Queue.Append
          ? file.seq < watermark && file.seq !== this.#writer?.seq
          : written !== undefined && file.seq !== written.seq && file.seq === this.#checkpoint?.seq;
      if (!dead) continue;
      this.#files.delete(id);
      this.#spilled.delete(file.seq);
      this.#retired.push({ file, epoch });
      retired.push(id);
    }
    if (written !== undefined) this.#checkpoint = { seq: written.seq, watermark, bytes: written.fileBytes };
    return retired;
  }

  /** A checkpoint written by a pass that then failed before its commit: garbage. */
  async discardCheckpoint(written: WrittenCheckpoint): Promise<void> {
    const file = this.#files.get(written.id);
    this.#files.delete(written.id);
    await file?.handle.close().catch(() => undefined);
    this.#doomed.add(logFileName(Queue.Rewrite, written.seq));
  }

  /**
   * Closes and removes (or recycles) retired files no read needs any more,
   * and removes superseded and stale files. Resolves when done; reads that
   * end later trigger the rest in the background.
   */
  async reap(): Promise<{ removed: number; recycled: number }> {
    // One reap at a time: wait out any a finished read queued meanwhile.
    for (let current = this.#reaping; ; current = this.#reaping) {
      await current;
      if (current === this.#reaping) break;
    }
    const result = { removed: 0, recycled: 0 };
    const run = this.#reapNow(result);
    this.#reaping = run.catch(() => undefined);
    await run;
    return result;
  }

  /**
   * Fills the recycle pool up to `count` files of `targetFileSize` zeros,
   * written for real (not fallocated), so the first appends into them
   * overwrite written blocks and their fdatasync needs no metadata update.
   */
  async prefill(count: number): Promise<void> {
    const fs = this.#fs;
    const { targetFileSize } = this.#options;
    const zeros = new Uint8Array(Math.min(PREFILL_CHUNK, targetFileSize));
    while (this.#pool.length < count) {
      const name = recycleFileName(++this.#recycleSeq);
      let handle: FileHandle;
      try {
        handle = await fs.open(name, { create: true, exclusive: true, capacityBytes: targetFileSize });
      } catch (error) {
        // Creating a file can take space too (an inode; an encrypting file
        // system's key dictionary and header): a full disk ends prefilling.
        if (!isRaftlogError(error, 'NO_SPACE')) throw error;
        await fs.remove(name).catch(() => undefined);
        break;
      }
      try {
        for (let at = 0; at < targetFileSize; at += zeros.length) {
          await handle.write([zeros.subarray(0, Math.min(zeros.length, targetFileSize - at))], at);
        }
        await handle.sync();
      } catch (error) {
        // Prefilling is an optimization: on a full disk the engine must still
        // open (and serve reads) without it. Give the space back and stop.
        await handle.close().catch(() => undefined);
        if (!isRaftlogError(error, 'NO_SPACE')) throw error;
        await fs.remove(name).catch(() => undefined);
        break;
      }
      await handle.close();
      this.#pool.push({ name, bytes: targetFileSize });
    }
    await fs.syncDir();
  }

  stats(): FileSetStats {
    let appendFiles = 0;
    let appendFileBytes = 0;
    for (const file of this.#files.values()) {
      if (file.queue !== Queue.Append || file.seq === this.#writer?.seq) continue;
      appendFiles++;
      appendFileBytes += file.bytes;
    }
    return {
      appendFiles: appendFiles + 1,
      appendFileBytes: appendFileBytes + this.activeBytes,
      rewriteFileBytes: this.#checkpoint?.bytes ?? 0,
      recycledFiles: this.#pool.length,
      recycledFileBytes: this.#pool.reduce((sum, f) => sum + f.bytes, 0),
      manifestBytes: this.#manifest === undefined ? 0 : MANIFEST_SIZE,
      spilling: this.spilling,
      spills: this.spills,
    };
  }

  /** Files the set holds open (the log's, plus retired ones reads still use). */
  get openFiles(): number {
    return this.#files.size + this.#retired.length;
  }

  /** Closes every file and the manifest. Reads must have finished. */
  async close(): Promise<void> {
    await this.#reaping;
    const handles = new Set<FileHandle>();
    for (const file of this.#files.values()) handles.add(file.handle);
    for (const retired of this.#retired) handles.add(retired.file.handle);
    if (this.#writer !== undefined) handles.add(this.#writer.handle);
    this.#files.clear();
    this.#retired = [];
    await Promise.all([...handles].map((handle) => handle.close().catch(() => undefined)));
    await this.#manifest?.close().catch(() => undefined);
    this.#manifest = undefined;
  }

  // --- internals --------------------------------------------------------------

  #writerOptions(): LogWriterOptions {
    return {
      fs: this.#fs,
      queue: Queue.Append,
      targetFileSize: this.#options.targetFileSize,
      preallocateBytes: this.#options.preallocateBytes,
      nextSalt: this.#options.nextSalt,
      takeRecycled: () => this.#pool.shift()?.name,
      onNoSpace: () => {
        if (this.#tiered === undefined || this.#tiered.spilling) return false;
        this.#tiered.spill();
        this.spills++;
        return true;
      },
      onRotateStart: () => this.#tiered?.preferPrimary(),
      onBarrier: this.#options.onBarrier,
      onCreated: (seq, name) => this.#created(seq, name),
      manifestGoverned: () => this.#manifest !== undefined,
    };
  }

  /**
   * A new append file's header is durable: list it in the manifest before
   * any record goes into it. Recovery removes a file past the manifest's
   * last one as never completed, so this is the step that commits it.
   */
  async #created(seq: number, name: string): Promise<void> {
    if (this.#manifest === undefined) await this.#createManifest();
    if (this.#tiered?.tierOf(name) === 'spill') this.#spilled.add(seq);
    if (this.#state.first === 0) this.#state.first = seq;
    this.#state.last = seq;
    await this.#persist();
  }

  #adoptWriter(writer: LogWriter): LogWriter {
    this.#writer = writer;
    this.#files.set(writer.fileId, {
      queue: Queue.Append,
      seq: writer.seq,
      name: logFileName(Queue.Append, writer.seq),
      handle: writer.handle,
      bytes: 0,
      salt: writer.salt,
    });
    writer.onRotate = (retired, active) => {
      const file = this.#files.get(fileId(Queue.Append, retired.seq));
      if (file !== undefined) file.bytes = retired.bytes;
      this.#files.set(fileId(Queue.Append, active.seq), {
        queue: Queue.Append,
        seq: active.seq,
        name: logFileName(Queue.Append, active.seq),
        handle: active.handle,
        bytes: 0,
        salt: writer.salt,
      });
    };
    return writer;
  }

  #snapshot(): ManifestState {
    const spilled = [...this.#spilled].filter((seq) => seq >= this.#state.first);
    return { ...this.#state, spilled: spillRanges(spilled) };
  }

  async #clearCleanEnd(): Promise<void> {
    const cleanEnd = this.#state.cleanEnd;
    this.#state.cleanEnd = 0;
    try {
      await this.#persist();
    } catch (error) {
      // Not durable: the first write must try again before it goes in.
      this.#state.cleanEnd = cleanEnd;
      throw error;
    }
  }

  async #createManifest(): Promise<void> {
    this.#manifest = await Manifest.create(this.#options.fs, this.#snapshot());
  }

  async #persist(): Promise<void> {
    if (this.#manifest === undefined) await this.#createManifest();
    else await this.#manifest.update(() => this.#snapshot());
  }

  #free(retired: Retired): boolean {
    for (const epoch of this.#reads.keys()) if (epoch < retired.epoch) return false;
    return true;
  }

  #scheduleReap(): void {
    const result = { removed: 0, recycled: 0 };
    // Failures leave the names doomed; the next purge retries and reports.
    this.#reaping = this.#reaping.then(() => this.#reapNow(result)).catch(() => undefined);
  }

  async #reapNow(result: { removed: number; recycled: number }): Promise<void> {
    const free = this.#retired.filter((r) => this.#free(r));
    if (free.length === 0 && this.#doomed.size === 0) return;
    this.#retired = this.#retired.filter((r) => !free.includes(r));
    free.sort((a, b) => a.file.seq - b.file.seq);
    // Every name here is dead by the manifest already (recovery never reads
    // it): a rename or removal that fails costs only space, and the name
    // stays doomed for the next pass to retry. The pass still reports the error.
    let firstError: unknown;
    for (const { file } of free) {
      await file.handle.close().catch(() => undefined);
      if (file.queue === Queue.Append && this.#pool.length < this.#options.recycleFiles) {
        const target = recycleFileName(++this.#recycleSeq);
        try {
          await this.#fs.rename(file.name, target);
          this.#pool.push({ name: target, bytes: file.bytes });
          result.recycled++;
          continue;
        } catch (error) {
          firstError ??= error;
        }
      }
      this.#doomed.add(file.name);
    }
    for (const name of [...this.#doomed]) {
      try {
        await this.#fs.remove(name);
        result.removed++;
      } catch (error) {
        if (!isRaftlogError(error, 'NOT_FOUND')) {
          firstError ??= error;
          continue;
        }
      }
      this.#doomed.delete(name);
    }
    await this.#fs.syncDir();
    if (firstError !== undefined) throw firstError;
  }
}

async function headerSalt(handle: FileHandle): Promise<number> {
  const bytes = new Uint8Array(FILE_HEADER_SIZE);
  const header = decodeFileHeader(bytes.subarray(0, await readFully(handle, bytes, 0, FILE_HEADER_SIZE, 0)));
  // Recovery verified it; 0 (no salt) only makes a checkpoint naming it stale.
  return typeof header === 'string' ? 0 : header.salt;
}

async function ignoreNoSpace(operation: Promise<void>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!isRaftlogError(error, 'NO_SPACE')) throw error;
  }
}
