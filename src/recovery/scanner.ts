/**
 * Reads one log file record by record, verifying every checksum, through a
 * bounded read window (recovery memory does not grow with file size).
 *
 * The scanner only says what it found; recovery.ts decides what a damaged
 * record means for the chosen RecoveryMode.
 */
import { uncompressSync } from 'lz4-napi';
import type { FileHandle } from '../filesystem.js';
import { crc32c } from '../format/checksum.js';
import { decodePayload, PayloadDecodeError, type BatchItems } from '../format/batch-codec.js';
import {
  FILE_HEADER_SIZE,
  RECORD_ALIGNMENT,
  RECORD_FLAG_LZ4,
  RECORD_HEADER_SIZE,
  isAllZero,
  nextRecordOffset,
  readRecordHeader,
  type RecordHeader,
} from '../format/layout.js';

const WINDOW_BYTES = 8 << 20;

/** A verified record. */
export interface ScannedRecord {
  offset: number;
  header: RecordHeader;
  /** Decompressed payload; valid until the next scanner call. */
  payload: Uint8Array;
  items: BatchItems;
  /** Where the next record would start. */
  end: number;
}

/** Why reading stopped at `offset`. */
export type StopReason =
  | { kind: 'eof' }
  | { kind: 'zero-tail' }
  | { kind: 'damage'; detail: string };

/** Sliding read window over a file handle. */
export class FileWindow {
  #buffer = new Uint8Array(WINDOW_BYTES);
  #start = 0;
  #end = 0;

  constructor(
    readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** Bytes [offset, offset+length), or undefined when they pass end of file. Valid until the next call. */
  async view(offset: number, length: number): Promise<Uint8Array | undefined> {
    if (offset + length > this.size) return undefined;
    if (offset >= this.#start && offset + length <= this.#end) {
      return this.#buffer.subarray(offset - this.#start, offset - this.#start + length);
    }
    const want = Math.min(Math.max(length, WINDOW_BYTES), this.size - offset);
    if (this.#buffer.length < want) this.#buffer = new Uint8Array(want);
    let read = 0;
    while (read < want) {
      const n = await this.handle.read(this.#buffer, read, want - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    this.#start = offset;
    this.#end = offset + read;
    if (read < length) return undefined;
    return this.#buffer.subarray(0, length);
  }

  /** Like `view` but only from what is already buffered; never reads. */
  peek(offset: number, length: number): Uint8Array | undefined {
    if (offset < this.#start || offset + length > this.#end) return undefined;
    return this.#buffer.subarray(offset - this.#start, offset - this.#start + length);
  }

  /** True when every byte from `offset` to end of file is zero. */
  async zeroFrom(offset: number): Promise<boolean> {
    for (let at = offset; at < this.size; at += WINDOW_BYTES) {
      const length = Math.min(WINDOW_BYTES, this.size - at);
      const bytes = await this.view(at, length);
      if (bytes === undefined || !isAllZero(bytes)) return false;
    }
    return true;
  }
}

export class RecordScanner {
  readonly window: FileWindow;
  readonly salt: number;

  constructor(handle: FileHandle, size: number, salt: number) {
    this.window = new FileWindow(handle, size);
    this.salt = salt;
  }

  /** Reads the record at `offset`, or says why there is none. */
  async read(offset: number): Promise<ScannedRecord | StopReason> {
    const size = this.window.size;
    if (offset >= size) return { kind: 'eof' };
    const headerBytes = await this.window.view(offset, RECORD_HEADER_SIZE);
    if (headerBytes === undefined) {
      return (await this.window.zeroFrom(offset)) ? { kind: 'zero-tail' } : { kind: 'damage', detail: 'truncated record header' };
    }
    const header = readRecordHeader(headerBytes, offset, this.salt);
    if (header === undefined) {
      if (isAllZero(headerBytes) && (await this.window.zeroFrom(offset))) return { kind: 'zero-tail' };
      return { kind: 'damage', detail: 'record header does not verify' };
    }
    const payloadBytes = await this.window.view(offset + RECORD_HEADER_SIZE, header.payloadLength);
    if (payloadBytes === undefined) return { kind: 'damage', detail: 'record extends past end of file' };
    if (crc32c(payloadBytes) !== header.payloadCrc) return { kind: 'damage', detail: 'payload checksum mismatch' };
    let payload = payloadBytes;
    if ((header.flags & RECORD_FLAG_LZ4) !== 0) {
      try {
        payload = uncompressSync(Buffer.from(payloadBytes.buffer, payloadBytes.byteOffset, payloadBytes.byteLength));
      } catch (error) {
        return { kind: 'damage', detail: `lz4 payload does not decompress: ${String(error)}` };
      }
    }
    let items: BatchItems;
    try {
      // The payload CRC above covers every entry's bytes.
      items = decodePayload(payload, false);
    } catch (error) {
      if (error instanceof PayloadDecodeError) return { kind: 'damage', detail: `payload: ${error.message}` };
      throw error;
    }
    return { offset, header, payload, items, end: nextRecordOffset(offset, header.payloadLength) };
  }

  /**
   * Looks past damage at `from` for the next record this file wrote (its
   * header names its own offset and verifies under the file's salt). Only
   * runs on the error path; cost is one compare per 8 bytes of the rest.
   */
  async findNextValid(from: number): Promise<ScannedRecord | undefined> {
    const size = this.window.size;
    let at = Math.ceil(Math.max(FILE_HEADER_SIZE, from + RECORD_ALIGNMENT) / RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
    for (; at + RECORD_HEADER_SIZE <= size; at += RECORD_ALIGNMENT) {
      const bytes = this.window.peek(at, RECORD_HEADER_SIZE) ?? (await this.window.view(at, RECORD_HEADER_SIZE));
      if (bytes === undefined) return undefined;
      const tag = (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16) | (bytes[11]! << 24)) >>> 0;
      if (tag !== at) continue;
      const candidate = await this.read(at);
      if ('header' in candidate) return candidate;
    }
    return undefined;
  }
}
