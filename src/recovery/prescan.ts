/**
 * Parallel replay of one log file: a RecordScanner whose records were
 * verified ahead on worker threads. The main thread reads the file in chunks
 * through the FileSystem (so a backend's read path, decryption included,
 * stays the only way to the bytes), a few chunks ahead of the record it
 * applies, and sends each to a worker (replay-chunk.ts). `read(offset)`
 * answers from a chunk's verified records when they hold one at `offset`,
 * and otherwise falls back to the serial read: damage, torn tails, zero
 * tails and records a chunk could not see whole are all read and decided
 * exactly as in a serial replay, so both give the same state and report.
 */
import type { FileHandle } from '../filesystem.js';
import { assert } from '../assert.js';
import { FILE_HEADER_SIZE, RECORD_ALIGNMENT, roundUp } from '../format/layout.js';
import { readFully } from '../read-fully.js';
import { ChunkRecords, scanChunk, type ChunkJob } from './replay-chunk.js';
import { ReplayPool, type PoolJob } from './replay-pool.js';
import { RecordScanner, type ScannedRecord, type StopReason, type WindowOptions } from './scanner.js';

export interface ParallelReplayOptions {
  /** Worker threads. */
  threads: number;
  /** Bytes of records per chunk (default 1 MiB); an eighth more is read past its end, so a record that starts in it and ends in the next is verified whole. */
  chunkBytes?: number;
  /** Smaller files replay serially (default 16 MiB): their chunks would not pay for the round trips. */
  minFileBytes?: number;
  /** False: the main thread always waits for a worker instead of verifying a chunk no worker has begun (tests of the worker path). */
  mainVerifies?: boolean;
}

/** Chunks verified by workers and by the main thread, and records served from them, since the process started (tests read these). */
export const prescanCounters = { workerChunks: 0, mainChunks: 0, records: 0 };

/**
 * 1 MiB: a chunk is copied in by the read and then checksummed, so it should
 * still be in the CPU cache when the worker gets to it (4 MiB chunks
 * measured slower than serial replay, bench/replay.ts).
 */
const CHUNK_BYTES = 1 << 20;
const MIN_PARALLEL_FILE_BYTES = 16 << 20;

/** The pool's shared slots, kept across the files of one recovery: a slot is made when none is free. */
class ChunkSlots {
  readonly #free: number[] = [];
  constructor(
    readonly pool: ReplayPool,
    readonly chunkBytes: number,
    readonly slotBytes: number,
    readonly mainVerifies: boolean,
  ) {}
  take(): number {
    return this.#free.pop() ?? this.pool.share(new SharedArrayBuffer(this.slotBytes));
  }
  give(slot: number): void {
    this.#free.push(slot);
  }
}

interface Chunk {
  slot: number;
  bytes: SharedArrayBuffer;
  /** The job once its bytes are read and offered to the workers; undefined when the read failed. */
  offered: Promise<{ job: ChunkJob; pooled: PoolJob } | undefined>;
  /** What the chunk holds, once someone asked. */
  records?: Promise<ChunkRecords | undefined>;
}

export class PrescannedScanner extends RecordScanner {
  readonly #handle: FileHandle;
  readonly #size: number;
  readonly #slots: ChunkSlots;
  readonly #ahead: number;
  /** Chunk k covers records starting in [FILE_HEADER_SIZE + k·chunkBytes, +chunkBytes). */
  readonly #chunks = new Map<number, Chunk>();
  readonly #chunkCount: number;
  #scheduled = 0;
  /** Dropped chunks whose slot is not free yet: `idle()` waits for them. */
  readonly #releasing = new Set<Promise<void>>();

  constructor(handle: FileHandle, size: number, salt: number, options: WindowOptions, slots: ChunkSlots, ahead: number) {
    super(handle, size, salt, options);
    this.#handle = handle;
    this.#size = size;
    this.#slots = slots;
    this.#ahead = ahead;
    this.#chunkCount = Math.ceil(Math.max(0, size - FILE_HEADER_SIZE) / slots.chunkBytes);
    this.#schedule(0);
  }

  override async read(offset: number): Promise<ScannedRecord | StopReason> {
    const k = Math.floor((offset - FILE_HEADER_SIZE) / this.#slots.chunkBytes);
    if (offset >= FILE_HEADER_SIZE && k < this.#chunkCount) {
      this.#schedule(k);
      // Records before this chunk are done with (a scanner's record is valid until its next call).
      for (const [j, chunk] of this.#chunks) if (j < k) this.#drop(j, chunk);
      const chunk = this.#chunks.get(k);
      const record = chunk === undefined ? undefined : (await this.#recordsOf(chunk))?.at(offset);
      if (record !== undefined) {
        prescanCounters.records++;
        return record;
      }
    }
    return super.read(offset);
  }

  /** Waits for every chunk read and job in flight, so none touches the handle or a slot after this. */
  override async idle(): Promise<void> {
    for (const [j, chunk] of this.#chunks) this.#drop(j, chunk);
    this.#scheduled = this.#chunkCount;
    await Promise.all(this.#releasing);
    await super.idle();
  }

  /** Starts chunks from `k` on, up to `ahead` past it. */
  #schedule(k: number): void {
    if (this.#scheduled < k) this.#scheduled = k;
    for (; this.#scheduled < Math.min(this.#chunkCount, k + this.#ahead); this.#scheduled++) {
      this.#chunks.set(this.#scheduled, this.#offer(this.#scheduled));
    }
  }

  /** Reads chunk k into a free slot and offers it to the workers. */
  #offer(k: number): Chunk {
    const base = FILE_HEADER_SIZE + k * this.#slots.chunkBytes;
    const { pool, slotBytes, chunkBytes } = this.#slots;
    const slot = this.#slots.take();
    const bytes = pool.slot(slot);
    const offered = readFully(this.#handle, new Uint8Array(bytes), 0, Math.min(slotBytes, this.#size - base), base).then(
      (length) => {
        const job = { id: 0, slot, length, base, chunkEnd: Math.min(this.#size, base + chunkBytes), salt: this.salt, exactStart: k === 0 };
        return { job, pooled: pool.run(job) };
      },
      // The serial read of these offsets reports whatever went wrong.
      () => undefined,
    );
    return { slot, bytes, offered };
  }

  /**
   * The chunk's records: a worker's, or, when no worker has begun it (still
   * starting, or busy), verified here. Undefined when it reports none (its
   * read failed, or a worker threw or died): the serial read takes over.
   */
  #recordsOf(chunk: Chunk): Promise<ChunkRecords | undefined> {
    chunk.records ??= chunk.offered.then(async (offered) => {
      if (offered === undefined) return undefined;
      if (this.#slots.mainVerifies && offered.pooled.claim()) {
        prescanCounters.mainChunks++;
        try {
          return new ChunkRecords(scanChunk(offered.job, chunk.bytes), chunk.bytes);
        } catch {
          return undefined;
        }
      }
      const result = await offered.pooled.result.catch(() => undefined);
      if (result !== undefined) prescanCounters.workerChunks++;
      return result === undefined || result.failed !== undefined ? undefined : new ChunkRecords(result, chunk.bytes);
    });
    return chunk.records;
  }

  /** Frees chunk j's slot once no read or worker uses it; a job nobody began is claimed and abandoned. */
  #drop(j: number, chunk: Chunk): void {
    this.#chunks.delete(j);
    const release = (async () => {
      if (chunk.records !== undefined) {
        await chunk.records;
      } else {
        const offered = await chunk.offered;
        if (offered !== undefined && !offered.pooled.claim()) await offered.pooled.result.catch(() => undefined);
      }
      this.#slots.give(chunk.slot);
    })();
    this.#releasing.add(release);
    void release.then(() => this.#releasing.delete(release));
  }
}

/** The workers and buffers of one parallel recovery; `openScanner` picks serial or parallel per file. */
export class ParallelReplay {
  readonly #pool: ReplayPool;
  readonly #slots: ChunkSlots;

  constructor(options: ParallelReplayOptions) {
    const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    assert(chunkBytes > 0 && chunkBytes % RECORD_ALIGNMENT === 0, 'ParallelReplay: chunks start 8-byte aligned');
    const minFileBytes = options.minFileBytes ?? MIN_PARALLEL_FILE_BYTES;
    // Enough chunks in flight to cover a worker's wake-up and the reads: a few MiB per worker.
    const ahead = 4 + 4 * options.threads;
    this.#pool = new ReplayPool(options.threads);
    this.#slots = new ChunkSlots(
      this.#pool,
      chunkBytes,
      roundUp(chunkBytes + chunkBytes / 8, RECORD_ALIGNMENT),
      options.mainVerifies ?? true,
    );
    this.openScanner = (handle, size, salt, windowOptions) =>
      size >= minFileBytes
        ? new PrescannedScanner(handle, size, salt, windowOptions, this.#slots, ahead)
        : new RecordScanner(handle, size, salt, windowOptions);
  }

  readonly openScanner: OpenScanner;

  close(): Promise<void> {
    return this.#pool.close();
  }
}

export type OpenScanner = (handle: FileHandle, size: number, salt: number, options: WindowOptions) => RecordScanner;
