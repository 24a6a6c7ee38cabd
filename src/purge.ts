/**
 * Garbage collection planning. Pure: it reads the memtables and the list of
 * append files and decides what one purge pass does.
 *
 * The design that makes GC crash-safe is the *checkpoint*: when old append
 * files are retired and anything in them (or in the rewrite queue) is still
 * live, the pass writes one record to a new rewrite-queue file holding every
 * live entry and key below a watermark append file W, plus W itself. Recovery
 * replays the newest complete checkpoint, then only append files >= W. So:
 *  - a crash before the checkpoint is durable leaves the old state (old
 *    checkpoint, old files, nothing deleted yet);
 *  - a crash after it leaves the new state; files below W are dead whether or
 *    not their removal reached the disk;
 *  - nothing compacted, cleaned or deleted can come back, because the
 *    checkpoint is a complete picture of what lived below W and holds no
 *    tombstones to lose (raft-engine #288 lost data in the incremental
 *    rewrite this replaces).
 * The price: each checkpoint carries the rewrite queue's live data forward.
 * The planner only rewrites small leftovers (regions with few entries below
 * W, and key-value pairs), so that stays small; regions with many old entries
 * are reported to the caller to compact instead.
 */
import { fileIdQueue, fileIdSeq } from './file-names.js';
import { Queue } from './format/layout.js';
import type { RegionMemtable } from './memtable.js';

export interface PurgeOptions {
  /** Rewrite old leftovers once the append queue holds more than this many bytes. */
  purgeThreshold: number;
  /** A region with at most this many entries below the watermark is rewritten; more, and it is asked to compact. */
  rewriteMaxEntries: number;
  /** After this many purges in which a region was asked to compact and did not, the engine rewrites it anyway. */
  forceRewriteAfter: number;
}

/**
 * Rewriting pays only when it frees much more than it copies: a pass copies
 * at most this many live bytes per byte of files it lets go, which bounds the
 * write amplification GC adds (1 + this, in the worst steady state).
 */
export const MAX_REWRITE_RATIO = 0.1;

export interface AppendFileInfo {
  seq: number;
  bytes: number;
}

export interface RewriteRange {
  region: number;
  first: number;
  count: number;
}

export interface PurgePlan {
  /** Append files below this are retired. Equal to the first file's sequence when nothing is. */
  watermark: number;
  /** Entries to copy into the checkpoint, per region (a prefix of each region's range). */
  entries: RewriteRange[];
  /** Keys to copy into the checkpoint: region → key strings. */
  keys: Map<number, string[]>;
  /** Regions whose old entries keep files alive; the caller should compact them. */
  laggards: number[];
  /** Whether a new checkpoint must be written before files below the watermark go. */
  checkpoint: boolean;
}

/** True when a file id lies below the watermark, i.e. in the rewrite queue or an append file < watermark. */
function below(id: number, watermark: number): boolean {
  return fileIdQueue(id) === Queue.Rewrite || fileIdSeq(id) < watermark;
}

/** Oldest append file a region's entries or keys live in (Infinity if only the rewrite queue or nothing). */
function oldestAppendSeq(memtable: RegionMemtable): number {
  let oldest = Number.POSITIVE_INFINITY;
  memtable.forEachFileRun((id) => {
    if (fileIdQueue(id) === Queue.Append) oldest = Math.min(oldest, fileIdSeq(id));
  });
  for (const kv of memtable.kv.values()) if (fileIdQueue(kv.fileId) === Queue.Append) oldest = Math.min(oldest, fileIdSeq(kv.fileId));
  return oldest;
}

/** How many of the region's entries (a prefix) live below the watermark. */
function entriesBelow(memtable: RegionMemtable, watermark: number): { first: number; count: number } {
  let first = Number.NaN;
  let count = 0;
  memtable.forEachFileRun((id, runFirst, runCount) => {
    if (!below(id, watermark)) return;
    if (Number.isNaN(first)) first = runFirst;
    count += runCount;
  });
  return { first, count };
}

/**
 * The highest watermark in (floor, target] whose rewrite copies at most
 * MAX_REWRITE_RATIO of the bytes it frees; `floor` (nothing to copy from
 * append files) when none does. Live bytes are summed per file in one pass.
 */
function paidWatermark(memtables: ReadonlyMap<number, RegionMemtable>, files: readonly AppendFileInfo[], floor: number, target: number): number {
  const liveBySeq = new Map<number, number>();
  let rewriteQueueLive = 0;
  for (const memtable of memtables.values()) {
    memtable.forEachFileRun((id, first, count) => {
      const bytes = memtable.entryBytes(first, count);
      if (fileIdQueue(id) === Queue.Rewrite) rewriteQueueLive += bytes;
      else liveBySeq.set(fileIdSeq(id), (liveBySeq.get(fileIdSeq(id)) ?? 0) + bytes);
    });
    for (const [key, kv] of memtable.kv) {
      const bytes = key.length + kv.value.length;
      if (fileIdQueue(kv.fileId) === Queue.Rewrite) rewriteQueueLive += bytes;
      else liveBySeq.set(fileIdSeq(kv.fileId), (liveBySeq.get(fileIdSeq(kv.fileId)) ?? 0) + bytes);
    }
  }
  let best = floor;
  let freed = 0;
  let copied = rewriteQueueLive;
  for (const file of files) {
    if (file.seq >= target) break;
    freed += file.bytes;
    copied += liveBySeq.get(file.seq) ?? 0;
    if (file.seq >= floor && copied <= MAX_REWRITE_RATIO * freed) best = file.seq + 1;
  }
  return best;
}

/**
 * Chooses the watermark: as high as the oldest reference allows, and when the
 * queue is over the threshold, higher still by rewriting small leftovers,
 * stopping below any region with too many old entries (a laggard).
 */
export function planPurge(
  memtables: ReadonlyMap<number, RegionMemtable>,
  files: readonly AppendFileInfo[],
  activeSeq: number,
  checkpointExists: boolean,
  strikes: ReadonlyMap<number, number>,
  options: PurgeOptions,
): PurgePlan {
  const firstSeq = files[0]?.seq ?? activeSeq;
  let oldestReference = activeSeq;
  for (const memtable of memtables.values()) oldestReference = Math.min(oldestReference, oldestAppendSeq(memtable));
  let watermark = oldestReference;
  const laggards: number[] = [];
  const queueBytes = files.filter((f) => f.seq >= firstSeq).reduce((sum, f) => sum + f.bytes, 0);
  if (queueBytes > options.purgeThreshold) {
    // Keep the newest files that fit in 70% of the threshold; rewrite what lives below them.
    let kept = 0;
    let target = activeSeq;
    for (let i = files.length - 1; i >= 0; i--) {
      const file = files[i]!;
      if (file.seq >= activeSeq) continue;
      if (kept + file.bytes > options.purgeThreshold * 0.7) break;
      kept += file.bytes;
      target = file.seq;
    }
    target = Math.max(watermark, target);
    for (const [region, memtable] of memtables) {
      const { count } = entriesBelow(memtable, target);
      if (count > options.rewriteMaxEntries && (strikes.get(region) ?? 0) < options.forceRewriteAfter) laggards.push(region);
    }
    for (const region of laggards) target = Math.min(target, oldestAppendSeq(memtables.get(region)!));
    watermark = Math.max(watermark, paidWatermark(memtables, files, watermark, target));
  }
  watermark = Math.max(Math.min(watermark, activeSeq), firstSeq);
  const entries: RewriteRange[] = [];
  const keys = new Map<number, string[]>();
  for (const [region, memtable] of memtables) {
    const { first, count } = entriesBelow(memtable, watermark);
    if (count > 0) entries.push({ region, first, count });
    const regionKeys = [...memtable.kv].filter(([, kv]) => below(kv.fileId, watermark)).map(([key]) => key);
    if (regionKeys.length > 0) keys.set(region, regionKeys);
  }
  const retires = watermark > firstSeq;
  const live = entries.length > 0 || keys.size > 0;
  return {
    watermark,
    entries,
    keys,
    laggards: laggards.sort((a, b) => a - b),
    // With nothing live below the watermark and no earlier checkpoint, the
    // old files can simply go: replaying what remains rebuilds the same state.
    checkpoint: retires && (live || checkpointExists),
  };
}
