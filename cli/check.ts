/**
 * `raftlog check DIR`: verifies every record (header and payload CRC32C,
 * every entry's own CRC, the payload's structure), the file sequence (no
 * missing file, each file as long as its successor's header says) and that
 * the log replays (no index gaps), without changing anything.
 *
 * How: a dry-run recovery in AbsoluteConsistency. If that passes, the only
 * possible findings are torn tails, which every mode cuts on open (a crash
 * mid-write leaves one; no acknowledged-durable byte is in it). Otherwise the
 * directory is damaged: TolerateAnyCorruption lists every problem (it goes
 * on past each), and each mode's verdict says whether an engine would open
 * the directory in that mode and what it would drop.
 */
import { RecoveryMode, type RecoveryProblem } from '../src/recovery/recovery.js';
import { checkIndexCheckpoint, type IndexCheckpointCheck } from '../src/verify-index-checkpoint.js';
import { inspectionFileSystem } from './backends.js';
import { readRaftlogDirectory } from './directory.js';
import { ExitCode } from './errors.js';
import { formatBytes, formatNumber } from './output.js';
import { formatRegionLoss, regionLosses, trackingVisitor, type RegionLoss } from './region-loss.js';
import { verdict, type ModeVerdict } from './scan.js';

export interface CheckOptions {
  /** Count torn tails as damage too. */
  strict: boolean;
}

export interface CheckProblem {
  file: string;
  offset: number;
  detail: string;
  /** 'torn-tail': unsynced bytes of an interrupted write; 'damage': anything else. */
  kind: 'torn-tail' | 'damage';
  /** What TolerateAnyCorruption recovery does about it. */
  action: RecoveryProblem['action'];
  bytesDropped: number;
}

export interface CheckResult {
  directory: string;
  /** A running engine holds the directory: its last file may change while we read. */
  lockedBy: string | undefined;
  status: 'clean' | 'torn-tail' | 'damaged';
  files: number;
  records: number;
  entries: number;
  regions: number;
  bytesScanned: number;
  problems: CheckProblem[];
  /** Per recovery mode: would an engine open it, and what would it drop. */
  modes: { mode: RecoveryMode; opens: boolean; refusal: string | undefined; bytesDropped: number }[];
  /** The GC checkpoint verified and replayed first, if any. */
  checkpoint: string | undefined;
  /** Files recovery does not read: append files below the checkpoint, stale rewrite files (the next purge removes them). */
  notReplayed: string[];
  /**
   * When damaged: each region whose entries are damaged or that TolerateAnyCorruption
   * recovery (what `repair --mode any` keeps) would lose entries of, with its last intact index.
   */
  lostEntries: RegionLoss[];
  /**
   * The index checkpoint (INDEX) open would load instead of reading the
   * records: when it would, its entries checked against the records (an
   * index problem is damage too).
   */
  indexCheckpoint: IndexCheckpointCheck;
  exitCode: number;
}

export async function runCheck(dir: string, options: CheckOptions): Promise<CheckResult> {
  const info = await readRaftlogDirectory(dir);
  const { make } = await inspectionFileSystem(info.path, info.logFiles);
  const absolute = await verdict(info.path, make, RecoveryMode.AbsoluteConsistency);
  let problems: CheckProblem[];
  let verdicts: ModeVerdict[];
  let status: CheckResult['status'];
  let basis: ModeVerdict;
  let regions: RegionLoss[] = [];
  if (absolute.opens) {
    // Only case A/E findings can pass AbsoluteConsistency: bytes nothing proves durable.
    problems = absolute.result!.report.problems.map((p) => ({ ...p, kind: 'torn-tail' as const }));
    verdicts = [absolute, ...Object.values(RecoveryMode).filter((m) => m !== absolute.mode).map((mode) => ({ ...absolute, mode }))];
    status = problems.length === 0 ? 'clean' : 'torn-tail';
    basis = absolute;
  } else {
    const tail = await verdict(info.path, make, RecoveryMode.TolerateTailCorruption);
    const { tracker, visit } = trackingVisitor();
    const any = await verdict(info.path, make, RecoveryMode.TolerateAnyCorruption, visit);
    verdicts = [absolute, tail, any];
    basis = any;
    problems = (any.result?.report.problems ?? []).map((p) => ({ ...p, kind: 'damage' as const }));
    regions = any.result === undefined ? [] : regionLosses(tracker.regions(), any.result.memtables);
    status = 'damaged';
  }
  const report = basis.result?.report;
  const index = await checkIndexCheckpoint(make(info.path));
  if (index.report?.problems.some((p) => p.kind === 'index')) status = 'damaged';
  const damaged = status === 'damaged' || (status === 'torn-tail' && options.strict);
  return {
    directory: info.path,
    lockedBy: info.lockHolder,
    status,
    files: info.logFiles.length,
    records: report?.records ?? 0,
    entries: basis.result?.entries ?? 0,
    regions: basis.result?.memtables.size ?? 0,
    bytesScanned: report?.bytesScanned ?? 0,
    problems,
    modes: verdicts.map(({ mode, opens, refusal, bytesDropped }) => ({ mode, opens, refusal, bytesDropped })),
    checkpoint: basis.result?.checkpoint?.name,
    notReplayed: [...(basis.result?.superseded ?? []), ...(basis.result?.staleRewriteFiles ?? [])],
    lostEntries: regions,
    indexCheckpoint: index,
    exitCode: damaged ? ExitCode.CORRUPTION : ExitCode.OK,
  };
}

export function formatCheck(r: CheckResult): string {
  const lines: string[] = [];
  lines.push(
    `checked ${r.directory}: ${formatNumber(r.files)} files, ${formatNumber(r.records)} records, ` +
      `${formatNumber(r.entries)} entries in ${formatNumber(r.regions)} regions, ${formatBytes(r.bytesScanned)} verified`,
  );
  if (r.checkpoint !== undefined) lines.push(`GC checkpoint ${r.checkpoint} verified and replayed first`);
  const index = r.indexCheckpoint;
  if (index.status === 'unused') lines.push(`index checkpoint INDEX: open would not load it (${index.detail})`);
  if (index.report !== undefined) {
    const bad = index.report.problems.filter((p) => p.kind === 'index');
    lines.push(`index checkpoint INDEX: open would load it; ${formatNumber(index.report.entriesChecked)} indexed entries checked against the records, ${bad.length === 0 ? 'all in records that verify' : `${bad.length} runs not`}`);
    for (const p of bad) lines.push(`DAMAGE: INDEX: region ${p.region} entries ${p.entries!.first}..${p.entries!.last} in ${p.file}: ${p.detail}`);
  }
  if (r.notReplayed.length > 0) lines.push(`not read (superseded or stale, removed by the next purge): ${r.notReplayed.join(', ')}`);
  for (const p of r.problems) {
    const what = p.kind === 'torn-tail' ? 'torn tail (not proven durable; every mode cuts it on open)' : p.detail;
    const extra = p.kind === 'torn-tail' ? `: ${p.detail}` : '';
    lines.push(`${p.kind === 'damage' ? 'DAMAGE' : 'note'}: ${p.file} offset ${p.offset}: ${what}${extra} (${formatBytes(p.bytesDropped)})`);
  }
  if (r.lostEntries.length > 0) {
    lines.push('regions with damaged or lost entries (what TolerateAnyCorruption keeps, and loses):');
    for (const loss of r.lostEntries) lines.push(`  ${formatRegionLoss(loss)}`);
  }
  if (r.status === 'damaged') {
    lines.push('recovery modes:');
    const width = Math.max(...r.modes.map((m) => m.mode.length));
    for (const m of r.modes) {
      lines.push(`  ${m.mode.padEnd(width)}  ${m.opens ? `opens, dropping ${formatBytes(m.bytesDropped)}` : `refuses: ${m.refusal}`}`);
    }
  }
  const verdictLine: Record<CheckResult['status'], string> = {
    clean: 'clean',
    'torn-tail': 'ok: only a torn tail, which the engine cuts on open',
    damaged: 'DAMAGED: see `raftlog repair --help`',
  };
  const strictNote = r.status === 'torn-tail' && r.exitCode !== ExitCode.OK ? ' (counted as damage under --strict)' : '';
  lines.push(`result: ${verdictLine[r.status]}${strictNote}`);
  return lines.join('\n') + '\n';
}
