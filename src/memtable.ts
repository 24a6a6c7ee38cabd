/**
 * Per-region index of where entries live, and the region's key-value pairs.
 *
 * Entries are indexed in typed-array deques, never one object per entry.
 *  - Per entry, 8 bytes: for an entry in an uncompressed record, its absolute
 *    file offset and length, enough to read and verify it alone; for one in
 *    an lz4 record, its offset in the decompressed payload and its length
 *    with bit 31 set.
 *  - Per file run, 12 bytes: a region's entries sit in files in index order
 *    (appends only go forward), so "which file" is a short run-length table
 *    of (first index, file id), shared by every entry in the run.
 *  - Per compressed record, 16 bytes: (first index, record offset, payload
 *    length), needed to find and decompress the record. Only lz4 records
 *    have one, and they are large by definition.
 * So an index costs 8 bytes per entry plus a few runs per region, whatever
 * the batch shape (raft-engine spends 48 bytes per entry).
 */
import { assert, bug } from './assert.js';
import { RECORD_HEADER_SIZE } from './format/layout.js';
import type { IndexColumns, LoadedRegion, RegionIndex } from './format/index-checkpoint.js';

const COMPRESSED_BIT = 0x8000_0000;
const MIN_CAPACITY = 8;
/** Largest value a u32 column holds: an entry offset past it would wrap silently. */
const U32_MAX = 0xffff_ffff;

/** Where one entry is stored. Filled in place by `locate` to avoid allocating per read. */
export interface EntryLocation {
  fileId: number;
  compressed: boolean;
  /** Uncompressed: absolute file offset of the Entry bytes. Compressed: offset in the decompressed payload. */
  entryOffset: number;
  entryLength: number;
  /** Compressed only: where the record holding the entry starts, and its stored payload length. */
  recordOffset: number;
  payloadLength: number;
}

export function newEntryLocation(): EntryLocation {
  return { fileId: 0, compressed: false, entryOffset: 0, entryLength: 0, recordOffset: 0, payloadLength: 0 };
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

/** Columns of no rows: a new memtable allocates no array until its first row. Never written (no room). */
const NO_U32 = new Uint32Array(0);
const NO_F64 = new Float64Array(0);
/** Column lists of a new memtable, shared (Columns replaces a list, never changes one). */
const NO_ROWS_U32_1: readonly Uint32Array[] = [NO_U32];
const NO_ROWS_U32_2: readonly Uint32Array[] = [NO_U32, NO_U32];
const NO_ROWS_F64_0: readonly Float64Array[] = [];
const NO_ROWS_F64_1: readonly Float64Array[] = [NO_F64];

/**
 * The buffer under the columns of a checkpoint load (src/recovery/index-checkpoint.ts):
 * seven typed arrays hold every loaded region's rows, each region's a slot
 * of them, so a load allocates one buffer instead of seven arrays per region.
 * A region whose columns resize (they outgrow the slot, or shrink) or empty
 * moves to arrays of its own; its slot is then dead but stays allocated
 * while other regions' slots hold the buffer. Once less than half of the
 * buffer is in use, the regions still in it move out too (a one-time copy of
 * at most half of it, in chunks between other work) and the buffer is
 * freed: dead bytes outnumber live ones only until that ends, and an idle
 * region cannot keep the whole load alive.
 */
export class ColumnArena {
  /** Bytes of the slots still in use. */
  #live = 0;
  /** Every slot's columns; undefined once the rest moved out. */
  #holders: ArenaHolder[] | undefined = [];
  #evacuations = 0;
  #evacuating = false;

  constructor(readonly byteLength: number) {}

  get liveBytes(): number {
    return this.#live;
  }

  /** Times the regions left in the buffer began to move out (0 or 1). */
  get evacuations(): number {
    return this.#evacuations;
  }

  /** True while regions left in the buffer are being moved out. */
  get evacuating(): boolean {
    return this.#evacuating;
  }

  join(columns: ArenaHolder, bytes: number): void {
    assert(this.#holders !== undefined && !this.#evacuating, 'column arena: joined after it began to empty');
    this.#holders.push(columns);
    this.#live += bytes;
  }

  leave(bytes: number): void {
    this.#live -= bytes;
    assert(this.#live >= 0, 'column arena: more bytes left than joined');
    if (this.#holders === undefined || this.#evacuating || this.#live * 2 >= this.byteLength) return;
    this.#evacuating = true;
    this.#evacuations++;
    // Not in the write that crossed the line: at 100,000 regions moving them
    // all out at once took ~180 ms. A chunk per turn of the event loop.
    setImmediate(() => this.#moveOut(0));
  }

  #moveOut(from: number): void {
    const holders = this.#holders!;
    const end = Math.min(holders.length, from + EVACUATION_CHUNK);
    for (let i = from; i < end; i++) holders[i]!.leaveArena(this);
    if (end < holders.length) {
      setImmediate(() => this.#moveOut(end));
      return;
    }
    this.#holders = undefined;
    this.#evacuating = false;
  }
}

/**
 * The columns of one checkpoint load (src/format/index-checkpoint.ts) as
 * RegionMemtable.fromLoaded takes them: one list per column group, shared by
 * every region, and the arena that tracks who still uses them.
 */
export class LoadedColumns {
  readonly arena: ColumnArena;
  readonly entryU32: readonly Uint32Array[];
  readonly runU32: readonly Uint32Array[];
  readonly runF64: readonly Float64Array[];
  readonly packedU32: readonly Uint32Array[];
  readonly packedF64: readonly Float64Array[];

  constructor(columns: IndexColumns, byteLength: number) {
    this.arena = new ColumnArena(byteLength);
    this.entryU32 = [columns.offsets, columns.lengths];
    this.runU32 = [columns.runFiles];
    this.runF64 = [columns.runFirsts];
    this.packedU32 = [columns.packedOffsets, columns.packedLengths];
    this.packedF64 = [columns.packedFirsts];
  }
}

/** Column sets an arena moves out per turn of the event loop (~1 ms each 250). */
const EVACUATION_CHUNK = 2048;

/** What an arena asks of its holders: move out, if still there. */
interface ArenaHolder {
  leaveArena(arena: ColumnArena): void;
}

/**
 * A growable ring-free deque of parallel typed-array columns sharing one
 * head. Its rows live in a slot of the arrays, `capacity` rows from `#base`:
 * the whole arrays (base 0) once it allocated its own, or its part of arrays
 * every region of a checkpoint load shares (see ColumnArena), where rows
 * outside the slot belong to other regions and are never touched.
 */
class Columns implements ArenaHolder {
  /** First live row (absolute, in the arrays). */
  head = 0;
  length = 0;
  #base = 0;
  #capacity: number;
  /** The arena the slot lies in (a checkpoint load's shared arrays); undefined for arrays of its own. */
  #arena: ColumnArena | undefined;

  /** The arrays, one per column; a list is replaced, never changed, so lists may be shared. */
  constructor(
    public u32: readonly Uint32Array[],
    public f64: readonly Float64Array[],
  ) {
    this.#capacity = (u32[0] ?? f64[0])!.length;
  }

  /** Makes room for `extra` more rows at the back. */
  reserve(extra: number): void {
    const needed = this.length + extra;
    const capacity = this.#capacity;
    if (this.head + needed <= this.#base + capacity) return;
    if (needed <= capacity / 2) this.#shift();
    else {
      let next = Math.max(MIN_CAPACITY, capacity * 2);
      while (next < needed) next *= 2;
      this.#resize(next);
    }
    assert(this.head + needed <= this.#base + this.#capacity, 'memtable columns: reserve left too little room');
  }

  /** Drops `count` rows from the front; gives memory back when mostly empty. */
  dropFront(count: number): void {
    assert(count <= this.length, 'memtable columns: dropping more rows than held');
    this.head += count;
    this.length -= count;
    if (this.length === 0) {
      this.head = this.#base;
      // An empty slot would keep its part of the arena allocated for nothing.
      if (this.#arena !== undefined) {
        this.#leave();
        this.u32 = this.u32.length === 1 ? NO_ROWS_U32_1 : NO_ROWS_U32_2;
        this.f64 = this.f64.length === 0 ? NO_ROWS_F64_0 : NO_ROWS_F64_1;
        this.head = this.#base = this.#capacity = 0;
        return;
      }
    }
    const capacity = this.#capacity;
    if (capacity > 4 * MIN_CAPACITY && this.length < capacity / 4) this.#resize(Math.max(MIN_CAPACITY, capacity / 2));
  }

  /**
   * Takes rows `at..at+length-1` of `u32`/`f64`, arrays every region of a
   * checkpoint load shares, as its slot, without copying (see ColumnArena).
   */
  adoptSlot(u32: readonly Uint32Array[], f64: readonly Float64Array[], at: number, length: number, arena: ColumnArena): void {
    assert(this.#arena === undefined && this.length === 0, 'memtable columns: adopting over held rows');
    if (length === 0) return;
    this.u32 = u32;
    this.f64 = f64;
    this.head = this.#base = at;
    this.length = this.#capacity = length;
    this.#arena = arena;
    arena.join(this, this.byteLength());
  }

  /** Moves the rows to arrays of their own if they still lie in `arena` (ColumnArena#leave). */
  leaveArena(arena: ColumnArena): void {
    if (this.#arena === arena) this.#resize(this.#capacity);
  }

  /** Views of the live rows of each column. */
  live(): { u32: Uint32Array[]; f64: Float64Array[] } {
    const end = this.head + this.length;
    return { u32: this.u32.map((c) => c.subarray(this.head, end)), f64: this.f64.map((c) => c.subarray(this.head, end)) };
  }

  /** Bytes of the slot (capacity, not just the live rows). */
  byteLength(): number {
    return this.#capacity * (4 * this.u32.length + 8 * this.f64.length);
  }

  #shift(): void {
    const base = this.#base;
    for (const column of this.u32) column.copyWithin(base, this.head, this.head + this.length);
    for (const column of this.f64) column.copyWithin(base, this.head, this.head + this.length);
    this.head = base;
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
    this.#leave();
    this.head = this.#base = 0;
    this.#capacity = capacity;
  }

  #leave(): void {
    const arena = this.#arena;
    if (arena === undefined) return;
    this.#arena = undefined;
    arena.leave(this.byteLength());
  }
}

export class RegionMemtable {
  readonly region: number;
  /** Index of the first entry held; meaningless when `entryCount` is 0. */
  #first = 0;
  /** Per entry: offset (u32[0]) and length | compressed bit (u32[1]). */
  readonly #entries = new Columns(NO_ROWS_U32_2, NO_ROWS_F64_0);
  /** Runs of entries in one file: first index (f64[0]) and file id (u32[0]). */
  readonly #fileRuns = new Columns(NO_ROWS_U32_1, NO_ROWS_F64_1);
  /** Compressed records: first index (f64[0]), record offset (u32[0]), payload length (u32[1]). */
  readonly #packed = new Columns(NO_ROWS_U32_2, NO_ROWS_F64_1);
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
   * Indexes `count` entries starting at `firstIndex`, held by one record;
   * `offsets` are payload offsets. An append at or below the last index first
   * truncates the tail from there. A gap is a bug here: live writes are
   * validated before they are written (Engine#validate) and replay decides
   * what a gap means before calling (src/apply.ts).
   */
  append(firstIndex: number, count: number, record: RecordLocation, offsets: Uint32Array, lengths: Uint32Array, start: number): void {
    assert(count > 0, 'memtable append: an entry run holds at least one entry');
    assert(start + count <= lengths.length, 'memtable append: the run lies past the batch entry columns');
    const last = this.lastIndex();
    if (last !== undefined && firstIndex > last + 1) {
      bug(`region ${this.region}: append at ${firstIndex} leaves a gap after ${last}`);
    }
    if (last === undefined || firstIndex <= this.#first) this.#clearEntries(firstIndex);
    else if (firstIndex <= last) this.#truncateFrom(firstIndex);
    const entries = this.#entries;
    entries.reserve(count);
    const [offsetColumn, lengthColumn] = entries.u32 as readonly [Uint32Array, Uint32Array];
    const at = entries.head + entries.length;
    if (record.compressed) {
      offsetColumn.set(offsets.subarray(start, start + count), at);
      for (let i = 0; i < count; i++) lengthColumn[at + i] = (lengths[start + i]! | COMPRESSED_BIT) >>> 0;
      pushRow(this.#packed, firstIndex, record.recordOffset, record.payloadLength);
    } else {
      const base = record.recordOffset + RECORD_HEADER_SIZE;
      // Offsets grow within a record: the last entry's end bounds them all.
      const end = start + count - 1;
      assert(base + offsets[end]! + lengths[end]! <= U32_MAX, 'memtable append: entry offset past the u32 column');
      for (let i = 0; i < count; i++) offsetColumn[at + i] = base + offsets[start + i]!;
      lengthColumn.set(lengths.subarray(start, start + count), at);
    }
    entries.length += count;
    const runs = this.#fileRuns;
    if (runs.length === 0 || lastRowValue(runs) !== record.fileId) pushRow(runs, firstIndex, record.fileId);
    assert(this.lastIndex() === firstIndex + count - 1, 'memtable append: the run must end the region');
    assert(lastRowValue(runs) === record.fileId, 'memtable append: the last file run must be the record');
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
    dropRowsBelow(this.#fileRuns, this.#first);
    dropRowsBelow(this.#packed, this.#first);
    assert(this.#first === index, 'memtable compactTo: the region must start at the compaction index');
    assert(firstRowIndex(this.#fileRuns) <= this.#first, 'memtable compactTo: no file run covers the first entry');
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
    const packedLength = entries.u32[1]![row]!;
    out.entryOffset = entries.u32[0]![row]!;
    out.entryLength = packedLength & ~COMPRESSED_BIT;
    out.compressed = (packedLength & COMPRESSED_BIT) !== 0;
    out.fileId = this.#fileRuns.u32[0]![rowFor(this.#fileRuns, index)]!;
    if (out.compressed) {
      const block = rowFor(this.#packed, index);
      out.recordOffset = this.#packed.u32[0]![block]!;
      out.payloadLength = this.#packed.u32[1]![block]!;
    } else {
      out.recordOffset = 0;
      out.payloadLength = 0;
    }
    return true;
  }

  /** The smallest file id any of this region's entries lives in (Infinity when none). */
  oldestFileId(): number {
    let oldest = Number.POSITIVE_INFINITY;
    this.forEachFileRun((id) => {
      oldest = Math.min(oldest, id);
    });
    return oldest;
  }

  /** Visits each run of entries held in one file as (fileId, first index, entry count). */
  forEachFileRun(visit: (fileId: number, firstIndex: number, count: number) => void): void {
    const runs = this.#fileRuns;
    const files = runs.u32[0]!;
    const firsts = runs.f64[0]!;
    const end = this.#first + this.#entries.length;
    for (let i = 0; i < runs.length; i++) {
      const row = runs.head + i;
      const runFirst = Math.max(firsts[row]!, this.#first);
      const runEnd = i + 1 < runs.length ? firsts[row + 1]! : end;
      visit(files[row]!, runFirst, runEnd - runFirst);
    }
  }

  /**
   * Points entries `firstIndex..firstIndex+count-1`, which the region already
   * holds, at a copy of them in another file (GC rewrote them), leaving every
   * other entry where it is. The copy is an uncompressed record.
   */
  relocate(firstIndex: number, count: number, record: RecordLocation, offsets: Uint32Array, lengths: Uint32Array, start: number): void {
    assert(!record.compressed, 'memtable relocate: the copy must be an uncompressed record');
    assert(count > 0, 'memtable relocate: an entry run holds at least one entry');
    const last = this.lastIndex();
    if (last === undefined || firstIndex < this.#first || firstIndex + count - 1 > last) {
      bug(`region ${this.region}: cannot relocate ${firstIndex}+${count} (holds ${this.#first}..${last})`);
    }
    const entries = this.#entries;
    const at = entries.head + (firstIndex - this.#first);
    const base = record.recordOffset + RECORD_HEADER_SIZE;
    for (let i = 0; i < count; i++) {
      entries.u32[0]![at + i] = base + offsets[start + i]!;
      entries.u32[1]![at + i] = lengths[start + i]!;
    }
    const end = firstIndex + count;
    const fileAfter = end <= last ? this.#rowAt(this.#fileRuns, end) : undefined;
    const compressedAfter = end <= last && (entries.u32[1]![at + count]! & COMPRESSED_BIT) !== 0;
    const packedAfter = compressedAfter ? this.#rowAt(this.#packed, end) : undefined;
    this.#replaceRange(this.#fileRuns, firstIndex, end, { first: firstIndex, values: [record.fileId] }, fileAfter);
    // Compressed-record rows inside the relocated range no longer describe
    // any entry of it, but the record may go on past the range.
    this.#replaceRange(this.#packed, firstIndex, end, undefined, packedAfter);
    assert(firstRowIndex(this.#fileRuns) <= this.#first, 'memtable relocate: no file run covers the first entry');
  }

  /** The row covering `index` of a run table, as (first = index, its values). */
  #rowAt(table: Columns, index: number): { first: number; values: number[] } {
    const row = rowFor(table, index);
    return { first: index, values: table.u32.map((column) => column[row]!) };
  }

  /**
   * Replaces the rows of a run table that start in [from, end) by `inside`
   * (if any), and makes `after` (the row that covered `end`) start at `end`.
   * Rows that would then cover no held entry (below the first one) go, so
   * no empty run names a file the region no longer uses.
   */
  #replaceRange(
    table: Columns,
    from: number,
    end: number,
    inside: { first: number; values: number[] } | undefined,
    after: { first: number; values: number[] } | undefined,
  ): void {
    const kept = this.#collectRuns(table).filter((run) => run.first < from || run.first >= end);
    if (inside !== undefined) kept.push(inside);
    if (after !== undefined && !kept.some((run) => run.first === end)) kept.push(after);
    this.#replaceRows(table, kept);
    dropRowsBelow(table, this.#first);
  }

  /**
   * The index and keys as columns of live rows (views into the memtable, valid
   * until it changes), for an index checkpoint (src/format/index-checkpoint.ts).
   */
  exportIndex(): RegionIndex {
    const entries = this.#entries.live();
    const runs = this.#fileRuns.live();
    const packed = this.#packed.live();
    const keys: RegionIndex['keys'] = [];
    for (const [key, kv] of this.kv) keys.push({ key: Buffer.from(key, 'latin1'), value: kv.value, fileId: kv.fileId });
    return {
      region: this.region,
      first: this.#first,
      offsets: entries.u32[0]!,
      lengths: entries.u32[1]!,
      runFirsts: runs.f64[0]!,
      runFiles: runs.u32[0]!,
      packedFirsts: packed.f64[0]!,
      packedOffsets: packed.u32[0]!,
      packedLengths: packed.u32[1]!,
      keys,
    };
  }

  /**
   * A memtable holding one region of a checkpoint load: its rows are slots of
   * the columns every loaded region shares (no copy, no array per region).
   */
  static fromLoaded(loaded: Readonly<LoadedRegion>, shared: LoadedColumns): RegionMemtable {
    const memtable = new RegionMemtable(loaded.region);
    const arena = shared.arena;
    memtable.#first = loaded.first;
    memtable.#entries.adoptSlot(shared.entryU32, NO_ROWS_F64_0, loaded.entryAt, loaded.entries, arena);
    memtable.#fileRuns.adoptSlot(shared.runU32, shared.runF64, loaded.runAt, loaded.runs, arena);
    memtable.#packed.adoptSlot(shared.packedU32, shared.packedF64, loaded.packedAt, loaded.packed, arena);
    for (const { key, value, fileId } of loaded.keys)
      memtable.kv.set(Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1'), { value, fileId });
    return memtable;
  }

  /** Bytes of entry data the region holds. */
  liveEntryBytes(): number {
    return this.entryBytes(this.#first, this.#entries.length);
  }

  /** Bytes of entry data of entries `first..first+count-1` (which must be held). */
  entryBytes(first: number, count: number): number {
    const entries = this.#entries;
    assert(first >= this.#first, 'memtable entryBytes: range starts below the region');
    assert(first - this.#first + count <= entries.length, 'memtable entryBytes: range ends past the region');
    const lengths = entries.u32[1]!;
    const start = entries.head + (first - this.#first);
    let bytes = 0;
    for (let i = start; i < start + count; i++) bytes += lengths[i]! & ~COMPRESSED_BIT;
    return bytes;
  }

  #collectRuns(table: Columns): { first: number; values: number[] }[] {
    const rows: { first: number; values: number[] }[] = [];
    for (let i = table.head; i < table.head + table.length; i++) {
      rows.push({ first: table.f64[0]![i]!, values: table.u32.map((c) => c[i]!) });
    }
    return rows;
  }

  #replaceRows(table: Columns, rows: { first: number; values: number[] }[]): void {
    rows.sort((a, b) => a.first - b.first);
    table.dropFront(table.length);
    for (const row of rows) pushRow(table, row.first, ...row.values);
  }

  /** Bytes held by the typed-array columns (capacity, not just the live rows). */
  indexBytes(): number {
    return this.#entries.byteLength() + this.#fileRuns.byteLength() + this.#packed.byteLength();
  }

  #truncateFrom(index: number): void {
    assert(index > this.#first, 'memtable truncate: below the first entry (that is a clear)');
    assert(index - this.#first < this.#entries.length, 'memtable truncate: at or past the end (nothing to drop)');
    this.#entries.length = index - this.#first;
    popRowsFrom(this.#fileRuns, index);
    popRowsFrom(this.#packed, index);
  }

  #clearEntries(first: number): void {
    this.#entries.dropFront(this.#entries.length);
    this.#fileRuns.dropFront(this.#fileRuns.length);
    this.#packed.dropFront(this.#packed.length);
    this.#first = first;
  }
}

/*
 * Run tables (file runs, compressed records) share one shape: rows sorted by
 * first index in f64[0], payload in the u32 columns.
 */

function pushRow(table: Columns, firstIndex: number, ...values: number[]): void {
  table.reserve(1);
  const row = table.head + table.length;
  table.f64[0]![row] = firstIndex;
  for (let i = 0; i < values.length; i++) table.u32[i]![row] = values[i]!;
  table.length++;
}

/** The first index of a run table's first row. */
function firstRowIndex(table: Columns): number {
  return table.f64[0]![table.head]!;
}

/** The first u32 value (the file id, for file runs) of a run table's last row. */
function lastRowValue(table: Columns): number {
  return table.u32[0]![table.head + table.length - 1]!;
}

/** The last row whose first index is at or below `index`. */
function rowFor(table: Columns, index: number): number {
  const firsts = table.f64[0]!;
  let low = table.head;
  let high = table.head + table.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >>> 1;
    if (firsts[mid]! <= index) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Drops rows that only cover indexes below `first`. */
function dropRowsBelow(table: Columns, first: number): void {
  const firsts = table.f64[0]!;
  let drop = 0;
  while (drop + 1 < table.length && firsts[table.head + drop + 1]! <= first) drop++;
  if (drop > 0) table.dropFront(drop);
}

/** Drops rows that start at or after `index` (the tail being overwritten). */
function popRowsFrom(table: Columns, index: number): void {
  const firsts = table.f64[0]!;
  while (table.length > 0 && firsts[table.head + table.length - 1]! >= index) table.length--;
}
