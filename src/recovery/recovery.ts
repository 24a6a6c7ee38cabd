/**
 * Recovery: replays every file of the append queue in sequence order,
 * verifying every record, and decides what damage means.
 *
 * A record is "proven durable" when something written after it says so:
 * a later record of the same file whose synced-through mark lies past it, or
 * a later file (files are synced in full before the next one is created, and
 * the next header records the old file's final length). Damage in bytes that
 * nothing proves durable is a torn write from a crash, which every mode
 * repairs by cutting the file there.
 *
 * | case                                          | Absolute    | TolerateTail (default) | TolerateAny      |
 * |-----------------------------------------------|-------------|------------------------|------------------|
 * | zeros after the last record (preallocated)    | end of log  | end of log             | end of log       |
 * | A: damage in the last file, not proven durable| cut there   | cut there              | cut there        |
 * | B: damage in the last file, proven durable    | CORRUPTION  | cut there, reported    | skip the record  |
 * | C: damage in an older file                    | CORRUPTION  | CORRUPTION             | skip the record  |
 * | D: older file shorter than its successor says | CORRUPTION  | CORRUPTION             | reported         |
 * | E: last file's header unreadable, rest zero,  | file removed| file removed           | file removed     |
 * |    or the header of a recycled file's past life|             |                        |                  |
 * | recycled last file: stale bytes after the end | end of log  | end of log             | end of log       |
 * | older file: bytes after the length its        | end of file | end of file            | end of file      |
 * |    successor records (preallocated, recycled) |             |                        |                  |
 * | F: other unreadable header / missing file     | CORRUPTION  | CORRUPTION             | file skipped     |
 * | G: manifest's last file, after a clean close, | CORRUPTION  | CORRUPTION             | reported         |
 * |    without the seal ending at its clean end   |             |                        |                  |
 * |    (no damage seen: cut at a record boundary) |             |                        |                  |
 *
 * The MANIFEST's clean end also proves durable every byte of the last file
 * before it: damage there is case B, even in a recycled file.
 *
 * With a MANIFEST (src/file-set/manifest.ts, checked in log.ts): a listed
 * file that is missing is F; case E applies only to a file past the
 * manifest's last one (a rotation that never committed), removed when it
 * holds no record; a listed last file with a bad header is F.
 *
 * Every cut, skip and removal is listed in the RecoveryReport.
 *
 * An engine's open may load the index checkpoint instead
 * (src/recovery/index-checkpoint.ts) and replay only the tail after the log
 * position it covers (`resume`): it checks that the log is the one the
 * checkpoint covers, not the records themselves, so the table applies to
 * covered records only when they are read, or checked (consistencyCheck, the
 * CLI, which always replay); to the tail it applies as to any replay.
 *
 * `{ dryRun: true }` runs the same decisions without changing anything (no
 * truncate, no removal, every file opened read-only), so tools (`raftlog
 * check`, `raftlog repair`) learn what recovery would do from the one table
 * above instead of a copy of it.
 */
import { CorruptionError } from '../errors.js';
import { fileId, parseLogFileName } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { FILE_FLAG_RECYCLED, FILE_HEADER_SIZE, Queue, decodeFileHeader, type FileHeader } from '../format/layout.js';
import { FileWindow, HEADER_WINDOW, RecordScanner, WindowBuffers, type ScannedRecord } from './scanner.js';

export const RecoveryMode = {
  /** Refuse to open when any damage lies in data proven durable. */
  AbsoluteConsistency: 'AbsoluteConsistency',
  /** Cut the last file at its first damaged record, even one proven durable; older files must be intact. */
  TolerateTailCorruption: 'TolerateTailCorruption',
  /** Skip damaged records and files anywhere, reporting each; for salvage. */
  TolerateAnyCorruption: 'TolerateAnyCorruption',
} as const;
export type RecoveryMode = (typeof RecoveryMode)[keyof typeof RecoveryMode];

export interface RecoveryProblem {
  file: string;
  offset: number;
  detail: string;
  action: 'cut' | 'skipped' | 'removed-file' | 'skipped-file' | 'reported';
  /** Bytes no longer part of the log because of this action. */
  bytesDropped: number;
}

export interface RecoveryReport {
  mode: RecoveryMode;
  files: number;
  records: number;
  bytesScanned: number;
  problems: RecoveryProblem[];
  /** Set by an engine's open: whether it loaded an index checkpoint instead of replaying the log. */
  indexCheckpoint?: IndexCheckpointUse;
}

export interface IndexCheckpointUse {
  /** The memtables came from the checkpoint; only the records after it (the tail) were replayed. */
  used: boolean;
  /**
   * 'loaded' when used; else why not: 'disabled' (indexCheckpoint: false),
   * 'absent', 'damaged: …' (it does not verify), or 'stale: …' (it does not
   * describe the log found, e.g. another MANIFEST generation or file size).
   */
  detail: string;
  /** When used: the last log position it covers (append file and offset); the tail starts there. */
  coveredThrough?: { seq: number; offset: number };
  /** When used: records and bytes of the tail replayed after it (also counted in the report's records and bytesScanned). */
  tailRecords?: number;
  tailBytes?: number;
}

export interface RecoveredFile {
  name: string;
  seq: number;
  salt: number;
  handle: FileHandle;
  /** End of valid data. */
  end: number;
  /**
   * End of the data the records prove durable (the highest synced-through
   * mark). What lies between here and `end` may exist only in the page cache
   * (see LogWriter.resume).
   */
  provenEnd: number;
  /** The last record is a seal (an empty record of a clean close): nothing before it needs proving. */
  sealed: boolean;
  /** Where that seal record starts (0 when `sealed` is false). */
  sealAt: number;
}

export interface RecoveredLog {
  /** Files in sequence order; the last one is open for writing. */
  files: RecoveredFile[];
  /** The last file, open for writing, when the writer can continue it. */
  writable: RecoveredFile | undefined;
  /** Sequence number for a new file when the writer cannot continue `writable`. */
  nextSeq: number;
  report: RecoveryReport;
  /** Append files below the checkpoint's watermark: dead, left for the next purge to remove. */
  superseded: string[];
}

export type ApplyRecord = (record: ScannedRecord, fileId: number) => void;

export interface RecoverOptions {
  /**
   * Decide and report only: every file is opened read-only and nothing is cut
   * or removed. The report lists what a real recovery would do; the returned
   * handles are read-only.
   */
  dryRun?: boolean;
  /**
   * The GC checkpoint's watermark: append files below it are superseded by
   * the checkpoint and not replayed; the first replayed file must be this one.
   */
  minSeq?: number;
  /**
   * The last append file the MANIFEST lists. Files after it were never
   * committed (a rotation that died before its manifest update wrote nothing
   * into them): they are removed. Listed files are committed, so a listed
   * last file with a bad header is damage, never case E.
   */
  maxSeq?: number;
  /**
   * The MANIFEST's clean end: at a clean close file `maxSeq` ended with a
   * seal record ending at this offset (0 or undefined: nothing recorded).
   * That file must still hold it: shorter, or without the seal there, is a
   * cut that left no damage to see (case G).
   */
  cleanEnd?: number;
  /**
   * An index checkpoint covers the log up to here (src/recovery/index-checkpoint.ts):
   * replay starts in file `seq` at `offset` (a record boundary made durable
   * before the checkpoint was written); files before it are not replayed or
   * returned. `sealAt`: where a seal record ending at `offset` starts, 0 if
   * the last covered record is no seal.
   */
  resume?: { seq: number; offset: number; sealAt: number };
}

export async function recoverQueue(fs: FileSystem, mode: RecoveryMode, apply: ApplyRecord, options: RecoverOptions = {}): Promise<RecoveredLog> {
  const dryRun = options.dryRun === true;
  const minSeq = options.minSeq ?? 0;
  const all = (await fs.list())
    .map((name) => ({ name, parsed: parseLogFileName(name) }))
    .filter((n) => n.parsed !== undefined && n.parsed.queue === Queue.Append)
    .sort((a, b) => a.parsed!.seq - b.parsed!.seq);
  const listedLast = options.maxSeq;
  const resume = options.resume;
  const from = Math.max(minSeq, resume?.seq ?? 0);
  const names = all.filter((n) => n.parsed!.seq >= from && (listedLast === undefined || n.parsed!.seq <= listedLast));
  const report: RecoveryReport = { mode, files: names.length, records: 0, bytesScanned: 0, problems: [] };
  let keptPastListed = 0;
  if (listedLast !== undefined) {
    for (const extra of all.filter((n) => n.parsed!.seq > listedLast)) {
      // A rotation writes no record before its manifest update is durable. A
      // record here means the manifest lost that update (its newest slot is
      // damaged and recovery read the older one): never remove data for it.
      if (await holdsRecords(fs, extra.name, extra.parsed!.seq)) {
        fatalUnlessAny(mode, report, {
          file: extra.name,
          offset: 0,
          detail: 'holds records but the MANIFEST does not list it (a damaged MANIFEST slot?)',
          action: 'reported',
          bytesDropped: 0,
        });
        keptPastListed = extra.parsed!.seq;
        continue;
      }
      if (!dryRun) {
        await fs.remove(extra.name);
        await fs.syncDir();
      }
      report.problems.push({ file: extra.name, offset: 0, detail: 'not in the MANIFEST: its creation never completed', action: 'removed-file', bytesDropped: 0 });
    }
  }
  const files: RecoveredFile[] = [];
  const maxSeq = names.length === 0 ? 0 : names[names.length - 1]!.parsed!.seq;
  if (from > 0 && names[0]?.parsed!.seq !== from) {
    fatalUnlessAny(mode, report, {
      file: names[0]?.name ?? '(none)',
      offset: 0,
      detail: resume !== undefined ? `file(s) missing: the index checkpoint covers up to file ${from}` : `file(s) missing: the GC checkpoint's watermark is file ${minSeq}`,
      action: 'reported',
      bytesDropped: 0,
    });
  }
  let previous: RecoveredFile | undefined;
  const buffers = new WindowBuffers();
  try {
    for (let i = 0; i < names.length; i++) {
      const { name, parsed } = names[i]!;
      // A successor that recovery will remove (case E) leaves this file last:
      // its end is then where its records end, not what that header says.
      const isLast =
        i === names.length - 1 ||
        (listedLast === undefined && i === names.length - 2 && (await neverCompleted(fs, names[i + 1]!.name, names[i + 1]!.parsed!.seq)));
      if (previous !== undefined && parsed!.seq !== previous.seq + 1) {
        fatalUnlessAny(mode, report, { file: name, offset: 0, detail: `file(s) missing before sequence ${parsed!.seq}`, action: 'reported', bytesDropped: 0 });
      }
      const expectedEnd = isLast ? undefined : await recordedLength(fs, names[i + 1]!.name);
      const handle = await fs.open(name, { readOnly: dryRun || !isLast });
      let recovered: RecoveredFile | undefined;
      try {
        const mayBeUnfinished = isLast && listedLast === undefined;
        const cleanEnd = options.cleanEnd !== undefined && options.cleanEnd > 0 && parsed!.seq === listedLast ? options.cleanEnd : undefined;
        const start = resume !== undefined && parsed!.seq === resume.seq ? resume : undefined;
        recovered = await recoverFile(fs, mode, report, handle, name, parsed!.seq, isLast, mayBeUnfinished, expectedEnd, cleanEnd, previous, apply, dryRun, buffers, start);
      } catch (error) {
        // Not in `files` yet, so the cleanup below would leak its descriptor.
        await handle.close().catch(() => undefined);
        throw error;
      }
      if (recovered === undefined) {
        await handle.close();
        continue;
      }
      files.push(recovered);
      previous = recovered;
    }
  } catch (error) {
    await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)));
    throw error;
  }
  const lastName = names[names.length - 1];
  const last = files[files.length - 1];
  // With a manifest only its last file continues: after a listed file went
  // missing (TolerateAnyCorruption), new records go to a new file.
  const writable = last !== undefined && last.seq === (listedLast ?? maxSeq) ? last : undefined;
  // A removed half-created last file leaves its name free for the next file.
  const lastRemoved = lastName !== undefined && (last === undefined || last.seq !== maxSeq) &&
    report.problems.some((p) => p.file === lastName.name && p.action === 'removed-file');
  // A listed file recovery skipped (TolerateAnyCorruption) keeps its name.
  const nextSeq = Math.max(minSeq, lastRemoved ? maxSeq : maxSeq + 1, listedLast === undefined ? 1 : listedLast + 1, keptPastListed + 1);
  const superseded = all.filter((n) => n.parsed!.seq < minSeq).map((n) => n.name);
  return { files, writable, nextSeq, report, superseded };
}

/**
 * Case E: the header is made durable before any record, so a last file with
 * an unreadable header and nothing after it died being created; one still
 * carrying the valid header of its previous life (another sequence) is a
 * recycled file whose new header never landed.
 */
async function caseE(headerProblem: string | undefined, size: number, window: FileWindow): Promise<boolean> {
  return headerProblem === 'mismatch' || size <= FILE_HEADER_SIZE || (await window.zeroFrom(FILE_HEADER_SIZE));
}

/** Whether the file, were it last, is one case E removes (its header never landed). */
async function neverCompleted(fs: FileSystem, name: string, seq: number): Promise<boolean> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const size = await handle.size();
    const window = new FileWindow(handle, size, HEADER_WINDOW);
    const header = decodeFileHeader((await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0));
    const problem = typeof header === 'string' ? header : header.seq !== seq || header.queue !== Queue.Append ? 'mismatch' : undefined;
    return problem !== undefined && (await caseE(problem, size, window));
  } finally {
    await handle.close();
  }
}

/** Whether the file's header verifies and a record follows it. */
async function holdsRecords(fs: FileSystem, name: string, seq: number): Promise<boolean> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const size = await handle.size();
    const window = new FileWindow(handle, size, HEADER_WINDOW);
    const header = decodeFileHeader((await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0));
    if (typeof header === 'string' || header.seq !== seq || header.queue !== Queue.Append) return false;
    const scanner = new RecordScanner(handle, size, header.salt, HEADER_WINDOW);
    try {
      return 'header' in (await scanner.read(FILE_HEADER_SIZE));
    } finally {
      await scanner.window.idle();
    }
  } finally {
    await handle.close();
  }
}

/** The previous-file length a file's header records, if the header verifies. */
async function recordedLength(fs: FileSystem, name: string): Promise<number | undefined> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const bytes = new Uint8Array(FILE_HEADER_SIZE);
    const read = await handle.read(bytes, 0, FILE_HEADER_SIZE, 0);
    const header = decodeFileHeader(bytes.subarray(0, read));
    return typeof header === 'object' && header.previousFileLength > 0 ? header.previousFileLength : undefined;
  } finally {
    await handle.close();
  }
}

async function recoverFile(
  fs: FileSystem,
  mode: RecoveryMode,
  report: RecoveryReport,
  handle: FileHandle,
  name: string,
  seq: number,
  isLast: boolean,
  mayBeUnfinished: boolean,
  expectedEnd: number | undefined,
  cleanEnd: number | undefined,
  previous: RecoveredFile | undefined,
  apply: ApplyRecord,
  dryRun: boolean,
  buffers: WindowBuffers,
  start?: { offset: number; sealAt: number },
): Promise<RecoveredFile | undefined> {
  const size = await handle.size();
  const window = new FileWindow(handle, size, HEADER_WINDOW);
  const headerBytes = (await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0);
  const header = decodeFileHeader(headerBytes);
  const headerProblem = typeof header === 'string' ? header : header.seq !== seq || header.queue !== Queue.Append ? 'mismatch' : undefined;
  if (typeof header === 'string' || headerProblem !== undefined) {
    if (mayBeUnfinished && (await caseE(headerProblem, size, window))) {
      await handle.close();
      if (!dryRun) {
        await fs.remove(name);
        await fs.syncDir();
      }
      report.problems.push({ file: name, offset: 0, detail: `header ${String(headerProblem)}: file was never completed`, action: 'removed-file', bytesDropped: size });
      return undefined;
    }
    fatalUnlessAny(mode, report, { file: name, offset: 0, detail: `file header ${String(headerProblem)}`, action: 'skipped-file', bytesDropped: size });
    return undefined;
  }
  checkPreviousLength(mode, report, previous, header);
  const scanner = new RecordScanner(handle, size, header.salt, { readAhead: true, buffers });
  try {
    const id = fileId(Queue.Append, seq);
    // Resuming after an index checkpoint: what it covers was durable before it was written.
    const startAt = start?.offset ?? FILE_HEADER_SIZE;
    let offset = startAt;
    let provenEnd = startAt;
    let sealed = start !== undefined && start.sealAt !== 0;
    let cleanEndSeen = sealed && startAt === cleanEnd;
    const problemsBefore = report.problems.length;
    let sealAt = sealed ? start!.sealAt : 0;
    for (;;) {
      const result = await scanner.read(offset);
      if ('header' in result) {
        apply(result, id);
        report.records++;
        offset = result.end;
        provenEnd = Math.max(provenEnd, result.header.syncedThrough);
        sealed = result.header.payloadLength === 0;
        if (sealed && offset === cleanEnd) cleanEndSeen = true;
        sealAt = sealed ? result.offset : 0;
        continue;
      }
      if (result.kind !== 'damage') break;
      // An older file ends exactly where its successor says; what follows
      // there is preallocated space or, in a recycled file, its earlier life.
      if (offset === expectedEnd) break;
      const next = await scanner.findNextValid(offset);
      const recycled = (header.flags & FILE_FLAG_RECYCLED) !== 0;
      // A clean close proved everything before its seal's end durable, like
      // a later record's synced-through mark would: damage there is no torn
      // write and no stale bytes of a recycled file's earlier life.
      const provenByClose = cleanEnd !== undefined && offset < cleanEnd;
      if (isLast && recycled && next === undefined && !provenByClose) break;
      const proven = !isLast || provenByClose || (await provenDurable(scanner, next, offset));
      const problem: RecoveryProblem = { file: name, offset, detail: result.detail, action: 'cut', bytesDropped: size - offset };
      if (mode === RecoveryMode.TolerateAnyCorruption && next !== undefined) {
        report.problems.push({ ...problem, action: 'skipped', bytesDropped: next.offset - offset });
        offset = next.offset;
        continue;
      }
      if (proven && (mode === RecoveryMode.AbsoluteConsistency || !isLast)) {
        if (mode !== RecoveryMode.TolerateAnyCorruption) {
          throw new CorruptionError(`${name}: ${result.detail} at offset ${offset}, in data proven durable`, { file: name, offset });
        }
      }
      if (isLast && !dryRun && (next !== undefined || !recycled)) {
        await scanner.window.idle();
        // Cut physically: bytes left past the new end could otherwise verify
        // on a later open, after new records were written over part of them.
        // A recycled file keeps its blocks when nothing after the cut verifies:
        // stale records never verify under the new salt.
        await handle.truncate(offset);
        await handle.sync();
      }
      report.problems.push(isLast ? problem : { ...problem, action: 'skipped' });
      break;
    }
    // Case G. Damage already reported covers it (a cut there is case B).
    if (cleanEnd !== undefined && !cleanEndSeen && report.problems.length === problemsBefore) {
      fatalUnlessAny(mode, report, {
        file: name,
        offset,
        detail: `valid data ends at ${offset}, but the MANIFEST records that a clean close sealed it at ${cleanEnd}: the file was cut short`,
        action: 'reported',
        bytesDropped: Math.max(0, cleanEnd - offset),
      });
    }
    report.bytesScanned += offset - startAt;
    return { name, seq, salt: header.salt, handle, end: offset, provenEnd: Math.min(provenEnd, offset), sealed, sealAt };
  } finally {
    // The handle outlives the scan (the writer continues the last file): no read may still be in flight.
    await scanner.window.idle();
  }
}

/** True when a record after `damageOffset` was written after the damaged bytes were durable. */
async function provenDurable(scanner: RecordScanner, first: ScannedRecord | undefined, damageOffset: number): Promise<boolean> {
  let record = first;
  while (record !== undefined) {
    if (record.header.syncedThrough > damageOffset) return true;
    const next = await scanner.read(record.end);
    record = 'header' in next ? next : next.kind === 'damage' ? await scanner.findNextValid(record.end) : undefined;
  }
  return false;
}

function checkPreviousLength(mode: RecoveryMode, report: RecoveryReport, previous: RecoveredFile | undefined, header: FileHeader): void {
  if (previous === undefined || header.previousFileLength === 0) return;
  if (previous.end === header.previousFileLength) return;
  fatalUnlessAny(mode, report, {
    file: previous.name,
    offset: previous.end,
    detail: `valid data ends at ${previous.end} but the next file says ${header.previousFileLength} bytes were written`,
    action: 'reported',
    bytesDropped: Math.max(0, header.previousFileLength - previous.end),
  });
}

export function fatalUnlessAny(mode: RecoveryMode, report: RecoveryReport, problem: RecoveryProblem): void {
  if (mode !== RecoveryMode.TolerateAnyCorruption) {
    throw new CorruptionError(`${problem.file}: ${problem.detail}`, { file: problem.file, offset: problem.offset });
  }
  report.problems.push(problem);
}
