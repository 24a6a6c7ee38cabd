/**
 * Coverage marks (TigerBeetle's `testing/marks.zig`, observed from outside):
 * each rare branch the suite claims to test is counted when a scenario
 * provably reached it, judged from what the engine reported (a recovery
 * problem of a given action, an error code at a given moment), never from
 * what the harness merely attempted. A suite run that never hits a mark has
 * not tested that branch, and fails.
 */

export const REQUIRED_MARKS = {
  'recovery.torn-tail-cut': 'a power loss left a torn or partial tail; recovery cut it (case A)',
  'recovery.header-removed': 'the last file died during creation; recovery removed it (case E)',
  'recovery.corrupt-header': 'a damaged file header was reported as CORRUPTION (case F)',
  'recovery.corruption-middle': 'damage in data proven durable was reported as CORRUPTION with file and offset (cases B, C)',
  'recovery.tail-cut-proven': 'TolerateTailCorruption cut proven-durable damage in the last file and reported it (case B)',
  'recovery.unproven-damage-cut': 'at-rest damage nothing proves durable was cut (case A, bit flip)',
  'recovery.checkpoint-flip': 'a bit flip in the checkpoint in use was refused with CORRUPTION, or left the state unchanged',
  'recovery.lost-file':
    'a deleted or truncated file (newest log, checkpoint, older log) was refused with CORRUPTION naming it, and reported under TolerateAny',
  'recovery.lost-manifest':
    'a deleted MANIFEST (log files written under one) was refused with CORRUPTION naming MANIFEST, and reported under TolerateAny',
  'spill.withheld':
    'a log with files on spillFs, reopened without it after a power loss, was refused saying spillFs is missing, and reported under TolerateAny',
  'spill.crash-reopen': 'a power loss on both disks of a log that spilled reopened to exactly a prefix of its writes',
  'recovery.clean-end-cut':
    'the newest file cut at a record boundary after a clean close (seal gone) was refused with CORRUPTION naming it, and reported under TolerateAny',
  'gc.failed-checkpoint': 'a purge failed writing its checkpoint; later purges, a power loss and a reopen followed',
  'recovery.crash-during-recovery': 'a power cut during open interrupted recovery, and the next open recovered',
  'recovery.zero-space-open': 'open succeeded with 0 bytes of free space on a log with files',
  'recovery.multi-file': 'a power loss hit a log of several files',
  'write.fsync-failed-failstop': 'a barrier failed (FSYNC_FAILED) and the next write was refused (FAILED)',
  'write.enospc': 'the disk filled up on the write path (NO_SPACE reached the caller)',
  'write.eio': 'an I/O error on the write path reached the caller (IO)',
  'restart.kill': 'a killed process was restarted without a power loss',
  'recovery.index-checkpoint-loaded': 'an open after a clean close loaded the index checkpoint instead of replaying, and its state matched',
  'recovery.index-checkpoint-crash':
    'a kill or power loss hit an engine whose open had loaded an index checkpoint; the next open recovered exactly what a full replay of the same disk recovers',
  'recovery.index-checkpoint-tail':
    'after a kill or power loss, open loaded a periodic index checkpoint and replayed a tail after it, and its state equals a full replay of the same disk',
} as const;

export type MarkName = keyof typeof REQUIRED_MARKS;

const counts = new Map<MarkName, number>();

export function mark(name: MarkName): void {
  counts.set(name, (counts.get(name) ?? 0) + 1);
}

/** Adds counts gathered elsewhere (a worker thread's marks). */
export function addMarks(more: Iterable<readonly [string, number]>): void {
  for (const [name, n] of more) {
    if (name in REQUIRED_MARKS) counts.set(name as MarkName, (counts.get(name as MarkName) ?? 0) + n);
  }
}

export function markCounts(): Map<MarkName, number> {
  const out = new Map<MarkName, number>();
  for (const name of Object.keys(REQUIRED_MARKS) as MarkName[]) out.set(name, counts.get(name) ?? 0);
  return out;
}

export function missingMarks(): MarkName[] {
  return [...markCounts()].filter(([, n]) => n === 0).map(([name]) => name);
}

export function formatMarks(): string {
  return [...markCounts()].map(([name, n]) => `  ${name.padEnd(34)} ${String(n).padStart(7)}  ${REQUIRED_MARKS[name]}`).join('\n');
}
