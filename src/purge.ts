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
 *
 * One rule overrides that thrift: space. After a pass the log's files (append
 * files as written, and the checkpoint) hold at most B × the live bytes
 * (B = maxSpaceAmplification, SPACE_BOUND = 1.3 by default) plus a slack
 * (one target file and the preallocation, less what the recycle pool and the
 * active file's unwritten tail take of them), when any watermark achieves
 * that: the pass raises the watermark to the lowest one that does, copying
 * the live data of the oldest files (regions with many old entries included;
 * they are still asked to compact). It acts only once dead bytes exceed
 * (B − 1) × live + slack, and a pass copies at most the live bytes; what that
 * costs in writes under churn is measured by `npm run bench:gc`.
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
  /** The space rule's bound on file bytes per live byte (SPACE_BOUND by default); 0 disables the rule. */
  maxSpaceAmplification: number;
}

/**
 * Rewriting pays only when it frees much more than it copies: a pass copies
 * at most this many live bytes per byte of files it lets go, which bounds the
 * write amplification GC adds (1 + this, in the worst steady state).
 */
export const MAX_REWRITE_RATIO = 0.1;

/**
 * The default `maxSpaceAmplification`: the log's files hold at most this many
 * bytes per live byte after a purge (plus `PurgeSpace.slackBytes`), whenever
 * some watermark achieves it.
 */
export const SPACE_BOUND = 1.3;

export interface AppendFileInfo {
  seq: number;
  /** Bytes on disk; for the active file, bytes written (its preallocated tail is not the log's to free). */
  bytes: number;
}

/** What the space rule needs besides the memtables and the append files. */
export interface PurgeSpace {
  /** Size of the current checkpoint (rewrite-queue) file; 0 when there is none. */
  checkpointBytes: number;
  /**
   * Bytes the log's files may hold beyond maxSpaceAmplification × live: the
   * bound's one target file and preallocation, less what other files take
   * of that room (the recycle pool, the active file's unwritten tail). May
   * be negative.
   */
  slackBytes: number;
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
  /** Whether the space rule raised the watermark (the log was over maxSpaceAmplification × live + slack). */
  spaceRewrite: boolean;
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
 * What copying into a checkpoint adds to the live bytes (docs/format.md),
 * rounded up: per entry its length and CRC prefix; per run of entries or key
 * an item header; per checkpoint file the file and record headers and the
 * checkpoint item.
 */
const COPY_OVERHEAD = { entry: 8, item: 32, file: 128 } as const;

/** Live bytes per append file and in the rewrite queue, summed in one pass over the memtables. */
interface LiveBytes {
  bySeq: Map<number, number>;
  rewriteQueue: number;
  total: number;
  /** What a checkpoint copying them takes: live bytes plus COPY_OVERHEAD. */
  copyBySeq: Map<number, number>;
  copyRewriteQueue: number;
}

function liveBytes(memtables: ReadonlyMap<number, RegionMemtable>): LiveBytes {
  const live: LiveBytes = { bySeq: new Map(), rewriteQueue: 0, total: 0, copyBySeq: new Map(), copyRewriteQueue: COPY_OVERHEAD.file };
  const add = (id: number, bytes: number, copy: number): void => {
    live.total += bytes;
    if (fileIdQueue(id) === Queue.Rewrite) {
      live.rewriteQueue += bytes;
      live.copyRewriteQueue += copy;
    } else {
      const seq = fileIdSeq(id);
      live.bySeq.set(seq, (live.bySeq.get(seq) ?? 0) + bytes);
      live.copyBySeq.set(seq, (live.copyBySeq.get(seq) ?? 0) + copy);
    }
  };
  for (const memtable of memtables.values()) {
    memtable.forEachFileRun((id, first, count) => {
      const bytes = memtable.entryBytes(first, count);
      add(id, bytes, bytes + count * COPY_OVERHEAD.entry + COPY_OVERHEAD.item);
    });
    for (const [key, kv] of memtable.kv) add(kv.fileId, key.length + kv.value.length, key.length + kv.value.length + COPY_OVERHEAD.item);
  }
  return live;
}

/**
 * The highest watermark in (floor, target] whose rewrite copies at most
 * MAX_REWRITE_RATIO of the bytes it frees; `floor` (nothing to copy from
 * append files) when none does.
 */
function paidWatermark(live: LiveBytes, files: readonly AppendFileInfo[], floor: number, target: number): number {
  let best = floor;
  let freed = 0;
  let copied = live.rewriteQueue;
  for (const file of files) {
    if (file.seq >= target) break;
    freed += file.bytes;
    copied += live.bySeq.get(file.seq) ?? 0;
    if (file.seq >= floor && copied <= MAX_REWRITE_RATIO * freed) best = file.seq + 1;
  }
  return best;
}

/**
 * The space rule: the lowest watermark in [floor, activeSeq] after which the
 * log's files (the append files kept, and the checkpoint the pass leaves)
 * fit in `bound` × live + slack; when none does, the one that leaves the
 * fewest bytes, if it leaves fewer than `floor` does.
 */
function spaceWatermark(
  live: LiveBytes,
  files: readonly AppendFileInfo[],
  floor: number,
  activeSeq: number,
  bound: number,
  space: PurgeSpace,
): number {
  if (bound === 0) return floor;
  const firstSeq = files[0]?.seq ?? activeSeq;
  const limit = bound * live.total + space.slackBytes;
  let kept = 0;
  for (const file of files) kept += file.bytes;
  // The checkpoint a watermark leaves: none retired keeps the current one;
  // retiring copies what lives below it (nothing live and no checkpoint: none).
  let copied = live.copyRewriteQueue;
  let copiesLive = live.rewriteQueue > 0;
  let best = floor;
  let bestBytes = Number.POSITIVE_INFINITY;
  for (const file of files) {
    const watermark = file.seq;
    if (watermark > activeSeq) break;
    const checkpoint = watermark === firstSeq ? space.checkpointBytes : copiesLive || space.checkpointBytes > 0 ? copied : 0;
    const bytes = kept + checkpoint;
    if (watermark >= floor) {
      if (bytes <= limit) return watermark;
      if (bytes < bestBytes) {
        best = watermark;
        bestBytes = bytes;
      }
    }
    kept -= file.bytes;
    copied += live.copyBySeq.get(file.seq) ?? 0;
    copiesLive ||= live.bySeq.has(file.seq);
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
  strikes: ReadonlyMap<number, number>,
  options: PurgeOptions,
  space: PurgeSpace,
): PurgePlan {
  const firstSeq = files[0]?.seq ?? activeSeq;
  const live = liveBytes(memtables);
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
    watermark = Math.max(watermark, paidWatermark(live, files, watermark, target));
  }
  watermark = Math.max(Math.min(watermark, activeSeq), firstSeq);
  const spaced = spaceWatermark(live, files, watermark, activeSeq, options.maxSpaceAmplification, space);
  const spaceRewrite = spaced > watermark;
  if (spaceRewrite) {
    watermark = spaced;
    // Copied for space all the same; the ones with many old entries are
    // still asked to compact, so the copies die soon instead of being
    // carried forward by every later checkpoint.
    for (const [region, memtable] of memtables) {
      if (!laggards.includes(region) && entriesBelow(memtable, watermark).count > options.rewriteMaxEntries) laggards.push(region);
    }
  }
  const entries: RewriteRange[] = [];
  const keys = new Map<number, string[]>();
  for (const [region, memtable] of memtables) {
    const { first, count } = entriesBelow(memtable, watermark);
    if (count > 0) entries.push({ region, first, count });
    const regionKeys = [...memtable.kv].filter(([, kv]) => below(kv.fileId, watermark)).map(([key]) => key);
    if (regionKeys.length > 0) keys.set(region, regionKeys);
  }
  const retires = watermark > firstSeq;
  const holdsLive = entries.length > 0 || keys.size > 0;
  return {
    watermark,
    entries,
    keys,
    laggards: laggards.sort((a, b) => a - b),
    // With nothing live below the watermark and no earlier checkpoint, the
    // old files can simply go: replaying what remains rebuilds the same state.
    checkpoint: retires && (holdsLive || space.checkpointBytes > 0),
    spaceRewrite,
  };
}
