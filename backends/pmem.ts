/**
 * PmemFs: the FileSystem seam over memory-mapped files, for persistent memory
 * (a DAX mount such as /mnt/pmem0) and, with a weaker guarantee, any other
 * file system (/dev/shm stands in for pmem in tests). docs/pmem.md is the
 * user-facing account; this comment is the maintainer's.
 *
 * A write is a copy into a MAP_SHARED mapping; a read is a copy out of it;
 * the barrier persists exactly the ranges written since the last one:
 * - `cacheline`: the mapping is MAP_SHARED_VALIDATE|MAP_SYNC (the kernel
 *   accepts that only on DAX, and then a flushed store is durable with no
 *   syscall), and the barrier is clwb/clflushopt/clflush over the dirty
 *   lines plus sfence, in the addon (hardware/memory.cc);
 * - `msync`: msync(MS_SYNC) of the page-aligned dirty ranges (the page cache
 *   writes them back; also correct on DAX without MAP_SYNC).
 * `flush: 'auto'` takes `cacheline` exactly where MAP_SYNC is accepted and the
 * CPU has a flush instruction. Forcing `cacheline` elsewhere runs the same
 * instructions on page-cache memory: the code path is exercised, but nothing
 * is durable until the kernel writes the page back (tests only).
 *
 * ## On-disk layout, and why
 *
 *   [0, 4096)            header page: word 0 magic "RLPMEM01", word 1 the
 *                        logical size, word 2 the zero high-water mark
 *                        (little-endian u64 each, all in cache line 0)
 *   [4096, 4096 + cap)   data: logical offset x lives at file offset 4096 + x
 *
 * The file's real length is 4096 + capacity; the length the engine sees is
 * the logical size in the header. The alternatives do not survive contact:
 * - real length = logical length, mapping the capacity past EOF: touching a
 *   page past EOF raises SIGBUS (which kills the process), and every append
 *   would need ftruncate + fsync to make the new length durable, the very
 *   syscalls pmem exists to avoid;
 * - real length = capacity, size() = capacity: breaks the seam's size
 *   semantics (a fresh file must be empty, reads are short at EOF), and
 *   recovery would scan the whole capacity of every file.
 * The cost is that a PmemFs directory is PmemFs-only: its files are not
 * plain log files for PosixFs (docs/pmem.md says so). Every file PmemFs
 * creates has the header, so there is never a question of which format a
 * file is in; a file without the magic is refused as CORRUPTION.
 *
 * The logical size is one aligned 8-byte word written with Atomics.store, so
 * it is never torn (x86 makes aligned 8-byte stores power-fail atomic on
 * pmem). The barrier flushes the dirty data first, fences, then flushes the
 * header line: a durable size never covers data that was not made durable by
 * the same or an earlier barrier. Between barriers the cache may write the
 * header line back early (hardware evicts lines at will), so after a crash
 * the size may cover unsynced bytes that did not all make it: those read as
 * whatever was durable there, the torn tail every backend may leave and
 * recovery cuts. The crash model in backends/fault/pmem.ts is exactly this.
 *
 * ## Zeros past the end
 *
 * Truncate is logical (the bytes past the new size stay in place), so growth
 * must zero what it exposes. Zeroing on every extension would rewrite the
 * engine's 8 MiB preallocations on a fresh file, so the header keeps a high-
 * water mark: every byte at or past it is zero, durably. Before anything is
 * stored at or past the mark, the mark is raised (in 1 MiB steps) and its
 * line flushed, so no store can reach the media ahead of the mark that covers
 * it, whatever the cache evicts and whenever the power fails. Extensions
 * zero only [old size, mark); the zeros are dirty like any write, so the
 * barrier that publishes the new size flushes them first.
 *
 * ## Never SIGBUS
 *
 * A SIGBUS cannot be caught in Node; it kills the process. It comes from a
 * page past EOF, or from a page the file system cannot allocate on fault
 * (tmpfs and DAX allocate on first touch; a full device fails the fault).
 * So: the mapping never exceeds the file's length (the file only ever grows,
 * and grows before it is remapped); every byte is fallocate()d before the
 * first store to it or the first size change that exposes it (ahead, in
 * 1 MiB chunks, so creating a 128 MiB file does not stall on zeroing 128 MiB
 * of tmpfs pages), which turns "device full" into NO_SPACE before any store;
 * and reads stay below the logical size, all of which was allocated before
 * the size covered it. What remains is outside this process's control: an
 * external truncate of a mapped file, or a media error (machine check) on
 * the pmem itself.
 *
 * ## Unmapping is safe
 *
 * Every operation runs synchronously from its validation to its last byte
 * copied (the promise only reports the result), so close(), a remap and
 * munmap can never run in the middle of a copy: there is nothing to
 * reference-count. No view of the mapping leaves this module (reads copy into
 * the caller's buffer), and munmap detaches the ArrayBuffer, so a stale view
 * inside this module would read as empty, not fault. The price of the
 * synchronous design is that a barrier blocks the event loop while it runs:
 * microseconds for cache-line flushes, a writeback for msync on a disk.
 *
 * Handles on the same inode share one mapping, one dirty set and one size
 * (the header), so two handles see each other's writes, as on POSIX. Another
 * PmemFs over the same directory maps the file separately and shares the
 * header through the page cache, remapping if it finds the file grown.
 */

import * as fs from 'node:fs';

import { ClosedError, CorruptionError, InvalidArgumentError, IoError, UnsupportedError, fromSystemError } from '../src/errors.js';
import type { FileHandle, FileSystem, FsCapabilities, OpenOptions, WriteOptions } from '../src/filesystem.js';
import { loadNative, requireNative, type CpuFlushInfo, type NativeBinding } from '../hardware/native.js';
import { choosePmemFlush, mapSyncAccepted, type PmemFlushPath } from '../hardware/probe.js';
import { checkCount, checkRange, checkReadArgs, checkWriteArgs } from './arguments.js';
import { DirectoryFs } from './directory-fs.js';
import { readOnlyError } from './error-edge.js';
import { FILE_MODE, errnoOf, makeRoot } from './posix-directory.js';

export type { PmemFlushPath } from '../hardware/probe.js';

/** Which barrier to use: `auto` picks per file (cacheline where MAP_SYNC is accepted, msync elsewhere). */
export type PmemFlushOption = 'auto' | 'cacheline' | 'msync';

export interface PmemFsOptions {
  /** Default `auto`. `cacheline` needs a CPU with clflush at least (UNSUPPORTED otherwise). */
  flush?: PmemFlushOption;
  /**
   * Capacity of files opened without `capacityBytes` (small metadata files,
   * tests). Default 64 KiB; such files grow by remapping. Costs address space
   * and a sparse file length, not memory: bytes are allocated as they are used.
   */
  defaultCapacityBytes?: number;
}

export interface PmemStats {
  /** The `flush` option as given. */
  readonly requested: PmemFlushOption;
  /**
   * The barrier a writable file gets here: known from the option, or for
   * `auto` from a MAP_SYNC trial at init() (undefined before init). Each
   * handle reports its own (`PmemFileHandle.flush`), which can differ only on
   * a mount with per-file DAX (dax=inode).
   */
  readonly flush: PmemFlushPath | undefined;
  /** Whether init()'s trial mapping got MAP_SYNC (a DAX mount); undefined for `msync`, which never asks. */
  readonly mapSync: boolean | undefined;
  /** The cache-line flush instruction the CPU offers (CPUID), used by `cacheline`. */
  readonly instruction: CpuFlushInfo['instruction'];
  readonly lineSize: number;
  /** Writable files mapped now, by barrier path. */
  readonly mappedFiles: { readonly cacheline: number; readonly msync: number };
  /** Barriers that flushed something. */
  readonly barriers: number;
  /** Cache lines written back by `cacheline` barriers (header line included). */
  readonly linesFlushed: number;
  /** msync(2) calls made by `msync` barriers. */
  readonly msyncCalls: number;
  /** fallocate(2) calls reserving space ahead of stores. */
  readonly allocations: number;
  /** Files grown past their capacity (ftruncate + fsync + remap). */
  readonly growths: number;
  /** Mappings replaced (growth here, or growth by another PmemFs seen here). */
  readonly remaps: number;
}

// ---- layout ----------------------------------------------------------------

/** Header page; data starts here. A page so the data is page-aligned for msync and DAX huge pages. */
const DATA_OFFSET = 4096;
/** Bytes of the header that matter (three words), inside cache line 0. */
const HEADER_BYTES = 24;
const WORD_MAGIC = 0;
const WORD_SIZE = 1;
const WORD_HIGH_WATER = 2;
/** "RLPMEM01" read as a little-endian u64; the last two bytes are the layout version. */
const MAGIC = new DataView(new TextEncoder().encode('RLPMEM01').buffer).getBigUint64(0, true);

const PAGE = 4096;
const MIN_CAPACITY = PAGE;
const DEFAULT_CAPACITY = 64 * 1024;
/** Step for fallocate-ahead and for raising the high-water mark: one extra flush / syscall per MiB written. */
const CHUNK = 1 << 20;
/** Past this many disjoint dirty ranges they collapse into one covering range (more flushing, bounded memory). */
const MAX_DIRTY_RANGES = 512;

function roundUp(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

/** Mutable counters behind PmemStats, shared by a PmemFs and its files. */
interface Counters {
  barriers: number;
  linesFlushed: number;
  msyncCalls: number;
  allocations: number;
  growths: number;
  remaps: number;
}

/**
 * Byte ranges of the data region stored since the last barrier, sorted and
 * merged. Appends (the engine's pattern) extend the last range in O(1).
 */
class DirtyRanges {
  #starts: number[] = [];
  #ends: number[] = [];

  get empty(): boolean {
    return this.#starts.length === 0;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const starts = this.#starts;
    const ends = this.#ends;
    const last = starts.length - 1;
    if (last >= 0 && start >= starts[last]! && start <= ends[last]!) {
      if (end > ends[last]!) ends[last] = end;
      return;
    }
    // First range whose end reaches `start`; everything it overlaps merges in.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! < start) lo = mid + 1;
      else hi = mid;
    }
    let mergeEnd = lo;
    let newStart = start;
    let newEnd = end;
    while (mergeEnd < starts.length && starts[mergeEnd]! <= end) {
      newStart = Math.min(newStart, starts[mergeEnd]!);
      newEnd = Math.max(newEnd, ends[mergeEnd]!);
      mergeEnd++;
    }
    starts.splice(lo, mergeEnd - lo, newStart);
    ends.splice(lo, mergeEnd - lo, newEnd);
    if (starts.length > MAX_DIRTY_RANGES) {
      this.#starts = [starts[0]!];
      this.#ends = [ends[ends.length - 1]!];
    }
  }

  /** The ranges as [start, end) pairs, and an empty set. */
  take(): Array<readonly [number, number]> {
    const out = this.#starts.map((s, i) => [s, this.#ends[i]!] as const);
    this.#starts = [];
    this.#ends = [];
    return out;
  }
}

/**
 * One inode as mapped by one PmemFs (in one mode: a read-only open maps it
 * PROT_READ, apart from a writable one). Every method is synchronous; see the
 * module comment for why that is what makes unmapping safe.
 */
class MappedFile {
  readonly key: string;
  readonly writable: boolean;
  handles = 1;
  closed = false;
  readonly #native: NativeBinding;
  readonly #counters: Counters;
  readonly #requested: PmemFlushOption;
  readonly #instruction: CpuFlushInfo['instruction'];
  #fd: number;
  #buffer: ArrayBuffer | undefined;
  #bytes = new Uint8Array(0);
  #words = new BigUint64Array(0);
  /** Data bytes mapped (mapping length − DATA_OFFSET). */
  #capacity = 0;
  /** Data bytes known fallocate()d; 0 after open (fallocate of an allocated range is cheap and harmless). */
  #allocated = 0;
  /**
   * Whether the whole header page is known allocated. A store faults in the
   * whole page, and where blocks are smaller than a page (1 KiB-block ext4)
   * a header written by an older version holds only its first block: on a
   * full device that store would SIGBUS instead of failing.
   */
  #headerAllocated = false;
  #flush: PmemFlushPath | 'none' = 'none';
  #mapSync = false;
  /** The size word changed since the last barrier. */
  #sizeDirty = false;
  readonly #dirty = new DirtyRanges();

  constructor(
    key: string,
    fd: number,
    writable: boolean,
    native: NativeBinding,
    counters: Counters,
    requested: PmemFlushOption,
    instruction: CpuFlushInfo['instruction'],
  ) {
    this.key = key;
    this.#fd = fd;
    this.writable = writable;
    this.#native = native;
    this.#counters = counters;
    this.#requested = requested;
    this.#instruction = instruction;
  }

  get flush(): PmemFlushPath | 'none' {
    return this.#flush;
  }

  get mapSync(): boolean {
    return this.#mapSync;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Maps the whole file and checks its header. A read-only file shorter than
   * the header page (a create that died before its header) stays unmapped
   * and reads as empty; `name` is for error messages.
   */
  attach(name: string): void {
    try {
      const length = fs.fstatSync(this.#fd).size;
      // Only a read-only open can find a file shorter than the header page:
      // a writable one initialised it.
      if (length < DATA_OFFSET) return;
      this.#map(length);
      const magic = Atomics.load(this.#words, WORD_MAGIC);
      if (magic !== MAGIC && magic !== 0n) {
        throw new CorruptionError(`open ${name}: not a PmemFs file (bad header magic)`, { file: name, offset: 0 });
      }
      const size = this.#word(WORD_SIZE);
      const highWater = this.#word(WORD_HIGH_WATER);
      if (size > this.#capacity || highWater > this.#capacity) {
        throw new CorruptionError(
          `open ${name}: header says size ${size} / high-water ${highWater} but the file holds ${this.#capacity} data bytes`,
          { file: name, offset: 8 },
        );
      }
    } catch (error) {
      this.release();
      throw error;
    }
  }

  size(): number {
    if (this.#buffer === undefined) this.#refreshUnmapped();
    return this.#buffer === undefined ? 0 : this.#word(WORD_SIZE);
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number, name: string): number {
    const size = this.size();
    if (position >= size || length === 0) return 0;
    const n = Math.min(length, size - position);
    if (!this.#ensureMapped(position + n)) {
      throw new CorruptionError(`read ${name}: size ${size} exceeds the file's capacity`, { file: name, offset: position });
    }
    target.set(this.#bytes.subarray(DATA_OFFSET + position, DATA_OFFSET + position + n), targetOffset);
    return n;
  }

  write(buffers: readonly Uint8Array[], position: number, total: number, name: string): void {
    if (total === 0) return; // pwrite of nothing: no size change, as on POSIX
    const end = position + total;
    const size = this.size();
    this.#prepare(end, name);
    const highWater = this.#word(WORD_HIGH_WATER);
    if (position > size) this.#zero(size, Math.min(position, highWater));
    if (end > highWater) this.#raiseHighWater(end);
    let at = DATA_OFFSET + position;
    const bytes = this.#bytes;
    for (const buffer of buffers) {
      bytes.set(buffer, at);
      at += buffer.byteLength;
    }
    this.#dirty.add(position, end);
    if (end > size) this.#setSize(end);
  }

  /** Sets the logical size; growth exposes zeros (see "Zeros past the end"). */
  resize(newSize: number, name: string): void {
    const size = this.size();
    if (newSize === size) return;
    if (newSize > size) {
      this.#prepare(newSize, name);
      this.#zero(size, Math.min(newSize, this.#word(WORD_HIGH_WATER)));
    }
    this.#setSize(newSize);
  }

  /** The barrier: dirty data, a fence, then the header line, exactly the ranges written. */
  barrier(): void {
    if (!this.writable || this.#buffer === undefined) return;
    const ranges = this.#dirty.take();
    const header = this.#sizeDirty;
    this.#sizeDirty = false;
    if (ranges.length === 0 && !header) return;
    // Taken before flushing: if a flush fails, the caller must treat the data
    // as lost (the seam's fsync-failure rule), and a retry must not claim it.
    this.#counters.barriers++;
    if (this.#flush === 'cacheline') {
      for (const [start, end] of ranges) {
        this.#counters.linesFlushed += this.#native.flushRange(this.#bytes, DATA_OFFSET + start, end - start);
      }
      // flushRange ended with sfence: the data is durable before the size that covers it.
      if (header) this.#counters.linesFlushed += this.#native.flushRange(this.#bytes, 0, HEADER_BYTES);
    } else {
      for (const [start, end] of ranges) {
        this.#native.msync(this.#buffer, DATA_OFFSET + start, end - start);
        this.#counters.msyncCalls++;
      }
      if (header) {
        this.#native.msync(this.#buffer, 0, HEADER_BYTES);
        this.#counters.msyncCalls++;
      }
    }
  }

  /** Unmaps and closes the descriptor. Idempotent. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    const buffer = this.#buffer;
    this.#buffer = undefined;
    this.#bytes = new Uint8Array(0);
    this.#words = new BigUint64Array(0);
    try {
      if (buffer !== undefined) this.#native.munmap(buffer);
    } finally {
      fs.closeSync(this.#fd);
    }
  }

  // ---- internals ---------------------------------------------------------

  #word(index: number): number {
    return Number(Atomics.load(this.#words, index));
  }

  /** An aligned 8-byte store: never torn, in the cache or on the media. */
  #storeWord(index: number, value: number): void {
    if (!this.#headerAllocated) {
      this.#reserve(0, DATA_OFFSET);
      this.#headerAllocated = true;
    }
    Atomics.store(this.#words, index, BigInt(value));
  }

  #setSize(size: number): void {
    this.#storeWord(WORD_SIZE, size);
    this.#sizeDirty = true;
  }

  /** Persists the header line now (used for the high-water mark, which must precede the stores it covers). */
  #persistHeader(): void {
    if (this.#flush === 'cacheline') {
      this.#counters.linesFlushed += this.#native.flushRange(this.#bytes, 0, HEADER_BYTES);
    } else {
      this.#native.msync(this.#buffer!, 0, HEADER_BYTES);
      this.#counters.msyncCalls++;
    }
  }

  #raiseHighWater(end: number): void {
    const mark = Math.min(this.#capacity, roundUp(end, CHUNK));
    this.#storeWord(WORD_HIGH_WATER, mark);
    this.#persistHeader();
  }

  /** Zeroes data bytes [start, end). */
  #zero(start: number, end: number): void {
    if (end <= start) return;
    this.#allocate(end);
    this.#bytes.fill(0, DATA_OFFSET + start, DATA_OFFSET + end);
    this.#dirty.add(start, end);
  }

  /** Makes [0, end) mapped and allocated, growing the file if needed. */
  #prepare(end: number, name: string): void {
    if (!this.#ensureMapped(end)) this.#grow(end, name);
    this.#allocate(end);
  }

  /**
   * fallocate()s ahead of `end`, so no store can fault on a page the file
   * system cannot allocate (SIGBUS); ENOSPC surfaces here as NO_SPACE,
   * before anything is stored.
   */
  #allocate(end: number): void {
    if (end <= this.#allocated) return;
    const needed = Math.min(this.#capacity, roundUp(end, PAGE));
    const ahead = Math.min(this.#capacity, roundUp(end, CHUNK));
    const start = this.#allocated;
    let target = ahead;
    try {
      this.#fallocate(start, ahead);
    } catch (error) {
      // Ahead is a courtesy: a nearly full device still takes what fits.
      if (errnoOf(error) !== 'ENOSPC' || ahead === needed) throw error;
      this.#fallocate(start, needed);
      target = needed;
    }
    this.#counters.allocations++;
    this.#allocated = target;
  }

  #fallocate(start: number, end: number): void {
    this.#reserve(DATA_OFFSET + start, DATA_OFFSET + end);
  }

  /** Allocates file bytes [start, end) (file offsets, not data offsets). */
  #reserve(start: number, end: number): void {
    try {
      this.#native.fallocate(this.#fd, 0, start, end - start);
    } catch (error) {
      if (errnoOf(error) !== 'EOPNOTSUPP' && errnoOf(error) !== 'ENOTSUP' && errnoOf(error) !== 'ENOSYS') throw error;
      this.#allocateByWriting(start, end);
    }
  }

  /**
   * Allocation without fallocate: each chunk is read and written back as it
   * is, which allocates holes (they read as zeros) and leaves data intact.
   */
  #allocateByWriting(start: number, end: number): void {
    const chunk = new Uint8Array(Math.min(CHUNK, end - start));
    for (let at = start; at < end; at += chunk.byteLength) {
      const n = Math.min(chunk.byteLength, end - at);
      const got = fs.readSync(this.#fd, chunk, 0, n, at);
      chunk.fill(0, got, n);
      fs.writeSync(this.#fd, chunk, 0, n, at);
    }
  }

  /** Whether [0, end) is mapped, remapping if the file has grown (through another PmemFs). */
  #ensureMapped(end: number): boolean {
    if (end <= this.#capacity) return true;
    const length = fs.fstatSync(this.#fd).size;
    if (length - DATA_OFFSET < end) return false;
    this.#map(length);
    return true;
  }

  /** Grows the file past `end` (doubling: amortised) and remaps it. */
  #grow(end: number, name: string): void {
    const capacity = roundUp(Math.max(end, this.#capacity * 2, MIN_CAPACITY), PAGE);
    const length = DATA_OFFSET + capacity;
    if (!Number.isSafeInteger(length)) throw new InvalidArgumentError(`write ${name}: offset ${end} is past any capacity`, { file: name });
    fs.ftruncateSync(this.#fd, length);
    // The new length must be durable before any size word beyond the old
    // capacity can be: a cache-line barrier never calls into the file system.
    fs.fsyncSync(this.#fd);
    this.#counters.growths++;
    this.#map(length);
  }

  /** Replaces the mapping with one of `length` bytes (the whole file). */
  #map(length: number): void {
    const wantSync = this.writable && this.#requested !== 'msync';
    const mapping = this.#native.mmap(this.#fd, 0, length, this.writable, wantSync);
    const old = this.#buffer;
    this.#buffer = mapping.buffer;
    this.#bytes = new Uint8Array(mapping.buffer);
    this.#words = new BigUint64Array(mapping.buffer, 0, HEADER_BYTES / 8);
    this.#capacity = length - DATA_OFFSET;
    this.#mapSync = mapping.mapSync;
    this.#flush = this.writable ? choosePmemFlush(this.#requested, mapping.mapSync, this.#instruction) : 'none';
    if (old !== undefined) {
      this.#counters.remaps++;
      // Detaches `old`: nothing can read through it afterwards, not even by mistake.
      this.#native.munmap(old);
    }
  }

  /** A read-only file that was shorter than its header: mapped once a writer has initialised it. */
  #refreshUnmapped(): void {
    const length = fs.fstatSync(this.#fd).size;
    if (length >= DATA_OFFSET) this.#map(length);
  }
}

/** What a PmemFs handle tells beyond the seam: which barrier its writes get. */
export interface PmemFileHandle extends FileHandle {
  readonly readOnly: boolean;
  /** The barrier this handle's writes get ('none' on a read-only handle, which never flushes). CLOSED once closed. */
  readonly flush: PmemFlushPath | 'none';
  /** Whether the file is mapped with MAP_SYNC (a DAX mount): flushed stores are durable without a syscall. */
  readonly mapSync: boolean;
  /** Data bytes the file holds before it has to grow (and remap). */
  readonly capacity: number;
}

/** A handle: a name, a mode and a reference to the shared mapping. */
class PmemHandle implements PmemFileHandle {
  readonly name: string;
  readonly readOnly: boolean;
  #file: MappedFile | undefined;
  readonly #release: (file: MappedFile) => void;

  constructor(name: string, file: MappedFile, readOnly: boolean, release: (file: MappedFile) => void) {
    this.name = name;
    this.#file = file;
    this.readOnly = readOnly;
    this.#release = release;
  }

  get flush(): PmemFlushPath | 'none' {
    return this.#live('flush').flush;
  }

  get mapSync(): boolean {
    return this.#live('mapSync').mapSync;
  }

  get capacity(): number {
    return this.#live('capacity').capacity;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#run('read', () => {
      checkReadArgs(target, targetOffset, length, position, this.name);
      return this.#live('read').read(target, targetOffset, length, position, this.name);
    });
  }

  write(buffers: readonly Uint8Array[], position: number, options: WriteOptions = {}): Promise<void> {
    return this.#run('write', () => {
      const total = checkWriteArgs(buffers, position, this.name);
      const file = this.#writable('write');
      file.write(buffers, position, total, this.name);
      if (options.sync === true) file.barrier();
    });
  }

  sync(): Promise<void> {
    return this.#run('sync', () => this.#live('sync').barrier());
  }

  truncate(size: number): Promise<void> {
    return this.#run('truncate', () => {
      checkCount(size, 'size', 'truncate', this.name);
      this.#writable('truncate').resize(size, this.name);
    });
  }

  /**
   * Grows the logical size to `offset + length` (zeros) and reserves the
   * space with fallocate, so later stores there cannot fail or fault.
   */
  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', () => {
      const end = checkRange(offset, length, 'preallocate', this.name);
      const file = this.#writable('preallocate');
      if (end > file.size()) file.resize(end, this.name);
    });
  }

  size(): Promise<number> {
    return this.#run('size', () => this.#live('size').size());
  }

  /** Idempotent. The mapping goes when the last handle on the inode closes. */
  async close(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    try {
      this.#release(file);
    } catch (error) {
      throw fromSystemError(error, 'close', this.name);
    }
  }

  #live(operation: string): MappedFile {
    const file = this.#file;
    if (file === undefined || file.closed) {
      throw new ClosedError(`${operation} ${this.name}: handle is closed`, { file: this.name });
    }
    return file;
  }

  #writable(operation: string): MappedFile {
    const file = this.#live(operation);
    if (this.readOnly) throw readOnlyError(operation, this.name);
    return file;
  }

  /** Runs a synchronous body and reports through a promise; never throws synchronously. */
  #run<T>(operation: string, body: () => T): Promise<T> {
    try {
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(fromSystemError(error, operation, this.name));
    }
  }
}

export class PmemFs extends DirectoryFs<PmemFileHandle> implements FileSystem {
  readonly capabilities: FsCapabilities = {
    backend: 'pmem',
    writeAlignment: 1,
    // Files grow past capacityBytes by remapping (ftruncate + fsync + mmap):
    // correct, just slower than staying inside the capacity.
    fixedCapacity: false,
    // A store costs the same flush whether it overwrites or appends.
    overwriteIsCheaper: false,
  };
  readonly description: string;
  readonly #native: NativeBinding;
  readonly #cpu: CpuFlushInfo;
  readonly #requested: PmemFlushOption;
  readonly #defaultCapacity: number;
  readonly #files = new Map<string, MappedFile>();
  readonly #counters: Counters = { barriers: 0, linesFlushed: 0, msyncCalls: 0, allocations: 0, growths: 0, remaps: 0 };
  #resolved: { flush: PmemFlushPath; mapSync: boolean | undefined } | undefined;

  /**
   * Throws UNSUPPORTED without the native addon, and for `flush: 'cacheline'`
   * on a CPU without a cache-line flush instruction.
   */
  constructor(root: string, options: PmemFsOptions = {}) {
    super(root, 'PmemFs');
    const flush = options.flush ?? 'auto';
    if (flush !== 'auto' && flush !== 'cacheline' && flush !== 'msync') {
      throw new InvalidArgumentError(`PmemFs: flush must be 'auto', 'cacheline' or 'msync', got ${JSON.stringify(flush)}`);
    }
    const capacity = options.defaultCapacityBytes ?? DEFAULT_CAPACITY;
    checkCount(capacity, 'defaultCapacityBytes', 'PmemFs');
    this.#native = requireNative('PmemFs');
    this.#cpu = this.#native.cpuFlush();
    if (flush === 'cacheline' && this.#cpu.instruction === 'none') {
      throw new UnsupportedError('PmemFs: flush "cacheline" needs clwb, clflushopt or clflush, and this CPU has none');
    }
    this.#requested = flush;
    this.#defaultCapacity = roundUp(Math.max(capacity, MIN_CAPACITY), PAGE);
    this.description = `pmem(${flush}):${this.root}`;
    if (flush !== 'auto') this.#resolved = { flush, mapSync: undefined };
  }

  /** Why PmemFs cannot run here, or undefined when it can. */
  static unavailableReason(): string | undefined {
    const loaded = loadNative();
    return loaded.ok ? undefined : loaded.reason;
  }

  stats(): PmemStats {
    let cacheline = 0;
    let msync = 0;
    for (const file of this.#files.values()) {
      if (file.flush === 'cacheline') cacheline++;
      else if (file.flush === 'msync') msync++;
    }
    return {
      requested: this.#requested,
      flush: this.#resolved?.flush,
      mapSync: this.#resolved?.mapSync,
      instruction: this.#cpu.instruction,
      lineSize: this.#cpu.lineSize,
      mappedFiles: { cacheline, msync },
      ...this.#counters,
    };
  }

  /** Creates the root; for `flush: 'auto'`, finds out with a scratch mapping which barrier files here get. */
  override init(): Promise<void> {
    return this.run('init', undefined, async () => {
      await makeRoot(this.root);
      if (this.#resolved === undefined) {
        const mapSync = mapSyncAccepted(this.root, this.#native);
        this.#resolved = { flush: choosePmemFlush('auto', mapSync, this.#cpu.instruction), mapSync };
      }
    });
  }

  protected async openFile(name: string, file: string, flags: number, readOnly: boolean, options: OpenOptions): Promise<PmemFileHandle> {
    const capacity =
      options.capacityBytes === undefined ? this.#defaultCapacity : roundUp(Math.max(options.capacityBytes, MIN_CAPACITY), PAGE);
    return this.#openHandle(name, file, flags, readOnly, capacity);
  }

  /**
   * Unmaps every file and closes its descriptor; handles still open then
   * fail with CLOSED. Locks are not released by closing (release them
   * first). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const files = [...this.#files.values()];
    this.#files.clear();
    let failure: unknown;
    for (const file of files) {
      try {
        file.release();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw fromSystemError(failure, 'close');
  }

  // ---- internals -----------------------------------------------------------

  /** Opens (creating or initialising as flags say) and maps, sharing the mapping of an inode already open in this mode. */
  #openHandle(name: string, file: string, flags: number, readOnly: boolean, capacity: number): PmemFileHandle {
    // Synchronous from open(2) to the mapping: two opens of one new file in
    // this process cannot interleave and initialise it twice.
    const fd = fs.openSync(file, flags, FILE_MODE);
    let adopted = false;
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new IoError(`open ${name}: not a regular file`, { file: name });
      const key = `${st.dev}:${st.ino}:${readOnly ? 'r' : 'w'}`;
      const shared = this.#files.get(key);
      if (shared !== undefined) {
        shared.handles++;
        return new PmemHandle(name, shared, readOnly, (f) => this.#releaseFile(f));
      }
      if (!readOnly) initialise(fd, Number(st.size), capacity, name);
      else checkShortFile(fd, Number(st.size), name);
      const mapped = new MappedFile(key, fd, !readOnly, this.#native, this.#counters, this.#requested, this.#cpu.instruction);
      adopted = true; // from here MappedFile owns fd (attach releases it on failure)
      mapped.attach(name);
      this.#files.set(key, mapped);
      return new PmemHandle(name, mapped, readOnly, (f) => this.#releaseFile(f));
    } finally {
      if (!adopted) fs.closeSync(fd);
    }
  }

  #releaseFile(file: MappedFile): void {
    if (--file.handles > 0) return;
    if (this.#files.get(file.key) === file) this.#files.delete(file.key);
    file.release();
  }
}

/**
 * Gives a writable file its layout if it has none yet: a new file, or one
 * whose creation died before its header was durable (all zeros; nothing can
 * have been written to its data, since a handle is returned only after the
 * header is). Anything else without the magic is not ours: CORRUPTION.
 */
function initialise(fd: number, length: number, capacity: number, name: string): void {
  const head = new Uint8Array(HEADER_BYTES);
  const got = length === 0 ? 0 : fs.readSync(fd, head, 0, HEADER_BYTES, 0);
  const magic = got >= 8 ? new DataView(head.buffer).getBigUint64(0, true) : 0n;
  if (magic === MAGIC) return;
  if (length > 0) assertZeros(fd, Math.min(length, DATA_OFFSET), name);
  // Sparse up to the capacity (space is fallocate()d as it is used), header
  // written, and both made durable before the handle exists.
  fs.ftruncateSync(fd, Math.max(length, DATA_OFFSET + capacity));
  // The whole page, not just the words: a later store through the mapping
  // dirties the page, and every block under it must already exist (see
  // MappedFile's headerAllocated). On a full device this fails here, as
  // NO_SPACE from the create, before any handle exists.
  const header = new Uint8Array(DATA_OFFSET);
  new DataView(header.buffer).setBigUint64(0, MAGIC, true);
  fs.writeSync(fd, header, 0, DATA_OFFSET, 0);
  fs.fsyncSync(fd);
}

function assertZeros(fd: number, length: number, name: string): void {
  const bytes = new Uint8Array(length);
  const got = fs.readSync(fd, bytes, 0, length, 0);
  if (bytes.subarray(0, got).some((b) => b !== 0)) {
    throw new CorruptionError(`open ${name}: not a PmemFs file (no header magic)`, { file: name, offset: 0 });
  }
}

/** A read-only open of a file shorter than the header: fine if it is an empty or torn create, CORRUPTION otherwise. */
function checkShortFile(fd: number, length: number, name: string): void {
  if (length > 0 && length < DATA_OFFSET) assertZeros(fd, length, name);
}
