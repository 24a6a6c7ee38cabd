/**
 * `raftlog check`'s look at the index checkpoint (INDEX) of a closed
 * directory: when open would load it (it matches the log exactly), the
 * entries it indexes are checked against the records, with the same pass as
 * `Engine.verify()` (src/verify.ts). An open that loads it reads none of the
 * records; this is what says the index it would trust points at records
 * that verify. Reads only (the last file is opened as open opens it, for
 * writing, but nothing is written; where that is refused, the INDEX is
 * reported as not checked).
 */
import type { Memtables } from './apply.js';
import { fileId } from './file-names.js';
import type { FileSystem } from './filesystem.js';
import { Queue } from './format/layout.js';
import { readManifest } from './file-set/manifest.js';
import { loadIndexCheckpoint } from './recovery/index-checkpoint.js';
import { RecoveryMode } from './recovery/recovery.js';
import { verifyPass, type VerifyReport, type VerifyTarget } from './verify.js';

export interface IndexCheckpointCheck {
  /** 'absent'; 'unused' (open would not load it: `detail` says why); 'checked' (it matches the log, and `report` checked it). */
  status: 'absent' | 'unused' | 'checked';
  detail: string;
  report: VerifyReport | undefined;
}

export async function checkIndexCheckpoint(fs: FileSystem): Promise<IndexCheckpointCheck> {
  const memtables: Memtables = new Map();
  let loaded: Awaited<ReturnType<typeof loadIndexCheckpoint>>;
  try {
    loaded = await loadIndexCheckpoint(fs, RecoveryMode.AbsoluteConsistency, await readManifest(fs), memtables);
  } catch (error) {
    // Open opens the last file for writing; a read-only directory (another
    // user, a snapshot mount) still gets the rest of its check.
    return { status: 'unused', detail: `could not be loaded here: ${error instanceof Error ? error.message : String(error)}`, report: undefined };
  }
  if (loaded.kind === 'unused') return { status: loaded.reason === 'absent' ? 'absent' : 'unused', detail: loaded.reason, report: undefined };
  const { rewrite, log } = loaded.state;
  const targets: VerifyTarget[] = [];
  const checkpoint = rewrite.checkpoint;
  if (checkpoint !== undefined) targets.push({ id: fileId(Queue.Rewrite, checkpoint.seq), name: checkpoint.name, handle: checkpoint.handle, end: undefined, wholeFile: true });
  const last = log.files[log.files.length - 1];
  // An older file's end comes from its successor's header (verify.ts); the last one's the checkpoint recorded.
  for (const file of log.files) targets.push({ id: fileId(Queue.Append, file.seq), name: file.name, handle: file.handle, end: file === last ? file.end : undefined });
  try {
    return { status: 'checked', detail: 'loaded', report: await verifyPass(targets, { memtables: () => memtables.values() }) };
  } finally {
    await Promise.all(targets.map((t) => t.handle.close().catch(() => undefined)));
  }
}
