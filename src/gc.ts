/**
 * Garbage collection at run time: carries out the plans of src/purge.ts,
 * keeps the recycle pool, and accounts for space (live bytes, file bytes,
 * rewrite bytes).
 *
 * A purge pass, in order (each step durable before the next):
 *  1. write the checkpoint record to a new rewrite file (header synced, dir
 *     synced, record written with a barrier) when the plan needs one;
 *  2. point the memtables at the copies;
 *  3. retire append files below the watermark (rename into the recycle pool,
 *     or remove) and remove superseded rewrite files; sync the directory.
 * Handles of retired files are closed once no read is using them.
 */
import type { Memtables } from './apply.js';
import type { EntryReader } from './entry-reader.js';
import { isRaftlogError } from './errors.js';
import { fileId, logFileName } from './file-names.js';
import { ItemKind } from './format/batch-codec.js';
import type { FileHandle, FileSystem } from './filesystem.js';
import { Queue } from './format/layout.js';
import { LogBatch, type SealedRecord } from './log-batch.js';
import { LogWriter } from './log-writer.js';
import { planPurge, type AppendFileInfo, type PurgeOptions, type RewriteRange } from './purge.js';
import type { StoredEntry } from './protos.js';
import type { RewriteQueueState } from './recovery/checkpoint.js';

const RECYCLE = /^(\d{16})\.recycle$/;
const PREFILL_CHUNK = 1 << 20;

export interface GcOptions extends PurgeOptions {
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
  fs: FileSystem;
  options: GcOptions;
  memtables: Memtables;
  handles: Map<number, FileHandle>;
  reader: EntryReader;
  targetFileSize: number;
  nextSalt: () => number;
  fetch: (region: number, begin: number, end: number) => Promise<StoredEntry[]>;
}

export class GarbageCollector {
  readonly #deps: GcDeps;
  /** Append file sequence → bytes on disk (retired files; the active one is asked live). */
  readonly #appendBytes = new Map<number, number>();
  readonly #strikes = new Map<number, number>();
  #checkpoint: { seq: number; watermark: number; bytes: number } | undefined;
  #rewriteSeq = 0;
  /** Recycle-pool files with their sizes, oldest first. */
  #pool: { name: string; bytes: number }[] = [];
  #recycleSeq = 0;
  /** Files to remove at the next purge (superseded by a checkpoint, stale rewrite files). */
  #doomed: string[] = [];
  /** Retired handles waiting for reads to finish; their names join the pool after closing. */
  #graveyard: { handle: FileHandle; recycleAs?: { name: string; bytes: number } }[] = [];
  #readsInFlight = 0;
  rewriteBytes = 0;
  purges = 0;

  constructor(deps: GcDeps) {
    this.#deps = deps;
  }

  /** Takes over what recovery found: the checkpoint, stale and superseded files, the recycle pool. */
  async adopt(rewrite: RewriteQueueState, superseded: readonly string[], appendFiles: readonly { seq: number; handle: FileHandle }[]): Promise<void> {
    this.#rewriteSeq = rewrite.maxSeq;
    const checkpoint = rewrite.checkpoint;
    if (checkpoint !== undefined) {
      this.#checkpoint = { seq: checkpoint.seq, watermark: checkpoint.watermark, bytes: checkpoint.bytes };
      this.#deps.handles.set(fileId(Queue.Rewrite, checkpoint.seq), checkpoint.handle);
    }
    this.#doomed = [...rewrite.stale, ...superseded];
    for (const file of appendFiles) this.#appendBytes.set(file.seq, await file.handle.size());
    const names = (await this.#deps.fs.list()).filter((n) => RECYCLE.test(n)).sort();
    for (const name of names) {
      const handle = await this.#deps.fs.open(name, { readOnly: true });
      this.#pool.push({ name, bytes: await handle.size() });
      await handle.close();
      this.#recycleSeq = Math.max(this.#recycleSeq, Number(RECYCLE.exec(name)![1]));
    }
  }

  /** Next recycled file for the writer, if any. */
  takeRecycled(): string | undefined {
    return this.#pool.shift()?.name;
  }

  retired(seq: number, bytes: number): void {
    this.#appendBytes.set(seq, bytes);
  }

  /**
   * Fills the recycle pool up to `count` files of `targetFileSize` zeros,
   * written for real (not fallocated), so the first appends into them
   * overwrite written blocks and their fdatasync needs no metadata update.
   */
  async prefill(count: number): Promise<void> {
    const { fs, targetFileSize } = this.#deps;
    const zeros = new Uint8Array(Math.min(PREFILL_CHUNK, targetFileSize));
    while (this.#pool.length < count) {
      const name = this.#nextRecycleName();
      let handle: FileHandle;
      try {
        handle = await fs.open(name, { create: true, exclusive: true, capacityBytes: targetFileSize });
      } catch (error) {
        // Creating a file can take space too (an inode; an encrypting file
        // system's key dictionary and header): a full disk ends prefilling
        // here as well.
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

  readStarted(): void {
    this.#readsInFlight++;
  }

  async readFinished(): Promise<void> {
    this.#readsInFlight--;
    if (this.#readsInFlight === 0 && this.#graveyard.length > 0) await this.#bury();
  }

  /** One GC pass. Runs alone (the engine schedules it between write groups). */
  async purge(activeSeq: number, activeBytes: number): Promise<PurgeResult> {
    const { memtables, options } = this.#deps;
    this.purges++;
    const files: AppendFileInfo[] = [...this.#appendBytes].map(([seq, bytes]) => ({ seq, bytes })).sort((a, b) => a.seq - b.seq);
    files.push({ seq: activeSeq, bytes: activeBytes });
    const plan = planPurge(memtables, files, activeSeq, this.#checkpoint !== undefined, this.#strikes, options);
    for (const region of [...this.#strikes.keys()]) if (!plan.laggards.includes(region)) this.#strikes.delete(region);
    for (const region of plan.laggards) this.#strikes.set(region, (this.#strikes.get(region) ?? 0) + 1);
    const result: PurgeResult = { regionsToCompact: plan.laggards, filesRemoved: 0, filesRecycled: 0, bytesRewritten: 0, watermark: plan.watermark };
    const doomed = this.#doomed;
    this.#doomed = [];
    if (plan.checkpoint) {
      const written = await this.#writeCheckpoint(plan.watermark, plan.entries, plan.keys);
      result.bytesRewritten = written.recordBytes;
      const old = this.#checkpoint;
      if (old !== undefined) {
        doomed.push(logFileName(Queue.Rewrite, old.seq));
        this.#entomb(fileId(Queue.Rewrite, old.seq));
      }
      this.#checkpoint = { seq: written.seq, watermark: plan.watermark, bytes: written.fileBytes };
    }
    // Oldest first, each made durable before the next: without a checkpoint
    // a crash must leave a suffix of the queue, never a gap in it.
    for (const file of files) {
      if (file.seq >= plan.watermark || file.seq === activeSeq) continue;
      if (await this.#retire(file)) result.filesRecycled++;
      else result.filesRemoved++;
      await this.#deps.fs.syncDir();
    }
    for (const name of doomed) {
      await this.#deps.fs.remove(name).catch((error: unknown) => {
        if ((error as { code?: string }).code !== 'NOT_FOUND') throw error;
      });
      result.filesRemoved++;
    }
    if (doomed.length > 0) await this.#deps.fs.syncDir();
    if (this.#readsInFlight === 0) await this.#bury();
    return result;
  }

  stats(activeBytes: number): GcStats {
    let liveBytes = 0;
    for (const memtable of this.#deps.memtables.values()) {
      liveBytes += memtable.liveEntryBytes();
      for (const [key, kv] of memtable.kv) liveBytes += key.length + kv.value.length;
    }
    let appendFileBytes = activeBytes;
    for (const bytes of this.#appendBytes.values()) appendFileBytes += bytes;
    const rewriteFileBytes = this.#checkpoint?.bytes ?? 0;
    const recycledFileBytes = this.#pool.reduce((sum, f) => sum + f.bytes, 0);
    return {
      liveBytes,
      appendFiles: this.#appendBytes.size + 1,
      appendFileBytes,
      rewriteFileBytes,
      recycledFiles: this.#pool.length,
      recycledFileBytes,
      spaceAmplification: liveBytes === 0 ? 0 : (appendFileBytes + rewriteFileBytes) / liveBytes,
      rewriteBytes: this.rewriteBytes,
      purges: this.purges,
    };
  }

  /** Closes handles waiting in the graveyard (on engine close). */
  async close(): Promise<void> {
    this.#readsInFlight = 0;
    await this.#bury();
  }

  /** Writes the checkpoint record to a new rewrite file and points the memtables at the copies. */
  async #writeCheckpoint(
    watermark: number,
    entries: readonly RewriteRange[],
    keys: ReadonlyMap<number, readonly string[]>,
  ): Promise<{ seq: number; recordBytes: number; fileBytes: number }> {
    const { fs, memtables, handles, nextSalt, fetch } = this.#deps;
    const batch = new LogBatch();
    batch.markCheckpoint(watermark);
    for (const range of entries) batch.addEntries(range.region, await fetch(range.region, range.first, range.first + range.count));
    for (const [region, regionKeys] of keys) {
      const kv = memtables.get(region)!.kv;
      for (const key of regionKeys) batch.put(region, Buffer.from(key, 'latin1'), kv.get(key)!.value);
    }
    // Uncompressed, so every entry's new location is a plain file offset.
    const record = batch.seal(Number.POSITIVE_INFINITY);
    const seq = ++this.#rewriteSeq;
    const writer = await LogWriter.create(
      { fs, queue: Queue.Rewrite, targetFileSize: Math.max(this.#deps.targetFileSize, record.bytes.length + 4096), preallocateBytes: 0, nextSalt },
      seq,
      // A rewrite file's header records its checkpoint's watermark, durable
      // before the record: recovery can then tell a checkpoint that never
      // completed from one damaged after the files it replaced were removed.
      watermark,
    );
    const [placed] = await writer.append([record], true);
    const id = fileId(Queue.Rewrite, seq);
    handles.set(id, writer.handle);
    relocate(memtables, record, id, placed!.offset);
    this.rewriteBytes += record.bytes.length;
    return { seq, recordBytes: record.bytes.length, fileBytes: writer.fileBytes };
  }

  async #retire(file: AppendFileInfo): Promise<boolean> {
    const { fs, options } = this.#deps;
    const name = logFileName(Queue.Append, file.seq);
    const recycle = this.#pool.length + this.#graveyard.filter((g) => g.recycleAs !== undefined).length < options.recycleFiles;
    // Forget the file only once it is gone: a file whose removal failed must
    // stay first in line, or the next pass removes its successor and leaves
    // a gap in the queue that recovery refuses.
    if (recycle) {
      const target = this.#nextRecycleName();
      await fs.rename(name, target);
      this.#appendBytes.delete(file.seq);
      this.#entomb(fileId(Queue.Append, file.seq), { name: target, bytes: file.bytes });
      return true;
    }
    await fs.remove(name);
    this.#appendBytes.delete(file.seq);
    this.#entomb(fileId(Queue.Append, file.seq));
    return false;
  }

  #entomb(id: number, recycleAs?: { name: string; bytes: number }): void {
    const handle = this.#deps.handles.get(id);
    this.#deps.handles.delete(id);
    this.#deps.reader.forgetFile(id);
    if (handle !== undefined) this.#graveyard.push({ handle, recycleAs });
    else if (recycleAs !== undefined) this.#pool.push(recycleAs);
  }

  async #bury(): Promise<void> {
    const graves = this.#graveyard;
    this.#graveyard = [];
    for (const grave of graves) {
      await grave.handle.close().catch(() => undefined);
      if (grave.recycleAs !== undefined) this.#pool.push(grave.recycleAs);
    }
  }

  #nextRecycleName(): string {
    return `${String(++this.#recycleSeq).padStart(16, '0')}.recycle`;
  }
}

/** Points each copied entry and key at its place in the checkpoint record. */
function relocate(memtables: Memtables, record: SealedRecord, id: number, offset: number): void {
  const location = { fileId: id, recordOffset: offset, payloadLength: record.payloadLength, compressed: false };
  for (const item of record.items.items) {
    const memtable = memtables.get(item.region);
    if (memtable === undefined) continue;
    if (item.kind === ItemKind.Entries) {
      memtable.relocate(item.index, item.count, location, record.items.entryOffsets, record.items.entryLengths, item.entryStart);
    } else if (item.kind === ItemKind.Put) {
      const key = Buffer.from(record.payload.buffer, record.payload.byteOffset + item.keyOffset, item.keyLength).toString('latin1');
      const kv = memtable.kv.get(key);
      if (kv !== undefined) kv.fileId = id;
    }
  }
}
