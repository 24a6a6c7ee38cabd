/**
 * Read-only passes over a log directory, for dump, check and repair. Every
 * pass is the engine's own recovery (`recoverQueue` in dry-run mode) feeding
 * the engine's own apply path, so what the tools report is what an engine
 * opening the directory in that mode would find and build, by construction.
 */
import { applyBatch, type Memtables } from '../apply.js';
import { CorruptionError, isRaftlogError } from '../errors.js';
import { fileIdSeq, logFileName } from '../file-names.js';
import { Queue, RECORD_FLAG_LZ4 } from '../format/layout.js';
import { RecoveryMode, recoverQueue, type RecoveryReport } from '../recovery/recovery.js';
import type { ScannedRecord } from '../recovery/scanner.js';
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
  const tolerateGaps = mode === RecoveryMode.TolerateAnyCorruption;
  const apply = (record: ScannedRecord, id: number): void => {
    const file = logFileName(Queue.Append, fileIdSeq(id));
    visit?.(record, file);
    entries += record.items.entryCount;
    const location = {
      fileId: id,
      recordOffset: record.offset,
      payloadLength: record.header.payloadLength,
      compressed: (record.header.flags & RECORD_FLAG_LZ4) !== 0,
    };
    try {
      applyBatch(memtables, record.items, record.payload, location, tolerateGaps);
    } catch (error) {
      if (!isRaftlogError(error, 'INVALID_ARGUMENT')) throw error;
      throw new CorruptionError(`${file}: record at offset ${record.offset} cannot be replayed: ${error.message}`, {
        file,
        offset: record.offset,
      });
    }
  };
  const log = await recoverQueue(fs, mode, apply, { dryRun: true });
  const files: ScannedFile[] = [];
  try {
    for (const file of log.files) {
      files.push({ name: file.name, seq: file.seq, salt: file.salt, end: file.end, size: await file.handle.size() });
    }
  } finally {
    await Promise.all(log.files.map((file) => file.handle.close().catch(() => undefined)));
    await fs.close();
  }
  return { mode, report: log.report, files, memtables, entries };
}

export interface ModeVerdict {
  mode: RecoveryMode;
  /** Whether an engine opens the directory in this mode. */
  opens: boolean;
  /** Why it would refuse (the CorruptionError's one line). */
  refusal: string | undefined;
  /** Bytes recovery would cut or skip in this mode. */
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
