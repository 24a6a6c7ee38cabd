/**
 * Reads one log file record by record, verifying every checksum, through a
 * bounded read window (recovery memory does not grow with file size).
 *
 * The scanner only says what it found; recovery.ts decides what a damaged
 * record means for the chosen RecoveryMode.
 */
import type { FileHandle } from '../filesystem.js';
import { readFully } from '../read-fully.js';
import type { BatchItems } from '../format/batch-codec.js';
import {
  FILE_HEADER_SIZE,
  RECORD_ALIGNMENT,
  RECORD_HEADER_SIZE,
  isAllZero,
  readOffsetTag,
  readRecordHeader,
  type RecordHeader,
} from '../format/layout.js';
import { verifyPayload } from './record-verify.js';

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
export type StopReason = { kind: 'eof' } | { kind: 'zero-tail' } | { kind: 'damage'; detail: string };

/**
 * With read-ahead the next window is read while the caller works through
 * this one: recovery's CRC and decoding then overlap the copy from the page
 * cache (or the disk) instead of waiting for it, window after window.
 * Smaller windows than without read-ahead, so two in memory cost no more.
 */
const READ_AHEAD_WINDOW_BYTES = 1 << 20;
/**
 * Room in front of a read-ahead buffer for the unread tail of the current
 * window, so a record that straddles the two is stitched with one small copy
 * instead of a fresh read. A longer tail falls back to a plain read.
 */
const STITCH_BYTES = 256 << 10;

export interface WindowOptions {
  /** Read the next window while the caller works through this one (sequential scans). */
  readAhead?: boolean;
  /** Bytes per read; small for a window that mostly reads a file header. */
  windowBytes?: number;
  /** Buffers to start from and hand back at `idle()`: one scan after another reuses the same memory. */
  buffers?: WindowBuffers;
}

/**
 * The memory of a read window, kept across the files of one recovery: each
 * file's scan would otherwise allocate its own windows, and the freed ones
 * linger in the RSS until the garbage collector gets to them.
 */
export class WindowBuffers {
  window: Uint8Array = new Uint8Array(0);
  spare: Uint8Array | undefined;
}

/** A window for reading a file header: a few bytes, and rarely (case E) a scan of the rest for zeros. */
export const HEADER_WINDOW: WindowOptions = { windowBytes: 64 << 10 };

/** Sliding read window over a file handle. */
export class FileWindow {
  #buffer: Uint8Array = new Uint8Array(0);
  /** Where file offset `#start` sits in `#buffer`. */
  #base = 0;
  #start = 0;
  #end = 0;
  readonly #windowBytes: number;
  readonly #readAhead: boolean;
  #ahead: { start: number; length: number; buffer: Uint8Array; done: Promise<number> } | undefined;
  #spare: Uint8Array | undefined;
  readonly #pool: WindowBuffers | undefined;

  constructor(
    readonly handle: FileHandle,
    readonly size: number,
    options: WindowOptions = {},
  ) {
    this.#readAhead = options.readAhead === true;
    this.#windowBytes = options.windowBytes ?? (this.#readAhead ? READ_AHEAD_WINDOW_BYTES : WINDOW_BYTES);
    this.#pool = options.buffers;
    if (this.#pool !== undefined) {
      this.#buffer = this.#pool.window;
      this.#spare = this.#pool.spare;
    }
  }

  /** Bytes [offset, offset+length), or undefined when they pass end of file. Valid until the next call. */
  async view(offset: number, length: number): Promise<Uint8Array | undefined> {
    if (offset + length > this.size) return undefined;
    const buffered = this.peek(offset, length);
    if (buffered !== undefined) return buffered;
    if (this.#ahead !== undefined && (await this.#advance(offset, length))) return this.peek(offset, length);
    const want = Math.min(Math.max(length, this.#windowBytes), this.size - offset);
    if (this.#buffer.length < want) this.#buffer = new Uint8Array(want);
    const read = await readFully(this.handle, this.#buffer, 0, want, offset);
    this.#base = 0;
    this.#start = offset;
    this.#end = offset + read;
    if (read < length) return undefined;
    this.#startReadAhead();
    return this.#buffer.subarray(0, length);
  }

  /** Like `view` but only from what is already buffered; never reads. */
  peek(offset: number, length: number): Uint8Array | undefined {
    if (offset < this.#start || offset + length > this.#end) return undefined;
    const at = this.#base + offset - this.#start;
    return this.#buffer.subarray(at, at + length);
  }

  /** True when every byte from `offset` to end of file is zero. */
  async zeroFrom(offset: number): Promise<boolean> {
    for (let at = offset; at < this.size; at += this.#windowBytes) {
      const length = Math.min(this.#windowBytes, this.size - at);
      const bytes = await this.view(at, length);
      if (bytes === undefined || !isAllZero(bytes)) return false;
    }
    return true;
  }

  /** Resolves once no read-ahead is in flight: call before truncating or closing the handle. */
  async idle(): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead !== undefined) {
      await ahead.done;
      this.#spare = ahead.buffer;
    }
    if (this.#pool !== undefined) {
      this.#pool.window = this.#buffer;
      this.#pool.spare = this.#spare;
    }
  }

  /**
   * Moves the window onto the read-ahead buffer when it holds what
   * `[offset, offset + length)` needs beyond the current window; false when
   * it cannot (the read-ahead failed, or the request jumped elsewhere).
   */
  async #advance(offset: number, length: number): Promise<boolean> {
    const ahead = this.#ahead!;
    this.#ahead = undefined;
    const got = await ahead.done;
    const tail = this.#end - offset;
    const usable =
      got === ahead.length && ahead.start === this.#end && tail >= 0 && tail <= STITCH_BYTES && offset + length <= ahead.start + got;
    if (!usable) {
      this.#spare = ahead.buffer;
      return false;
    }
    const current = this.#buffer;
    const unread = current.subarray(this.#base + offset - this.#start, this.#base + this.#end - this.#start);
    ahead.buffer.set(unread, STITCH_BYTES - tail);
    this.#buffer = ahead.buffer;
    this.#base = STITCH_BYTES - tail;
    this.#start = offset;
    this.#end = ahead.start + got;
    this.#spare = current;
    this.#startReadAhead();
    return true;
  }

  #startReadAhead(): void {
    if (!this.#readAhead || this.#end >= this.size) return;
    const start = this.#end;
    const length = Math.min(this.#windowBytes, this.size - start);
    let buffer = this.#spare;
    this.#spare = undefined;
    if (buffer === undefined || buffer.length < STITCH_BYTES + length) {
      buffer = new Uint8Array(STITCH_BYTES + this.#windowBytes);
    }
    // A failed read-ahead is not an error: the plain read that replaces it reports whatever is wrong.
    const done = readFully(this.handle, buffer, STITCH_BYTES, length, start).catch(() => -1);
    this.#ahead = { start, length, buffer, done };
  }
}

export class RecordScanner {
  readonly window: FileWindow;
  readonly salt: number;

  constructor(handle: FileHandle, size: number, salt: number, options: WindowOptions = {}) {
    this.window = new FileWindow(handle, size, options);
    this.salt = salt;
  }

  /** Reads the record at `offset`, or says why there is none. */
  async read(offset: number): Promise<ScannedRecord | StopReason> {
    const size = this.window.size;
    if (offset >= size) return { kind: 'eof' };
    const headerBytes = await this.window.view(offset, RECORD_HEADER_SIZE);
    if (headerBytes === undefined) {
      if (await this.window.zeroFrom(offset)) return { kind: 'zero-tail' };
      return { kind: 'damage', detail: 'truncated record header' };
    }
    const header = readRecordHeader(headerBytes, offset, this.salt);
    if (header === undefined) {
      if (isAllZero(headerBytes) && (await this.window.zeroFrom(offset))) return { kind: 'zero-tail' };
      return { kind: 'damage', detail: 'record header does not verify' };
    }
    const payloadBytes = await this.window.view(offset + RECORD_HEADER_SIZE, header.payloadLength);
    if (payloadBytes === undefined) return { kind: 'damage', detail: 'record extends past end of file' };
    return verifyPayload(offset, header, payloadBytes);
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
      if (readOffsetTag(bytes) !== at) continue;
      const candidate = await this.read(at);
      if ('header' in candidate) return candidate;
    }
    return undefined;
  }

  /** Resolves once no read is in flight: call before truncating or closing the handle. */
  idle(): Promise<void> {
    return this.window.idle();
  }
}
