/**
 * At-rest damage oracle: walks a log image (file name → bytes) with the
 * format's own definitions (docs/format.md, src/format/layout.ts,
 * src/format/batch-codec.ts) and says what recovery must do when one bit of
 * it flips, row by row of the decision table in src/recovery/decision-table.ts and the
 * checkpoint rules of src/recovery/checkpoint.ts.
 *
 * The walk is independent of the recovery code: it decodes headers with the
 * layout module (the format definition) and checks payload CRCs itself, so a
 * recovery bug cannot hide behind a shared scanner. It expects an image that
 * a clean recovery has just settled (no torn tails): every byte up to a
 * file's data end belongs to a verified record or a header, and what follows
 * is zeros, or stale bytes of a recycled file's earlier life.
 */
import { uncompressSync } from 'lz4-napi';
import { ItemKind, decodePayload } from '../../src/format/batch-codec.js';
import { crc32c } from '../../src/format/checksum.js';
import {
  FILE_FLAG_RECYCLED,
  FILE_HEADER_SIZE,
  Queue,
  RECORD_FLAG_LZ4,
  RECORD_HEADER_SIZE,
  decodeFileHeader,
  isAllZero,
  nextRecordOffset,
  readRecordHeader,
} from '../../src/format/layout.js';
import { RecoveryMode } from '../../src/recovery/recovery.js';
import { MANIFEST_NAME, parseLogFileName } from '../../src/file-names.js';
import { MANIFEST_SLOT_SIZE, decodeManifestSlot, encodeManifestSlot, type ManifestState } from '../../src/file-set/manifest.js';
import type { Random } from '../support/random.js';

export type Image = Map<string, Uint8Array>;

export interface WalkedRecord {
  /** Where the record header starts. */
  readonly offset: number;
  /** End of the checksummed bytes (header + payload); padding follows up to `end`. */
  readonly payloadEnd: number;
  readonly end: number;
  readonly syncedThrough: number;
}

/** What recovery makes of a file (see checkpoint.ts and recovery.ts). */
export type FileRole =
  /** An append file recovery replays. */
  | 'append'
  /** An append file below the checkpoint's watermark: never read again. */
  | 'superseded'
  /** The rewrite file holding the checkpoint recovery uses. */
  | 'checkpoint'
  /** Any other rewrite file: older (or never completed) checkpoints, never used. */
  | 'stale-rewrite';

export interface WalkedFile {
  readonly name: string;
  readonly seq: number;
  readonly role: FileRole;
  readonly recycled: boolean;
  readonly size: number;
  readonly records: readonly WalkedRecord[];
  /** End of the last record (or of the header). */
  readonly dataEnd: number;
  /** Every byte after the header is zero. */
  readonly restZero: boolean;
  /** Listed by a MANIFEST, so committed (never case E). */
  readonly listed: boolean;
  /** The MANIFEST's clean end when this is its last file (a clean close sealed it there), else 0. */
  readonly cleanEnd: number;
}

interface ParsedFile {
  readonly name: string;
  readonly queue: Queue;
  readonly seq: number;
  readonly recycled: boolean;
  readonly size: number;
  readonly records: WalkedRecord[];
  readonly dataEnd: number;
  readonly restZero: boolean;
  readonly watermark: number | undefined;
}

function parseFile(name: string, queue: Queue, seq: number, bytes: Uint8Array): ParsedFile | string {
  const header = decodeFileHeader(bytes.subarray(0, Math.min(bytes.length, FILE_HEADER_SIZE)));
  if (typeof header === 'string') return header;
  const records: WalkedRecord[] = [];
  let watermark: number | undefined;
  let offset = FILE_HEADER_SIZE;
  for (;;) {
    if (offset + RECORD_HEADER_SIZE > bytes.length) break;
    const record = readRecordHeader(bytes.subarray(offset, offset + RECORD_HEADER_SIZE), offset, header.salt);
    if (record === undefined) break;
    const payloadEnd = offset + RECORD_HEADER_SIZE + record.payloadLength;
    if (payloadEnd > bytes.length) break;
    const stored = bytes.subarray(offset + RECORD_HEADER_SIZE, payloadEnd);
    if (crc32c(stored) !== record.payloadCrc) break;
    if (queue === Queue.Rewrite && records.length === 0) {
      const payload = (record.flags & RECORD_FLAG_LZ4) !== 0 ? uncompressSync(Buffer.from(stored)) : stored;
      watermark = decodePayload(payload).items.find((item) => item.kind === ItemKind.Checkpoint)?.index;
    }
    const end = nextRecordOffset(offset, record.payloadLength);
    records.push({ offset, payloadEnd, end, syncedThrough: record.syncedThrough });
    offset = end;
  }
  const dataEnd = records.length === 0 ? FILE_HEADER_SIZE : records[records.length - 1]!.end;
  const recycled = (header.flags & FILE_FLAG_RECYCLED) !== 0;
  if (!recycled && !isAllZero(bytes.subarray(Math.min(dataEnd, bytes.length)))) {
    return `non-zero bytes after its data end ${dataEnd}`;
  }
  const restZero = isAllZero(bytes.subarray(Math.min(FILE_HEADER_SIZE, bytes.length)));
  return { name, queue, seq, recycled, size: bytes.length, records, dataEnd, restZero, watermark };
}

/** The log and rewrite files of an image, append files in sequence order, each with its role. */
export function walkImage(image: Image): WalkedFile[] {
  const parsed: ParsedFile[] = [];
  const manifest = manifestOf(image);
  for (const name of [...image.keys()].sort()) {
    const id = parseLogFileName(name);
    if (id === undefined) continue;
    const file = parseFile(name, id.queue, id.seq, image.get(name)!);
    if (typeof file === 'string') {
      // A rewrite file the MANIFEST does not name is garbage whatever it
      // holds (a GC pass that failed before its commit left it, torn or
      // zeros); recovery never reads it and the next purge removes it.
      if (manifest !== undefined && id.queue === Queue.Rewrite && manifest.checkpoint?.seq !== id.seq) continue;
      throw new Error(`walkImage: ${name}: ${file}; the image is not settled`);
    }
    parsed.push(file);
  }
  // With a MANIFEST, the checkpoint and the first file it lists are the ones
  // recovery uses; without one, the newest rewrite file holding a complete
  // checkpoint, and its watermark.
  const checkpoint = parsed
    .filter((f) => f.queue === Queue.Rewrite && f.watermark !== undefined && (manifest === undefined || f.seq === manifest.checkpoint?.seq))
    .sort((a, b) => b.seq - a.seq)[0];
  const watermark = manifest?.first ?? checkpoint?.watermark ?? 0;
  const role = (f: ParsedFile): FileRole =>
    f.queue === Queue.Rewrite ? (f === checkpoint ? 'checkpoint' : 'stale-rewrite') : f.seq < watermark ? 'superseded' : 'append';
  const order = (f: ParsedFile): number => (f.queue === Queue.Append ? f.seq : -1e9 + f.seq);
  return parsed
    .sort((a, b) => order(a) - order(b))
    .map((f) => ({
      name: f.name,
      seq: f.seq,
      role: role(f),
      recycled: f.recycled,
      size: f.size,
      records: f.records,
      dataEnd: f.dataEnd,
      restZero: f.restZero,
      listed: manifest !== undefined,
      cleanEnd: manifest !== undefined && f.queue === Queue.Append && f.seq === manifest.last ? manifest.cleanEnd : 0,
    }));
}

/** The state of the image's MANIFEST (the valid slot with the higher generation), if it has one. */
function manifestOf(image: Image): ManifestState | undefined {
  const bytes = image.get(MANIFEST_NAME);
  if (bytes === undefined) return undefined;
  const slots = [decodeManifestSlot(bytes.subarray(0, MANIFEST_SLOT_SIZE)), decodeManifestSlot(bytes.subarray(MANIFEST_SLOT_SIZE))];
  const valid = slots.filter((slot) => typeof slot === 'object').sort((a, b) => b.generation - a.generation);
  if (valid.length === 0) throw new Error('walkImage: MANIFEST: neither slot verifies; the image is not settled');
  return valid[0]!.state;
}

/** What recovery must do about one flipped bit, per the case table. */
export type FlipExpectation =
  /**
   * Open refuses with CORRUPTION naming this file and offset (or `or`: a
   * damaged header hides where its recycled predecessor ends, so recovery
   * trips over that predecessor's stale tail first).
   */
  | {
      readonly kind: 'corruption';
      readonly file: string;
      readonly offset: number;
      readonly why: string;
      readonly or?: { readonly file: string; readonly offset: number };
    }
  /** Open cuts the last file at `offset` (reported as a 'cut' problem) and holds what precedes it. */
  | { readonly kind: 'cut'; readonly file: string; readonly offset: number; readonly proven: boolean; readonly why: string }
  /** The bit is in no byte recovery reads as data: nothing changes and nothing is reported. */
  | { readonly kind: 'same'; readonly why: string }
  /**
   * Damage in the last record(s) of a recycled last file, with no valid
   * record after it: indistinguishable from the stale bytes of the file's
   * earlier life, so recovery ends the log there without a report (and
   * without truncating). The state is the log cut at `offset`.
   */
  | { readonly kind: 'silent-cut'; readonly file: string; readonly offset: number; readonly why: string }
  /** The last file only had a header; it is removed (case E) and nothing else changes. */
  | { readonly kind: 'removed'; readonly file: string; readonly why: string }
  /**
   * The checkpoint in use is damaged. The table has no row for it; refusing
   * (CORRUPTION naming the file) is right, and so is opening to the very same
   * state (possible while the files it superseded are still there). Any
   * other state is data silently lost or resurrected.
   */
  | { readonly kind: 'corruption-or-same'; readonly file: string; readonly why: string };

export interface Flip {
  readonly file: string;
  readonly offset: number;
  readonly bit: number;
  readonly where: 'file-header' | 'record' | 'padding' | 'tail';
}

/** Picks a bit to flip, spreading picks over headers, records, padding and zero tails. */
export function pickFlip(files: readonly WalkedFile[], rng: Random): Flip | undefined {
  if (files.length === 0) return undefined;
  // Mostly files recovery reads, the checkpoint in use often (it is rarer
  // and holds everything below the watermark), now and then a dead file.
  const live = files.filter((f) => f.role === 'append');
  const checkpoint = files.find((f) => f.role === 'checkpoint');
  const file =
    checkpoint !== undefined && rng.chance(0.3) ? checkpoint : live.length > 0 && rng.chance(0.85) ? rng.pick(live) : rng.pick(files);
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
  const file = files.find((f) => f.name === flip.file)!;
  if (file.role === 'superseded' || file.role === 'stale-rewrite')
    return { kind: 'same', why: `${file.role} file: recovery never reads it` };
  if (file.role === 'checkpoint') {
    if (flip.where === 'padding' || flip.where === 'tail') return { kind: 'same', why: 'checkpoint file, outside its record' };
    return { kind: 'corruption-or-same', file: file.name, why: 'the checkpoint in use' };
  }
  const appends = files.filter((f) => f.role === 'append');
  const isLast = appends[appends.length - 1] === file;
  if (flip.where === 'file-header') {
    // A file the MANIFEST lists was committed with a durable header: damage, never case E.
    if (isLast && file.restZero && !file.listed)
      return { kind: 'removed', file: file.name, why: 'case E: header of a last file holding nothing' };
    const previous = appends[appends.indexOf(file) - 1];
    return {
      kind: 'corruption',
      file: file.name,
      offset: 0,
      why: `case F: header of ${isLast ? 'the last file, which is not empty' : 'an older file'}`,
      or: previous?.recycled === true ? { file: previous.name, offset: previous.dataEnd } : undefined,
    };
  }
  if (flip.where === 'padding') return { kind: 'same', why: 'alignment padding after a payload is outside every checksum' };
  if (flip.where === 'tail') {
    if (!isLast) return { kind: 'same', why: 'older file: bytes past the length its successor records' };
    if (file.recycled) return { kind: 'same', why: 'recycled last file: stale bytes after the end where nothing verifies' };
    return { kind: 'cut', file: file.name, offset: file.dataEnd, proven: false, why: 'case A: non-zero byte after the last record' };
  }
  const record = file.records.find((r) => flip.offset >= r.offset && flip.offset < r.payloadEnd)!;
  if (!isLast) return { kind: 'corruption', file: file.name, offset: record.offset, why: 'case C: record in an older file' };
  // Proven durable: a later record of the file was written after these bytes
  // were synced, or a clean close recorded its seal's end past them.
  const provenByClose = record.offset < file.cleanEnd;
  const proven = provenByClose || file.records.some((r) => r.offset > record.offset && r.syncedThrough > record.offset);
  if (file.recycled && record === file.records[file.records.length - 1] && !provenByClose) {
    return {
      kind: 'silent-cut',
      file: file.name,
      offset: record.offset,
      why: 'recycled last file: damaged last record reads as stale bytes',
    };
  }
  if (proven && mode === RecoveryMode.AbsoluteConsistency) {
    return {
      kind: 'corruption',
      file: file.name,
      offset: record.offset,
      why: 'case B (Absolute): last-file record a later record proves durable',
    };
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

/**
 * A copy of the image with `file` cut to `length` bytes: the log as a
 * recovery that cut it there leaves it, so without the MANIFEST's clean end
 * (that recovery clears it before anything else is written).
 */
export function truncateImage(image: Image, file: string, length: number): Image {
  const out = copyImage(image);
  out.set(file, out.get(file)!.slice(0, length));
  const manifest = out.get(MANIFEST_NAME);
  if (manifest !== undefined) {
    for (const at of [0, MANIFEST_SLOT_SIZE]) {
      const slot = decodeManifestSlot(manifest.subarray(at, at + MANIFEST_SLOT_SIZE));
      if (typeof slot === 'object') manifest.set(encodeManifestSlot({ ...slot.state, cleanEnd: 0 }, slot.generation), at);
    }
  }
  return out;
}

export function copyImage(image: Image): Image {
  return new Map([...image].map(([name, bytes]) => [name, bytes.slice()]));
}
