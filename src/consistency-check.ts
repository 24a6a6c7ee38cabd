/**
 * `consistencyCheck`: reads and verifies every record of every log file and
 * says, per region, up to which index its entries are intact (raft-engine's
 * `Engine::consistency_check`).
 *
 * A damaged record cannot be decoded, so which regions it held is not known
 * from the record itself. It shows in the records after it: a region whose
 * next entries start past its last index + 1 lost the entries in between
 * (a hole). From the first hole on, the region's entries are not intact:
 * Raft needs a log without holes, whatever follows the hole. A later record
 * that overwrites from at or below the hole (Raft's tail overwrite), a
 * compaction past it, or a clean makes the hole irrelevant, as replay does.
 *
 * Like raft-engine's, the check cannot attribute damage at a region's head
 * (its first records) or tail (its last records): nothing after it shows a
 * hole. Such damage is still in `problems`, with its file, offset and size.
 *
 * The pass is the engine's own recovery (`recoverLog`, TolerateAnyCorruption,
 * dry run: nothing is cut or removed, every file opened read-only), so it
 * verifies exactly what an open verifies: header and payload checksums,
 * payload structure, file sequence, the GC checkpoint.
 */
import type { FileSystem } from './filesystem.js';
import { ItemKind, type BatchItems } from './format/batch-codec.js';
import { recoverLog } from './recovery/log.js';
import { measureDroppedBytes } from './recovery/dropped-bytes.js';
import { RecoveryMode, type RecoveryProblem } from './recovery/recovery.js';

/** Indexes `first..last`, both included. */
export interface IndexRange {
  first: number;
  last: number;
}

export interface RegionConsistency {
  region: number;
  /** The region's first and last index as its records describe them (compactions and overwrites applied), holes included. */
  firstIndex: number;
  lastIndex: number;
  /**
   * Every entry from `firstIndex` through this index is intact. `lastIndex`
   * when nothing is damaged; `firstIndex - 1` when not even the first entry is.
   */
  lastIntactIndex: number;
  /** Entries in damaged records (the holes), ascending. Empty when the region is intact. */
  damaged: IndexRange[];
}

export interface ConsistencyReport {
  /** Every region that holds entries, ascending by region id. */
  regions: RegionConsistency[];
  /** Every damaged record, file or gap found, as TolerateAnyCorruption recovery reports it; `bytesDropped` counts real record bytes only. */
  problems: RecoveryProblem[];
  /** Records verified. */
  records: number;
  /** Bytes of the log read and verified. */
  bytesScanned: number;
}

interface RegionState {
  first: number;
  last: number;
  intact: number;
  damaged: IndexRange[];
}

/**
 * Follows each region's entry range through the records in log order, and
 * remembers the holes. Recovery applies the same items to the memtables; this
 * keeps only four numbers per region (and its holes), so it can watch any
 * recovery pass through its `visit` hook.
 */
export class RegionTracker {
  readonly #regions = new Map<number, RegionState>();

  /** Feed every verified record, in log order (checkpoint first, then the append files). */
  visit(items: BatchItems): void {
    for (const item of items.items) {
      switch (item.kind) {
        case ItemKind.Entries:
          this.#entries(item.region, item.index, item.index + item.count - 1);
          break;
        case ItemKind.Compact:
          this.#compact(item.region, item.index);
          break;
        case ItemKind.Clean:
          this.#regions.delete(item.region);
          break;
      }
    }
  }

  /** The regions as tracked so far, ascending. */
  regions(): RegionConsistency[] {
    return [...this.#regions]
      .sort(([a], [b]) => a - b)
      .map(([region, s]) => ({
        region,
        firstIndex: s.first,
        lastIndex: s.last,
        lastIntactIndex: s.intact,
        damaged: s.damaged.map((r) => ({ ...r })),
      }));
  }

  #entries(region: number, first: number, last: number): void {
    const state = this.#regions.get(region);
    if (state === undefined || first <= state.first) {
      this.#regions.set(region, { first, last, intact: last, damaged: [] });
    } else if (first <= state.intact + 1) {
      // Overwrites from inside the intact prefix: every hole was after it.
      state.last = state.intact = last;
      state.damaged = [];
    } else if (first <= state.last + 1) {
      state.last = last;
      state.damaged = trimFrom(state.damaged, first);
    } else {
      state.damaged.push({ first: state.last + 1, last: first - 1 });
      state.last = last;
    }
  }

  #compact(region: number, index: number): void {
    const state = this.#regions.get(region);
    if (state === undefined || index <= state.first) return;
    if (index > state.last) {
      this.#regions.delete(region);
      return;
    }
    state.first = index;
    state.damaged = state.damaged.filter((r) => r.last >= index).map((r) => ({ first: Math.max(r.first, index), last: r.last }));
    state.intact = state.damaged.length === 0 ? state.last : Math.max(state.intact, index - 1);
  }
}

/** Holes below `index` only, the ones crossing it cut short. */
function trimFrom(ranges: IndexRange[], index: number): IndexRange[] {
  return ranges.filter((r) => r.first < index).map((r) => ({ first: r.first, last: Math.min(r.last, index - 1) }));
}

/**
 * Verifies every record of the log in `fs` and reports, per region, the last
 * index whose entries are intact. Read-only. On a directory an engine holds
 * open, use `Engine.consistencyCheck()`, which keeps writes and GC out of
 * the way while it reads.
 */
export async function consistencyCheck(fs: FileSystem): Promise<ConsistencyReport> {
  const tracker = new RegionTracker();
  const { rewrite, log } = await recoverLog(fs, RecoveryMode.TolerateAnyCorruption, new Map(), {
    dryRun: true,
    visit: (record) => tracker.visit(record.items),
  });
  await Promise.all(log.files.map((file) => file.handle.close().catch(() => undefined)));
  await rewrite.checkpoint?.handle.close().catch(() => undefined);
  return {
    regions: tracker.regions(),
    problems: await measureDroppedBytes(fs, log.report.problems),
    records: log.report.records + (rewrite.checkpoint === undefined ? 0 : 1),
    bytesScanned: log.report.bytesScanned,
  };
}
