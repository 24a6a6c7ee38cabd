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
import { assert } from '../assert.js';
import { CorruptionError } from '../errors.js';
import { decide, type Decision } from './decision-table.js';
import type { ApplyRecord, RecoveryMode, RecoveryProblem } from './recovery.js';
import { FileWindow, HEADER_WINDOW, RecordScanner, type ScannedRecord } from './scanner.js';

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
  /** Damaged checkpoints skipped under TolerateAnyCorruption. */
  problems: RecoveryProblem[];
}

/**
 * `listed`: the checkpoint the MANIFEST names (0 for none), or undefined for a
 * directory without a manifest. With a manifest, only the listed checkpoint
 * counts: any other rewrite file is stale, whatever it holds (a GC pass that
 * failed or crashed before its manifest update), and the listed one must be
 * whole. Without one, the newest complete checkpoint counts.
 */
export async function recoverCheckpoint(
  fs: FileSystem,
  apply: ApplyRecord,
  mode: RecoveryMode,
  listed?: number,
  decisions?: Decision[],
): Promise<RewriteQueueState> {
  const all = (await fs.list()).map((name) => ({ name, parsed: parseLogFileName(name) }));
  const names = all.filter((n) => n.parsed?.queue === Queue.Rewrite).sort((a, b) => b.parsed!.seq - a.parsed!.seq);
  const appendSeqs = all.filter((n) => n.parsed?.queue === Queue.Append).map((n) => n.parsed!.seq);
  const firstAppendSeq = appendSeqs.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...appendSeqs);
  const state: RewriteQueueState = { checkpoint: undefined, stale: [], maxSeq: names[0]?.parsed!.seq ?? 0, problems: [] };
  for (const { name, parsed } of names) {
    if (listed !== undefined && parsed!.seq !== listed) {
      state.stale.push(name);
      continue;
    }
    if (state.checkpoint !== undefined) {
      state.stale.push(name);
      continue;
    }
    const handle = await fs.open(name, { readOnly: true });
    const found = await readCheckpoint(handle, parsed!.seq);
    if (found.kind === 'ok') {
      apply(found.record, fileId(Queue.Rewrite, parsed!.seq));
      state.checkpoint = { seq: parsed!.seq, name, handle, watermark: found.watermark, bytes: found.bytes };
      continue;
    }
    await handle.close();
    // Damaged, not just unfinished: if the files it replaced are gone, its
    // data exists nowhere else. Otherwise the pass that wrote it never got
    // to removing anything, and the older state is intact.
    const replacedGone =
      listed !== undefined || (found.kind === 'damaged' && (found.watermark === undefined || firstAppendSeq >= found.watermark));
    if (replacedGone) {
      const offset = found.kind === 'damaged' ? found.offset : 0;
      const detail = found.kind === 'damaged' ? found.detail : 'its record never completed';
      const bytes = found.kind === 'damaged' ? found.bytes : 0;
      const problem = { file: name, offset, detail: `GC checkpoint: ${detail}`, action: 'skipped-file' as const, bytesDropped: bytes };
      const action = decide('checkpoint-damaged', false, mode, name, decisions);
      if (action === 'corruption') {
        const why = listed !== undefined ? 'the MANIFEST lists it as the GC checkpoint' : 'the files it replaced are gone';
        throw new CorruptionError(`${name}: GC checkpoint ${detail} at offset ${offset}, and ${why}`, { file: name, offset });
      }
      assert(action === 'skip-file', `recovery: ${action} is no action on a GC checkpoint`);
      state.problems.push(problem);
    }
    state.stale.push(name);
  }
  return state;
}

type CheckpointRead =
  | { kind: 'ok'; record: ScannedRecord; watermark: number; bytes: number }
  /** Never completed: nothing after a durable header, or no header at all. */
  | { kind: 'unfinished' }
  | { kind: 'damaged'; watermark: number | undefined; offset: number; detail: string; bytes: number };

async function readCheckpoint(handle: FileHandle, seq: number): Promise<CheckpointRead> {
  const size = await handle.size();
  const window = new FileWindow(handle, size, HEADER_WINDOW);
  const headerBytes = (await window.view(0, Math.min(size, FILE_HEADER_SIZE))) ?? new Uint8Array(0);
  const header = decodeFileHeader(headerBytes);
  const rest = size <= FILE_HEADER_SIZE || (await window.zeroFrom(FILE_HEADER_SIZE));
  if (typeof header !== 'object' || header.queue !== Queue.Rewrite || header.seq !== seq) {
    if (rest) return { kind: 'unfinished' };
    return {
      kind: 'damaged',
      watermark: undefined,
      offset: 0,
      detail: `header ${typeof header === 'string' ? header : 'mismatch'}`,
      bytes: size,
    };
  }
  if (rest) return { kind: 'unfinished' };
  const watermark = header.previousFileLength;
  const record = await new RecordScanner(handle, size, header.salt).read(FILE_HEADER_SIZE);
  if (!('header' in record)) {
    return {
      kind: 'damaged',
      watermark,
      offset: FILE_HEADER_SIZE,
      detail: record.kind === 'damage' ? record.detail : record.kind,
      bytes: size,
    };
  }
  const marker = record.items.items.find((item) => item.kind === ItemKind.Checkpoint);
  if (marker === undefined || marker.index !== watermark) {
    return {
      kind: 'damaged',
      watermark,
      offset: FILE_HEADER_SIZE,
      detail: 'record is not the checkpoint its header announces',
      bytes: size,
    };
  }
  return { kind: 'ok', record, watermark, bytes: size };
}
