/**
 * Reads entries back from files given their memtable locations. Uncompressed
 * entries are read directly (length, CRC32C and bytes, nothing else), and a
 * run of entries from one record is read with one positional read. Entries in
 * compressed records need the whole payload: it is verified, decompressed and
 * kept in a byte-bounded cache (src/read-cache.ts), because Raft reads runs
 * of neighbouring entries.
 */
import { CorruptionError, NotFoundError } from './errors.js';
import { fileIdQueue, fileIdSeq, logFileName } from './file-names.js';
import type { FileHandle } from './filesystem.js';
import { crc32c } from './format/checksum.js';
import { decompress } from './format/compression.js';
import { ENTRY_PREFIX_SIZE } from './format/batch-codec.js';
import { EntryDecodeError, decodeEntry } from './format/entry-codec.js';
import { RECORD_HEADER_SIZE } from './format/layout.js';
import type { EntryLocation } from './memtable.js';
import type { StoredEntry } from './protos.js';
import { ReadCache } from './read-cache.js';

/**
 * Whether `next` can be read together with the run ending in `previous`: the
 * same compressed record, or the very next bytes of the same file.
 */
export function continuesRun(previous: EntryLocation, next: EntryLocation): boolean {
  if (previous.fileId !== next.fileId || previous.compressed !== next.compressed) return false;
  if (next.compressed) return previous.recordOffset === next.recordOffset;
  return next.entryOffset === previous.entryOffset + previous.entryLength + ENTRY_PREFIX_SIZE;
}

export function fileNameOf(id: number): string {
  return logFileName(fileIdQueue(id), fileIdSeq(id));
}

export class EntryReader {
  /** The file set's handle of a file, by id (src/file-set/). */
  readonly #handle: (id: number) => FileHandle | undefined;
  /** Decompressed payloads; the engine sets its budget. */
  readonly cache = new ReadCache();
  bytesRead = 0;

  constructor(handle: (id: number) => FileHandle | undefined) {
    this.#handle = handle;
  }

  /** Forgets cached payloads of a file that is going away. */
  forgetFile(id: number): void {
    this.cache.forgetPrefix(`${id}:`);
  }

  /**
   * Reads a run of entries and appends them to `out`: either entries of one
   * compressed record, or uncompressed entries lying back to back in one file
   * (see `continuesRun`), which take one positional read.
   */
  async readRun(locations: readonly EntryLocation[], out: StoredEntry[]): Promise<void> {
    const head = locations[0]!;
    if (head.compressed) {
      const payload = await this.#payload(head);
      for (const location of locations)
        out.push(this.#decodeAt(payload, location.entryOffset, location, RECORD_HEADER_SIZE + head.recordOffset));
      return;
    }
    const tail = locations[locations.length - 1]!;
    const start = head.entryOffset - ENTRY_PREFIX_SIZE;
    const end = tail.entryOffset + tail.entryLength;
    const bytes = await this.#read(head.fileId, start, end - start);
    for (const location of locations) out.push(this.#decodeAt(bytes, location.entryOffset - start, location, start));
  }

  /** Decodes and verifies the entry whose bytes start at `at` in `bytes` (its prefix sits just before). */
  #decodeAt(bytes: Uint8Array, at: number, location: EntryLocation, fileOffsetOfBytes: number): StoredEntry {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at - ENTRY_PREFIX_SIZE, ENTRY_PREFIX_SIZE);
    const length = view.getUint32(0, true);
    const entryBytes = bytes.subarray(at, at + location.entryLength);
    const where = { file: fileNameOf(location.fileId), offset: fileOffsetOfBytes + at - ENTRY_PREFIX_SIZE };
    if (length !== location.entryLength || crc32c(entryBytes) !== view.getUint32(4, true)) {
      throw new CorruptionError(`${where.file}: entry at offset ${where.offset} fails its checksum`, where);
    }
    try {
      return decodeEntry(entryBytes);
    } catch (error) {
      if (error instanceof EntryDecodeError)
        throw new CorruptionError(`${where.file}: entry at offset ${where.offset}: ${error.message}`, where);
      throw error;
    }
  }

  async #payload(location: EntryLocation): Promise<Uint8Array> {
    const key = `${location.fileId}:${location.recordOffset}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const record = await this.#read(location.fileId, location.recordOffset, RECORD_HEADER_SIZE + location.payloadLength);
    const stored = record.subarray(RECORD_HEADER_SIZE);
    const where = { file: fileNameOf(location.fileId), offset: location.recordOffset };
    const expectedCrc = new DataView(record.buffer, record.byteOffset, RECORD_HEADER_SIZE).getUint32(16, true);
    if (crc32c(stored) !== expectedCrc)
      throw new CorruptionError(`${where.file}: record at offset ${where.offset} fails its checksum`, where);
    let payload: Uint8Array;
    try {
      payload = decompress(stored);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new CorruptionError(`${where.file}: record at offset ${where.offset} does not decompress (${detail})`, {
        ...where,
        cause: error,
      });
    }
    this.cache.set(key, payload);
    return payload;
  }

  async #read(id: number, position: number, length: number): Promise<Uint8Array> {
    const handle = this.#handle(id);
    if (handle === undefined) throw new NotFoundError(`${fileNameOf(id)} is not open for reading`, { file: fileNameOf(id) });
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = await handle.read(bytes, done, length - done, position + done);
      if (n === 0) {
        throw new CorruptionError(`${fileNameOf(id)}: ${length} bytes at offset ${position} pass end of file`, {
          file: fileNameOf(id),
          offset: position,
        });
      }
      done += n;
    }
    this.bytesRead += length;
    return bytes;
  }
}
