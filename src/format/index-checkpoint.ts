/**
 * The index checkpoint file (`INDEX`): the memtables at one log position (a
 * clean close's seal end, or the end of a synced write group while running)
 * and the log they describe, so an open can load them and replay only the
 * records after that position. Every byte is in docs/format.md ("Index
 * checkpoint"). One CRC32C over the whole file: it is read whole.
 *
 * The index columns are copied in and out in bulk as raw little-endian typed
 * arrays. Version 2 stores each column once for all regions, back to back
 * (doubles first, so every column is aligned): loading copies them with one
 * copy into one buffer, makes seven typed arrays over it, and gives each
 * region the position of its rows there. Decoding allocates per key only:
 * nothing per entry, and no typed array or object per region.
 */
import { crc32c } from './checksum.js';
import { readU64, writeU64 } from './layout.js';

export const INDEX_CHECKPOINT_MAGIC = Uint8Array.from([0x52, 0x4c, 0x49, 0x4e, 0x44, 0x45, 0x58, 0x0a]); // "RLINDEX\n"
/** 2: columns stored per column for all regions (version 1: per region); version 1 is not read. */
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

/** The seven index columns (see RegionMemtable). */
export interface IndexColumns {
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
}

/** One region's memtable, as columns of its live rows, and its keys. */
export interface RegionIndex extends IndexColumns {
  region: number;
  first: number;
  keys: { key: Uint8Array; value: Uint8Array; fileId: number }[];
}

/** One region of a decoded checkpoint: where its rows lie in the shared IndexColumns, and its keys. */
export interface LoadedRegion {
  region: number;
  first: number;
  /** Its entries are rows entryAt..entryAt+entries-1 of offsets and lengths; likewise runs and compressed records. */
  entryAt: number;
  entries: number;
  runAt: number;
  runs: number;
  packedAt: number;
  packed: number;
  /** `key` views the checkpoint's bytes; `value` is a copy. */
  keys: readonly { key: Uint8Array; value: Uint8Array; fileId: number }[];
}

export interface IndexCheckpoint {
  covered: CoveredLog;
  regionCount: number;
  /** Every loaded region's rows of each column, back to back in region order, over one buffer. */
  columns: IndexColumns;
  /** Bytes of the one buffer under `columns`. */
  columnBytes: number;
  /**
   * Visits every region in the file's order. One object, refilled for each
   * region, valid only during its call: a load of 100,000 regions then
   * allocates no object per region here.
   */
  forEachRegion(visit: (region: Readonly<LoadedRegion>) => void): void;
}

/** Bytes of the column area: seven columns over all regions, doubles first, padded to 8. */
function columnAreaBytes(entries: number, runs: number, packed: number): number {
  return roundUp8(8 * runs + 8 * packed + 8 * entries + 4 * runs + 8 * packed);
}

/** Not a bit mask: sums read from a file may pass 2^31 bytes. */
function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Shared by the regions without keys; never added to. */
const NO_KEYS: LoadedRegion['keys'] = [];

export function encodeIndexCheckpoint(covered: CoveredLog, regions: readonly RegionIndex[]): Uint8Array {
  let entries = 0;
  let runs = 0;
  let packed = 0;
  let keyBytes = 0;
  for (const r of regions) {
    entries += r.offsets.length;
    runs += r.runFiles.length;
    packed += r.packedOffsets.length;
    for (const k of r.keys) keyBytes += KEY_HEADER_SIZE + k.key.length + k.value.length;
  }
  const size =
    INDEX_HEADER_SIZE +
    covered.files.length * INDEX_FILE_ENTRY_SIZE +
    regions.length * INDEX_REGION_HEADER_SIZE +
    columnAreaBytes(entries, runs, packed) +
    keyBytes +
    4;
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
  for (const r of regions) {
    writeU64(view, at, r.region);
    writeU64(view, at + 8, r.first);
    view.setUint32(at + 16, r.offsets.length, true);
    view.setUint32(at + 20, r.runFiles.length, true);
    view.setUint32(at + 24, r.packedOffsets.length, true);
    view.setUint32(at + 28, r.keys.length, true);
    at += INDEX_REGION_HEADER_SIZE;
  }
  const columnsStart = at;
  const put = (column: (r: RegionIndex) => Uint32Array | Float64Array): void => {
    for (const r of regions) {
      const c = column(r);
      bytes.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), at);
      at += c.byteLength;
    }
  };
  put((r) => r.runFirsts);
  put((r) => r.packedFirsts);
  put((r) => r.offsets);
  put((r) => r.lengths);
  put((r) => r.runFiles);
  put((r) => r.packedOffsets);
  put((r) => r.packedLengths);
  // Zero padding (the buffer starts zeroed) to the end of the column area.
  at = columnsStart + columnAreaBytes(entries, runs, packed);
  for (const r of regions) {
    for (const k of r.keys) {
      view.setUint32(at, k.key.length, true);
      view.setUint32(at + 4, k.value.length, true);
      view.setUint32(at + 8, k.fileId, true);
      bytes.set(k.key, at + KEY_HEADER_SIZE);
      bytes.set(k.value, at + KEY_HEADER_SIZE + k.key.length);
      at += KEY_HEADER_SIZE + k.key.length + k.value.length;
    }
  }
  view.setUint32(at, crc32c(bytes.subarray(0, at)), true);
  return bytes;
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
  if (!need(regionCount * INDEX_REGION_HEADER_SIZE)) return 'region table overruns the file';
  const regionsAt = at;
  let entries = 0;
  let runs = 0;
  let packed = 0;
  let keyCount = 0;
  for (let i = 0; i < regionCount; i++, at += INDEX_REGION_HEADER_SIZE) {
    entries += view.getUint32(at + 16, true);
    runs += view.getUint32(at + 20, true);
    packed += view.getUint32(at + 24, true);
    keyCount += view.getUint32(at + 28, true);
  }
  const columnBytes = columnAreaBytes(entries, runs, packed);
  if (!need(columnBytes)) return 'columns overrun the file';
  const columnsAt = at;
  at += columnBytes;
  const keysAt = at;
  for (let k = 0; k < keyCount; k++) {
    if (!need(KEY_HEADER_SIZE)) return 'key overruns the file';
    const keyBytes = view.getUint32(at, true) + view.getUint32(at + 4, true);
    at += KEY_HEADER_SIZE;
    if (!need(keyBytes)) return 'key overruns the file';
    at += keyBytes;
  }
  if (at !== crcAt) return 'bytes left after the last key';
  // One copy into an 8-byte aligned buffer of their own: the file's buffer
  // (headers, keys) is not kept alive by the memtables that use the columns.
  const buffer = new ArrayBuffer(columnBytes);
  new Uint8Array(buffer).set(bytes.subarray(columnsAt, columnsAt + columnBytes));
  let into = 0;
  const u32 = (count: number): Uint32Array => {
    const column = new Uint32Array(buffer, into, count);
    into += 4 * count;
    return column;
  };
  const f64 = (count: number): Float64Array => {
    const column = new Float64Array(buffer, into, count);
    into += 8 * count;
    return column;
  };
  const runFirsts = f64(runs);
  const packedFirsts = f64(packed);
  const columns: IndexColumns = {
    offsets: u32(entries),
    lengths: u32(entries),
    runFirsts,
    runFiles: u32(runs),
    packedFirsts,
    packedOffsets: u32(packed),
    packedLengths: u32(packed),
  };
  const forEachRegion = (visit: (region: Readonly<LoadedRegion>) => void): void => {
    const loaded: LoadedRegion = { region: 0, first: 0, entryAt: 0, entries: 0, runAt: 0, runs: 0, packedAt: 0, packed: 0, keys: NO_KEYS };
    let keyAt = keysAt;
    for (let i = 0, row = regionsAt; i < regionCount; i++, row += INDEX_REGION_HEADER_SIZE) {
      loaded.region = readU64(view, row);
      loaded.first = readU64(view, row + 8);
      loaded.entryAt += loaded.entries;
      loaded.entries = view.getUint32(row + 16, true);
      loaded.runAt += loaded.runs;
      loaded.runs = view.getUint32(row + 20, true);
      loaded.packedAt += loaded.packed;
      loaded.packed = view.getUint32(row + 24, true);
      const count = view.getUint32(row + 28, true);
      loaded.keys = NO_KEYS;
      if (count === 0) {
        visit(loaded);
        continue;
      }
      const keys: LoadedRegion['keys'][number][] = [];
      for (let k = 0; k < count; k++) {
        const keyLength = view.getUint32(keyAt, true);
        const valueLength = view.getUint32(keyAt + 4, true);
        const fileId = view.getUint32(keyAt + 8, true);
        keyAt += KEY_HEADER_SIZE;
        keys.push({
          key: bytes.subarray(keyAt, keyAt + keyLength),
          value: bytes.slice(keyAt + keyLength, keyAt + keyLength + valueLength),
          fileId,
        });
        keyAt += keyLength + valueLength;
      }
      loaded.keys = keys;
      visit(loaded);
    }
  };
  return { covered, regionCount, columns, columnBytes, forEachRegion };
}
