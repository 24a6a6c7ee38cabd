/**
 * A verification pass over a running engine's log (`Engine.verify()`, the
 * background scrub, `Engine.consistencyCheck()`): every record of every file
 * the log uses is read back and verified as recovery verifies it (header and
 * payload CRC32C, lz4, payload structure; src/recovery/scanner.ts), and then
 * every entry the memtables index is checked to lie in a record that
 * verified. The second half matters since open may load the index checkpoint
 * instead of replaying: then nothing at open read the records the index
 * points at (reads verify each entry they read, but only those).
 *
 * The pass works on a snapshot taken between two write groups: the files
 * the log used then, each up to the end of its data then. It is pinned
 * (FileSet.beginRead) for its whole length, so a purge running beside it
 * retires files without removing them from under it, and writes go on: what
 * they add lies past the snapshot and is not read. The memtables are checked
 * afterwards, region by region; an entry in a file or at an offset past the
 * snapshot was written after it and is skipped, not reported.
 *
 * The end of a file's data: the active file's is the writer's offset; an
 * older append file's is what its successor's header records; a GC rewrite
 * file holds one record, and zeros at most, after it. Where none is known
 * (the last file of a log reopened without a writable file), damage after
 * which no record verifies is the torn or stale tail recovery stops at.
 */
import type { FileHandle } from './filesystem.js';
import type { RegionMemtable } from './memtable.js';
import { newEntryLocation } from './memtable.js';
import { FILE_HEADER_SIZE, RECORD_FLAG_LZ4, RECORD_HEADER_SIZE, decodeFileHeader } from './format/layout.js';
import { readFully } from './read-fully.js';
import { RecordScanner, WindowBuffers, type ScannedRecord } from './recovery/scanner.js';
import type { IndexRange } from './consistency-check.js';

/** A file a pass reads, as the file set holds it. */
export interface VerifyTarget {
  id: number;
  name: string;
  handle: FileHandle;
  /** End of the file's data at the snapshot, when the file set knows it (see above). */
  end: number | undefined;
  /**
   * The file has no torn or stale tail (a GC rewrite file: durable before
   * the manifest lists it, never recycled): with its end unknown, zeros still
   * end its data, but damage after which nothing verifies is damage.
   */
  wholeFile?: boolean;
}

export interface VerifyProblem {
  /**
   * 'record': bytes of a file that do not verify (a damaged record, a bad
   * file header, a file shorter than its data). 'index': memtable entries
   * that point at bytes no verified record holds.
   */
  kind: 'record' | 'index';
  file: string;
  /** Where the damage starts; for 'index', the first listed entry's offset (for an entry of an lz4 record, the record's). */
  offset: number;
  /** 'record': bytes from `offset` to the next record that verifies, or to the end of the file's data. 0 for 'index'. */
  bytes: number;
  detail: string;
  /** 'index' only: the region, and its entries (consecutive, all in `file`) that point at unverified bytes. */
  region?: number;
  entries?: IndexRange;
}

export interface VerifyReport {
  /** Files read (the log's files at the snapshot). */
  files: number;
  /** Records that verified. */
  records: number;
  /** Bytes of the files read and checked (record bytes, damaged ones included; file headers). */
  bytesVerified: number;
  /** Memtable entries checked against the verified records (those written after the snapshot are not). */
  entriesChecked: number;
  /** Empty when everything verified. In log order, then the index problems by region. */
  problems: VerifyProblem[];
}

export interface VerifyPassOptions {
  /** Sees every verified record, in log order (the GC rewrite file first, then the append files). */
  visit?: (record: ScannedRecord, fileId: number) => void;
  /**
   * Called after each record (with its bytes) and every few thousand index
   * entries (with 0): the scrub's rate limit and the engine's close waits
   * here. Throwing aborts the pass.
   */
  pace?: (bytes: number) => Promise<void> | void;
  /** The memtables to check after the scan (called once the scan is done); none when absent. */
  memtables?: () => Iterable<RegionMemtable>;
}

/** Index entries checked between two `pace(0)` calls. */
const ENTRIES_PER_PACE = 4096;

/**
 * Verifies `targets` (in log order) and then the memtables' entries. Reads
 * only; the caller keeps the files open and pinned until it resolves.
 */
export async function verifyPass(targets: readonly VerifyTarget[], options: VerifyPassOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { files: targets.length, records: 0, bytesVerified: 0, entriesChecked: 0, problems: [] };
  const headers = await Promise.all(targets.map((target) => readHeader(target.handle)));
  const verified = new Map<number, VerifiedRecords>();
  const buffers = new WindowBuffers();
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i]!;
    const header = headers[i]!;
    if (typeof header === 'string') {
      report.problems.push({
        kind: 'record',
        file: target.name,
        offset: 0,
        bytes: FILE_HEADER_SIZE,
        detail: `file header does not verify (${header})`,
      });
      continue;
    }
    const next = headers[i + 1];
    // The successor's header records this file's final length (0: unknown).
    const successorEnd =
      typeof next === 'object' && next.seq === header.seq + 1 && next.queue === header.queue && next.previousFileLength > 0
        ? next.previousFileLength
        : undefined;
    const records = new VerifiedRecords();
    verified.set(target.id, records);
    await scanFile(target, target.end ?? successorEnd, header.salt, records, report, buffers, options);
  }
  if (options.memtables !== undefined) await checkIndex(options.memtables(), verified, targets, report, options.pace);
  return report;
}

type Header = Exclude<ReturnType<typeof decodeFileHeader>, string> | string;

async function readHeader(handle: FileHandle): Promise<Header> {
  const bytes = new Uint8Array(FILE_HEADER_SIZE);
  return decodeFileHeader(bytes.subarray(0, await readFully(handle, bytes, 0, FILE_HEADER_SIZE, 0)));
}

async function scanFile(
  target: VerifyTarget,
  knownEnd: number | undefined,
  salt: number,
  records: VerifiedRecords,
  report: VerifyReport,
  buffers: WindowBuffers,
  options: VerifyPassOptions,
): Promise<void> {
  const size = await target.handle.size();
  if (knownEnd !== undefined && knownEnd > size) {
    report.problems.push({
      kind: 'record',
      file: target.name,
      offset: size,
      bytes: knownEnd - size,
      detail: `the file is ${size} bytes, shorter than its data (${knownEnd} bytes)`,
    });
  }
  const end = Math.min(knownEnd ?? size, size);
  records.end = end;
  report.bytesVerified += Math.min(FILE_HEADER_SIZE, end);
  const scanner = new RecordScanner(target.handle, end, salt, { readAhead: true, buffers });
  try {
    let offset = FILE_HEADER_SIZE;
    while (offset < end) {
      let found = await scanner.read(offset);
      if (!('header' in found)) {
        if (found.kind === 'eof') break;
        if (found.kind === 'zero-tail' && knownEnd === undefined) break;
        const detail = found.kind === 'zero-tail' ? 'zeros where the file still has records' : found.detail;
        const next = found.kind === 'zero-tail' ? undefined : await scanner.findNextValid(offset);
        // Nothing verifies after damage in a file whose end is unknown: the tail recovery stops at.
        if (next === undefined && knownEnd === undefined && target.wholeFile !== true) break;
        const resume = next?.offset ?? end;
        report.problems.push({ kind: 'record', file: target.name, offset, bytes: resume - offset, detail });
        report.bytesVerified += resume - offset;
        await options.pace?.(resume - offset);
        if (next === undefined) break;
        offset = resume;
        found = next;
      }
      records.add(found);
      report.records++;
      report.bytesVerified += found.end - offset;
      options.visit?.(found, target.id);
      const bytes = found.end - offset;
      offset = found.end;
      await options.pace?.(bytes);
    }
  } finally {
    await scanner.window.idle();
  }
}

/** The records of one file that verified, in offset order: where each starts, its stored and decompressed payload length. */
class VerifiedRecords {
  #starts = new Float64Array(64);
  #stored = new Uint32Array(64);
  /** Decompressed payload length, or -1 for an uncompressed record. */
  #plain = new Float64Array(64);
  #length = 0;
  /** End of the data the pass read. */
  end = 0;

  add(record: ScannedRecord): void {
    if (this.#length === this.#starts.length) {
      const grow = <T extends Float64Array | Uint32Array>(column: T, make: (n: number) => T): T => {
        const next = make(column.length * 2);
        next.set(column);
        return next;
      };
      this.#starts = grow(this.#starts, (n) => new Float64Array(n));
      this.#stored = grow(this.#stored, (n) => new Uint32Array(n));
      this.#plain = grow(this.#plain, (n) => new Float64Array(n));
    }
    this.#starts[this.#length] = record.offset;
    this.#stored[this.#length] = record.header.payloadLength;
    this.#plain[this.#length] = (record.header.flags & RECORD_FLAG_LZ4) !== 0 ? record.payload.length : -1;
    this.#length++;
  }

  /** The bytes `[offset, offset + length)` lie inside the payload of an uncompressed record that verified. */
  holdsPlain(offset: number, length: number): boolean {
    const row = this.#rowAtOrBefore(offset - RECORD_HEADER_SIZE);
    if (row < 0 || this.#plain[row] !== -1) return false;
    const payload = this.#starts[row]! + RECORD_HEADER_SIZE;
    return offset >= payload && offset + length <= payload + this.#stored[row]!;
  }

  /** An lz4 record that verified starts at `recordOffset`, with this stored length, and decompresses past `end`. */
  holdsCompressed(recordOffset: number, payloadLength: number, end: number): boolean {
    const row = this.#rowAtOrBefore(recordOffset);
    return row >= 0 && this.#starts[row] === recordOffset && this.#stored[row] === payloadLength && this.#plain[row]! >= end;
  }

  /** The last row starting at or before `offset`, or -1. */
  #rowAtOrBefore(offset: number): number {
    let low = 0;
    let high = this.#length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#starts[mid]! <= offset) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  }
}

/**
 * Every entry of every memtable must lie in a record that verified, unless
 * it was written after the snapshot (its file was not read, or it lies past
 * the end the pass read). Runs of bad entries are reported as one problem.
 */
async function checkIndex(
  memtables: Iterable<RegionMemtable>,
  verified: ReadonlyMap<number, VerifiedRecords>,
  targets: readonly VerifyTarget[],
  report: VerifyReport,
  pace: VerifyPassOptions['pace'],
): Promise<void> {
  const names = new Map(targets.map((t) => [t.id, t.name]));
  const location = newEntryLocation();
  let sincePace = 0;
  // Regions are listed first: a region cleaned or created meanwhile is checked as it is when reached.
  for (const memtable of [...memtables]) {
    let open: VerifyProblem | undefined;
    const close = (): void => {
      if (open !== undefined) report.problems.push(open);
      open = undefined;
    };
    // Each region is checked in one synchronous stretch: its index cannot change under the loop.
    const first = memtable.firstIndex();
    const last = memtable.lastIndex();
    if (first !== undefined && last !== undefined) {
      for (let index = first; index <= last; index++) {
        if (!memtable.locate(index, location)) continue;
        const records = verified.get(location.fileId);
        const at = location.compressed ? location.recordOffset : location.entryOffset;
        if (records === undefined || at >= records.end) {
          close();
          continue;
        }
        report.entriesChecked++;
        const ok = location.compressed
          ? records.holdsCompressed(location.recordOffset, location.payloadLength, location.entryOffset + location.entryLength)
          : records.holdsPlain(location.entryOffset, location.entryLength);
        if (ok) {
          close();
          continue;
        }
        const file = names.get(location.fileId)!;
        if (open !== undefined && open.file === file && open.entries!.last === index - 1) {
          open.entries!.last = index;
          continue;
        }
        close();
        open = {
          kind: 'index',
          file,
          offset: location.compressed ? location.recordOffset : location.entryOffset,
          bytes: 0,
          region: memtable.region,
          entries: { first: index, last: index },
          detail: location.compressed
            ? `entries point into the lz4 record at offset ${location.recordOffset}, which did not verify`
            : 'entries point at bytes no verified record holds',
        };
      }
    }
    close();
    sincePace += memtable.entryCount;
    if (sincePace >= ENTRIES_PER_PACE) {
      sincePace = 0;
      await pace?.(0);
    }
  }
}
