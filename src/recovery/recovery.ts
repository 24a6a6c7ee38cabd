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
 * What each kind of damage means in each mode is one table, DECISION_TABLE
 * in decision-table.ts (the README shows it, generated from there). This
 * file classifies what it finds into a damage site and does what `decide`
 * says; the letters (A–G) are the table's case labels.
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
 * instead of a copy of it.
 */
import { CorruptionError } from '../errors.js';
import { fileId, parseLogFileName } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { FILE_FLAG_RECYCLED, FILE_HEADER_SIZE, Queue, decodeFileHeader, type FileHeader } from '../format/layout.js';
import { assert } from '../assert.js';
import { decide, type DamageSite, type Decision, type RecoveryAction } from './decision-table.js';
import type { OpenScanner } from './prescan.js';
import { FileWindow, HEADER_WINDOW, RecordScanner, WindowBuffers, type ScannedRecord, type StopReason } from './scanner.js';

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
  /** When used: milliseconds spent checking and loading the checkpoint (the memtables), and replaying the tail after it. */
  loadMillis?: number;
  tailMillis?: number;
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
  /** Receives every decision taken, in order (tests follow the table with it). */
  decisions?: Decision[];
  /** Makes each file's record scanner (prescan.ts: verified ahead on worker threads); default serial. */
  openScanner?: OpenScanner;
}

export async function recoverQueue(
  fs: FileSystem,
  mode: RecoveryMode,
  apply: ApplyRecord,
  options: RecoverOptions = {},
): Promise<RecoveredLog> {
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
  const decisions = options.decisions;
  const unlisted = listedLast === undefined ? [] : all.filter((n) => n.parsed!.seq > listedLast);
  const keptPastListed = await settleUnlisted(fs, mode, report, unlisted, dryRun, decisions);
  const files: RecoveredFile[] = [];
  const maxSeq = names.length === 0 ? 0 : names[names.length - 1]!.parsed!.seq;
  if (from > 0 && names[0]?.parsed!.seq !== from) {
    const detail =
      resume !== undefined
        ? `file(s) missing: the index checkpoint covers up to file ${from}`
        : `file(s) missing: the GC checkpoint's watermark is file ${minSeq}`;
    decideFile('sequence-gap', mode, report, { file: names[0]?.name ?? '(none)', offset: 0, detail, bytesDropped: 0 }, decisions);
  }
  let previous: RecoveredFile | undefined;
  const queue: QueueRecovery = {
    fs,
    mode,
    report,
    apply,
    dryRun,
    buffers: new WindowBuffers(),
    decisions,
    openScanner: options.openScanner ?? ((...args) => new RecordScanner(...args)),
  };
  try {
    for (let i = 0; i < names.length; i++) {
      const recovered = await recoverAt(queue, names, i, previous, options);
      if (recovered === undefined) continue;
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
  const lastRemoved =
    lastName !== undefined &&
    (last === undefined || last.seq !== maxSeq) &&
    report.problems.some((p) => p.file === lastName.name && p.action === 'removed-file');
  // A listed file recovery skipped (TolerateAnyCorruption) keeps its name.
  const nextSeq = Math.max(minSeq, lastRemoved ? maxSeq : maxSeq + 1, listedLast === undefined ? 1 : listedLast + 1, keptPastListed + 1);
  const superseded = all.filter((n) => n.parsed!.seq < minSeq).map((n) => n.name);
  return { files, writable, nextSeq, report, superseded };
}

/** Opens and recovers `names[i]`; undefined when recovery removed it (its handle is closed then). */
async function recoverAt(
  queue: QueueRecovery,
  names: readonly { name: string; parsed: { seq: number } | undefined }[],
  i: number,
  previous: RecoveredFile | undefined,
  options: RecoverOptions,
): Promise<RecoveredFile | undefined> {
  const { fs, mode, report, dryRun, decisions } = queue;
  const listedLast = options.maxSeq;
  const resume = options.resume;
  const { name, parsed } = names[i]!;
  // A successor that recovery will remove (case E) leaves this file last:
  // its end is then where its records end, not what that header says.
  const isLast =
    i === names.length - 1 ||
    (listedLast === undefined && i === names.length - 2 && (await neverCompleted(fs, names[i + 1]!.name, names[i + 1]!.parsed!.seq)));
  if (previous !== undefined && parsed!.seq !== previous.seq + 1) {
    const detail = `file(s) missing before sequence ${parsed!.seq}`;
    decideFile('sequence-gap', mode, report, { file: name, offset: 0, detail, bytesDropped: 0 }, decisions);
  }
  const expectedEnd = isLast ? undefined : await recordedLength(fs, names[i + 1]!.name);
  const handle = await fs.open(name, { readOnly: dryRun || !isLast });
  let recovered: RecoveredFile | undefined;
  try {
    const mayBeUnfinished = isLast && listedLast === undefined;
    const cleanEnd = options.cleanEnd !== undefined && options.cleanEnd > 0 && parsed!.seq === listedLast ? options.cleanEnd : undefined;
    const start = resume !== undefined && parsed!.seq === resume.seq ? resume : undefined;
    recovered = await recoverFile(queue, {
      handle,
      name,
      seq: parsed!.seq,
      isLast,
      mayBeUnfinished,
      expectedEnd,
      cleanEnd,
      previous,
      start,
    });
  } catch (error) {
    // Not in the caller's files yet, so its cleanup would leak this descriptor.
    await handle.close().catch(() => undefined);
    throw error;
  }
  if (recovered === undefined) await handle.close();
  return recovered;
}

/**
 * Files past the MANIFEST's last one. A rotation writes no record before its
 * manifest update is durable, so one without records died in creation and
 * is removed; a record there means the manifest lost that update (its newest
 * slot is damaged and recovery read the older one): never remove data for
 * it. Returns the highest sequence number kept (0 for none).
 */
async function settleUnlisted(
  fs: FileSystem,
  mode: RecoveryMode,
  report: RecoveryReport,
  unlisted: readonly { name: string; parsed: { seq: number } | undefined }[],
  dryRun: boolean,
  decisions: Decision[] | undefined,
): Promise<number> {
  let kept = 0;
  for (const extra of unlisted) {
    const holds = await holdsRecords(fs, extra.name, extra.parsed!.seq);
    const detail = holds
      ? 'holds records but the MANIFEST does not list it (a damaged MANIFEST slot?)'
      : 'not in the MANIFEST: its creation never completed';
    const action = decideFile(
      holds ? 'unlisted-records' : 'unlisted-empty',
      mode,
      report,
      { file: extra.name, offset: 0, detail, bytesDropped: 0 },
      decisions,
    );
    if (action === 'remove-file') await removeFile(fs, extra.name, dryRun);
    else kept = extra.parsed!.seq;
  }
  return kept;
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
  return withHeader(fs, name, async (header, size, window) => {
    const problem = typeof header === 'string' ? header : header.seq !== seq || header.queue !== Queue.Append ? 'mismatch' : undefined;
    return problem !== undefined && (await caseE(problem, size, window));
  });
}

/** Whether the file's header verifies and a record follows it. */
async function holdsRecords(fs: FileSystem, name: string, seq: number): Promise<boolean> {
  return withHeader(fs, name, async (header, size, _window, handle) => {
    if (typeof header === 'string' || header.seq !== seq || header.queue !== Queue.Append) return false;
    const scanner = new RecordScanner(handle, size, header.salt, HEADER_WINDOW);
    try {
      return 'header' in (await scanner.read(FILE_HEADER_SIZE));
    } finally {
      await scanner.idle();
    }
  });
}

/** Runs `use` on the decoded header of `name` (a problem string when it does not verify), the file open read-only meanwhile. */
async function withHeader<T>(
  fs: FileSystem,
  name: string,
  use: (header: ReturnType<typeof decodeFileHeader>, size: number, window: FileWindow, handle: FileHandle) => Promise<T>,
): Promise<T> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const size = await handle.size();
    const window = new FileWindow(handle, size, HEADER_WINDOW);
    return await use(decodeFileHeader((await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0)), size, window, handle);
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

/** What the recovery of every file of one queue shares. */
interface QueueRecovery {
  fs: FileSystem;
  mode: RecoveryMode;
  report: RecoveryReport;
  apply: ApplyRecord;
  dryRun: boolean;
  buffers: WindowBuffers;
  decisions: Decision[] | undefined;
  openScanner: OpenScanner;
}

/** What recovery knows about one file before reading it. */
interface FilePlace {
  handle: FileHandle;
  name: string;
  seq: number;
  isLast: boolean;
  /** The last file and no MANIFEST commits it: an unreadable header may be a rotation that died (case E). */
  mayBeUnfinished: boolean;
  /** The length the successor's header records (older files). */
  expectedEnd: number | undefined;
  /** The MANIFEST's clean end, when this is its last file. */
  cleanEnd: number | undefined;
  previous: RecoveredFile | undefined;
  /** Resuming after an index checkpoint (RecoverOptions.resume): replay starts here. */
  start?: { offset: number; sealAt: number };
}

async function recoverFile(queue: QueueRecovery, place: FilePlace): Promise<RecoveredFile | undefined> {
  const { fs, mode, report, dryRun, decisions } = queue;
  const { handle, name, seq } = place;
  const size = await handle.size();
  const window = new FileWindow(handle, size, HEADER_WINDOW);
  const headerBytes = (await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0);
  const header = decodeFileHeader(headerBytes);
  const headerProblem = typeof header === 'string' ? header : header.seq !== seq || header.queue !== Queue.Append ? 'mismatch' : undefined;
  if (typeof header === 'string' || headerProblem !== undefined) {
    const unfinished = place.mayBeUnfinished && (await caseE(headerProblem, size, window));
    const detail = unfinished ? `header ${String(headerProblem)}: file was never completed` : `file header ${String(headerProblem)}`;
    const action = decideFile(
      unfinished ? 'unfinished-header' : 'bad-header',
      mode,
      report,
      { file: name, offset: 0, detail, bytesDropped: size },
      decisions,
    );
    if (action === 'remove-file') {
      await handle.close();
      await removeFile(fs, name, dryRun);
    }
    return undefined;
  }
  checkPreviousLength(queue, place.previous, header);
  const scanner = queue.openScanner(handle, size, header.salt, { readAhead: true, buffers: queue.buffers });
  try {
    const end = await replayRecords(queue, place, scanner, header);
    return { name, seq, salt: header.salt, handle, ...end };
  } finally {
    // The handle outlives the scan (the writer continues the last file): no read may still be in flight.
    await scanner.idle();
  }
}

/** Applies the file's records in order and decides where its data ends. */
async function replayRecords(
  queue: QueueRecovery,
  place: FilePlace,
  scanner: RecordScanner,
  header: FileHeader,
): Promise<Pick<RecoveredFile, 'end' | 'provenEnd' | 'sealed' | 'sealAt'>> {
  const { mode, report, dryRun, decisions } = queue;
  const { handle, name, isLast, cleanEnd } = place;
  const size = scanner.window.size;
  const id = fileId(Queue.Append, place.seq);
  // Resuming after an index checkpoint: what it covers was durable before it was written.
  const start = place.start;
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
      queue.apply(result, id);
      report.records++;
      offset = result.end;
      provenEnd = Math.max(provenEnd, result.header.syncedThrough);
      sealed = result.header.payloadLength === 0;
      if (sealed && offset === cleanEnd) cleanEndSeen = true;
      sealAt = sealed ? result.offset : 0;
      continue;
    }
    if (result.kind === 'eof') break;
    const recycled = (header.flags & FILE_FLAG_RECYCLED) !== 0;
    const { site, proven, next } = await classify(place, scanner, result, offset, recycled);
    const detail = result.kind === 'damage' ? result.detail : 'zeros';
    const action = decide(site, proven, mode, name, decisions);
    if (action === 'end-of-log' || action === 'end-of-file') break;
    if (action === 'corruption') {
      throw new CorruptionError(`${name}: ${detail} at offset ${offset}${proven ? ', in data proven durable' : ''}`, {
        file: name,
        offset,
      });
    }
    assert(action === 'cut' || action === 'skip-record', `recovery: ${action} is no action on a record`);
    const problem: RecoveryProblem = { file: name, offset, detail, action: 'cut', bytesDropped: size - offset };
    if (action === 'skip-record' && next !== undefined) {
      report.problems.push({ ...problem, action: 'skipped', bytesDropped: next.offset - offset });
      offset = next.offset;
      continue;
    }
    // A cut, or a skip with no record left to skip to: the rest of the file goes.
    if (isLast && !dryRun && (next !== undefined || !recycled)) {
      await scanner.idle();
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
    decideFile(
      'clean-end-missing',
      mode,
      report,
      {
        file: name,
        offset,
        detail: `valid data ends at ${offset}, but the MANIFEST records that a clean close sealed it at ${cleanEnd}: the file was cut short`,
        bytesDropped: Math.max(0, cleanEnd - offset),
      },
      decisions,
    );
  }
  report.bytesScanned += offset - startAt;
  return { end: offset, provenEnd: Math.min(provenEnd, offset), sealed, sealAt };
}

/** Where the bytes at `offset`, which hold no record, lie in the decision table, and whether they were proven durable. */
async function classify(
  place: FilePlace,
  scanner: RecordScanner,
  stop: StopReason,
  offset: number,
  recycled: boolean,
): Promise<{ site: DamageSite; proven: boolean; next: ScannedRecord | undefined }> {
  const { isLast, cleanEnd } = place;
  if (stop.kind === 'zero-tail') return { site: 'zero-tail', proven: false, next: undefined };
  // An older file ends exactly where its successor says; what follows
  // there is preallocated space or, in a recycled file, its earlier life.
  if (offset === place.expectedEnd) return { site: 'older-file-past-end', proven: false, next: undefined };
  const next = await scanner.findNextValid(offset);
  // A clean close proved everything before its seal's end durable, like
  // a later record's synced-through mark would: damage there is no torn
  // write and no stale bytes of a recycled file's earlier life.
  const provenByClose = cleanEnd !== undefined && offset < cleanEnd;
  if (isLast && recycled && next === undefined && !provenByClose) return { site: 'recycled-stale-tail', proven: false, next };
  const proven = !isLast || provenByClose || (await provenDurable(scanner, next, offset));
  return { site: isLast ? 'last-file-record' : 'older-file-record', proven, next };
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

function checkPreviousLength(queue: QueueRecovery, previous: RecoveredFile | undefined, header: FileHeader): void {
  if (previous === undefined || header.previousFileLength === 0) return;
  if (previous.end === header.previousFileLength) return;
  decideFile(
    'older-file-short',
    queue.mode,
    queue.report,
    {
      file: previous.name,
      offset: previous.end,
      detail: `valid data ends at ${previous.end} but the next file says ${header.previousFileLength} bytes were written`,
      bytesDropped: Math.max(0, header.previousFileLength - previous.end),
    },
    queue.decisions,
  );
}

async function removeFile(fs: FileSystem, name: string, dryRun: boolean): Promise<void> {
  if (dryRun) return;
  await fs.remove(name);
  await fs.syncDir();
}

const PROBLEM_ACTION: Partial<Record<RecoveryAction, RecoveryProblem['action']>> = {
  report: 'reported',
  'remove-file': 'removed-file',
  'skip-file': 'skipped-file',
};

/**
 * A decision about a whole file (or the log's shape): CORRUPTION, or the
 * problem reported with the action the table gives. The caller carries out
 * a removal; a skipped file is one it does not replay.
 */
export function decideFile(
  site: DamageSite,
  mode: RecoveryMode,
  report: Pick<RecoveryReport, 'problems'>,
  problem: Omit<RecoveryProblem, 'action'>,
  decisions?: Decision[],
): RecoveryAction {
  const action = decide(site, false, mode, problem.file, decisions);
  if (action === 'corruption') {
    throw new CorruptionError(`${problem.file}: ${problem.detail}`, { file: problem.file, offset: problem.offset });
  }
  const reported = PROBLEM_ACTION[action];
  assert(reported !== undefined, `recovery: ${action} is no action on a file (${site})`);
  report.problems.push({ ...problem, action: reported });
  return action;
}
