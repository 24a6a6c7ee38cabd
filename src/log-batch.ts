/**
 * LogBatch: what one `engine.write()` makes atomic. Items are validated and
 * encoded as they are added (the bytes by src/format/batch-codec.ts), into
 * one buffer that already leaves room for the record header, so sealing an
 * uncompressed batch copies nothing.
 */
import { InvalidArgumentError, RaftlogError } from './errors.js';
import { checksumBatch, crc32c } from './format/checksum.js';
import { compressInto } from './format/compression.js';
import {
  CLEAN_ITEM_SIZE,
  ENTRIES_HEADER_SIZE,
  INDEX_ITEM_SIZE,
  ITEM_PREFIX_SIZE,
  ItemKind,
  entrySize,
  growUint32,
  keyItemSize,
  newItem,
  writeEntriesItem,
  writeIndexItem,
  writeItemPrefix,
  writeKeyItem,
  type BatchItem,
  type BatchItems,
} from './format/batch-codec.js';
import { newEntryFields, normalizeEntryInto } from './format/entry-codec.js';
import { RECORD_FLAG_LZ4, RECORD_HEADER_SIZE, RECORD_ALIGNMENT, roundUp } from './format/layout.js';
import type { Entry, ProtobufMessage } from './protos.js';
import { describeValue, requireBytes, requireInteger, requireKey, requireRegion } from './validate.js';
import { encodeMessage, type MessageCodec } from './raft/messages.js';

/** Largest payload one batch may carry; larger batches are rejected before anything is written. */
export const MAX_BATCH_PAYLOAD_BYTES = 1 << 30;

const textEncoder = new TextEncoder();
/** Reused by addEntries: the encoder runs synchronously, so one scratch object serves every batch. */
const SCRATCH = newEntryFields();
const EMPTY_BUFFER = new Uint8Array(0);

export type Key = Uint8Array | string;

export function keyBytes(key: Key): Uint8Array {
  const checked = requireKey(key, 'key');
  return typeof checked === 'string' ? textEncoder.encode(checked) : checked;
}

/**
 * A batch sealed for writing: the record bytes with header space at the
 * front. The write it is handed to owns it: the batch it came from never
 * writes into this memory again until `settled` is set (see LogBatch.clear).
 */
export interface SealedRecord {
  /** Header (to be filled by the writer), payload, zero padding to 8 bytes. */
  bytes: Uint8Array;
  payloadLength: number;
  payloadCrc: number;
  flags: number;
  /** Payload as indexed by `items` (the uncompressed bytes). */
  payload: Uint8Array;
  items: BatchItems;
  /**
   * Set by the write that owns the record once nothing reads its memory any
   * more (written and applied, or refused): the batch may then reuse it.
   */
  settled: boolean;
}

/**
 * Follows what an item does to a region's last entry index within one batch
 * (see addEntries), throwing INVALID_ARGUMENT on a gap; used by merge().
 */
function trackLastInBatch(lastInBatch: Map<number, number>, item: BatchItem): void {
  const last = lastInBatch.get(item.region);
  if (item.kind === ItemKind.Entries) {
    if (last !== undefined && item.index > last + 1) {
      throw new InvalidArgumentError(`region ${item.region}: merged entries at ${item.index} leave a gap after ${last} in this batch`);
    }
    lastInBatch.set(item.region, item.index + item.count - 1);
  } else if (item.kind === ItemKind.Compact) {
    if (last !== undefined && item.index > last) lastInBatch.delete(item.region);
  } else if (item.kind === ItemKind.Clean) {
    lastInBatch.delete(item.region);
  }
}

export class LogBatch {
  // Allocated on first use, sized to what is added: one allocation for a
  // typical batch, none for an empty one.
  #buffer: Uint8Array = EMPTY_BUFFER;
  #view = new DataView(this.#buffer.buffer);
  #end = RECORD_HEADER_SIZE;
  #items: BatchItem[] = [];
  #entryOffsets: Uint32Array = new Uint32Array(8);
  #entryLengths: Uint32Array = new Uint32Array(8);
  #entryCount = 0;
  /**
   * Where seal() compresses to, kept for the next seal: a compressed record's
   * bytes (header, lz4 payload, padding) live here while it is lent out.
   */
  #compressed: Uint8Array = EMPTY_BUFFER;
  /**
   * The record that shares this batch's buffer and item columns, while its
   * write may still read them: the next change to the batch copies (or, for
   * clear(), drops) them instead of writing into memory the write owns.
   */
  #lentTo: SealedRecord | undefined;
  /** region → last entry index appended so far in this batch, to check consecutiveness across calls. */
  #lastInBatch = new Map<number, number>();

  /** Number of items (entry runs, puts, deletes, commands). */
  get itemCount(): number {
    return this.#items.length;
  }

  get entryCount(): number {
    return this.#entryCount;
  }

  isEmpty(): boolean {
    return this.#items.length === 0;
  }

  /**
   * Encoded payload size in bytes (before compression): about what the
   * record will take, less its 24-byte header and padding.
   */
  approximateSize(): number {
    return this.#end - RECORD_HEADER_SIZE;
  }

  /**
   * Appends entries for a region. Indexes must be consecutive; appending at an
   * index at or below the region's last index overwrites the tail from there
   * (Raft's log truncation), a gap is rejected by the engine at write time.
   */
  addEntries(region: number, entries: readonly Entry[]): void {
    requireRegion(region);
    if (!Array.isArray(entries) || entries.length === 0) {
      throw new InvalidArgumentError(`entries must be a non-empty array, got ${describeValue(entries)}`);
    }
    // Two passes over the caller's entries with one scratch object: validate
    // and size everything before writing a byte, then encode.
    const entry = SCRATCH;
    const firstIndex = normalizeEntryInto(entries[0]!, entry).index;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      normalizeEntryInto(entries[i]!, entry);
      if (entry.index !== firstIndex + i) {
        throw new InvalidArgumentError(
          `region ${region}: entry indexes must be consecutive, got ${entry.index} after ${firstIndex + i - 1}`,
        );
      }
      bytes += entrySize(entry);
    }
    const previousLast = this.#lastInBatch.get(region);
    if (previousLast !== undefined && firstIndex > previousLast + 1) {
      throw new InvalidArgumentError(`region ${region}: entries at ${firstIndex} leave a gap after ${previousLast} in this batch`);
    }
    this.#own();
    this.#reserve(ITEM_PREFIX_SIZE + ENTRIES_HEADER_SIZE + bytes);
    this.#reserveEntries(entries.length);
    const item = newItem(ItemKind.Entries, region);
    item.index = firstIndex;
    item.count = entries.length;
    item.entryStart = this.#entryCount;
    const columns = { offsets: this.#entryOffsets, lengths: this.#entryLengths, at: this.#entryCount };
    this.#end = writeEntriesItem(this.#buffer, this.#view, this.#end, RECORD_HEADER_SIZE, region, entries, bytes, entry, columns);
    this.#entryCount += entries.length;
    this.#items.push(item);
    this.#lastInBatch.set(region, firstIndex + entries.length - 1);
  }

  /** Sets `key` to `value` in the region's key space. */
  put(region: number, key: Key, value: Uint8Array): void {
    requireRegion(region);
    const bytes = keyBytes(key);
    this.#keyItem(ItemKind.Put, region, bytes, requireBytes(value, 'value'));
  }

  /**
   * Encodes a message and puts it under `key`: with a typed codec
   * (`putMessage(region, 'hard_state', HardState, { term: 2, vote: 1, commit: 5 })`),
   * or a protobufjs message instance (`eraftpb.HardState.create(...)`).
   */
  putMessage<T, Init>(region: number, key: Key, codec: MessageCodec<T, Init>, message: NoInfer<Init>): void;
  putMessage(region: number, key: Key, message: ProtobufMessage): void;
  putMessage<T, Init>(region: number, key: Key, codecOrMessage: MessageCodec<T, Init> | ProtobufMessage, message?: Init): void {
    requireRegion(region);
    keyBytes(key);
    let encoded: Uint8Array;
    try {
      encoded = encodeMessage(codecOrMessage, message);
    } catch (error) {
      if (error instanceof RaftlogError) throw error;
      const detail = error instanceof Error ? error.message : 'encode failed';
      throw new InvalidArgumentError(`putMessage: the message does not encode (${detail})`, { cause: error });
    }
    this.put(region, key, encoded);
  }

  delete(region: number, key: Key): void {
    requireRegion(region);
    this.#keyItem(ItemKind.Delete, region, keyBytes(key), undefined);
  }

  /** Drops the region's entries below `index` when applied. */
  compactTo(region: number, index: number): void {
    requireRegion(region);
    requireInteger(index, 'index');
    this.#own();
    this.#reserve(INDEX_ITEM_SIZE);
    const item = newItem(ItemKind.Compact, region);
    item.index = index;
    this.#end = writeIndexItem(this.#view, this.#end, ItemKind.Compact, region, index);
    this.#items.push(item);
    // Compacting past the batch's own entries empties the region, as the
    // engine applies it: entries after that may start at any index, just as
    // they may in a batch written after this one (seed=117).
    const last = this.#lastInBatch.get(region);
    if (last !== undefined && index > last) this.#lastInBatch.delete(region);
  }

  /** Drops all of the region's entries and keys when applied. */
  clean(region: number): void {
    requireRegion(region);
    this.#own();
    this.#reserve(CLEAN_ITEM_SIZE);
    this.#end = writeItemPrefix(this.#view, this.#end, ItemKind.Clean, region);
    this.#items.push(newItem(ItemKind.Clean, region));
    this.#lastInBatch.delete(region);
  }

  /**
   * Moves `other`'s items to the end of this batch, in order, as if they had
   * been added here; `other` is left empty (raft-engine's `LogBatch::merge`).
   * Refused with INVALID_ARGUMENT, both batches unchanged, when `other`'s
   * entries would leave a gap after this batch's entries of a region.
   */
  merge(other: LogBatch): void {
    if (!(other instanceof LogBatch)) {
      throw new InvalidArgumentError(`merge needs a LogBatch, got ${describeValue(other)}`);
    }
    if (other === this) throw new InvalidArgumentError('merge: a batch cannot be merged into itself');
    const lastInBatch = new Map(this.#lastInBatch);
    for (const item of other.#items) trackLastInBatch(lastInBatch, item);
    const payload = other.#buffer.subarray(RECORD_HEADER_SIZE, other.#end);
    this.#own();
    this.#reserve(payload.length);
    // Offsets in items and entry columns are payload offsets: shift them by
    // where other's payload lands in this one.
    const shift = this.#end - RECORD_HEADER_SIZE;
    this.#buffer.set(payload, this.#end);
    for (const item of other.#items) {
      const moved = { ...item };
      if (item.kind === ItemKind.Put || item.kind === ItemKind.Delete) moved.keyOffset += shift;
      if (item.kind === ItemKind.Put) moved.valueOffset += shift;
      if (item.kind === ItemKind.Entries) moved.entryStart += this.#entryCount;
      this.#items.push(moved);
    }
    for (let i = 0; i < other.#entryCount; i++) {
      this.#pushEntry(other.#entryOffsets[i]! + shift, other.#entryLengths[i]!);
    }
    this.#end += payload.length;
    this.#lastInBatch = lastInBatch;
    other.clear();
  }

  /**
   * Marks this batch as a GC checkpoint: everything live below append file
   * `appendSeq`. Only the engine's purge writes these, into the rewrite queue.
   * @internal
   */
  markCheckpoint(appendSeq: number): void {
    requireInteger(appendSeq, 'appendSeq');
    this.#own();
    this.#reserve(INDEX_ITEM_SIZE);
    const item = newItem(ItemKind.Checkpoint, 0);
    item.index = appendSeq;
    this.#end = writeIndexItem(this.#view, this.#end, ItemKind.Checkpoint, 0, appendSeq);
    this.#items.push(item);
  }

  /**
   * Empties the batch so it can be reused.
   *
   * Reuse is always safe: a write owns what it writes from the moment
   * `engine.write(batch)` is called, so clearing the batch, adding items or
   * writing it again while that write is in flight changes neither what the
   * write stores nor what reads return. (RocksDB's WriteBatch is the caller's
   * again once Write returns; a LogBatch is as soon as write() is called.)
   * A batch written and not cleared still holds its items: adding more and
   * writing it again writes all of them. The buffer is kept for the next
   * items once the write has settled; before that, the batch starts a new one.
   */
  clear(): void {
    this.#own(false);
    this.#end = RECORD_HEADER_SIZE;
    this.#items = [];
    this.#entryCount = 0;
    this.#lastInBatch.clear();
  }

  /**
   * Seals the batch into record bytes, compressing the payload with lz4 when
   * it is larger than `compressionThreshold` and compression pays. The record
   * is the caller's (a write's) until it sets `settled`: it shares the batch's
   * memory, which the batch copies before changing while the record is out.
   * Each call returns a new record.
   */
  seal(compressionThreshold: number): SealedRecord {
    this.#own();
    const payloadLength = this.#end - RECORD_HEADER_SIZE;
    if (payloadLength > MAX_BATCH_PAYLOAD_BYTES) {
      throw new InvalidArgumentError(`batch payload of ${payloadLength} bytes exceeds the ${MAX_BATCH_PAYLOAD_BYTES}-byte limit`);
    }
    // Every entry's CRC (the encoders leave the slots zero), then the payload's over them.
    // An empty batch (a seal record) may have no buffer yet; its CRC is that of no bytes.
    const plainCrc =
      payloadLength === 0
        ? 0
        : checksumBatch(this.#buffer, RECORD_HEADER_SIZE, this.#end, this.#entryOffsets, this.#entryLengths, this.#entryCount);
    const payload = this.#buffer.subarray(RECORD_HEADER_SIZE, this.#end);
    const items: BatchItems = {
      items: this.#items,
      entryCount: this.#entryCount,
      entryOffsets: this.#entryOffsets,
      entryLengths: this.#entryLengths,
    };
    let sealed: SealedRecord | undefined;
    if (payloadLength > compressionThreshold && payloadLength > 0) {
      // Output only when it is smaller than the payload: the codec stops
      // as soon as it would not fit (docs/format.md, "Payload").
      this.#reserveCompressed(roundUp(RECORD_HEADER_SIZE + payloadLength, RECORD_ALIGNMENT));
      const out = this.#compressed;
      const written = compressInto(this.#buffer, RECORD_HEADER_SIZE, this.#end, out, RECORD_HEADER_SIZE, this.#end - 1);
      if (written > 0) {
        const storedEnd = RECORD_HEADER_SIZE + written;
        const total = roundUp(storedEnd, RECORD_ALIGNMENT);
        out.fill(0, storedEnd, total);
        sealed = {
          bytes: out.subarray(0, total),
          payloadLength: written,
          payloadCrc: crc32c(out.subarray(RECORD_HEADER_SIZE, storedEnd)),
          flags: RECORD_FLAG_LZ4,
          payload,
          items,
          settled: false,
        };
      }
    }
    if (sealed === undefined) {
      const total = roundUp(this.#end, RECORD_ALIGNMENT);
      this.#reserve(total - this.#end);
      this.#buffer.fill(0, this.#end, total);
      sealed = {
        bytes: this.#buffer.subarray(0, total),
        payloadLength,
        payloadCrc: plainCrc,
        flags: 0,
        payload: this.#buffer.subarray(RECORD_HEADER_SIZE, this.#end),
        items,
        settled: false,
      };
    }
    this.#lentTo = sealed;
    return sealed;
  }

  #keyItem(kind: ItemKind.Put | ItemKind.Delete, region: number, key: Uint8Array, value: Uint8Array | undefined): void {
    this.#own();
    this.#reserve(keyItemSize(key, value));
    const item = newItem(kind, region);
    this.#end = writeKeyItem(this.#buffer, this.#view, this.#end, RECORD_HEADER_SIZE, item, key, value);
    this.#items.push(item);
  }

  /** Makes room for `extra` more rows in the entry columns. */
  #reserveEntries(extra: number): void {
    while (this.#entryCount + extra > this.#entryOffsets.length) {
      this.#entryOffsets = growUint32(this.#entryOffsets);
      this.#entryLengths = growUint32(this.#entryLengths);
    }
  }

  #pushEntry(offset: number, length: number): void {
    this.#reserveEntries(1);
    this.#entryOffsets[this.#entryCount] = offset;
    this.#entryLengths[this.#entryCount] = length;
    this.#entryCount++;
  }

  /** Makes the compression buffer at least `size` bytes (unzeroed: seal() writes what it hands out). */
  #reserveCompressed(size: number): void {
    if (this.#compressed.length >= size) return;
    this.#compressed = Buffer.allocUnsafe(roundUp(size + (size >> 3), RECORD_ALIGNMENT));
  }

  #reserve(extra: number): void {
    const needed = this.#end + extra;
    if (needed <= this.#buffer.length) return;
    if (needed - RECORD_HEADER_SIZE > MAX_BATCH_PAYLOAD_BYTES + RECORD_ALIGNMENT) {
      throw new InvalidArgumentError(`batch would exceed the ${MAX_BATCH_PAYLOAD_BYTES}-byte limit`);
    }
    // Room for a few small items after this one (a hard-state put) without a
    // second copy. Unzeroed memory: every byte up to `#end` is written before
    // it is read, the record header by the writer and the padding by seal().
    const capacity = roundUp(Math.max(needed + (needed >> 2), 256), RECORD_ALIGNMENT);
    const bigger: Uint8Array = Buffer.allocUnsafe(capacity);
    bigger.set(this.#buffer.subarray(0, this.#end));
    this.#buffer = bigger;
    this.#view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
  }

  /**
   * Takes the batch's memory back from the record it was lent to before
   * changing it. A settled record no longer reads it, so it is simply
   * reused; otherwise the batch continues on a copy (`keep`) or, when it is
   * about to be emptied, on nothing (the next item allocates). This is the
   * only copy the ownership contract costs, and only reuse while a write is
   * in flight pays it.
   */
  #own(keep = true): void {
    const lent = this.#lentTo;
    if (lent === undefined) return;
    this.#lentTo = undefined;
    if (lent.settled) return;
    // A compressed record in flight is the compression buffer's: the next seal gets another.
    if ((lent.flags & RECORD_FLAG_LZ4) !== 0) this.#compressed = EMPTY_BUFFER;
    if (!keep) {
      this.#buffer = EMPTY_BUFFER;
      this.#view = new DataView(EMPTY_BUFFER.buffer);
      this.#entryOffsets = new Uint32Array(8);
      this.#entryLengths = new Uint32Array(8);
      return;
    }
    const copy: Uint8Array = Buffer.allocUnsafe(this.#buffer.length);
    copy.set(this.#buffer.subarray(0, this.#end));
    this.#buffer = copy;
    this.#view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
    this.#items = this.#items.slice();
    this.#entryOffsets = this.#entryOffsets.slice();
    this.#entryLengths = this.#entryLengths.slice();
  }
}
