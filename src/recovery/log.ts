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
import { fileIdQueue, fileIdSeq, logFileName } from '../file-names.js';
import type { FileSystem } from '../filesystem.js';
import { RECORD_FLAG_LZ4 } from '../format/layout.js';
import { recoverCheckpoint, type RewriteQueueState } from './checkpoint.js';
import { RecoveryMode, recoverQueue, type RecoveredLog } from './recovery.js';
import type { ScannedRecord } from './scanner.js';

export interface RecoveredState {
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
}

export async function recoverLog(fs: FileSystem, mode: RecoveryMode, memtables: Memtables, options: RecoverLogOptions = {}): Promise<RecoveredState> {
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
  const rewrite = await recoverCheckpoint(fs, apply, mode);
  gaps = rewrite.checkpoint !== undefined ? 'skip' : mode === RecoveryMode.TolerateAnyCorruption ? 'reset' : 'error';
  try {
    const log = await recoverQueue(fs, mode, apply, { dryRun: options.dryRun, minSeq: rewrite.checkpoint?.watermark });
    log.report.problems.unshift(...rewrite.problems);
    return { rewrite, log, deadRunsSkipped };
  } catch (error) {
    await rewrite.checkpoint?.handle.close().catch(() => undefined);
    throw error;
  }
}
