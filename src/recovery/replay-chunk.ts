/**
 * One chunk of a log file, verified off the main thread for parallel replay
 * (see prescan.ts): the worker side (`scanChunk`) and the main side
 * (`ChunkRecords`) of the message between them.
 *
 * A chunk is the file's bytes [base, base + length). The worker follows the
 * chain of records that start before `chunkEnd`, record after record, as the
 * serial scanner does, through the same verifier (record-verify.ts). The
 * first chunk of a file starts at the first record; any other chunk does not
 * know where its first record starts, so it looks for it as `findNextValid`
 * does (the offset tag, then the whole record verifying). The chain stops at
 * the first offset that holds no valid record, or whose record runs past the
 * bytes the chunk was given: the worker only reports records, never damage.
 * Recovery asks for each record by offset and reads serially any offset the
 * chunks did not report, so every decision about damage is the serial one.
 *
 * The result is a few typed arrays, not an object per record, so posting it
 * back costs one copy of a small buffer. The chunk's bytes stay where the
 * main thread read them, in a SharedArrayBuffer slot each worker was handed
 * once: moving megabytes per chunk as transferred ArrayBuffers counted as
 * fresh external memory on both sides and cost more in garbage collection
 * than the work it moved.
 */
import type { BatchItem, BatchItems, ItemKind } from '../format/batch-codec.js';
import { RECORD_ALIGNMENT, RECORD_HEADER_SIZE, readOffsetTag, readRecordHeader, roundUp, type RecordHeader } from '../format/layout.js';
import { verifyPayload } from './record-verify.js';
import type { ScannedRecord } from './scanner.js';

export interface ChunkJob {
  id: number;
  /** The shared slot holding the chunk's bytes at [0, length). */
  slot: number;
  length: number;
  /** File offset of buffer[0]. */
  base: number;
  /** Records starting at or past this offset belong to the next chunk. */
  chunkEnd: number;
  salt: number;
  /** `base` is where a record starts (a file's first record), so no search. */
  exactStart: boolean;
}

/** Hands a worker a slot, once, before any job names it, and the pool's claim cells (replay-pool.ts). */
export interface PoolShare {
  share: number;
  bytes: SharedArrayBuffer;
  claims: Int32Array;
}

export interface ChunkResult {
  id: number;
  /** RECORD_FIELDS numbers per record, in file order. */
  records: Float64Array;
  /** ITEM_FIELDS numbers per item. */
  items: Float64Array;
  /** Per entry: its offset in the payload, then its length. */
  entries: Uint32Array;
  /** Decompressed payloads of lz4 records, back to back. */
  inflated: ArrayBuffer;
  /** Set when the worker threw (a bug): the chunk reports no record, so replay reads it serially and meets the same error. */
  failed?: string;
}

const enum R {
  Offset,
  PayloadLength,
  SyncedThrough,
  PayloadCrc,
  Flags,
  End,
  /** Where the payload starts: in the chunk buffer (-1 - position) or in `inflated` (position). */
  PayloadAt,
  PayloadSize,
  ItemStart,
  ItemCount,
  EntryStart,
  EntryCount,
}
const RECORD_FIELDS = 12;

const enum I {
  Kind,
  Region,
  Index,
  Count,
  EntryStart,
  KeyOffset,
  KeyLength,
  ValueOffset,
  ValueLength,
}
const ITEM_FIELDS = 9;

/** A typed array that doubles as it fills. */
class Column<T extends Float64Array | Uint32Array> {
  length = 0;
  constructor(public array: T) {}
  push(value: number): void {
    if (this.length === this.array.length) {
      const bigger = new (this.array.constructor as new (n: number) => T)(this.array.length * 2);
      bigger.set(this.array);
      this.array = bigger;
    }
    this.array[this.length++] = value;
  }
  done(): T {
    return this.array.slice(0, this.length) as T;
  }
}

/** The records of a chunk whose chain can be followed from a valid record; worker side. */
export function scanChunk(job: ChunkJob, slot: SharedArrayBuffer): ChunkResult {
  const bytes = new Uint8Array(slot, 0, job.length);
  const limit = job.base + job.length;
  const records = new Column(new Float64Array(RECORD_FIELDS * 64));
  const items = new Column(new Float64Array(ITEM_FIELDS * 64));
  const entries = new Column(new Uint32Array(2 * 1024));
  const inflated: Uint8Array[] = [];
  let inflatedBytes = 0;
  const recordAt = (offset: number): ScannedRecord | undefined => {
    if (offset + RECORD_HEADER_SIZE > limit) return undefined;
    const at = offset - job.base;
    const header = readRecordHeader(bytes.subarray(at, at + RECORD_HEADER_SIZE), offset, job.salt);
    if (header === undefined || offset + RECORD_HEADER_SIZE + header.payloadLength > limit) return undefined;
    const payloadAt = at + RECORD_HEADER_SIZE;
    const record = verifyPayload(offset, header, bytes.subarray(payloadAt, payloadAt + header.payloadLength));
    return 'header' in record ? record : undefined;
  };
  let record: ScannedRecord | undefined;
  if (job.exactStart) {
    record = recordAt(job.base);
  } else {
    for (
      let at = roundUp(job.base, RECORD_ALIGNMENT);
      record === undefined && at < job.chunkEnd && at + RECORD_HEADER_SIZE <= limit;
      at += RECORD_ALIGNMENT
    ) {
      if (readOffsetTag(bytes.subarray(at - job.base)) === at) record = recordAt(at);
    }
  }
  while (record !== undefined && record.offset < job.chunkEnd) {
    const { header, payload, items: batch } = record;
    const compressed = payload.buffer !== slot;
    records.push(record.offset);
    records.push(header.payloadLength);
    records.push(header.syncedThrough);
    records.push(header.payloadCrc);
    records.push(header.flags);
    records.push(record.end);
    records.push(compressed ? inflatedBytes : -1 - payload.byteOffset);
    records.push(payload.length);
    records.push(items.length / ITEM_FIELDS);
    records.push(batch.items.length);
    records.push(entries.length / 2);
    records.push(batch.entryCount);
    if (compressed) {
      inflated.push(payload);
      inflatedBytes += payload.length;
    }
    for (const item of batch.items) {
      items.push(item.kind);
      items.push(item.region);
      items.push(item.index);
      items.push(item.count);
      items.push(item.entryStart);
      items.push(item.keyOffset);
      items.push(item.keyLength);
      items.push(item.valueOffset);
      items.push(item.valueLength);
    }
    for (let i = 0; i < batch.entryCount; i++) {
      entries.push(batch.entryOffsets[i]!);
      entries.push(batch.entryLengths[i]!);
    }
    record = record.end < job.chunkEnd ? recordAt(record.end) : undefined;
  }
  const joined = new Uint8Array(inflatedBytes);
  let at = 0;
  for (const payload of inflated) {
    joined.set(payload, at);
    at += payload.length;
  }
  return { id: job.id, records: records.done(), items: items.done(), entries: entries.done(), inflated: joined.buffer };
}

/** What a worker reported for one chunk, looked up by record offset; main side. */
export class ChunkRecords {
  readonly #result: ChunkResult;
  readonly #count: number;
  /** Where the last lookup hit: replay asks for offsets in order. */
  #cursor = 0;

  /** `bytes` is the slot the chunk was read into, which the caller keeps as long as these records are used. */
  constructor(
    result: ChunkResult,
    readonly bytes: SharedArrayBuffer,
  ) {
    this.#result = result;
    this.#count = result.records.length / RECORD_FIELDS;
  }

  /** The verified record at `offset`, or undefined when the worker did not report one there. */
  at(offset: number): ScannedRecord | undefined {
    const records = this.#result.records;
    let i = this.#cursor;
    if (i >= this.#count || records[i * RECORD_FIELDS + R.Offset]! > offset) i = 0;
    while (i < this.#count && records[i * RECORD_FIELDS + R.Offset]! < offset) i++;
    if (i >= this.#count || records[i * RECORD_FIELDS + R.Offset] !== offset) return undefined;
    this.#cursor = i + 1;
    return this.#record(i * RECORD_FIELDS);
  }

  #record(r: number): ScannedRecord {
    const { records, items: itemColumn, entries, inflated } = this.#result;
    const buffer = this.bytes;
    const header: RecordHeader = {
      payloadLength: records[r + R.PayloadLength]!,
      offset: records[r + R.Offset]!,
      syncedThrough: records[r + R.SyncedThrough]!,
      payloadCrc: records[r + R.PayloadCrc]!,
      flags: records[r + R.Flags]!,
    };
    const payloadAt = records[r + R.PayloadAt]!;
    const payloadSize = records[r + R.PayloadSize]!;
    const payload = payloadAt < 0 ? new Uint8Array(buffer, -1 - payloadAt, payloadSize) : new Uint8Array(inflated, payloadAt, payloadSize);
    const itemStart = records[r + R.ItemStart]!;
    const list: BatchItem[] = new Array<BatchItem>(records[r + R.ItemCount]!);
    for (let i = 0; i < list.length; i++) {
      const at = (itemStart + i) * ITEM_FIELDS;
      list[i] = {
        kind: itemColumn[at + I.Kind]! as ItemKind,
        region: itemColumn[at + I.Region]!,
        index: itemColumn[at + I.Index]!,
        count: itemColumn[at + I.Count]!,
        entryStart: itemColumn[at + I.EntryStart]!,
        keyOffset: itemColumn[at + I.KeyOffset]!,
        keyLength: itemColumn[at + I.KeyLength]!,
        valueOffset: itemColumn[at + I.ValueOffset]!,
        valueLength: itemColumn[at + I.ValueLength]!,
      };
    }
    const entryStart = records[r + R.EntryStart]!;
    const entryCount = records[r + R.EntryCount]!;
    const offsets = new Uint32Array(entryCount);
    const lengths = new Uint32Array(entryCount);
    for (let i = 0; i < entryCount; i++) {
      offsets[i] = entries[2 * (entryStart + i)]!;
      lengths[i] = entries[2 * (entryStart + i) + 1]!;
    }
    const batch: BatchItems = { items: list, entryCount, entryOffsets: offsets, entryLengths: lengths };
    return { offset: header.offset, header, payload, items: batch, end: records[r + R.End]! };
  }
}
