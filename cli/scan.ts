/**
 * Read-only passes over a log directory, for dump, check and repair. Every
 * pass is the engine's own recovery (GC checkpoint, then `recoverQueue` in
 * dry-run mode, as `Engine.open` runs them) feeding
 * the engine's own apply path, so what the tools report is what an engine
 * opening the directory in that mode would find and build, by construction.
 */
import type { Memtables } from '../src/apply.js';
import { isRaftlogError } from '../src/errors.js';
import { fileIdQueue, fileIdSeq, logFileName } from '../src/file-names.js';
import type { FileSystem } from '../src/filesystem.js';
import type { RewriteQueueState } from '../src/recovery/checkpoint.js';
import { measureDroppedBytes } from '../src/recovery/dropped-bytes.js';
import { recoverLog } from '../src/recovery/log.js';
import { RecoveryMode, type RecoveredLog, type RecoveryReport } from '../src/recovery/recovery.js';
import type { ScannedRecord } from '../src/recovery/scanner.js';
import type { FileSystemFactory } from './backends.js';

export interface ScannedFile {
  name: string;
  seq: number;
  salt: number;
  /** End of valid data. */
  end: number;
  /** Size on disk (preallocated zeros included). */
  size: number;
}

export interface DryRunResult {
  mode: RecoveryMode;
  report: RecoveryReport;
  /** Files recovery keeps, in order (skipped and removed ones are only in the report). */
  files: ScannedFile[];
  /** The state an engine would rebuild. */
  memtables: Memtables;
  entries: number;
  /** The GC checkpoint replayed first, if any (rewrite-queue file name and its watermark). */
  checkpoint: { name: string; watermark: number } | undefined;
  /** Append files below the checkpoint's watermark: not replayed, removed by the next purge. */
  superseded: string[];
  /** Rewrite files that do not hold the current checkpoint. */
  staleRewriteFiles: string[];
}

/**
 * Recovery exactly as `Engine.open` runs it (src/recovery/log.ts). The caller
 * closes every handle returned.
 */
export async function recoverAsEngine(
  fs: FileSystem,
  mode: RecoveryMode,
  memtables: Memtables,
  dryRun: boolean,
  visit?: (record: ScannedRecord, fileId: number) => void,
): Promise<{ rewrite: RewriteQueueState; log: RecoveredLog }> {
  return recoverLog(fs, mode, memtables, { dryRun, visit });
}

/** Called for every verified record, in log order. `record.payload` is valid only during the call. */
export type RecordVisitor = (record: ScannedRecord, file: string) => void;

/**
 * Runs recovery in `mode` over `dir` without changing anything. Throws the
 * CorruptionError recovery would throw in that mode; a record that would
 * break replay (an index gap where the mode does not tolerate one) becomes a
 * CorruptionError naming its file and offset, as it would stop an engine.
 */
export async function dryRecover(dir: string, make: FileSystemFactory, mode: RecoveryMode, visit?: RecordVisitor): Promise<DryRunResult> {
  const fs = make(dir);
  const memtables: Memtables = new Map();
  let entries = 0;
  const seen = (record: ScannedRecord, id: number): void => {
    visit?.(record, logFileName(fileIdQueue(id), fileIdSeq(id)));
    entries += record.items.entryCount;
  };
  let recovered: { rewrite: RewriteQueueState; log: RecoveredLog };
  try {
    recovered = await recoverAsEngine(fs, mode, memtables, true, seen);
  } catch (error) {
    await fs.close();
    throw error;
  }
  const { rewrite, log } = recovered;
  const files: ScannedFile[] = [];
  try {
    for (const file of log.files) {
      files.push({ name: file.name, seq: file.seq, salt: file.salt, end: file.end, size: await file.handle.size() });
    }
    // A cut runs to the end of the file, through preallocated zeros: count what was written.
    log.report.problems = await measureDroppedBytes(fs, log.report.problems);
  } finally {
    await Promise.all(log.files.map((file) => file.handle.close().catch(() => undefined)));
    await rewrite.checkpoint?.handle.close().catch(() => undefined);
    await fs.close();
  }
  const checkpoint = rewrite.checkpoint === undefined ? undefined : { name: rewrite.checkpoint.name, watermark: rewrite.checkpoint.watermark };
  return { mode, report: log.report, files, memtables, entries, checkpoint, superseded: log.superseded, staleRewriteFiles: rewrite.stale };
}

export interface ModeVerdict {
  mode: RecoveryMode;
  /** Whether an engine opens the directory in this mode. */
  opens: boolean;
  /** Why it would refuse (the CorruptionError's one line). */
  refusal: string | undefined;
  /** Bytes of records recovery would cut or skip in this mode (preallocated zeros not counted). */
  bytesDropped: number;
  result: DryRunResult | undefined;
}

/** A dry run that reports refusal as a verdict instead of throwing. */
export async function verdict(dir: string, make: FileSystemFactory, mode: RecoveryMode, visit?: RecordVisitor): Promise<ModeVerdict> {
  try {
    const result = await dryRecover(dir, make, mode, visit);
    const bytesDropped = result.report.problems.reduce((sum, p) => sum + p.bytesDropped, 0);
    return { mode, opens: true, refusal: undefined, bytesDropped, result };
  } catch (error) {
    if (!isRaftlogError(error, 'CORRUPTION')) throw error;
    return { mode, opens: false, refusal: error.message, bytesDropped: 0, result: undefined };
  }
}
