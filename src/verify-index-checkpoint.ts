/**
 * `raftlog check`'s look at the index checkpoint (INDEX) of a closed
 * directory: when open would load it (it covers a prefix of the log), the
 * entries it indexes are checked against the records up to the position it
 * covers, with the same pass as `Engine.verify()` (src/verify.ts). An open
 * that loads it reads none of those records; this is what says the index it
 * would trust points at records that verify. Reads only (where a file cannot
 * be opened, the INDEX is reported as not checked).
 */
import type { Memtables } from './apply.js';
import { fileId, logFileName } from './file-names.js';
import type { FileSystem } from './filesystem.js';
import { Queue } from './format/layout.js';
import { readManifest } from './file-set/manifest.js';
import { loadIndexCheckpoint } from './recovery/index-checkpoint.js';
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
    loaded = await loadIndexCheckpoint(fs, await readManifest(fs), memtables);
  } catch (error) {
    // A file that cannot be opened here (permissions, a snapshot mount)
    // still leaves the rest of the check to run.
    return {
      status: 'unused',
      detail: `could not be loaded here: ${error instanceof Error ? error.message : String(error)}`,
      report: undefined,
    };
  }
  if (loaded.kind === 'unused')
    return { status: loaded.reason === 'absent' ? 'absent' : 'unused', detail: loaded.reason, report: undefined };
  const { rewrite, files, resume } = loaded;
  const targets: VerifyTarget[] = [];
  const checkpoint = rewrite.checkpoint;
  if (checkpoint !== undefined)
    targets.push({
      id: fileId(Queue.Rewrite, checkpoint.seq),
      name: checkpoint.name,
      handle: checkpoint.handle,
      end: undefined,
      wholeFile: true,
    });
  // An older file's end comes from its successor's header (verify.ts); the covered file's is the position the checkpoint recorded.
  for (const file of files) targets.push({ id: fileId(Queue.Append, file.seq), name: file.name, handle: file.handle, end: undefined });
  try {
    const name = logFileName(Queue.Append, resume.seq);
    targets.push({ id: fileId(Queue.Append, resume.seq), name, handle: await fs.open(name, { readOnly: true }), end: resume.offset });
    return { status: 'checked', detail: 'loaded', report: await verifyPass(targets, { memtables: () => memtables.values() }) };
  } finally {
    await Promise.all(targets.map((t) => t.handle.close().catch(() => undefined)));
  }
}
