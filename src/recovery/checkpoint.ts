/**
 * Recovery of the rewrite queue. Each GC pass writes one rewrite file holding
 * one record: a checkpoint of everything live below a watermark append file
 * (see src/purge.ts). Only the newest complete checkpoint counts; it is
 * replayed before the append queue, and append files below its watermark are
 * not replayed at all. Older rewrite files, and a newer one whose record never
 * became complete (a crash during the GC pass), are stale: the next purge
 * removes them.
 */
import { fileId, parseLogFileName } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { ItemKind } from '../format/batch-codec.js';
import { FILE_HEADER_SIZE, Queue, decodeFileHeader } from '../format/layout.js';
import type { ApplyRecord } from './recovery.js';
import { RecordScanner } from './scanner.js';

export interface RecoveredCheckpoint {
  seq: number;
  name: string;
  handle: FileHandle;
  /** Append files below this sequence number are superseded by the checkpoint. */
  watermark: number;
  bytes: number;
}

export interface RewriteQueueState {
  checkpoint: RecoveredCheckpoint | undefined;
  /** Rewrite files that do not hold the current checkpoint. */
  stale: string[];
  /** Highest rewrite sequence number on disk, so new files never reuse a name. */
  maxSeq: number;
}

export async function recoverCheckpoint(fs: FileSystem, apply: ApplyRecord): Promise<RewriteQueueState> {
  const names = (await fs.list())
    .map((name) => ({ name, parsed: parseLogFileName(name) }))
    .filter((n) => n.parsed?.queue === Queue.Rewrite)
    .sort((a, b) => b.parsed!.seq - a.parsed!.seq);
  const state: RewriteQueueState = { checkpoint: undefined, stale: [], maxSeq: names[0]?.parsed!.seq ?? 0 };
  for (const { name, parsed } of names) {
    if (state.checkpoint !== undefined) {
      state.stale.push(name);
      continue;
    }
    const handle = await fs.open(name, { readOnly: true });
    const found = await readCheckpoint(handle, parsed!.seq);
    if (found === undefined) {
      await handle.close();
      state.stale.push(name);
      continue;
    }
    apply(found.record, fileId(Queue.Rewrite, parsed!.seq));
    state.checkpoint = { seq: parsed!.seq, name, handle, watermark: found.watermark, bytes: found.bytes };
  }
  return state;
}

async function readCheckpoint(handle: FileHandle, seq: number) {
  const size = await handle.size();
  const headerBytes = new Uint8Array(FILE_HEADER_SIZE);
  const read = await handle.read(headerBytes, 0, FILE_HEADER_SIZE, 0);
  const header = decodeFileHeader(headerBytes.subarray(0, read));
  if (typeof header !== 'object' || header.queue !== Queue.Rewrite || header.seq !== seq) return undefined;
  const record = await new RecordScanner(handle, size, header.salt).read(FILE_HEADER_SIZE);
  if (!('header' in record)) return undefined;
  const marker = record.items.items.find((item) => item.kind === ItemKind.Checkpoint);
  if (marker === undefined) return undefined;
  return { record, watermark: marker.index, bytes: size };
}
