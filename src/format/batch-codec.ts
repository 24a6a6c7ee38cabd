/**
 * The payload of one record: the items of one LogBatch, for any number of
 * regions. This module is the only place that writes or reads these bytes.
 * The encoders write into the LogBatch's growable buffer (which leaves room
 * for the record header in front, so offsets here are buffer offsets and
 * `payloadStart` says where the payload begins) and keep where each entry
 * landed in typed arrays, so indexing a batch into the memtables allocates
 * nothing per entry. Recovery decodes a payload into the same `BatchItems`
 * shape, so live writes and replay share one apply path.
 *
 *   item    := kind:u8 region:u64 body
 *   Entries := firstIndex:u64 count:u32 { length:u32 crc32c:u32 eraftpb.Entry }*count
 *   Put     := keyLength:u32 key valueLength:u32 value
 *   Delete  := keyLength:u32 key
 *   Compact := index:u64            (drop entries below index)
 *   Clean   :=                      (drop the region's entries and keys)
 *   Checkpoint := appendSeq:u64     (region 0; only in rewrite-queue files: this
 *                 record holds everything live below append file appendSeq)
 */
import { assert } from '../assert.js';
import { crc32c } from './checksum.js';
import { encodeEntry, encodedEntrySize, normalizeEntryInto, type EntryFields, type EntryInput } from './entry-codec.js';
import { readU64, writeU64 } from './layout.js';

export const enum ItemKind {
  Entries = 1,
  Put = 2,
  Delete = 3,
  Compact = 4,
  Clean = 5,
  Checkpoint = 6,
}

/** One item of a batch. Offsets are into the (decompressed) payload. */
export interface BatchItem {
  kind: ItemKind;
  region: number;
  /** Entries: first index; Compact: the index to compact to. */
  index: number;
  /** Entries: how many; they sit at `entryStart..entryStart+count` in the entry columns. */
  count: number;
  entryStart: number;
  keyOffset: number;
  keyLength: number;
  valueOffset: number;
  valueLength: number;
}

/** Where each entry of a batch sits in its payload (offset of the Entry bytes, and their length). */
export interface BatchItems {
  items: BatchItem[];
  entryCount: number;
  entryOffsets: Uint32Array;
  entryLengths: Uint32Array;
}

/** Bytes before an entry's protobuf bytes: its length and CRC32C. */
export const ENTRY_PREFIX_SIZE = 8;
/** kind:u8 region:u64, in front of every item. */
export const ITEM_PREFIX_SIZE = 9;
/** firstIndex:u64 count:u32, after the prefix of an Entries item. */
export const ENTRIES_HEADER_SIZE = 12;
/** A Compact or Checkpoint item: the prefix and index:u64. */
export const INDEX_ITEM_SIZE = ITEM_PREFIX_SIZE + 8;
/** A Clean item: the prefix alone. */
export const CLEAN_ITEM_SIZE = ITEM_PREFIX_SIZE;

export class PayloadDecodeError extends Error {
  constructor(
    message: string,
    readonly payloadOffset: number,
  ) {
    super(message);
  }
}

export function newItem(kind: ItemKind, region: number): BatchItem {
  return {
    kind,
    region,
    index: 0,
    count: 0,
    entryStart: 0,
    keyOffset: 0,
    keyLength: 0,
    valueOffset: 0,
    valueLength: 0,
  };
}

/**
 * Decodes a payload, checking every length; any inconsistency is a
 * PayloadDecodeError (a payload whose record checksum passed but fails here
 * was written by a buggy or foreign writer). Each entry's own CRC is checked
 * too unless `verifyEntries` is false: recovery passes false because it has
 * just verified the record's payload CRC over the same bytes, and checking
 * twice doubled its checksum work.
 */
export function decodePayload(payload: Uint8Array, verifyEntries = true): BatchItems {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const items: BatchItem[] = [];
  let offsets: Uint32Array = new Uint32Array(16);
  let lengths: Uint32Array = new Uint32Array(16);
  let entryCount = 0;
  let pos = 0;
  const need = (bytes: number, what: string): void => {
    if (pos + bytes > payload.length) throw new PayloadDecodeError(`truncated ${what}`, pos);
  };
  /** Steps over a u32 length and the bytes it counts; returns that length (they start at `pos - length`). */
  const lengthPrefixed = (what: string): number => {
    need(4, `${what} length`);
    const length = view.getUint32(pos, true);
    pos += 4;
    need(length, what);
    pos += length;
    return length;
  };
  while (pos < payload.length) {
    need(ITEM_PREFIX_SIZE, 'item header');
    const kind = view.getUint8(pos) as ItemKind;
    const item = newItem(kind, readU64(view, pos + 1));
    pos += ITEM_PREFIX_SIZE;
    switch (kind) {
      case ItemKind.Entries: {
        need(ENTRIES_HEADER_SIZE, 'entries header');
        item.index = readU64(view, pos);
        item.count = view.getUint32(pos + 8, true);
        pos += ENTRIES_HEADER_SIZE;
        item.entryStart = entryCount;
        if (item.count === 0) throw new PayloadDecodeError('empty entries item', pos);
        for (let i = 0; i < item.count; i++) {
          need(ENTRY_PREFIX_SIZE, 'entry prefix');
          const length = view.getUint32(pos, true);
          const crc = view.getUint32(pos + 4, true);
          pos += ENTRY_PREFIX_SIZE;
          need(length, 'entry');
          if (verifyEntries && crc32c(payload.subarray(pos, pos + length)) !== crc) {
            throw new PayloadDecodeError('entry checksum mismatch', pos);
          }
          if (entryCount === offsets.length) {
            offsets = grow(offsets);
            lengths = grow(lengths);
          }
          offsets[entryCount] = pos;
          lengths[entryCount] = length;
          entryCount++;
          pos += length;
        }
        break;
      }
      case ItemKind.Put:
      case ItemKind.Delete: {
        item.keyLength = lengthPrefixed('key');
        item.keyOffset = pos - item.keyLength;
        if (kind === ItemKind.Put) {
          item.valueLength = lengthPrefixed('value');
          item.valueOffset = pos - item.valueLength;
        }
        break;
      }
      case ItemKind.Compact:
      case ItemKind.Checkpoint:
        need(8, 'index');
        item.index = readU64(view, pos);
        pos += 8;
        break;
      case ItemKind.Clean:
        break;
      default:
        throw new PayloadDecodeError(`unknown item kind ${kind as number}`, pos - ITEM_PREFIX_SIZE);
    }
    items.push(item);
  }
  // Every `need` kept reads inside the payload, so the last item ends it exactly.
  assert(pos === payload.length, 'decodePayload: items must end exactly at the end of the payload');
  return { items, entryCount, entryOffsets: offsets, entryLengths: lengths };
}

function grow(array: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

export { grow as growUint32 };

/*
 * Encoders. Each writes one item at `pos` in `target` (with `view` over the
 * same memory) and returns the offset after it; the caller has reserved the
 * room (the *_SIZE constants and the size functions say how much) and has
 * validated what the item holds (src/validate.ts, normalizeEntryInto).
 */

/** Writes the 9-byte item prefix. */
export function writeItemPrefix(view: DataView, offset: number, kind: ItemKind, region: number): number {
  assert(kind >= ItemKind.Entries && kind <= ItemKind.Checkpoint, 'writeItemPrefix: unknown item kind');
  view.setUint8(offset, kind);
  writeU64(view, offset + 1, region);
  return offset + ITEM_PREFIX_SIZE;
}

/** Bytes one (normalized) entry takes in an Entries item, its length and CRC prefix included. */
export function entrySize(entry: EntryFields): number {
  return ENTRY_PREFIX_SIZE + encodedEntrySize(entry);
}

/**
 * Writes an Entries item holding `entries`, which the caller validated
 * (consecutive indexes from `firstIndex`) and sized: `entriesBytes` is the
 * sum of their `entrySize`. Each entry is normalized again into `scratch`
 * (no object per entry), and where its protobuf bytes landed is recorded, as
 * payload offsets, at `column..column+entries.length` of `offsets` and
 * `lengths`, which must have that room.
 */
export function writeEntriesItem(
  target: Uint8Array,
  view: DataView,
  pos: number,
  payloadStart: number,
  region: number,
  entries: readonly EntryInput[],
  entriesBytes: number,
  scratch: EntryFields,
  columns: { offsets: Uint32Array; lengths: Uint32Array; at: number },
): number {
  const count = entries.length;
  assert(count > 0, 'writeEntriesItem: an Entries item holds at least one entry');
  assert(columns.at + count <= columns.offsets.length, 'writeEntriesItem: no room in the entry columns');
  const firstIndex = normalizeEntryInto(entries[0]!, scratch).index;
  const itemEnd = pos + ITEM_PREFIX_SIZE + ENTRIES_HEADER_SIZE + entriesBytes;
  pos = writeItemPrefix(view, pos, ItemKind.Entries, region);
  writeU64(view, pos, firstIndex);
  view.setUint32(pos + 8, count, true);
  pos += ENTRIES_HEADER_SIZE;
  const { offsets, lengths, at } = columns;
  for (let i = 0; i < count; i++) {
    normalizeEntryInto(entries[i]!, scratch);
    const start = pos + ENTRY_PREFIX_SIZE;
    const end = encodeEntry(target, start, scratch);
    view.setUint32(pos, end - start, true);
    view.setUint32(pos + 4, crc32c(target.subarray(start, end)), true);
    offsets[at + i] = start - payloadStart;
    lengths[at + i] = end - start;
    pos = end;
  }
  // Pair check of the two passes: the bytes written are the bytes sized (and
  // reserved), so nothing ran past the reservation and no gap was left.
  assert(pos === itemEnd, 'writeEntriesItem: entries encoded to a different size than they were sized');
  return pos;
}

/** Bytes of a Put (`value` given) or Delete item. */
export function keyItemSize(key: Uint8Array, value: Uint8Array | undefined): number {
  return ITEM_PREFIX_SIZE + 4 + key.length + (value === undefined ? 0 : 4 + value.length);
}

/**
 * Writes a Put item (`value` given) or a Delete item, and fills `item`'s key
 * and value fields with payload offsets.
 */
export function writeKeyItem(
  target: Uint8Array,
  view: DataView,
  pos: number,
  payloadStart: number,
  item: BatchItem,
  key: Uint8Array,
  value: Uint8Array | undefined,
): number {
  const kind = value === undefined ? ItemKind.Delete : ItemKind.Put;
  assert(item.kind === kind, 'writeKeyItem: a Put has a value, a Delete none');
  const itemEnd = pos + keyItemSize(key, value);
  pos = writeItemPrefix(view, pos, item.kind, item.region);
  view.setUint32(pos, key.length, true);
  item.keyOffset = pos + 4 - payloadStart;
  item.keyLength = key.length;
  target.set(key, pos + 4);
  pos += 4 + key.length;
  if (value !== undefined) {
    view.setUint32(pos, value.length, true);
    item.valueOffset = pos + 4 - payloadStart;
    item.valueLength = value.length;
    target.set(value, pos + 4);
    pos += 4 + value.length;
  }
  assert(pos === itemEnd, 'writeKeyItem: item written to a different size than it was sized');
  return pos;
}

/** Writes a Compact or Checkpoint item: the prefix and `index`. */
export function writeIndexItem(
  view: DataView,
  pos: number,
  kind: ItemKind.Compact | ItemKind.Checkpoint,
  region: number,
  index: number,
): number {
  pos = writeItemPrefix(view, pos, kind, region);
  writeU64(view, pos, index);
  return pos + 8;
}
