/**
 * The protobuf wire format of `eraftpb.Entry`, written by hand on the hot
 * path: protobufjs builds a Writer op list per field, which costs several
 * allocations per entry. The output is canonical proto3 (default values
 * omitted, as raft-rs and Go write it); test/entry-codec.test.ts checks both
 * directions against protobufjs.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Entry, StoredEntry } from '../protos.js';

const EMPTY = new Uint8Array(0);

/** Something with a numeric value: a number, or a protobufjs Long. */
type NumberLike = number | { toNumber(): number };

/**
 * An entry's index or term as a safe integer. A protobufjs Long is taken
 * (entries decoded by protobufjs's eraftpb carry them); a BigInt is refused
 * like any other non-number, so every public integer has one rule.
 */
export function toSafeInteger(value: unknown, what: string): number {
  const number =
    typeof value === 'number'
      ? value
      : typeof value === 'object' && value !== null && typeof (value as { toNumber?: unknown }).toNumber === 'function'
        ? (value as { toNumber(): number }).toNumber()
        : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative safe integer, got ${String(value)}`);
  }
  return number;
}

export function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  while (value >= 128) {
    target[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[offset++] = value;
  return offset;
}

/** The normalized fields of an entry, validated once. */
export interface EntryFields {
  entryType: number;
  term: number;
  index: number;
  data: Uint8Array;
  context: Uint8Array;
}

export type EntryInput = Entry | (Omit<Entry, 'term' | 'index'> & { term: NumberLike; index: NumberLike });

export function newEntryFields(): EntryFields {
  return { entryType: 0, term: 0, index: 0, data: EMPTY, context: EMPTY };
}

/**
 * Validates `entry` into `out` (reused by the caller, so the write path does
 * not allocate an object per entry). Throws INVALID_ARGUMENT on bad fields.
 */
export function normalizeEntryInto(entry: EntryInput, out: EntryFields): EntryFields {
  if (typeof entry !== 'object' || entry === null) throw new InvalidArgumentError('entry must be an object');
  const entryType = entry.entryType ?? 0;
  if (!Number.isInteger(entryType) || entryType < 0 || entryType > 0x7fff_ffff) {
    throw new InvalidArgumentError(`entryType must be a non-negative integer, got ${String(entryType)}`);
  }
  const data = entry.data ?? EMPTY;
  const context = entry.context ?? EMPTY;
  if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('entry.data must be a Uint8Array');
  if (!(context instanceof Uint8Array)) throw new InvalidArgumentError('entry.context must be a Uint8Array');
  out.entryType = entryType;
  // The common case (a plain safe integer) without a call; Longs and bigints go through toSafeInteger.
  out.term = isPlainIndex(entry.term) ? entry.term : toSafeInteger(entry.term, 'entry.term');
  out.index = isPlainIndex(entry.index) ? entry.index : toSafeInteger(entry.index, 'entry.index');
  out.data = data;
  out.context = context;
  return out;
}

function isPlainIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function normalizeEntry(entry: EntryInput): EntryFields {
  return normalizeEntryInto(entry, newEntryFields());
}

export function encodedEntrySize(e: EntryFields): number {
  let size = 0;
  if (e.entryType !== 0) size += 1 + varintSize(e.entryType);
  if (e.term !== 0) size += 1 + varintSize(e.term);
  if (e.index !== 0) size += 1 + varintSize(e.index);
  if (e.data.length !== 0) size += 1 + varintSize(e.data.length) + e.data.length;
  if (e.context.length !== 0) size += 1 + varintSize(e.context.length) + e.context.length;
  return size;
}

/** Writes the entry at `offset`; returns the offset after it. */
export function encodeEntry(target: Uint8Array, offset: number, e: EntryFields): number {
  if (e.entryType !== 0) {
    target[offset++] = 0x08;
    offset = writeVarint(target, offset, e.entryType);
  }
  if (e.term !== 0) {
    target[offset++] = 0x10;
    offset = writeVarint(target, offset, e.term);
  }
  if (e.index !== 0) {
    target[offset++] = 0x18;
    offset = writeVarint(target, offset, e.index);
  }
  if (e.data.length !== 0) {
    target[offset++] = 0x22;
    offset = writeVarint(target, offset, e.data.length);
    target.set(e.data, offset);
    offset += e.data.length;
  }
  if (e.context.length !== 0) {
    target[offset++] = 0x32;
    offset = writeVarint(target, offset, e.context.length);
    target.set(e.context, offset);
    offset += e.context.length;
  }
  return offset;
}

/** Thrown by `decodeEntry` on malformed bytes; callers turn it into a CorruptionError with a location. */
export class EntryDecodeError extends Error {}

/**
 * Decodes an entry. `data` and `context` are copies, so the caller may reuse
 * the source buffer. Unknown fields are skipped, as protobuf requires.
 */
export function decodeEntry(bytes: Uint8Array): StoredEntry {
  let entryType = 0;
  let term = 0;
  let index = 0;
  let data: Uint8Array = EMPTY;
  let context: Uint8Array = EMPTY;
  let pos = 0;
  const end = bytes.length;
  const readVarint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new EntryDecodeError('truncated varint');
      const byte = bytes[pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new EntryDecodeError('varint too long');
  };
  const readBytes = (): Uint8Array => {
    const length = readVarint();
    if (pos + length > end) throw new EntryDecodeError('truncated bytes field');
    const out = bytes.slice(pos, pos + length);
    pos += length;
    return out;
  };
  while (pos < end) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === 0) entryType = readVarint();
    else if (field === 2 && wireType === 0) term = readVarint();
    else if (field === 3 && wireType === 0) index = readVarint();
    else if (field === 4 && wireType === 2) data = readBytes();
    else if (field === 6 && wireType === 2) context = readBytes();
    else if (wireType === 0) readVarint();
    else if (wireType === 2) readBytes();
    else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else throw new EntryDecodeError(`unsupported wire type ${wireType}`);
  }
  if (pos !== end) throw new EntryDecodeError('field overruns entry');
  // The varint sum rounds above 2^53; raftlog never writes such a value (the
  // encoder refuses it), so one read back was not written by raftlog.
  if (term > Number.MAX_SAFE_INTEGER || index > Number.MAX_SAFE_INTEGER) throw new EntryDecodeError('term or index beyond 2^53 - 1');
  return { entryType, term, index, data, context };
}
