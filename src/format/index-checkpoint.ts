/**
 * The index checkpoint file (`INDEX`): the memtables at one log position (a
 * clean close's seal end, or the end of a synced write group while running)
 * and the log they describe, so an open can load them and replay only the
 * records after that position. Every byte is in docs/format.md ("Index
 * checkpoint"). One CRC32C over the whole file: it is read whole.
 *
 * The index columns are copied in and out in bulk as raw little-endian typed
 * arrays. Each region's columns lie together, doubles first, and each region
 * starts 8-byte aligned (version 2), so loading copies every region's columns
 * into one buffer with one copy per region and hands out typed-array views of
 * it: it allocates per key, never per entry, and no array buffer per region.
 */
import { crc32c } from './checksum.js';
import { readU64, writeU64 } from './layout.js';

export const INDEX_CHECKPOINT_MAGIC = Uint8Array.from([0x52, 0x4c, 0x49, 0x4e, 0x44, 0x45, 0x58, 0x0a]); // "RLINDEX\n"
/** 2: columns reordered (doubles first) and regions padded to 8 bytes; version 1 is not read. */
export const INDEX_CHECKPOINT_VERSION = 2;
export const INDEX_HEADER_SIZE = 72;
/** What decoding says of a checkpoint an earlier open invalidated. */
export const CONSUMED = 'consumed';
export const INDEX_FILE_ENTRY_SIZE = 24;
export const INDEX_REGION_HEADER_SIZE = 32;
const KEY_HEADER_SIZE = 12;

/**
 * An open that found a checkpoint zeroes (at least) this many leading bytes
 * of it: a checkpoint starting with them all zero was consumed.
 */
export const INDEX_INVALID_BYTES = 64;

/** Typed arrays are host-endian; the file is little-endian. A big-endian host neither writes nor loads one. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** One log file the checkpoint covers, as its header and size said when it was taken. */
export interface CoveredFile {
  seq: number;
  /** 0: append queue, 1: rewrite queue (a GC checkpoint). */
  queue: number;
  salt: number;
  /** Bytes on disk. */
  size: number;
}

/** What the checkpoint covers: the log position, the files the memtables use, and every file up to the position. */
export interface CoveredLog {
  /** Informational: every rotation bumps it. */
  manifestGeneration: number;
  /** The first append file the memtables use. */
  first: number;
  /** The covered file: the append file holding the position. */
  last: number;
  /** The GC checkpoint (rewrite file) the memtables use, 0 for none. */
  rewriteSeq: number;
  /** The position: where the covered records end in file `last` (a record boundary). */
  lastEnd: number;
  /** Where the record ending at `lastEnd` starts (a seal after a clean close); 0: `lastEnd` is the end of the file header. */
  sealAt: number;
  files: CoveredFile[];
}

/** One region's memtable, as columns of its live rows (see RegionMemtable). */
export interface RegionIndex {
  region: number;
  first: number;
  /** Per entry. */
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** Per file run. */
  runFirsts: Float64Array;
  runFiles: Uint32Array;
  /** Per compressed record. */
  packedFirsts: Float64Array;
  packedOffsets: Uint32Array;
  packedLengths: Uint32Array;
  keys: { key: Uint8Array; value: Uint8Array; fileId: number }[];
}

export interface IndexCheckpoint {
  covered: CoveredLog;
  regions: RegionIndex[];
  /**
   * The one buffer every region's columns are views of (a decode's, each
   * region's columns 8-byte aligned in it); whoever keeps the columns keeps it.
   */
  columns: ArrayBuffer;
}

/** Column bytes of a region: doubles first, then the u32 columns, padded to 8. */
function columnBytes(entries: number, runs: number, packed: number): number {
  return roundUp8(8 * runs + 8 * packed + 8 * entries + 4 * runs + 8 * packed);
}

/** Not a bit mask: counts read from a file may pass 2^31 bytes. */
function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Shared by the regions of a decode that have no rows in a column; never written (no room). */
const NO_U32 = new Uint32Array(0);
const NO_F64 = new Float64Array(0);

export function encodeIndexCheckpoint(covered: CoveredLog, regions: readonly RegionIndex[]): Uint8Array {
  let size = INDEX_HEADER_SIZE + covered.files.length * INDEX_FILE_ENTRY_SIZE + 4;
  for (const r of regions) size += regionBytes(r);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(INDEX_CHECKPOINT_MAGIC, 0);
  view.setUint16(8, INDEX_CHECKPOINT_VERSION, true);
  view.setUint16(10, 0, true);
  view.setUint32(12, covered.files.length, true);
  writeU64(view, 16, covered.manifestGeneration);
  writeU64(view, 24, covered.first);
  writeU64(view, 32, covered.last);
  writeU64(view, 40, covered.rewriteSeq);
  writeU64(view, 48, covered.lastEnd);
  view.setUint32(56, regions.length, true);
  view.setUint32(60, size, true);
  writeU64(view, 64, covered.sealAt);
  let at = INDEX_HEADER_SIZE;
  for (const file of covered.files) {
    writeU64(view, at, file.seq);
    view.setUint32(at + 8, file.queue, true);
    view.setUint32(at + 12, file.salt, true);
    writeU64(view, at + 16, file.size);
    at += INDEX_FILE_ENTRY_SIZE;
  }
  const put = (column: Uint32Array | Float64Array): void => {
    bytes.set(new Uint8Array(column.buffer, column.byteOffset, column.byteLength), at);
    at += column.byteLength;
  };
  for (const r of regions) {
    const regionStart = at;
    writeU64(view, at, r.region);
    writeU64(view, at + 8, r.first);
    view.setUint32(at + 16, r.offsets.length, true);
    view.setUint32(at + 20, r.runFiles.length, true);
    view.setUint32(at + 24, r.packedOffsets.length, true);
    view.setUint32(at + 28, r.keys.length, true);
    at += INDEX_REGION_HEADER_SIZE;
    put(r.runFirsts);
    put(r.packedFirsts);
    put(r.offsets);
    put(r.lengths);
    put(r.runFiles);
    put(r.packedOffsets);
    put(r.packedLengths);
    at = regionStart + INDEX_REGION_HEADER_SIZE + columnBytes(r.offsets.length, r.runFiles.length, r.packedOffsets.length);
    for (const k of r.keys) {
      view.setUint32(at, k.key.length, true);
      view.setUint32(at + 4, k.value.length, true);
      view.setUint32(at + 8, k.fileId, true);
      bytes.set(k.key, at + KEY_HEADER_SIZE);
      bytes.set(k.value, at + KEY_HEADER_SIZE + k.key.length);
      at += KEY_HEADER_SIZE + k.key.length + k.value.length;
    }
    // Zero padding (the buffer starts zeroed): the next region starts 8-byte aligned.
    at = regionStart + regionBytes(r);
  }
  view.setUint32(at, crc32c(bytes.subarray(0, at)), true);
  return bytes;
}

/** A region's bytes in the file: header, columns, keys, padding to 8. */
function regionBytes(r: RegionIndex): number {
  let keys = 0;
  for (const k of r.keys) keys += KEY_HEADER_SIZE + k.key.length + k.value.length;
  return INDEX_REGION_HEADER_SIZE + columnBytes(r.offsets.length, r.runFiles.length, r.packedOffsets.length) + roundUp8(keys);
}

/**
 * The checkpoint, or why the bytes are not one this build can use. `file` may
 * run past the checkpoint's length (zero padding to the write alignment).
 */
export function decodeIndexCheckpoint(file: Uint8Array): IndexCheckpoint | string {
  if (file.length < INDEX_HEADER_SIZE + 4) return 'shorter than its header';
  if (file.subarray(0, INDEX_INVALID_BYTES).every((byte) => byte === 0)) return CONSUMED;
  // Unverified until the checksum below covers it: a damaged length fails that.
  const length = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(60, true);
  if (length < INDEX_HEADER_SIZE + 4 || length > file.length) return `length ${length} does not fit the file (${file.length} bytes)`;
  const bytes = file.subarray(0, length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcAt = bytes.length - 4;
  if (view.getUint32(crcAt, true) !== crc32c(bytes.subarray(0, crcAt))) return 'checksum mismatch';
  for (let i = 0; i < INDEX_CHECKPOINT_MAGIC.length; i++) if (bytes[i] !== INDEX_CHECKPOINT_MAGIC[i]) return 'bad magic';
  const version = view.getUint16(8, true);
  if (version !== INDEX_CHECKPOINT_VERSION) return `version ${version} (this build reads version ${INDEX_CHECKPOINT_VERSION})`;
  const fileCount = view.getUint32(12, true);
  const covered: CoveredLog = {
    manifestGeneration: readU64(view, 16),
    first: readU64(view, 24),
    last: readU64(view, 32),
    rewriteSeq: readU64(view, 40),
    lastEnd: readU64(view, 48),
    sealAt: readU64(view, 64),
    files: [],
  };
  const regionCount = view.getUint32(56, true);
  let at = INDEX_HEADER_SIZE;
  // The checksum verified, so a length that overruns is a bug in the writer (or a foreign format): refuse it.
  const need = (n: number): boolean => at + n <= crcAt;
  if (!need(fileCount * INDEX_FILE_ENTRY_SIZE)) return 'file table overruns the file';
  for (let i = 0; i < fileCount; i++) {
    covered.files.push({
      seq: readU64(view, at),
      queue: view.getUint32(at + 8, true),
      salt: view.getUint32(at + 12, true),
      size: readU64(view, at + 16),
    });
    at += INDEX_FILE_ENTRY_SIZE;
  }
  // First pass: where each region starts, and the bytes of all columns.
  const regionsAt = new Float64Array(regionCount);
  const regionsStart = at;
  let allColumns = 0;
  for (let i = 0; i < regionCount; i++) {
    if (!need(INDEX_REGION_HEADER_SIZE)) return 'region overruns the file';
    regionsAt[i] = at;
    const columns = columnBytes(view.getUint32(at + 16, true), view.getUint32(at + 20, true), view.getUint32(at + 24, true));
    const keyCount = view.getUint32(at + 28, true);
    allColumns += columns;
    if (!need(INDEX_REGION_HEADER_SIZE + columns)) return 'region overruns the file';
    at += INDEX_REGION_HEADER_SIZE + columns;
    const keysStart = at;
    for (let k = 0; k < keyCount; k++) {
      if (!need(KEY_HEADER_SIZE)) return 'key overruns the file';
      at += KEY_HEADER_SIZE + view.getUint32(at, true) + view.getUint32(at + 4, true);
      if (at > crcAt) return 'key overruns the file';
    }
    at = keysStart + roundUp8(at - keysStart);
    if (at > crcAt) return 'region overruns the file';
  }
  if (at !== crcAt) return 'bytes left after the last region';
  at = regionsStart;
  // Second pass: one copy per region into the shared (8-byte aligned) buffer, views of it.
  const columns = new ArrayBuffer(allColumns);
  const target = new Uint8Array(columns);
  let into = 0;
  const u32 = (count: number): Uint32Array => {
    if (count === 0) return NO_U32;
    const column = new Uint32Array(columns, into, count);
    into += 4 * count;
    return column;
  };
  const f64 = (count: number): Float64Array => {
    if (count === 0) return NO_F64;
    const column = new Float64Array(columns, into, count);
    into += 8 * count;
    return column;
  };
  const regions: RegionIndex[] = new Array(regionCount);
  for (let i = 0; i < regionCount; i++) {
    at = regionsAt[i]!;
    const region = readU64(view, at);
    const first = readU64(view, at + 8);
    const entries = view.getUint32(at + 16, true);
    const runs = view.getUint32(at + 20, true);
    const packed = view.getUint32(at + 24, true);
    const keyCount = view.getUint32(at + 28, true);
    at += INDEX_REGION_HEADER_SIZE;
    const size = columnBytes(entries, runs, packed);
    const regionColumns = into;
    target.set(bytes.subarray(at, at + size), into);
    const runFirsts = f64(runs);
    const packedFirsts = f64(packed);
    const index: RegionIndex = {
      region,
      first,
      offsets: u32(entries),
      lengths: u32(entries),
      runFirsts,
      runFiles: u32(runs),
      packedFirsts,
      packedOffsets: u32(packed),
      packedLengths: u32(packed),
      keys: [],
    };
    into = regionColumns + size;
    at += size;
    for (let k = 0; k < keyCount; k++) {
      const keyLength = view.getUint32(at, true);
      const valueLength = view.getUint32(at + 4, true);
      const fileId = view.getUint32(at + 8, true);
      at += KEY_HEADER_SIZE;
      index.keys.push({
        key: bytes.subarray(at, at + keyLength),
        value: bytes.slice(at + keyLength, at + keyLength + valueLength),
        fileId,
      });
      at += keyLength + valueLength;
    }
    regions[i] = index;
  }
  return { covered, regions, columns };
}
