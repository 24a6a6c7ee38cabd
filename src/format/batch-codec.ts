/**
 * The payload of one record: the items of one LogBatch, for any number of
 * regions. The encoder appends straight into one growable buffer and keeps
 * where each entry landed in typed arrays, so indexing a batch into the
 * memtables allocates nothing per entry. Recovery decodes a payload into the
 * same `BatchItems` shape, so live writes and replay share one apply path.
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
import { crc32c } from './checksum.js';
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
const ITEM_PREFIX_SIZE = 9;

export class PayloadDecodeError extends Error {
  constructor(
    message: string,
    readonly payloadOffset: number,
  ) {
    super(message);
  }
}

export function newItem(kind: ItemKind, region: number): BatchItem {
  return { kind, region, index: 0, count: 0, entryStart: 0, keyOffset: 0, keyLength: 0, valueOffset: 0, valueLength: 0 };
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
  while (pos < payload.length) {
    need(ITEM_PREFIX_SIZE, 'item header');
    const kind = view.getUint8(pos) as ItemKind;
    const item = newItem(kind, readU64(view, pos + 1));
    pos += ITEM_PREFIX_SIZE;
    switch (kind) {
      case ItemKind.Entries: {
        need(12, 'entries header');
        item.index = readU64(view, pos);
        item.count = view.getUint32(pos + 8, true);
        pos += 12;
        item.entryStart = entryCount;
        if (item.count === 0) throw new PayloadDecodeError('empty entries item', pos);
        for (let i = 0; i < item.count; i++) {
          need(ENTRY_PREFIX_SIZE, 'entry prefix');
          const length = view.getUint32(pos, true);
          const crc = view.getUint32(pos + 4, true);
          pos += ENTRY_PREFIX_SIZE;
          need(length, 'entry');
          if (verifyEntries && crc32c(payload.subarray(pos, pos + length)) !== crc) throw new PayloadDecodeError('entry checksum mismatch', pos);
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
        need(4, 'key length');
        item.keyLength = view.getUint32(pos, true);
        item.keyOffset = pos + 4;
        pos += 4;
        need(item.keyLength, 'key');
        pos += item.keyLength;
        if (kind === ItemKind.Put) {
          need(4, 'value length');
          item.valueLength = view.getUint32(pos, true);
          item.valueOffset = pos + 4;
          pos += 4;
          need(item.valueLength, 'value');
          pos += item.valueLength;
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
  return { items, entryCount, entryOffsets: offsets, entryLengths: lengths };
}

function grow(array: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

export { grow as growUint32 };

/** Writes the 9-byte item prefix. */
export function writeItemPrefix(view: DataView, offset: number, kind: ItemKind, region: number): number {
  view.setUint8(offset, kind);
  writeU64(view, offset + 1, region);
  return offset + ITEM_PREFIX_SIZE;
}

export { ITEM_PREFIX_SIZE };
