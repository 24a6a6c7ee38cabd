/**
 * At-rest damage oracle: walks a log image (file name → bytes) with the
 * format's own layout (docs/format.md, src/format/layout.ts) and says what
 * recovery must do when one bit of it flips, row by row of the case table in
 * src/recovery/recovery.ts.
 *
 * The walk is independent of the recovery code: it decodes headers with the
 * layout module (the format definition) and checks payload CRCs itself, so a
 * recovery bug cannot hide behind a shared scanner. It expects an image that
 * a clean recovery has just settled (no torn tails): every byte up to a
 * file's data end belongs to a verified record or a header.
 */
import { crc32c } from '../../src/format/checksum.js';
import { FILE_HEADER_SIZE, RECORD_HEADER_SIZE, decodeFileHeader, isAllZero, nextRecordOffset, readRecordHeader } from '../../src/format/layout.js';
import { RecoveryMode } from '../../src/recovery/recovery.js';
import { parseLogFileName } from '../../src/file-names.js';
import type { Rng } from './rng.js';

export type Image = Map<string, Uint8Array>;

export interface WalkedRecord {
  /** Where the record header starts. */
  readonly offset: number;
  /** End of the checksummed bytes (header + payload); padding follows up to `end`. */
  readonly payloadEnd: number;
  readonly end: number;
  readonly syncedThrough: number;
}

export interface WalkedFile {
  readonly name: string;
  readonly seq: number;
  readonly size: number;
  readonly records: readonly WalkedRecord[];
  /** End of the last record (or of the header). */
  readonly dataEnd: number;
}

/** The log files of an image in sequence order, with their verified records. */
export function walkImage(image: Image): WalkedFile[] {
  const out: WalkedFile[] = [];
  const names = [...image.keys()].filter((n) => parseLogFileName(n)?.queue === 0).sort();
  for (const name of names) {
    const bytes = image.get(name)!;
    const header = decodeFileHeader(bytes.subarray(0, Math.min(bytes.length, FILE_HEADER_SIZE)));
    if (typeof header === 'string') throw new Error(`walkImage: ${name} has no valid header (${header}); the image is not settled`);
    const records: WalkedRecord[] = [];
    let offset = FILE_HEADER_SIZE;
    for (;;) {
      if (offset + RECORD_HEADER_SIZE > bytes.length) break;
      const record = readRecordHeader(bytes.subarray(offset, offset + RECORD_HEADER_SIZE), offset, header.salt);
      if (record === undefined) break;
      const payloadEnd = offset + RECORD_HEADER_SIZE + record.payloadLength;
      if (payloadEnd > bytes.length || crc32c(bytes.subarray(offset + RECORD_HEADER_SIZE, payloadEnd)) !== record.payloadCrc) break;
      const end = nextRecordOffset(offset, record.payloadLength);
      records.push({ offset, payloadEnd, end, syncedThrough: record.syncedThrough });
      offset = end;
    }
    const dataEnd = records.length === 0 ? FILE_HEADER_SIZE : records[records.length - 1]!.end;
    if (!isAllZero(bytes.subarray(Math.min(dataEnd, bytes.length)))) {
      throw new Error(`walkImage: ${name} has non-zero bytes after its data end ${dataEnd}; the image is not settled`);
    }
    out.push({ name, seq: parseLogFileName(name)!.seq, size: bytes.length, records, dataEnd });
  }
  return out;
}

/** What recovery must do about one flipped bit, per the case table. */
export type FlipExpectation =
  /** Open refuses with CORRUPTION naming this file and offset. */
  | { readonly kind: 'corruption'; readonly file: string; readonly offset: number; readonly why: string }
  /** Open cuts the last file at `offset` (reported as a 'cut' problem) and holds what precedes it. */
  | { readonly kind: 'cut'; readonly file: string; readonly offset: number; readonly proven: boolean; readonly why: string }
  /** The bit is in no checksummed byte: nothing changes and nothing is reported. */
  | { readonly kind: 'same'; readonly why: string }
  /** The last file only had a header; it is removed (case E) and nothing else changes. */
  | { readonly kind: 'removed'; readonly file: string; readonly why: string }
  /**
   * Outside the data of an older file (its zero tail). The table has no row
   * for it; the implementation treats it as case C. Either refusing or
   * opening unchanged is safe; the suite counts which.
   */
  | { readonly kind: 'corruption-or-same'; readonly file: string; readonly offset: number; readonly why: string };

export interface Flip {
  readonly file: string;
  readonly offset: number;
  readonly bit: number;
  readonly where: 'file-header' | 'record' | 'padding' | 'tail';
}

/** Picks a bit to flip, spreading picks over headers, records, padding and zero tails. */
export function pickFlip(files: readonly WalkedFile[], rng: Rng): Flip | undefined {
  if (files.length === 0) return undefined;
  const file = rng.pick(files);
  const paddings = file.records.filter((r) => r.end > r.payloadEnd);
  const where = rng.weighted({
    'file-header': 1,
    record: file.records.length > 0 ? 7 : 0,
    padding: paddings.length > 0 ? 1 : 0,
    tail: file.size > file.dataEnd ? 2 : 0,
  });
  const bit = rng.below(8);
  switch (where) {
    case 'file-header':
      return { file: file.name, offset: rng.below(FILE_HEADER_SIZE), bit, where };
    case 'record': {
      const record = rng.pick(file.records);
      // Headers are small; give them a fair share of the flips.
      const offset = rng.chance(0.3)
        ? record.offset + rng.below(RECORD_HEADER_SIZE)
        : record.offset + rng.below(record.payloadEnd - record.offset);
      return { file: file.name, offset, bit, where };
    }
    case 'padding': {
      const record = rng.pick(paddings);
      return { file: file.name, offset: record.payloadEnd + rng.below(record.end - record.payloadEnd), bit, where };
    }
    case 'tail':
      return { file: file.name, offset: file.dataEnd + rng.below(file.size - file.dataEnd), bit, where };
  }
}

/** Row of the case table for `flip` under `mode` (AbsoluteConsistency or TolerateTailCorruption). */
export function expectFlip(files: readonly WalkedFile[], flip: Flip, mode: RecoveryMode): FlipExpectation {
  const index = files.findIndex((f) => f.name === flip.file);
  const file = files[index]!;
  const isLast = index === files.length - 1;
  if (flip.where === 'file-header') {
    if (isLast && file.records.length === 0) return { kind: 'removed', file: file.name, why: 'case E: header of a last file holding no record' };
    return { kind: 'corruption', file: file.name, offset: 0, why: `case F: header of ${isLast ? 'the last file, which holds records' : 'an older file'}` };
  }
  if (flip.where === 'padding') return { kind: 'same', why: 'alignment padding after a payload is outside every checksum' };
  if (flip.where === 'tail') {
    if (isLast) return { kind: 'cut', file: file.name, offset: file.dataEnd, proven: false, why: 'case A: non-zero byte after the last record' };
    return { kind: 'corruption-or-same', file: file.name, offset: file.dataEnd, why: 'zero tail of an older file, past the length its successor records' };
  }
  const record = file.records.find((r) => flip.offset >= r.offset && flip.offset < r.payloadEnd)!;
  if (!isLast) return { kind: 'corruption', file: file.name, offset: record.offset, why: 'case C: record in an older file' };
  // Proven durable: a later record of the file was written after these bytes were synced.
  const proven = file.records.some((r) => r.offset > record.offset && r.syncedThrough > record.offset);
  if (proven && mode === RecoveryMode.AbsoluteConsistency) {
    return { kind: 'corruption', file: file.name, offset: record.offset, why: 'case B (Absolute): last-file record a later record proves durable' };
  }
  return {
    kind: 'cut',
    file: file.name,
    offset: record.offset,
    proven,
    why: proven ? 'case B (TolerateTail): proven-durable record in the last file' : 'case A: last-file record nothing proves durable',
  };
}

/** A copy of the image with `flip` applied. */
export function applyFlip(image: Image, flip: Flip): Image {
  const out = copyImage(image);
  const bytes = out.get(flip.file)!;
  bytes[flip.offset] = bytes[flip.offset]! ^ (1 << flip.bit);
  return out;
}

/** A copy of the image with `file` cut to `length` bytes. */
export function truncateImage(image: Image, file: string, length: number): Image {
  const out = copyImage(image);
  out.set(file, out.get(file)!.slice(0, length));
  return out;
}

export function copyImage(image: Image): Image {
  return new Map([...image].map(([name, bytes]) => [name, bytes.slice()]));
}
