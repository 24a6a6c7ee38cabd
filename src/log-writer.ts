/**
 * The active file of a queue: places records, fills their headers, writes a
 * whole group with one vectored write (carrying the barrier when asked),
 * preallocates ahead and rotates at the target size.
 *
 * Ordering rules that recovery relies on:
 *  - a file's header is durable (write + barrier + directory sync) before any
 *    record goes into it, so a bad header on the last file means "nothing
 *    durable here" and a bad header anywhere else is corruption;
 *  - the old file is synced before the new one is created, so every file but
 *    the last is durable in full, and the new header records the old file's
 *    final length, which lets recovery prove a cut in an older file.
 */
import { FsyncFailedError, isRaftlogError, ErrorCode } from './errors.js';
import { fileId, logFileName } from './file-names.js';
import type { FileHandle, FileSystem } from './filesystem.js';
import {
  FILE_FLAG_MANIFEST,
  FILE_FLAG_RECYCLED,
  FILE_HEADER_SIZE,
  FILE_SIZE_LIMIT,
  FORMAT_VERSION,
  Queue,
  RECORD_HEADER_SIZE,
  encodeFileHeader,
  roundUp,
  writeRecordHeader,
} from './format/layout.js';
import { LogBatch, type SealedRecord } from './log-batch.js';
import { readFully } from './read-fully.js';

/** Groups this large on average (bytes per append) are written without preallocating ahead of them (#ensureAllocated). */
export const PREALLOCATE_MAX_GROUP_BYTES = 64 << 10;

export interface LogWriterOptions {
  fs: FileSystem;
  queue: Queue;
  targetFileSize: number;
  preallocateBytes: number;
  nextSalt: () => number;
  /**
   * A recycled file to reuse for the next file, if any: its blocks are already
   * written, so appends overwrite instead of extending (a cheaper fdatasync).
   */
  takeRecycled?: () => string | undefined;
  /**
   * The device ran out of space while reserving room for records or creating
   * a file. Returns true when new files will go elsewhere (a spill
   * directory), so the writer rotates and retries there; nothing of the
   * group has been written yet, so retrying is safe.
   */
  onNoSpace?: () => boolean;
  /** A rotation for size is starting: new files may go back to the primary device. */
  onRotateStart?: () => void;
  /** Told how long each durability barrier took, in microseconds (metrics). */
  onBarrier?: (micros: number) => void;
  /**
   * A new file's header is durable; no record is in it yet. The file set
   * lists the file in its manifest here. If this fails, the file is removed
   * and the creation fails.
   */
  onCreated?: (seq: number, name: string) => Promise<void>;
  /** A MANIFEST governs the directory: new files carry FILE_FLAG_MANIFEST. */
  manifestGoverned?: () => boolean;
}

/** Where a written record landed. */
export interface PlacedRecord {
  fileId: number;
  offset: number;
}

export interface ActiveFileState {
  seq: number;
  salt: number;
  handle: FileHandle;
  /** Next write offset (end of valid data). */
  offset: number;
}

/** Bytes `LogWriter.resume` copies per read/write when it re-dirties a tail. */
const RESUME_CHUNK = 1 << 20;

export class LogWriter {
  readonly #options: LogWriterOptions;
  #handle: FileHandle;
  #seq: number;
  #salt: number;
  #offset: number;
  /** Bytes of this file known durable. */
  #synced: number;
  /** Bytes reserved by preallocation. */
  #allocated: number;
  /** Moving average of the bytes per append (a group): decides whether preallocating pays (#ensureAllocated). */
  #groupBytes = 0;
  /** Called when rotation retires a file (with its final size on disk) and starts the next. */
  onRotate:
    | ((retired: { seq: number; handle: FileHandle; bytes: number }, active: { seq: number; handle: FileHandle }) => void)
    | undefined;

  bytesWritten = 0;
  syncCount = 0;
  rotations = 0;
  /** Records were appended since this writer started or last sealed. */
  #appendedSinceSeal = false;
  /** Where the active file's seal record starts, while `sealed` and the file holds records (else 0). */
  #sealAt = 0;

  private constructor(options: LogWriterOptions, state: ActiveFileState, allocated: number) {
    this.#options = options;
    this.#handle = state.handle;
    this.#seq = state.seq;
    this.#salt = state.salt;
    this.#offset = state.offset;
    this.#synced = state.offset;
    this.#allocated = allocated;
  }

  /**
   * Continues an existing file at `state.offset` (after recovery); appends
   * nothing, but makes what is there durable. `provenEnd`: where the data
   * the records prove durable ends (their synced-through marks).
   */
  static async resume(
    options: LogWriterOptions,
    state: ActiveFileState & { provenEnd: number; sealed: boolean; sealAt: number },
  ): Promise<LogWriter> {
    // What recovery read may live only in the page cache (a process killed
    // before its barrier, or an engine reopened without a reboot). The writer
    // counts everything up to `offset` as durable (sync() skips, rotation
    // seals the file, records claim it in syncedThrough), so make it so.
    // The header is written again first: when the barrier that should have
    // made it durable failed and removing the half-created file failed too,
    // the kernel serves it from pages it dropped; writing dirties them again.
    await rewriteRange(state.handle, 0, FILE_HEADER_SIZE);
    // The same goes for records past what any synced-through mark proves:
    // when a barrier failed and cutting them off failed too, a restart
    // without a power loss reads them back from clean pages a later fdatasync
    // skips. Writing them again (one group, usually) makes the barrier below
    // cover them; records below provenEnd were made durable by a barrier
    // that succeeded.
    await rewriteRange(state.handle, Math.max(FILE_HEADER_SIZE, state.provenEnd), state.offset);
    await barrierErrors(true, () => state.handle.sync());
    const writer = new LogWriter(options, state, await state.handle.size());
    // Records left by a session that did not close cleanly are proven by
    // nothing; the next clean close seals them even if nothing is appended.
    writer.#appendedSinceSeal = !state.sealed && state.offset > FILE_HEADER_SIZE;
    writer.#sealAt = state.sealed ? state.sealAt : 0;
    return writer;
  }

  /** Creates the queue's first file (or the file after `previous` when resuming is impossible). */
  static async create(options: LogWriterOptions, seq: number, previousFileLength: number): Promise<LogWriter> {
    const state = await createLogFile(options, seq, previousFileLength);
    return new LogWriter(options, state, state.allocated);
  }

  /** Bytes the active file takes on disk (written or reserved). */
  get fileBytes(): number {
    return Math.max(this.#allocated, this.#offset);
  }

  get seq(): number {
    return this.#seq;
  }

  get fileId(): number {
    return fileId(this.#options.queue, this.#seq);
  }

  get handle(): FileHandle {
    return this.#handle;
  }

  get offset(): number {
    return this.#offset;
  }

  /** The file's last record is a seal and nothing was appended since. */
  get endsWithSeal(): boolean {
    return !this.#appendedSinceSeal && this.#offset > FILE_HEADER_SIZE;
  }

  get hasUnsynced(): boolean {
    return this.#synced < this.#offset;
  }

  /**
   * Writes `records` back to back in one vectored write; with `sync`, the
   * write carries the barrier. Returns where each record landed. On failure
   * the caller must stop using this writer (the engine fail-stops).
   */
  async append(records: readonly SealedRecord[], sync: boolean, mayRotate = true): Promise<PlacedRecord[]> {
    let groupBytes = 0;
    for (const record of records) groupBytes += record.bytes.length;
    if (groupBytes === 0) {
      if (sync) await this.sync();
      return [];
    }
    this.#appendedSinceSeal = true;
    if (mayRotate && this.#offset > FILE_HEADER_SIZE && this.#offset + groupBytes > this.#options.targetFileSize) await this.rotate();
    if (this.#offset + groupBytes > FILE_SIZE_LIMIT) {
      // A single group larger than a file can address: split it across files.
      return this.#appendSplit(records, sync);
    }
    this.#groupBytes += (groupBytes - this.#groupBytes) / 8;
    try {
      await this.#ensureAllocated(this.#offset + groupBytes);
    } catch (error) {
      if (!isNoSpace(error) || this.#options.onNoSpace?.() !== true) throw error;
      await this.#rotateTo(() => this.#createNext());
      await this.#ensureAllocated(this.#offset + groupBytes);
    }
    const placed: PlacedRecord[] = [];
    const buffers: Uint8Array[] = [];
    const id = this.fileId;
    let offset = this.#offset;
    for (const record of records) {
      writeRecordHeader(
        record.bytes.subarray(0, RECORD_HEADER_SIZE),
        {
          payloadLength: record.payloadLength,
          offset,
          syncedThrough: this.#synced,
          payloadCrc: record.payloadCrc,
          flags: record.flags,
        },
        this.#salt,
      );
      placed.push({ fileId: id, offset });
      buffers.push(record.bytes);
      offset += record.bytes.length;
    }
    const start = this.#offset;
    const began = performance.now();
    await barrierErrors(sync, () => this.#handle.write(buffers, start, { sync }));
    if (sync) this.#options.onBarrier?.((performance.now() - began) * 1000);
    this.#offset = offset;
    this.bytesWritten += groupBytes;
    if (sync) {
      this.#synced = offset;
      this.syncCount++;
    }
    return placed;
  }

  /** A barrier for everything written so far. */
  async sync(): Promise<void> {
    if (!this.hasUnsynced) return;
    const target = this.#offset;
    const began = performance.now();
    await barrierErrors(true, () => this.#handle.sync());
    this.#options.onBarrier?.((performance.now() - began) * 1000);
    this.#synced = target;
    this.syncCount++;
  }

  /**
   * Settles the log for a clean shutdown: a barrier for everything written,
   * then an empty record whose synced-through mark covers it all, made
   * durable too. Recovery proves a record durable only by a later record's
   * mark (docs/format.md), so without this the last group before a clean
   * close would stay unproven: damage there would be cut like a torn write
   * instead of reported. Costs one small record and one barrier per close
   * that follows writes; it may overshoot the target size by those bytes
   * rather than start a file for them.
   */
  async seal(): Promise<void> {
    await this.sync();
    if (!this.#appendedSinceSeal) return;
    try {
      const [placed] = await this.append([new LogBatch().seal(Number.POSITIVE_INFINITY)], true, false);
      this.#sealAt = placed!.fileId === this.fileId ? placed!.offset : 0;
    } catch (error) {
      // A full disk must not fail a clean close: everything is durable by
      // the barrier above, the seal only adds proof. Without it the last
      // group stays unproven, as after a crash.
      if (isNoSpace(error)) return;
      throw error;
    }
    this.#appendedSinceSeal = false;
  }

  /**
   * At a clean close, after the seal: gives back the preallocated tail (and a
   * recycled file's earlier life) past the last record, rounded up to
   * `alignment` so an O_DIRECT writer that resumes here still writes whole
   * blocks. A closed log then takes what it holds, not what the writer had
   * reserved; the next open preallocates again as it appends. Not synced:
   * a cut the disk loses leaves zeros or stale bytes past the seal, which
   * recovery reads as the log's end either way.
   */
  async trim(alignment: number): Promise<void> {
    const end = roundUp(this.#offset, alignment);
    if (this.fileBytes <= end) return;
    await this.#handle.truncate(end);
    this.#allocated = end;
  }

  /** Nothing was appended since the file's last seal record (or it holds no record): a clean close's end. */
  get sealed(): boolean {
    return !this.#appendedSinceSeal;
  }

  /** Where the active file's seal record starts, when `sealed` and it holds records; 0 otherwise. */
  get sealOffset(): number {
    return this.sealed ? this.#sealAt : 0;
  }

  get salt(): number {
    return this.#salt;
  }

  /** Retires the active file (synced in full) and starts the next one. */
  async rotate(): Promise<void> {
    this.#options.onRotateStart?.();
    await this.#rotateTo(async () => {
      try {
        return await this.#createNext();
      } catch (error) {
        if (!isNoSpace(error) || this.#options.onNoSpace?.() !== true) throw error;
        return this.#createNext();
      }
    });
  }

  #createNext(): Promise<ActiveFileState & { allocated: number }> {
    return createLogFile(this.#options, this.#seq + 1, this.#offset);
  }

  async #rotateTo(create: () => Promise<ActiveFileState & { allocated: number }>): Promise<void> {
    await this.sync();
    const retired = { seq: this.#seq, handle: this.#handle, bytes: this.fileBytes };
    const state = await create();
    this.#handle = state.handle;
    this.#seq = state.seq;
    this.#salt = state.salt;
    this.#offset = state.offset;
    this.#synced = state.offset;
    this.#allocated = state.allocated;
    this.rotations++;
    this.onRotate?.(retired, { seq: this.#seq, handle: this.#handle });
  }

  /**
   * After a failed barrier: cut the active file back to what is known
   * durable. The kernel may still serve the lost writes from its page cache
   * (it marked them clean), so a reopen in this process would replay records
   * that a power loss later erases from under newer, synced records. Best
   * effort: if the cut fails too, there is nothing better to do.
   */
  async discardUnsynced(): Promise<void> {
    try {
      await this.#handle.truncate(this.#synced);
      await this.#handle.sync();
    } catch {
      // The engine is already fail-stopped; the original error is what the caller sees.
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }

  async #appendSplit(records: readonly SealedRecord[], sync: boolean): Promise<PlacedRecord[]> {
    const placed: PlacedRecord[] = [];
    for (const record of records) placed.push(...(await this.append([record], false)));
    if (sync) await this.sync();
    return placed;
  }

  async #ensureAllocated(end: number): Promise<void> {
    if (end <= this.#allocated) return;
    const { preallocateBytes, targetFileSize, fs } = this.#options;
    if (preallocateBytes <= 0) return;
    // What a reserved block saves is per barrier (no allocation to commit
    // with the data), what it costs is per byte (the zeros written first):
    // with large groups the zeros cost more than they save (W2 at 64
    // writers, W1 past 64 KiB), so the file just grows. Files of a fixed
    // capacity are always reserved ahead.
    if (this.#groupBytes >= PREALLOCATE_MAX_GROUP_BYTES && !fs.capabilities.fixedCapacity) return;
    // Reserve a chunk ahead, but not past the target size: the file rotates
    // there and the rest would be wasted.
    const reserveEnd = Math.max(end, Math.min(end + preallocateBytes, targetFileSize));
    await this.#handle.preallocate(this.#allocated, reserveEnd - this.#allocated);
    this.#allocated = reserveEnd;
  }
}

/**
 * Reads `[from, to)` and writes it back in place: the bytes do not change,
 * their pages become dirty. The file may end up to 7 bytes short of `to`
 * (a crash cut the last record's alignment padding, which recovery counts
 * but no checksum covers); what is there is rewritten.
 */
async function rewriteRange(handle: FileHandle, from: number, to: number): Promise<void> {
  if (from >= to) return;
  const chunk = new Uint8Array(Math.min(RESUME_CHUNK, to - from));
  for (let at = from; at < to; ) {
    const view = chunk.subarray(0, Math.min(chunk.length, to - at));
    const filled = await readFully(handle, view, 0, view.length, at);
    if (filled > 0) await handle.write([view.subarray(0, filled)], at);
    if (filled < view.length) return;
    at += filled;
  }
}

async function createLogFile(
  options: LogWriterOptions,
  seq: number,
  previousFileLength: number,
): Promise<ActiveFileState & { allocated: number }> {
  const { fs, queue, targetFileSize } = options;
  const name = logFileName(queue, seq);
  const salt = options.nextSalt();
  const recycled = options.takeRecycled?.();
  const handle =
    recycled !== undefined
      ? await fs.reuse(recycled, name)
      : await fs.open(name, { create: true, exclusive: true, capacityBytes: targetFileSize });
  let allocated: number;
  try {
    const header = encodeFileHeader({
      version: FORMAT_VERSION,
      queue,
      flags: (recycled !== undefined ? FILE_FLAG_RECYCLED : 0) | (options.manifestGoverned?.() === true ? FILE_FLAG_MANIFEST : 0),
      salt,
      seq,
      previousFileLength,
    });
    await barrierErrors(true, () => handle.write([header], 0, { sync: true }));
    await fs.syncDir();
    allocated = recycled !== undefined ? await handle.size() : FILE_HEADER_SIZE;
  } catch (error) {
    // A file without a durable header holds nothing; remove it so a retry
    // (on a spill directory) can take the name. Recovery would remove it too.
    await handle.close().catch(() => undefined);
    await fs.remove(name).catch(() => undefined);
    throw error;
  }
  try {
    await options.onCreated?.(seq, name);
    return { seq, salt, handle, offset: FILE_HEADER_SIZE, allocated };
  } catch (error) {
    await handle.close().catch(() => undefined);
    // A failed manifest update may still have landed: then removing the file
    // would leave the manifest listing a missing file. Left in place, a file
    // the manifest does not list is removed by the next open. Only a
    // manifest that could not be created (a full disk) frees the name here.
    if (isNoSpace(error)) await fs.remove(name).catch(() => undefined);
    throw error;
  }
}

/**
 * A failed barrier is terminal for the data it covered (Linux drops the dirty
 * pages and the next fsync succeeds), so it is reported as FSYNC_FAILED, which
 * the engine turns into a fail-stop. Running out of space stays NO_SPACE.
 */
function isNoSpace(error: unknown): boolean {
  return isRaftlogError(error) && error.code === ErrorCode.NO_SPACE;
}

async function barrierErrors<T>(sync: boolean, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (!sync || (isRaftlogError(error) && error.code === ErrorCode.NO_SPACE)) throw error;
    const cause = isRaftlogError(error) ? error : undefined;
    throw new FsyncFailedError(`durability barrier failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      file: cause?.file,
      errno: cause?.errno,
    });
  }
}
