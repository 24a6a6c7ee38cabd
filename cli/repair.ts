/**
 * `raftlog repair DIR`: makes a damaged directory open again in the default
 * mode, deciding what to drop with the chosen RecoveryMode's own rules.
 *
 * Plan: a dry-run recovery in the chosen mode says what that mode would cut,
 * skip or remove. A second one in AbsoluteConsistency says whether any of it
 * was proven durable; only then is data an application was told is safe at
 * stake, and repair refuses without --yes (exit 2). A mode that refuses the
 * directory outright (e.g. TolerateTailCorruption facing damage in an older
 * file) cannot repair it: exit 4, naming the mode that can.
 *
 * Apply, one of two ways:
 *  - in place, when every change is one recovery itself makes physically
 *    (cut the last file at its first damage, remove a never-completed last
 *    file): run the real recovery in that mode. The result opens in any mode.
 *  - rebuild, when records or files in the middle must be dropped (only
 *    TolerateAnyCorruption does that). Bytes cannot be removed from the middle
 *    of a file (every record names its own offset), and recovery skipping
 *    them only works as long as every open uses TolerateAnyCorruption, so
 *    the surviving state (each region's entries and keys, as an engine in
 *    that mode rebuilds it) is written into a fresh log that replaces the
 *    old files.
 *
 * Backup first: every file repair will change or replace is copied (or, when
 * it is replaced whole, moved) into `DIR/repair-backup-<time>/`, synced, with
 * a README saying how to undo, before anything in DIR changes.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Engine } from '../src/engine.js';
import { LOCK_NAME, MANIFEST_NAME, parseLogFileName } from '../src/file-names.js';
import type { DirectoryLock } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { RecoveryMode, type RecoveryProblem } from '../src/recovery/recovery.js';
import { inspectionFileSystem, type FileSystemFactory } from './backends.js';
import { readRaftlogDirectory } from './directory.js';
import { CliError, ExitCode, pathError } from './errors.js';
import { formatBytes } from './output.js';
import { formatRegionLoss, regionLosses, trackingVisitor, type RegionLoss } from './region-loss.js';
import { recoverAsEngine, verdict } from './scan.js';

export interface RepairOptions {
  mode: RecoveryMode;
  yes: boolean;
}

export interface RepairResult {
  directory: string;
  mode: RecoveryMode;
  status: 'nothing-to-do' | 'refused' | 'beyond-mode' | 'repaired';
  strategy: 'in-place' | 'rebuild' | undefined;
  /** Whether any dropped byte was proven durable (acknowledged to a sync write). */
  durableDataLost: boolean;
  problems: RecoveryProblem[];
  /** Bytes of records dropped (preallocated zeros not counted). */
  bytesDropped: number;
  /** Each region that loses entries in this repair: the ranges it loses, what it keeps, its last intact index. */
  lostEntries: RegionLoss[];
  /** Why the mode refuses, for status 'beyond-mode'. */
  refusal: string | undefined;
  backup: string | undefined;
  /** Files changed, removed or replaced in the directory. */
  changedFiles: string[];
  /** After repairing: does the directory now pass AbsoluteConsistency with no finding? */
  verified: boolean | undefined;
  exitCode: number;
}

/** Bytes per batch when rebuilding: large enough for few writes, small enough to bound memory. */
const REBUILD_BATCH_BYTES = 4 << 20;

export async function runRepair(dir: string, options: RepairOptions): Promise<RepairResult> {
  const info = await readRaftlogDirectory(dir);
  if (info.lockHolder !== undefined) throw new CliError(`${dir} is locked: ${info.lockHolder}; stop that engine before repairing`, ExitCode.LOCKED);
  const result: RepairResult = {
    directory: info.path,
    mode: options.mode,
    status: 'nothing-to-do',
    strategy: undefined,
    durableDataLost: false,
    problems: [],
    bytesDropped: 0,
    lostEntries: [],
    refusal: undefined,
    backup: undefined,
    changedFiles: [],
    verified: undefined,
    exitCode: ExitCode.OK,
  };
  const { make } = await inspectionFileSystem(info.path, info.logFiles);
  // The tracker follows every verified record, which only TolerateAnyCorruption reads past damage.
  let { tracker, visit } = trackingVisitor();
  const plan = await verdict(info.path, make, options.mode, options.mode === RecoveryMode.TolerateAnyCorruption ? visit : undefined);
  if (!plan.opens) {
    return { ...result, status: 'beyond-mode', refusal: plan.refusal, exitCode: ExitCode.CORRUPTION };
  }
  result.problems = plan.result!.report.problems;
  result.bytesDropped = plan.bytesDropped;
  if (result.problems.length === 0) return result;
  if (options.mode !== RecoveryMode.TolerateAnyCorruption) {
    ({ tracker, visit } = trackingVisitor());
    await verdict(info.path, make, RecoveryMode.TolerateAnyCorruption, visit);
  }
  result.lostEntries = regionLosses(tracker.regions(), plan.result!.memtables);
  result.strategy = result.problems.every((p) => p.action === 'cut' || p.action === 'removed-file') ? 'in-place' : 'rebuild';
  result.durableDataLost = !(await verdict(info.path, make, RecoveryMode.AbsoluteConsistency)).opens;
  if (result.durableDataLost && !options.yes) return { ...result, status: 'refused', exitCode: ExitCode.USAGE };

  const fs = make(info.path);
  let lock: DirectoryLock | undefined = await fs.lock(LOCK_NAME);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const backup = path.join(info.path, `repair-backup-${stamp}`);
  result.backup = backup;
  try {
    await makeDirectory(backup);
    // Files recovery changes in place (cut or removed): copied before anything runs.
    const touched = [...new Set(result.problems.filter((p) => p.action === 'cut' || p.action === 'removed-file').map((p) => p.file))];
    for (const name of touched) await copyDurably(path.join(info.path, name), path.join(backup, name));
    await writeReadme(backup, info.path, result);
    await syncDirectory(backup);

    if (result.strategy === 'in-place') {
      const { rewrite, log } = await recoverAsEngine(fs, options.mode, new Map(), false);
      await Promise.all(log.files.map((file) => file.handle.close()));
      await rewrite.checkpoint?.handle.close();
      result.changedFiles = touched;
    } else {
      // The engine takes the directory lock itself; hand ours over for the copy.
      await lock.release();
      lock = undefined;
      result.changedFiles = await rebuild(info.path, make, backup, stamp, new Set([...info.logFiles, ...info.rewriteFiles]), new Set(touched), async () => {
        lock = await fs.lock(LOCK_NAME);
      });
    }
  } finally {
    await lock?.release();
    await fs.close();
  }
  const after = await verdict(info.path, make, RecoveryMode.AbsoluteConsistency);
  result.verified = after.opens && after.result!.report.problems.length === 0;
  result.status = 'repaired';
  result.exitCode = result.verified ? ExitCode.OK : ExitCode.CORRUPTION;
  return result;
}

/**
 * Copies the state an engine in TolerateAnyCorruption rebuilds into a fresh
 * log beside the old one, then swaps the files. `relock` is called between
 * closing the old engine and touching its files, so no other engine can open
 * the directory while it holds a mix. Returns the names replaced.
 */
async function rebuild(
  dir: string,
  make: FileSystemFactory,
  backup: string,
  stamp: string,
  originals: Set<string>,
  copied: Set<string>,
  relock: () => Promise<void>,
): Promise<string[]> {
  const staging = path.join(dir, `.repair-new-${stamp}`);
  // No preallocation: the old files are moved into the backup as they were.
  // A full replay (never the index checkpoint): repair keeps what verifies, so every record must be read.
  const old = new Engine({ fs: make(dir), recoveryMode: RecoveryMode.TolerateAnyCorruption, preallocateBytes: 0, indexCheckpoint: false });
  await old.open();
  try {
    // The same backend as the original, so the new files have its on-disk format.
    const fresh = new Engine({ fs: make(staging), preallocateBytes: 0 });
    await fresh.open();
    try {
      let batch = new LogBatch();
      const flush = async (): Promise<void> => {
        if (batch.isEmpty()) return;
        await fresh.write(batch);
        batch = new LogBatch();
      };
      for (const region of old.raftGroups()) {
        const first = old.firstIndex(region);
        const last = old.lastIndex(region);
        if (first !== undefined && last !== undefined) {
          for (let next = first; next <= last; ) {
            const entries = await old.fetchEntriesTo(region, next, last + 1, REBUILD_BATCH_BYTES);
            batch.addEntries(region, entries);
            next += entries.length;
            if (batch.approximateSize() >= REBUILD_BATCH_BYTES) await flush();
          }
        }
        for (const { key, value } of old.scan(region)) {
          batch.put(region, key, value);
          if (batch.approximateSize() >= REBUILD_BATCH_BYTES) await flush();
        }
      }
      await flush();
      await fresh.sync();
    } finally {
      await fresh.close();
    }
  } finally {
    await old.close();
    await relock();
  }
  // Old files out (moved whole into the backup, or dropped when already copied there), new files in.
  // A file that is not an original was created by opening `old` (a new active file): not worth keeping.
  const replaced: string[] = [];
  for (const name of (await fsp.readdir(dir)).filter(isLogState)) {
    const from = path.join(dir, name);
    if (name === MANIFEST_NAME) await fsp.rename(from, path.join(backup, name));
    else if (!originals.has(name) || copied.has(name)) await fsp.unlink(from);
    else await fsp.rename(from, path.join(backup, name));
    if (originals.has(name)) replaced.push(name);
  }
  await syncDirectory(backup);
  await syncDirectory(dir);
  // The manifest last: until it is in, the directory reads as one without a manifest.
  const incoming = (await fsp.readdir(staging)).filter(isLogState).sort((a, b) => Number(a === MANIFEST_NAME) - Number(b === MANIFEST_NAME));
  for (const name of incoming) await fsp.rename(path.join(staging, name), path.join(dir, name));
  await syncDirectory(dir);
  await fsp.rm(staging, { recursive: true, force: true });
  return replaced;
}

/** The files that make up the log's state: log files and the manifest that lists them. */
function isLogState(name: string): boolean {
  return parseLogFileName(name) !== undefined || name === MANIFEST_NAME;
}

async function makeDirectory(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir);
  } catch (error) {
    throw pathError(error, dir, 'creating the backup directory');
  }
}

async function copyDurably(from: string, to: string): Promise<void> {
  await fsp.copyFile(from, to);
  const handle = await fsp.open(to, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeReadme(backup: string, dir: string, result: RepairResult): Promise<void> {
  const lines = [
    `raftlog repair, ${new Date().toISOString()}, mode ${result.mode}, strategy ${result.strategy}`,
    `directory: ${dir}`,
    '',
    'This directory holds the log files of the directory above as they were before the repair:',
    result.strategy === 'rebuild'
      ? '- every log file (the repair replaced them all with a rebuilt log);'
      : '- each file the repair cut or removed;',
    '',
    'Problems found and what the repair dropped:',
    ...result.problems.map((p) => `- ${p.file} offset ${p.offset}: ${p.detail} (${p.action}, ${p.bytesDropped} bytes)`),
    ...(result.lostEntries.length === 0 ? [] : ['', 'Regions that lose entries:', ...result.lostEntries.map((loss) => `- ${formatRegionLoss(loss)}`)]),
    '',
    'To undo: stop every engine using the directory, delete its *.raftlog files, and move the files here back into it.',
    '',
  ];
  await fsp.writeFile(path.join(backup, 'README.txt'), lines.join('\n'));
}

export function formatRepair(r: RepairResult): string {
  const lines: string[] = [];
  const problemLines = r.problems.map(
    (p) => `  ${p.file} offset ${p.offset}: ${p.detail} -> ${p.action}, drops ${formatBytes(p.bytesDropped)}`,
  );
  if (r.lostEntries.length > 0) {
    problemLines.push('regions that lose entries:', ...r.lostEntries.map((loss) => `  ${formatRegionLoss(loss)}`));
  }
  switch (r.status) {
    case 'nothing-to-do':
      lines.push(`${r.directory}: nothing to repair in ${r.mode}`);
      break;
    case 'beyond-mode':
      lines.push(`${r.directory}: ${r.mode} cannot repair this: ${r.refusal}`);
      if (r.mode !== RecoveryMode.TolerateAnyCorruption) lines.push('TolerateAnyCorruption drops damaged records anywhere: raftlog repair DIR --mode any');
      break;
    case 'refused':
      lines.push(`${r.directory}: repair in ${r.mode} would drop ${formatBytes(r.bytesDropped)} of records, including data proven durable:`);
      lines.push(...problemLines);
      lines.push(`${r.strategy === 'rebuild' ? 'rebuild the log without them' : 'cut in place'}; rerun with --yes to do it (a backup of every changed file is kept in DIR/repair-backup-<time>/)`);
      break;
    case 'repaired':
      lines.push(`${r.directory}: repaired in ${r.mode} (${r.strategy}), dropped ${formatBytes(r.bytesDropped)} of records:`);
      lines.push(...problemLines);
      lines.push(`backup of the original files: ${r.backup}`);
      lines.push(r.verified === true ? 'verified: the directory now checks clean' : 'WARNING: the directory still does not check clean; run raftlog check');
      break;
  }
  return lines.join('\n') + '\n';
}
