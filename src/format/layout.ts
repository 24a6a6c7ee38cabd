/**
 * Byte layout of log files: the file header and the record header. Every
 * byte is documented in docs/format.md; this module is the only place that
 * reads or writes them. All integers are little-endian.
 *
 * File header (32 bytes):
 *   0  magic "RAFTLOG\n"        8  format version (u16)   10 queue (u8)   11 flags (u8; bit 0 recycled, bit 1 manifest)
 *   12 salt (u32)               16 file sequence (u64)    24 previous file's final length (u32)
 *   28 CRC32C of bytes 0..28
 *
 * Record header (24 bytes), records start at 8-byte aligned offsets:
 *   0  header CRC32C of bytes 4..24, seeded with the file's salt
 *   4  payload length on disk (u32)   8 offset tag: the record's own file offset (u32)
 *   12 synced-through: bytes of this file known durable when the record was written (u32)
 *   16 payload CRC32C (u32)           20 flags (u8; bit 0 = lz4)   21..24 zero
 */
import { assert } from '../assert.js';
import { crc32c } from './checksum.js';

export const FILE_MAGIC = Uint8Array.from([0x52, 0x41, 0x46, 0x54, 0x4c, 0x4f, 0x47, 0x0a]); // "RAFTLOG\n"
export const FORMAT_VERSION = 1;
export const FILE_HEADER_SIZE = 32;
export const RECORD_HEADER_SIZE = 24;
export const RECORD_ALIGNMENT = 8;
/** Offsets are stored as u32: no file may reach 4 GiB. */
export const FILE_SIZE_LIMIT = 0xffff_fff8;
export const RECORD_FLAG_LZ4 = 1;
/**
 * File header flag: the file was recycled, so bytes past the end of the log
 * may be records of its earlier life (they never verify under the new salt).
 * Recovery treats such a tail as the end of the log, not as a torn write.
 */
export const FILE_FLAG_RECYCLED = 1;
/**
 * File header flag: a MANIFEST governed the directory when this file was
 * created (it was durable before the header was written). A directory
 * holding such a file and no MANIFEST lost its MANIFEST; one without any
 * was written before manifests.
 */
export const FILE_FLAG_MANIFEST = 2;

export const enum Queue {
  Append = 0,
  Rewrite = 1,
}

export interface FileHeader {
  version: number;
  queue: Queue;
  /** FILE_FLAG_* bits. */
  flags: number;
  salt: number;
  seq: number;
  previousFileLength: number;
}

export function encodeFileHeader(header: FileHeader): Uint8Array {
  // What the decoder and recovery accept, asserted before it reaches the disk.
  assert(header.version === FORMAT_VERSION, 'encodeFileHeader: only the current format version is written');
  assert(header.queue === Queue.Append || header.queue === Queue.Rewrite, 'encodeFileHeader: unknown queue');
  assert((header.flags & ~(FILE_FLAG_RECYCLED | FILE_FLAG_MANIFEST)) === 0, 'encodeFileHeader: unknown flag bits');
  assert(header.seq >= 1, 'encodeFileHeader: sequence numbers start at 1');
  assert(header.previousFileLength >= 0, 'encodeFileHeader: negative previous file length');
  assert(header.previousFileLength <= FILE_SIZE_LIMIT, 'encodeFileHeader: previous file length past the size limit');
  assert(header.salt >>> 0 === header.salt, 'encodeFileHeader: the salt is a u32');
  const bytes = new Uint8Array(FILE_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(FILE_MAGIC, 0);
  view.setUint16(8, header.version, true);
  view.setUint8(10, header.queue);
  view.setUint8(11, header.flags);
  view.setUint32(12, header.salt, true);
  writeU64(view, 16, header.seq);
  view.setUint32(24, header.previousFileLength, true);
  view.setUint32(28, crc32c(bytes.subarray(0, 28)), true);
  return bytes;
}

/** Why a file header was rejected; `undefined` means it is valid. */
export type FileHeaderProblem = 'short' | 'zero' | 'magic' | 'checksum' | 'version';

export function decodeFileHeader(bytes: Uint8Array): FileHeader | FileHeaderProblem {
  if (bytes.length < FILE_HEADER_SIZE) return isAllZero(bytes) ? 'zero' : 'short';
  if (isAllZero(bytes.subarray(0, FILE_HEADER_SIZE))) return 'zero';
  for (let i = 0; i < FILE_MAGIC.length; i++) if (bytes[i] !== FILE_MAGIC[i]) return 'magic';
  const view = new DataView(bytes.buffer, bytes.byteOffset, FILE_HEADER_SIZE);
  if (view.getUint32(28, true) !== crc32c(bytes.subarray(0, 28))) return 'checksum';
  const version = view.getUint16(8, true);
  if (version !== FORMAT_VERSION) return 'version';
  return {
    version,
    queue: view.getUint8(10) as Queue,
    flags: view.getUint8(11),
    salt: view.getUint32(12, true),
    seq: readU64(view, 16),
    previousFileLength: view.getUint32(24, true),
  };
}

export interface RecordHeader {
  payloadLength: number;
  offset: number;
  syncedThrough: number;
  payloadCrc: number;
  flags: number;
}

/**
 * Fills the header in place at `target[0..24]`. The header CRC is seeded with
 * the file's salt; the payload CRC is computed once when the batch is encoded
 * and carried here, so the group-commit leader only checksums 20 bytes.
 */
export function writeRecordHeader(target: Uint8Array, header: RecordHeader, salt: number): void {
  // Paired with readRecordHeader and the scanner: a header written outside
  // these bounds would read back as damage, or (flags) never verify at all.
  assert(header.offset % RECORD_ALIGNMENT === 0, 'writeRecordHeader: records start at 8-byte aligned offsets');
  assert(header.offset >= FILE_HEADER_SIZE, 'writeRecordHeader: a record cannot overlap the file header');
  const end = header.offset + RECORD_HEADER_SIZE + header.payloadLength;
  assert(end <= FILE_SIZE_LIMIT, 'writeRecordHeader: record ends past the file size limit');
  assert(header.syncedThrough <= header.offset, 'writeRecordHeader: synced-through cannot cover the record itself');
  assert((header.flags & ~RECORD_FLAG_LZ4) === 0, 'writeRecordHeader: unknown record flag bits');
  assert(header.payloadCrc >>> 0 === header.payloadCrc, 'writeRecordHeader: the payload CRC is a u32');
  const view = new DataView(target.buffer, target.byteOffset, RECORD_HEADER_SIZE);
  view.setUint32(4, header.payloadLength, true);
  view.setUint32(8, header.offset, true);
  view.setUint32(12, header.syncedThrough, true);
  view.setUint32(16, header.payloadCrc, true);
  view.setUint32(20, header.flags, true);
  view.setUint32(0, crc32c(target.subarray(4, RECORD_HEADER_SIZE), salt), true);
}

/**
 * Reads and verifies a record header found at `offset`. Returns undefined when
 * the 24 bytes are not a header this file wrote there (wrong offset tag,
 * reserved bits set, or header CRC mismatch under this file's salt).
 */
export function readRecordHeader(bytes: Uint8Array, offset: number, salt: number): RecordHeader | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEADER_SIZE);
  if (view.getUint32(8, true) !== offset) return undefined;
  const flagsWord = view.getUint32(20, true);
  if ((flagsWord & ~RECORD_FLAG_LZ4) !== 0) return undefined;
  if (view.getUint32(0, true) !== crc32c(bytes.subarray(4, RECORD_HEADER_SIZE), salt)) return undefined;
  return {
    payloadLength: view.getUint32(4, true),
    offset,
    syncedThrough: view.getUint32(12, true),
    payloadCrc: view.getUint32(16, true),
    flags: flagsWord,
  };
}

/**
 * The offset tag of the 24 bytes at the start of `bytes`: what a record
 * header found there says its own offset is. A cheap filter for resyncing
 * after damage: only where it matches is the header worth verifying.
 */
export function readOffsetTag(bytes: Uint8Array): number {
  return (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16) | (bytes[11]! << 24)) >>> 0;
}

/** Where the record after one at `offset` with `payloadLength` bytes starts. */
export function nextRecordOffset(offset: number, payloadLength: number): number {
  return roundUp(offset + RECORD_HEADER_SIZE + payloadLength, RECORD_ALIGNMENT);
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** Compared against by `isAllZero`, one block at a time; never written. */
const ZERO_BLOCK = new Uint8Array(64 << 10);
/** Inputs up to this long are cheaper to check in JS than with a native compare. */
const SMALL_ZERO_CHECK = 64;

export function isAllZero(bytes: Uint8Array): boolean {
  const end = bytes.length;
  if (end <= SMALL_ZERO_CHECK) {
    for (let i = 0; i < end; i++) if (bytes[i] !== 0) return false;
    return true;
  }
  // The zero tail of a preallocated file (megabytes) is scanned on every
  // open: a native memcmp per block is ~50x faster than a JS loop before the
  // JIT warms up (a 64-bit word loop went through BigInts: ~30 ms per 8 MiB).
  for (let at = 0; at < end; at += ZERO_BLOCK.length) {
    const length = Math.min(ZERO_BLOCK.length, end - at);
    const block = length === ZERO_BLOCK.length ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, length);
    if (Buffer.compare(bytes.subarray(at, at + length), block) !== 0) return false;
  }
  return true;
}

export function writeU64(view: DataView, offset: number, value: number): void {
  // Callers validated these (sequence numbers, regions, indexes): a negative
  // or unsafe value would be stored as a different number without a word.
  assert(Number.isSafeInteger(value), 'writeU64: not a safe integer');
  assert(value >= 0, 'writeU64: negative');
  view.setUint32(offset, value % 0x1_0000_0000, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true) * 0x1_0000_0000 + view.getUint32(offset, true);
}
