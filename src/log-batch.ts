/**
 * LogBatch: what one `engine.write()` makes atomic. Items are encoded as they
 * are added, into one buffer that already leaves room for the record header,
 * so sealing an uncompressed batch copies nothing.
 */
import { compressSync } from 'lz4-napi';
import { InvalidArgumentError } from './errors.js';
import { crc32c } from './format/checksum.js';
import {
  ENTRY_PREFIX_SIZE,
  ITEM_PREFIX_SIZE,
  ItemKind,
  growUint32,
  newItem,
  writeItemPrefix,
  type BatchItem,
  type BatchItems,
} from './format/batch-codec.js';
import { encodeEntry, encodedEntrySize, newEntryFields, normalizeEntryInto, toSafeInteger } from './format/entry-codec.js';
import { RECORD_FLAG_LZ4, RECORD_HEADER_SIZE, RECORD_ALIGNMENT, roundUp, writeU64 } from './format/layout.js';
import type { Entry, ProtobufMessage } from './protos.js';
import { encodeMessage, type MessageCodec } from './raft/messages.js';

/** Largest payload one batch may carry; larger batches are rejected before anything is written. */
export const MAX_BATCH_PAYLOAD_BYTES = 1 << 30;

const textEncoder = new TextEncoder();
/** Reused by addEntries: the encoder runs synchronously, so one scratch object serves every batch. */
const SCRATCH = newEntryFields();
const EMPTY_BUFFER = new Uint8Array(0);

export type Key = Uint8Array | string;

export function keyBytes(key: Key): Uint8Array {
  if (typeof key === 'string') return textEncoder.encode(key);
  if (key instanceof Uint8Array) return key;
  throw new InvalidArgumentError('key must be a Uint8Array or a string');
}

export function validateRegion(region: number): number {
  return toSafeInteger(region, 'region');
}

/** A batch sealed for writing: the record bytes with header space at the front. */
export interface SealedRecord {
  /** Header (to be filled by the writer), payload, zero padding to 8 bytes. */
  bytes: Uint8Array;
  payloadLength: number;
  payloadCrc: number;
  flags: number;
  /** Payload as indexed by `items` (the uncompressed bytes). */
  payload: Uint8Array;
  items: BatchItems;
}

/** Per-region effect of a batch on entry indexes, used to validate it against the engine's state. */
export interface RegionEffect {
  region: number;
  /** Index of the first and last entry appended (NaN when none). */
  firstAppended: number;
  lastAppended: number;
  /** The batch cleans the region (after which appends start fresh). */
  cleans: boolean;
}

/** Payloads larger than this are sampled before compressing them whole. */
const COMPRESSION_SAMPLE_BYTES = 64 << 10;

/**
 * lz4 over an incompressible megabyte costs more than writing it (about 1 ms
 * against 0.2 ms measured here), so a large payload is compressed whole only
 * when a sample of it shrinks by at least a tenth.
 */
function worthCompressing(payload: Uint8Array): boolean {
  if (payload.length <= COMPRESSION_SAMPLE_BYTES) return true;
  const sample = payload.subarray(0, COMPRESSION_SAMPLE_BYTES);
  return compressSync(Buffer.from(sample.buffer, sample.byteOffset, sample.byteLength)).length < sample.length * 0.9;
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
  #sealed: SealedRecord | undefined;
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

  /** Encoded payload size in bytes (before compression). */
  get approximateSize(): number {
    return this.#end - RECORD_HEADER_SIZE;
  }

  /**
   * Appends entries for a region. Indexes must be consecutive; appending at an
   * index at or below the region's last index overwrites the tail from there
   * (Raft's log truncation), a gap is rejected by the engine at write time.
   */
  addEntries(region: number, entries: readonly Entry[]): void {
    this.#assertOpen();
    validateRegion(region);
    if (!Array.isArray(entries) || entries.length === 0) throw new InvalidArgumentError('entries must be a non-empty array');
    // Two passes over the caller's entries with one scratch object: validate
    // and size everything before writing a byte, then encode.
    const entry = SCRATCH;
    const firstIndex = normalizeEntryInto(entries[0]!, entry).index;
    let bytes = 12;
    for (let i = 0; i < entries.length; i++) {
      normalizeEntryInto(entries[i]!, entry);
      if (entry.index !== firstIndex + i) {
        throw new InvalidArgumentError(
          `region ${region}: entry indexes must be consecutive, got ${entry.index} after ${firstIndex + i - 1}`,
        );
      }
      bytes += ENTRY_PREFIX_SIZE + encodedEntrySize(entry);
    }
    const previousLast = this.#lastInBatch.get(region);
    if (previousLast !== undefined && firstIndex > previousLast + 1) {
      throw new InvalidArgumentError(`region ${region}: entries at ${firstIndex} leave a gap after ${previousLast} in this batch`);
    }
    this.#reserve(ITEM_PREFIX_SIZE + bytes);
    const item = newItem(ItemKind.Entries, region);
    item.index = firstIndex;
    item.count = entries.length;
    item.entryStart = this.#entryCount;
    let pos = writeItemPrefix(this.#view, this.#end, ItemKind.Entries, region);
    writeU64(this.#view, pos, firstIndex);
    this.#view.setUint32(pos + 8, entries.length, true);
    pos += 12;
    for (let i = 0; i < entries.length; i++) {
      normalizeEntryInto(entries[i]!, entry);
      const start = pos + ENTRY_PREFIX_SIZE;
      const end = encodeEntry(this.#buffer, start, entry);
      this.#view.setUint32(pos, end - start, true);
      this.#view.setUint32(pos + 4, crc32c(this.#buffer.subarray(start, end)), true);
      this.#pushEntry(start - RECORD_HEADER_SIZE, end - start);
      pos = end;
    }
    this.#end = pos;
    this.#items.push(item);
    this.#lastInBatch.set(region, firstIndex + entries.length - 1);
  }

  /** Sets `key` to `value` in the region's key space. */
  put(region: number, key: Key, value: Uint8Array): void {
    this.#assertOpen();
    validateRegion(region);
    if (!(value instanceof Uint8Array)) throw new InvalidArgumentError('value must be a Uint8Array');
    this.#keyItem(ItemKind.Put, region, keyBytes(key), value);
  }

  /**
   * Encodes a message and puts it under `key`: with a typed codec
   * (`putMessage(region, 'hard_state', HardState, { term: 2, vote: 1, commit: 5 })`),
   * or a protobufjs message instance (`eraftpb.HardState.create(...)`).
   */
  putMessage<T, Init>(region: number, key: Key, codec: MessageCodec<T, Init>, message: NoInfer<Init>): void;
  putMessage(region: number, key: Key, message: ProtobufMessage): void;
  putMessage<T, Init>(region: number, key: Key, codecOrMessage: MessageCodec<T, Init> | ProtobufMessage, message?: Init): void {
    this.put(region, key, encodeMessage(codecOrMessage, message));
  }

  delete(region: number, key: Key): void {
    this.#assertOpen();
    validateRegion(region);
    this.#keyItem(ItemKind.Delete, region, keyBytes(key), undefined);
  }

  /** Drops the region's entries below `index` when applied. */
  compactTo(region: number, index: number): void {
    this.#assertOpen();
    validateRegion(region);
    toSafeInteger(index, 'index');
    this.#reserve(ITEM_PREFIX_SIZE + 8);
    const item = newItem(ItemKind.Compact, region);
    item.index = index;
    const pos = writeItemPrefix(this.#view, this.#end, ItemKind.Compact, region);
    writeU64(this.#view, pos, index);
    this.#end = pos + 8;
    this.#items.push(item);
    // Compacting past the batch's own entries empties the region, as the
    // engine applies it: entries after that may start at any index, just as
    // they may in a batch written after this one (seed=117).
    const last = this.#lastInBatch.get(region);
    if (last !== undefined && index > last) this.#lastInBatch.delete(region);
  }

  /** Drops all of the region's entries and keys when applied. */
  clean(region: number): void {
    this.#assertOpen();
    validateRegion(region);
    this.#reserve(ITEM_PREFIX_SIZE);
    this.#end = writeItemPrefix(this.#view, this.#end, ItemKind.Clean, region);
    this.#items.push(newItem(ItemKind.Clean, region));
    this.#lastInBatch.delete(region);
  }

  /**
   * Marks this batch as a GC checkpoint: everything live below append file
   * `appendSeq`. Only the engine's purge writes these, into the rewrite queue.
   * @internal
   */
  markCheckpoint(appendSeq: number): void {
    this.#assertOpen();
    this.#reserve(ITEM_PREFIX_SIZE + 8);
    const item = newItem(ItemKind.Checkpoint, 0);
    item.index = appendSeq;
    const pos = writeItemPrefix(this.#view, this.#end, ItemKind.Checkpoint, 0);
    writeU64(this.#view, pos, appendSeq);
    this.#end = pos + 8;
    this.#items.push(item);
  }

  /** Empties the batch so it can be reused; the buffer is kept. */
  clear(): void {
    this.#end = RECORD_HEADER_SIZE;
    this.#items = [];
    this.#entryCount = 0;
    this.#sealed = undefined;
    this.#lastInBatch.clear();
  }

  /** The per-region entry ranges this batch appends, for validation against the engine. */
  regionEffects(): RegionEffect[] {
    const effects = new Map<number, RegionEffect>();
    for (const item of this.#items) {
      let effect = effects.get(item.region);
      if (effect === undefined) {
        effect = { region: item.region, firstAppended: Number.NaN, lastAppended: Number.NaN, cleans: false };
        effects.set(item.region, effect);
      }
      if (item.kind === ItemKind.Entries) {
        if (Number.isNaN(effect.firstAppended)) effect.firstAppended = item.index;
        effect.lastAppended = item.index + item.count - 1;
      } else if (item.kind === ItemKind.Clean) {
        effect.cleans = true;
        effect.firstAppended = Number.NaN;
        effect.lastAppended = Number.NaN;
      }
    }
    return [...effects.values()];
  }

  /**
   * Seals the batch into record bytes, compressing the payload with lz4 when
   * it is larger than `compressionThreshold` and compression pays. The batch
   * is frozen until `clear()`; sealing twice returns the same record.
   */
  seal(compressionThreshold: number): SealedRecord {
    if (this.#sealed !== undefined) return this.#sealed;
    const payloadLength = this.#end - RECORD_HEADER_SIZE;
    if (payloadLength > MAX_BATCH_PAYLOAD_BYTES) {
      throw new InvalidArgumentError(`batch payload of ${payloadLength} bytes exceeds the ${MAX_BATCH_PAYLOAD_BYTES}-byte limit`);
    }
    const payload = this.#buffer.subarray(RECORD_HEADER_SIZE, this.#end);
    const items: BatchItems = {
      items: this.#items,
      entryCount: this.#entryCount,
      entryOffsets: this.#entryOffsets,
      entryLengths: this.#entryLengths,
    };
    let sealed: SealedRecord | undefined;
    if (payloadLength > compressionThreshold && worthCompressing(payload)) {
      const compressed = compressSync(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      if (compressed.length < payloadLength) {
        const bytes = new Uint8Array(roundUp(RECORD_HEADER_SIZE + compressed.length, RECORD_ALIGNMENT));
        bytes.set(compressed, RECORD_HEADER_SIZE);
        sealed = {
          bytes,
          payloadLength: compressed.length,
          payloadCrc: crc32c(compressed),
          flags: RECORD_FLAG_LZ4,
          payload,
          items,
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
        payloadCrc: crc32c(this.#buffer.subarray(RECORD_HEADER_SIZE, this.#end)),
        flags: 0,
        payload: this.#buffer.subarray(RECORD_HEADER_SIZE, this.#end),
        items,
      };
    }
    this.#sealed = sealed;
    return sealed;
  }

  #keyItem(kind: ItemKind, region: number, key: Uint8Array, value: Uint8Array | undefined): void {
    const valueBytes = value === undefined ? 0 : 4 + value.length;
    this.#reserve(ITEM_PREFIX_SIZE + 4 + key.length + valueBytes);
    const item = newItem(kind, region);
    let pos = writeItemPrefix(this.#view, this.#end, kind, region);
    this.#view.setUint32(pos, key.length, true);
    item.keyOffset = pos + 4 - RECORD_HEADER_SIZE;
    item.keyLength = key.length;
    this.#buffer.set(key, pos + 4);
    pos += 4 + key.length;
    if (value !== undefined) {
      this.#view.setUint32(pos, value.length, true);
      item.valueOffset = pos + 4 - RECORD_HEADER_SIZE;
      item.valueLength = value.length;
      this.#buffer.set(value, pos + 4);
      pos += 4 + value.length;
    }
    this.#end = pos;
    this.#items.push(item);
  }

  #pushEntry(offset: number, length: number): void {
    if (this.#entryCount === this.#entryOffsets.length) {
      this.#entryOffsets = growUint32(this.#entryOffsets);
      this.#entryLengths = growUint32(this.#entryLengths);
    }
    this.#entryOffsets[this.#entryCount] = offset;
    this.#entryLengths[this.#entryCount] = length;
    this.#entryCount++;
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

  #assertOpen(): void {
    if (this.#sealed !== undefined) {
      throw new InvalidArgumentError('this LogBatch was already written; call clear() before adding to it again');
    }
  }
}
