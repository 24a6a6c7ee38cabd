/**
 * Recovery of the whole log, as `Engine.open` runs it and as the CLI's
 * read-only passes run it: the newest complete GC checkpoint (rewrite queue)
 * first, then the append files from its watermark on, every verified record
 * applied through the one apply path.
 *
 * Index gaps during replay. A checkpoint copies only the entries that were
 * live when it was taken. An append file above its watermark can still hold
 * a record that was appended after entries a later overwrite replaced: that
 * record is dead (its predecessors are gone, so a later record overwrites or
 * cleans it), and replaying it after the checkpoint leaves a gap. Its entries
 * are skipped; its other items (keys, commands) still apply. Without a
 * checkpoint a gap cannot occur in a log the engine wrote, so it is
 * corruption, except under TolerateAnyCorruption, where the entries before
 * the gap are dropped to keep the newer run.
 */
import { applyBatch, type GapPolicy, type Memtables } from '../apply.js';
import { CorruptionError, isRaftlogError } from '../errors.js';
import { fileIdQueue, fileIdSeq, logFileName, parseLogFileName } from '../file-names.js';
import type { FileSystem } from '../filesystem.js';
import { FILE_FLAG_MANIFEST, FILE_HEADER_SIZE, RECORD_FLAG_LZ4, decodeFileHeader } from '../format/layout.js';
import { recoverCheckpoint, type RewriteQueueState } from './checkpoint.js';
import { loadIndexCheckpoint, type IndexCheckpointLoad } from './index-checkpoint.js';
import { INDEX_CHECKPOINT_NAME, MANIFEST_NAME } from '../file-names.js';
import { readManifest, spilledPerManifest, type ManifestRead, type ManifestState } from '../file-set/manifest.js';
import { Queue } from '../format/layout.js';
import {
  RecoveryMode,
  decideFile,
  recoverQueue,
  type ApplyRecord,
  type IndexCheckpointUse,
  type RecoveredLog,
  type RecoveryProblem,
  type RecoveryReport,
} from './recovery.js';
import type { Decision } from './decision-table.js';
import type { ScannedRecord } from './scanner.js';
import { ParallelReplay, type ParallelReplayOptions } from './prescan.js';

export interface RecoveredState {
  /** What MANIFEST said (`absent` for a directory written before manifests, or a new one). */
  manifest: ManifestRead;
  rewrite: RewriteQueueState;
  log: RecoveredLog;
  /** Entries of dead records skipped after the checkpoint (see above). */
  deadRunsSkipped: number;
}

export interface RecoverLogOptions {
  /** Open everything read-only and change nothing (see recoverQueue). */
  dryRun?: boolean;
  /** Sees every verified record before it is applied, in log order. */
  visit?: (record: ScannedRecord, fileId: number) => void;
  /** A spill FileSystem is part of `fs` (a TieredFs): a file the manifest places there and `fs` lacks is missing, not withheld. */
  spillGiven?: boolean;
  /** Load the index checkpoint when it covers a prefix of the log and replay only the rest (see index-checkpoint.ts). Never in a dry run. */
  indexCheckpoint?: boolean;
  /** Receives every decision of the recovery decision table taken, in order. */
  decisions?: Decision[];
  /** Verify and decode append files on worker threads while the main thread applies them (prescan.ts); absent or 0 threads: serial. */
  parallel?: ParallelReplayOptions;
}

export async function recoverLog(
  fs: FileSystem,
  mode: RecoveryMode,
  memtables: Memtables,
  options: RecoverLogOptions = {},
): Promise<RecoveredState> {
  let gaps: GapPolicy = 'error';
  let deadRunsSkipped = 0;
  const apply = (record: ScannedRecord, id: number): void => {
    options.visit?.(record, id);
    const location = {
      fileId: id,
      recordOffset: record.offset,
      payloadLength: record.header.payloadLength,
      compressed: (record.header.flags & RECORD_FLAG_LZ4) !== 0,
    };
    try {
      deadRunsSkipped += applyBatch(memtables, record.items, record.payload, location, gaps).gapsSkipped;
    } catch (error) {
      if (!isRaftlogError(error, 'INVALID_ARGUMENT')) throw error;
      const file = logFileName(fileIdQueue(id), fileIdSeq(id));
      throw new CorruptionError(`${file}: record at offset ${record.offset} cannot be replayed: ${error.message}`, {
        file,
        offset: record.offset,
        cause: error,
      });
    }
  };
  const manifest = await readManifest(fs);
  let checkpointUse: IndexCheckpointUse = { used: false, detail: 'disabled' };
  if (options.indexCheckpoint === true && options.dryRun !== true && manifest.kind === 'ok') {
    const loadStarted = performance.now();
    const loaded = await loadIndexCheckpoint(fs, manifest, memtables);
    if (loaded.kind === 'loaded') {
      // The tail replays under the same gap policy a full replay would use at that point.
      gaps = gapPolicy(loaded.rewrite.checkpoint !== undefined, mode);
      const tailStarted = performance.now();
      const log = await replayTail(fs, mode, apply, manifest.state, loaded, options);
      log.report.indexCheckpoint!.loadMillis = tailStarted - loadStarted;
      log.report.indexCheckpoint!.tailMillis = performance.now() - tailStarted;
      return { manifest, rewrite: loaded.rewrite, log, deadRunsSkipped };
    }
    checkpointUse = { used: false, detail: loaded.reason };
  } else if (options.indexCheckpoint === true && options.dryRun !== true) {
    checkpointUse = { used: false, detail: (await fs.exists(INDEX_CHECKPOINT_NAME)) ? `stale: MANIFEST ${manifest.kind}` : 'absent' };
  }
  const manifestProblems = await reportManifest(fs, mode, manifest, options.decisions);
  const report = { mode, problems: manifestProblems } as RecoveryReport;
  const listed = manifest.kind === 'ok' ? manifest.state : undefined;
  if (listed !== undefined) await checkListedFiles(fs, listed, mode, report, options.spillGiven === true, options.decisions);
  const rewrite = await recoverCheckpoint(
    fs,
    apply,
    mode,
    listed === undefined ? undefined : (listed.checkpoint?.seq ?? 0),
    options.decisions,
  );
  gaps = gapPolicy(rewrite.checkpoint !== undefined, mode);
  const parallel = options.parallel !== undefined && options.parallel.threads > 0 ? new ParallelReplay(options.parallel) : undefined;
  try {
    const minSeq = listed !== undefined ? listed.first : rewrite.checkpoint?.watermark;
    const log = await recoverQueue(fs, mode, apply, {
      dryRun: options.dryRun,
      minSeq,
      maxSeq: listed?.last,
      cleanEnd: listed?.cleanEnd,
      decisions: options.decisions,
      openScanner: parallel?.openScanner,
    });
    log.report.problems.unshift(...manifestProblems, ...rewrite.problems);
    if (options.indexCheckpoint !== undefined) log.report.indexCheckpoint = checkpointUse;
    return { manifest, rewrite, log, deadRunsSkipped };
  } catch (error) {
    await rewrite.checkpoint?.handle.close().catch(() => undefined);
    throw error;
  } finally {
    await parallel?.close();
  }
}

/** Entries that skip an index: after a GC checkpoint, dead runs it dropped; otherwise damage, unless the mode takes any. */
function gapPolicy(afterGcCheckpoint: boolean, mode: RecoveryMode): GapPolicy {
  return afterGcCheckpoint ? 'skip' : mode === RecoveryMode.TolerateAnyCorruption ? 'reset' : 'error';
}

/** Replays what follows a loaded index checkpoint's position, as a full replay would replay it there. */
async function replayTail(
  fs: FileSystem,
  mode: RecoveryMode,
  apply: ApplyRecord,
  listed: ManifestState,
  loaded: Extract<IndexCheckpointLoad, { kind: 'loaded' }>,
  options: RecoverLogOptions,
): Promise<RecoveredLog> {
  try {
    // A listed file missing from the tail (one on a spillFs not given) is what it is in a full replay.
    const listedProblems = { mode, problems: [] as RecoveryProblem[] } as RecoveryReport;
    await checkListedFiles(fs, listed, mode, listedProblems, options.spillGiven === true, options.decisions);
    // Serial: the tail is what a crash left since the last checkpoint (parallel replay serves a full one).
    const log = await recoverQueue(fs, mode, apply, {
      minSeq: listed.first,
      maxSeq: listed.last,
      cleanEnd: listed.cleanEnd,
      resume: loaded.resume,
      decisions: options.decisions,
    });
    log.files.unshift(...loaded.files);
    log.report.problems.unshift(...listedProblems.problems);
    log.report.indexCheckpoint = {
      used: true,
      detail: 'loaded',
      coveredThrough: { seq: loaded.resume.seq, offset: loaded.resume.offset },
      tailRecords: log.report.records,
      tailBytes: log.report.bytesScanned,
    };
    return log;
  } catch (error) {
    for (const file of loaded.files) await file.handle.close().catch(() => undefined);
    await loaded.rewrite.checkpoint?.handle.close().catch(() => undefined);
    throw error;
  }
}

/** A damaged MANIFEST, or one lost while files written under it remain: problems the table decides on. */
async function reportManifest(
  fs: FileSystem,
  mode: RecoveryMode,
  manifest: ManifestRead,
  decisions: Decision[] | undefined,
): Promise<RecoveryProblem[]> {
  const report = { mode, problems: [] as RecoveryProblem[] } as RecoveryReport;
  if (manifest.kind === 'damaged') {
    decideFile('manifest-damaged', mode, report, { file: MANIFEST_NAME, offset: 0, detail: manifest.detail, bytesDropped: 0 }, decisions);
  }
  if (manifest.kind === 'absent') {
    const governed = await fileWrittenUnderManifest(fs);
    if (governed !== undefined) {
      decideFile(
        'manifest-lost',
        mode,
        report,
        {
          file: MANIFEST_NAME,
          offset: 0,
          detail: `missing: ${governed} was written while a MANIFEST governed this directory (its header says so), so the MANIFEST was lost; files it listed may be missing too`,
          bytesDropped: 0,
        },
        decisions,
      );
    }
  }
  return report.problems;
}

/**
 * Every file the MANIFEST lists must be there: a missing one is CORRUPTION
 * naming it (in TolerateAnyCorruption a reported problem), and when the
 * manifest places it on the spill FileSystem and none was given, the message
 * says that spillFs is missing.
 */
async function checkListedFiles(
  fs: FileSystem,
  listed: ManifestState,
  mode: RecoveryMode,
  report: RecoveryReport,
  spillGiven: boolean,
  decisions: Decision[] | undefined,
): Promise<void> {
  const present = new Set(await fs.list());
  const missing = (name: string, spilled: boolean | undefined): void => {
    const where =
      spilled === true && !spillGiven
        ? 'the MANIFEST places it on spillFs, and spillFs is missing: open with the spillFs the log spilled to'
        : spilled === undefined && !spillGiven
          ? 'the MANIFEST lists it, and it may be on spillFs, which is missing'
          : 'the MANIFEST lists it as part of the log';
    decideFile('listed-file-missing', mode, report, { file: name, offset: 0, detail: `missing: ${where}`, bytesDropped: 0 }, decisions);
  };
  if (listed.checkpoint !== undefined) {
    const name = logFileName(Queue.Rewrite, listed.checkpoint.seq);
    if (!present.has(name)) missing(name, listed.checkpoint.spilled);
  }
  if (listed.first === 0) return;
  for (let seq = listed.first; seq <= listed.last; seq++) {
    const name = logFileName(Queue.Append, seq);
    if (!present.has(name)) missing(name, spilledPerManifest(listed, seq));
  }
}

/**
 * A log file whose header carries FILE_FLAG_MANIFEST: it was created while a
 * MANIFEST governed the directory (the MANIFEST is durable before such a
 * header is written), so a directory holding one and no MANIFEST lost it.
 * Only a header that verifies and names this file counts (a recycled file
 * whose new header never landed still shows its past life's).
 */
async function fileWrittenUnderManifest(fs: FileSystem): Promise<string | undefined> {
  for (const name of (await fs.list()).sort()) {
    const parsed = parseLogFileName(name);
    if (parsed === undefined) continue;
    const handle = await fs.open(name, { readOnly: true });
    try {
      const bytes = new Uint8Array(FILE_HEADER_SIZE);
      const read = await handle.read(bytes, 0, FILE_HEADER_SIZE, 0);
      const header = decodeFileHeader(bytes.subarray(0, read));
      if (
        typeof header === 'object' &&
        header.seq === parsed.seq &&
        header.queue === parsed.queue &&
        (header.flags & FILE_FLAG_MANIFEST) !== 0
      )
        return name;
    } finally {
      await handle.close();
    }
  }
  return undefined;
}
