/**
 * Where `raftlog stress` may write. A stress run starts from an empty log, so
 * it wipes the log already in its directory; that must never be a log it
 * did not make. Stress marks each directory it prepares with a small file,
 * STRESS_MARKER (docs/operations.md): a log beside the marker is generated
 * data and is wiped without asking; any other log is refused unless the user
 * says `--yes`.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { FileSystem } from '../src/filesystem.js';
import { prepareFreshDirectory, readDirectory, type RaftlogDirectory } from './directory.js';
import { CliError, ExitCode, pathError } from './errors.js';
import { formatBytes } from './output.js';

/** The marker file stress writes into every directory it prepares. */
export const STRESS_MARKER = 'raftlog-stress.marker';

const MARKER_TEXT =
  'This directory was prepared by `raftlog stress`: its log holds generated benchmark data only,\n' +
  'and the next `raftlog stress --dir` here deletes it without asking.\n' +
  'Delete this file to make raftlog stress refuse to touch the log here.\n';

/**
 * Makes `dir` ready for a fresh stress run (see prepareFreshDirectory) after
 * checking that the log in it, if any, is one stress may delete: marked as
 * its own, or `yes` given. `lockFs` is the backend the run will use.
 */
export async function claimStressDirectory(dir: string, lockFs: FileSystem, yes: boolean): Promise<void> {
  const info = await existingDirectory(dir);
  // As prepareFreshDirectory says it, but first: it would otherwise complain about the marker.
  if (info?.lockHolder !== undefined) throw new CliError(`${dir} is locked: ${info.lockHolder}`, ExitCode.LOCKED);
  const others = info?.foreign.filter((name) => name !== STRESS_MARKER) ?? [];
  if (others.length > 0) {
    // prepareFreshDirectory refuses these too (and --yes does not help), but would name the marker among them.
    const sample = others.slice(0, 3).join(', ') + (others.length > 3 ? ', …' : '');
    throw new CliError(`refusing to use ${dir}: it holds entries raftlog did not write (${sample}); give an empty or a raftlog directory`, ExitCode.USAGE);
  }
  // By presence, not by readDirectory's classification of names, which may come to count the marker as raftlog's.
  const marked = info !== undefined && (await isFile(path.join(info.path, STRESS_MARKER)));
  if (info !== undefined && !marked && !yes) await refuseForeignLog(dir, info);
  // The marker is foreign to prepareFreshDirectory: out of its way while it wipes, back if it refuses.
  const moveMarker = info !== undefined && marked;
  if (moveMarker) {
    await fsp.unlink(path.join(info.path, STRESS_MARKER)).catch((error: unknown) => {
      throw pathError(error, dir, 'removing the stress marker');
    });
  }
  try {
    await prepareFreshDirectory(dir, lockFs);
  } catch (error) {
    if (moveMarker) await writeMarker(dir).catch(() => undefined);
    throw error;
  }
  await writeMarker(dir);
}

async function existingDirectory(dir: string): Promise<RaftlogDirectory | undefined> {
  try {
    return await readDirectory(dir);
  } catch (error) {
    if (error instanceof CliError && /no such file or directory/.test(error.message)) return undefined;
    throw error;
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fsp.lstat(file)).isFile();
  } catch {
    return false;
  }
}

/** A log stress did not create: say what is there and how to proceed. */
async function refuseForeignLog(dir: string, info: RaftlogDirectory): Promise<void> {
  const names = [...info.logFiles, ...info.rewriteFiles];
  if (names.length === 0) return;
  let bytes = 0;
  for (const name of names) bytes += await fsp.stat(path.join(info.path, name)).then((s) => s.size, () => 0);
  throw new CliError(
    `refusing to use ${dir}: it holds a raftlog log that raftlog stress did not create (${names.length} log file${names.length === 1 ? '' : 's'}, ` +
      `${formatBytes(bytes)}${info.encrypted ? ', encrypted' : ''}), which a stress run would delete; pass --yes to delete it, or give another --dir`,
    ExitCode.USAGE,
  );
}

async function writeMarker(dir: string): Promise<void> {
  try {
    await fsp.writeFile(path.join(dir, STRESS_MARKER), MARKER_TEXT);
  } catch (error) {
    throw pathError(error, dir, 'writing the stress marker');
  }
}
