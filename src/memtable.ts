/**
 * Per-region index of where entries live, and the region's key-value pairs.
 *
 * Entries are indexed in typed-array deques, never one object per entry:
 *  - per entry (8 bytes): offset of the Entry bytes in its record's payload
 *    and their length;
 *  - per block, i.e. per run of entries one record holds for this region
 *    (20 bytes, shared by the run): first index, file id, record offset,
 *    payload length with the compression flag in bit 31.
 * An entry finds its block by binary search on the blocks' first indexes.
 * Raft appends runs of entries, so blocks are few per entry and the index
 * costs a little over 8 bytes per entry (raft-engine spends 48).
 */
import { InvalidArgumentError } from './errors.js';

const COMPRESSED_BIT = 0x8000_0000;
const MIN_CAPACITY = 8;

/** Where one entry is stored. Filled in place by `locate` to avoid allocating per read. */
export interface EntryLocation {
  fileId: number;
  recordOffset: number;
  payloadLength: number;
  compressed: boolean;
  entryOffset: number;
  entryLength: number;
}

export function newEntryLocation(): EntryLocation {
  return { fileId: 0, recordOffset: 0, payloadLength: 0, compressed: false, entryOffset: 0, entryLength: 0 };
}

/** Where a record sits: the same for every entry and key it holds. */
export interface RecordLocation {
  fileId: number;
  recordOffset: number;
  payloadLength: number;
  compressed: boolean;
}

export interface KeyValue {
  value: Uint8Array;
  /** File that holds the put, so GC knows what a key keeps alive. */
  fileId: number;
}

/** A growable ring-free deque of parallel typed-array columns sharing one head. */
class Columns {
  head = 0;
  length = 0;
  constructor(
    public u32: Uint32Array[],
    public f64: Float64Array[],
  ) {}

  get capacity(): number {
    return (this.u32[0] ?? this.f64[0])!.length;
  }

  /** Makes room for `extra` more rows at the back. */
  reserve(extra: number): void {
    const needed = this.length + extra;
    const capacity = this.capacity;
    if (this.head + needed <= capacity) return;
    if (needed <= capacity / 2) {
      this.#shift();
      return;
    }
    let next = Math.max(MIN_CAPACITY, capacity * 2);
    while (next < needed) next *= 2;
    this.#resize(next);
  }

  /** Drops `count` rows from the front; gives memory back when mostly empty. */
  dropFront(count: number): void {
    this.head += count;
    this.length -= count;
    if (this.length === 0) this.head = 0;
    const capacity = this.capacity;
    if (capacity > 4 * MIN_CAPACITY && this.length < capacity / 4) this.#resize(Math.max(MIN_CAPACITY, capacity / 2));
  }

  byteLength(): number {
    let bytes = 0;
    for (const column of this.u32) bytes += column.byteLength;
    for (const column of this.f64) bytes += column.byteLength;
    return bytes;
  }

  #shift(): void {
    for (const column of this.u32) column.copyWithin(0, this.head, this.head + this.length);
    for (const column of this.f64) column.copyWithin(0, this.head, this.head + this.length);
    this.head = 0;
  }

  #resize(capacity: number): void {
    const { head, length } = this;
    this.u32 = this.u32.map((column) => {
      const next = new Uint32Array(capacity);
      next.set(column.subarray(head, head + length));
      return next;
    });
    this.f64 = this.f64.map((column) => {
      const next = new Float64Array(capacity);
      next.set(column.subarray(head, head + length));
      return next;
    });
    this.head = 0;
  }
}

export class RegionMemtable {
  readonly region: number;
  /** Index of the first entry held; meaningless when `entryCount` is 0. */
  #first = 0;
  readonly #entries = new Columns([new Uint32Array(MIN_CAPACITY), new Uint32Array(MIN_CAPACITY)], []);
  readonly #blocks = new Columns(
    [new Uint32Array(MIN_CAPACITY), new Uint32Array(MIN_CAPACITY), new Uint32Array(MIN_CAPACITY)],
    [new Float64Array(MIN_CAPACITY)],
  );
  readonly kv = new Map<string, KeyValue>();

  constructor(region: number) {
    this.region = region;
  }

  get entryCount(): number {
    return this.#entries.length;
  }

  firstIndex(): number | undefined {
    return this.#entries.length === 0 ? undefined : this.#first;
  }

  lastIndex(): number | undefined {
    return this.#entries.length === 0 ? undefined : this.#first + this.#entries.length - 1;
  }

  /**
   * Indexes `count` entries starting at `firstIndex`, held by one record. An
   * append at or below the last index first truncates the tail from there; a
   * gap is a programming error here (the engine validates before writing).
   */
  append(
    firstIndex: number,
    count: number,
    record: RecordLocation,
    offsets: Uint32Array,
    lengths: Uint32Array,
    start: number,
  ): void {
    const last = this.lastIndex();
    if (last !== undefined && firstIndex > last + 1) {
      throw new InvalidArgumentError(`region ${this.region}: append at ${firstIndex} leaves a gap after ${last}`);
    }
    if (last === undefined || firstIndex < this.#first) this.#clearEntries(firstIndex);
    else if (firstIndex <= last) this.#truncateFrom(firstIndex);
    const entries = this.#entries;
    entries.reserve(count);
    const [offsetColumn, lengthColumn] = entries.u32 as [Uint32Array, Uint32Array];
    const at = entries.head + entries.length;
    offsetColumn.set(offsets.subarray(start, start + count), at);
    lengthColumn.set(lengths.subarray(start, start + count), at);
    entries.length += count;
    const blocks = this.#blocks;
    blocks.reserve(1);
    const row = blocks.head + blocks.length;
    const [fileColumn, offsetOfRecord, payloadColumn] = blocks.u32 as [Uint32Array, Uint32Array, Uint32Array];
    fileColumn[row] = record.fileId;
    offsetOfRecord[row] = record.recordOffset;
    payloadColumn[row] = (record.payloadLength | (record.compressed ? COMPRESSED_BIT : 0)) >>> 0;
    blocks.f64[0]![row] = firstIndex;
    blocks.length++;
  }

  /** Drops entries below `index`; returns how many were dropped. */
  compactTo(index: number): number {
    const entries = this.#entries;
    if (entries.length === 0 || index <= this.#first) return 0;
    const drop = Math.min(index - this.#first, entries.length);
    entries.dropFront(drop);
    if (entries.length === 0) {
      this.#clearEntries(0);
      return drop;
    }
    this.#first += drop;
    const blocks = this.#blocks;
    const firstIndexes = blocks.f64[0]!;
    let dropBlocks = 0;
    while (dropBlocks + 1 < blocks.length && firstIndexes[blocks.head + dropBlocks + 1]! <= this.#first) dropBlocks++;
    if (dropBlocks > 0) blocks.dropFront(dropBlocks);
    return drop;
  }

  /** Removes every entry and key. */
  clean(): void {
    this.#clearEntries(0);
    this.kv.clear();
  }

  /** Fills `out` with where `index` lives; false when the region does not hold it. */
  locate(index: number, out: EntryLocation): boolean {
    const entries = this.#entries;
    const relative = index - this.#first;
    if (entries.length === 0 || relative < 0 || relative >= entries.length || !Number.isInteger(relative)) return false;
    const row = entries.head + relative;
    out.entryOffset = entries.u32[0]![row]!;
    out.entryLength = entries.u32[1]![row]!;
    const block = this.#blockOf(index);
    const blocks = this.#blocks;
    out.fileId = blocks.u32[0]![block]!;
    out.recordOffset = blocks.u32[1]![block]!;
    const packed = blocks.u32[2]!;
    out.payloadLength = packed[block]! & ~COMPRESSED_BIT;
    out.compressed = (packed[block]! & COMPRESSED_BIT) !== 0;
    return true;
  }

  /** The smallest file id any of this region's entries lives in (Infinity when none). */
  oldestFileId(): number {
    if (this.#blocks.length === 0) return Number.POSITIVE_INFINITY;
    let oldest = Number.POSITIVE_INFINITY;
    const files = this.#blocks.u32[0]!;
    for (let i = this.#blocks.head, end = this.#blocks.head + this.#blocks.length; i < end; i++) {
      oldest = Math.min(oldest, files[i]!);
    }
    return oldest;
  }

  /** Visits each block as (fileId, first index, entry count). */
  forEachBlock(visit: (fileId: number, firstIndex: number, count: number) => void): void {
    const blocks = this.#blocks;
    const files = blocks.u32[0]!;
    const firsts = blocks.f64[0]!;
    const end = this.#first + this.#entries.length;
    for (let i = 0; i < blocks.length; i++) {
      const row = blocks.head + i;
      const blockFirst = Math.max(firsts[row]!, this.#first);
      const blockEnd = i + 1 < blocks.length ? firsts[row + 1]! : end;
      visit(files[row]!, blockFirst, blockEnd - blockFirst);
    }
  }

  /** Bytes held by the typed-array columns (capacity, not just the live rows). */
  indexBytes(): number {
    return this.#entries.byteLength() + this.#blocks.byteLength();
  }

  #blockOf(index: number): number {
    const blocks = this.#blocks;
    const firsts = blocks.f64[0]!;
    let low = blocks.head;
    let high = blocks.head + blocks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (firsts[mid]! <= index) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  #truncateFrom(index: number): void {
    if (index <= this.#first) {
      this.#clearEntries(index);
      return;
    }
    const entries = this.#entries;
    entries.length = index - this.#first;
    const blocks = this.#blocks;
    const firsts = blocks.f64[0]!;
    while (blocks.length > 0 && firsts[blocks.head + blocks.length - 1]! >= index) blocks.length--;
  }

  #clearEntries(first: number): void {
    this.#entries.dropFront(this.#entries.length);
    this.#blocks.dropFront(this.#blocks.length);
    this.#first = first;
  }
}
