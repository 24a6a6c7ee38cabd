/**
 * Per region, what a recovery mode loses: the tracked log (every verified
 * record, as `consistencyCheck` follows it under TolerateAnyCorruption)
 * against what the mode's recovery keeps. Bytes say how much was damaged;
 * these ranges say what an application loses, which can be far more: when a
 * region's log has a hole, TolerateAnyCorruption keeps the run after it and
 * drops the intact entries before it, and a cut drops every later record.
 */
import type { Memtables } from '../src/apply.js';
import { RegionTracker, type IndexRange, type RegionConsistency } from '../src/consistency-check.js';
import type { RecordVisitor } from './scan.js';

export interface RegionLoss {
  region: number;
  /** The region's log as its verified records describe it. */
  firstIndex: number;
  lastIndex: number;
  /** Every entry from firstIndex through this one is intact (from consistencyCheck). */
  lastIntactIndex: number;
  /** Entries in damaged records. */
  damaged: IndexRange[];
  /** Entries the mode's recovery keeps, or null when it keeps none. */
  kept: IndexRange | null;
  /** Entries of the log the recovered log does not have: the damaged ones and the intact ones dropped with them. */
  lost: IndexRange[];
}

/** A tracker to pass as a dry run's visitor, then to `regionLosses`. */
export function trackingVisitor(): { tracker: RegionTracker; visit: RecordVisitor } {
  const tracker = new RegionTracker();
  return { tracker, visit: (record) => tracker.visit(record.items) };
}

/** Regions that lose entries when recovery keeps `kept`, ascending. */
export function regionLosses(tracked: readonly RegionConsistency[], kept: Memtables): RegionLoss[] {
  const losses: RegionLoss[] = [];
  for (const r of tracked) {
    const memtable = kept.get(r.region);
    const first = memtable?.firstIndex();
    const last = memtable?.lastIndex();
    const keptRange = first === undefined || last === undefined ? null : { first, last };
    const lost = subtract({ first: r.firstIndex, last: r.lastIndex }, keptRange);
    if (lost.length === 0 && r.damaged.length === 0) continue;
    losses.push({ ...r, kept: keptRange, lost });
  }
  return losses;
}

function subtract(whole: IndexRange, part: IndexRange | null): IndexRange[] {
  if (part === null || part.last < whole.first || part.first > whole.last) return [whole];
  const out: IndexRange[] = [];
  if (part.first > whole.first) out.push({ first: whole.first, last: part.first - 1 });
  if (part.last < whole.last) out.push({ first: part.last + 1, last: whole.last });
  return out;
}

export function formatRange(range: IndexRange): string {
  return range.first === range.last ? String(range.first) : `${range.first}..${range.last}`;
}

/** One line per region: "region 7: last intact index 40; damaged 41..44; keeps 45..120; loses 1..44". */
export function formatRegionLoss(loss: RegionLoss): string {
  const parts = [`last intact index ${loss.lastIntactIndex}`];
  if (loss.damaged.length > 0) parts.push(`damaged ${loss.damaged.map(formatRange).join(', ')}`);
  parts.push(loss.kept === null ? 'keeps no entries' : `keeps ${formatRange(loss.kept)}`);
  if (loss.lost.length > 0) parts.push(`loses ${loss.lost.map(formatRange).join(', ')}`);
  return `region ${loss.region}: ${parts.join('; ')}`;
}
