/**
 * What is in a directory the CLI is pointed at, read without changing it:
 * which files are raftlog's, whether it is encrypted, and whether a running
 * engine holds its lock.
 *
 * The lock is judged without taking it (taking it writes to the directory,
 * and `dump` and `check` promise to change nothing), by the same rule the
 * backends use when they decide whether a LOCK is stale
 * (backends/directory-lock.ts), so the CLI and an engine never disagree on
 * who holds a directory.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { describeHolder, LOCK_SCRATCH_PREFIX } from '../backends/directory-lock.js';
import { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from '../backends/encrypted.js';
import {
  INDEX_CHECKPOINT_NAME,
  INDEX_CHECKPOINT_TMP_NAME,
  LOCK_NAME,
  MANIFEST_NAME,
  MANIFEST_TMP_NAME,
  parseLogFileName,
  parseRecycleFileName,
} from '../src/file-names.js';
import { Queue } from '../src/format/layout.js';
import type { FileSystem } from '../src/filesystem.js';
import { CliError, ExitCode, describeError, errnoOf, pathError } from './errors.js';

export interface RaftlogDirectory {
  /** Absolute path. */
  path: string;
  /** Append-queue log files, in sequence order. */
  logFiles: string[];
  /** Rewrite-queue files (written by GC), in sequence order. */
  rewriteFiles: string[];
  /** An EncryptedFs key dictionary is present: the files are ciphertext. */
  encrypted: boolean;
  /** Why the directory is held by a running engine, or undefined when it is not. */
  lockHolder: string | undefined;
  /** Subdirectories raftlog's tools made (repair backups). */
  toolDirectories: string[];
  /** Entries raftlog did not write. */
  foreign: string[];
}

const REPAIR_DIR = /^(repair-backup-|\.repair-new-)/;

function isRaftlogFileName(name: string): boolean {
  return (
    parseLogFileName(name) !== undefined ||
    name === LOCK_NAME ||
    name === DICTIONARY_NAME ||
    name === DICTIONARY_TMP_NAME ||
    parseRecycleFileName(name) !== undefined ||
    name === MANIFEST_NAME ||
    name === MANIFEST_TMP_NAME ||
    name === INDEX_CHECKPOINT_NAME ||
    name === INDEX_CHECKPOINT_TMP_NAME ||
    name.startsWith(LOCK_SCRATCH_PREFIX)
  );
}

/** Lists and classifies `dir`. Missing, unreadable or non-directory paths become one-line CliErrors. */
export async function readDirectory(dir: string): Promise<RaftlogDirectory> {
  const absolute = path.resolve(dir);
  let entries: import('node:fs').Dirent[];
  try {
    const stat = await fsp.stat(absolute);
    if (!stat.isDirectory()) throw new CliError(`${dir}: not a directory`, ExitCode.USAGE);
    entries = await fsp.readdir(absolute, { withFileTypes: true });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw pathError(error, dir, 'reading the directory');
  }
  const result: RaftlogDirectory = {
    path: absolute,
    logFiles: [],
    rewriteFiles: [],
    encrypted: false,
    lockHolder: undefined,
    toolDirectories: [],
    foreign: [],
  };
  for (const entry of entries) {
    const parsed = parseLogFileName(entry.name);
    if (entry.isFile() && parsed !== undefined) {
      (parsed.queue === Queue.Append ? result.logFiles : result.rewriteFiles).push(entry.name);
    } else if ((entry.isFile() || (entry.isSymbolicLink() && entry.name === LOCK_NAME)) && isRaftlogFileName(entry.name)) {
      if (entry.name === DICTIONARY_NAME || entry.name === DICTIONARY_TMP_NAME) result.encrypted = true;
    } else if (entry.isDirectory() && REPAIR_DIR.test(entry.name)) {
      result.toolDirectories.push(entry.name);
    } else {
      result.foreign.push(entry.name);
    }
  }
  result.logFiles.sort();
  result.rewriteFiles.sort();
  result.lockHolder = await lockHolder(absolute);
  return result;
}

/**
 * `readDirectory`, refusing what dump, check and repair cannot work on: a
 * directory with no log files, or an encrypted one (its master key is not
 * something the CLI has).
 */
export async function readRaftlogDirectory(dir: string): Promise<RaftlogDirectory> {
  const info = await readDirectory(dir);
  if (info.encrypted) {
    throw new CliError(`${dir}: the log is encrypted (${DICTIONARY_NAME}); the CLI cannot read it without its master key`, ExitCode.USAGE);
  }
  if (info.logFiles.length === 0) {
    const what = info.foreign.length === 0 ? 'it is empty' : `no *.raftlog files among ${info.foreign.length} entries`;
    throw new CliError(`${dir}: not a raftlog directory (${what})`, ExitCode.USAGE);
  }
  return info;
}

/**
 * Makes `dir` ready for a fresh stress run: creates it when missing; when it
 * already is a raftlog directory, removes raftlog's files (never a file it
 * did not write, and never a repair backup). Anything foreign means the
 * user pointed at the wrong place: refuse rather than delete it. The wipe
 * happens under the directory lock of `lockFs` (the backend the run will
 * use, unwrapped), so an engine holding the directory by any kind of lock
 * makes this fail with LOCKED instead of losing its files.
 */
export async function prepareFreshDirectory(dir: string, lockFs: FileSystem): Promise<void> {
  let info: RaftlogDirectory | undefined;
  try {
    info = await readDirectory(dir);
  } catch (error) {
    if (!(error instanceof CliError && /no such file or directory/.test(error.message))) throw error;
  }
  if (info !== undefined && info.foreign.length > 0) {
    const sample = info.foreign.slice(0, 3).join(', ') + (info.foreign.length > 3 ? ', …' : '');
    throw new CliError(
      `refusing to use ${dir}: it holds entries raftlog did not write (${sample}); give an empty or a raftlog directory`,
      ExitCode.USAGE,
    );
  }
  if (info?.lockHolder !== undefined) throw new CliError(`${dir} is locked: ${info.lockHolder}`, ExitCode.LOCKED);
  try {
    await lockFs.init();
  } catch (error) {
    throw new CliError(`${dir}: cannot create the directory: ${describeError(error)}`, ExitCode.FAILURE);
  }
  if (info === undefined) return;
  const lock = await lockFs.lock(LOCK_NAME);
  try {
    const names = (await fsp.readdir(info.path)).filter((name) => isRaftlogFileName(name) && name !== LOCK_NAME && !name.startsWith(LOCK_SCRATCH_PREFIX));
    for (const name of names) {
      try {
        await fsp.unlink(path.join(info.path, name));
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw pathError(error, path.join(dir, name), 'removing the old log');
      }
    }
  } finally {
    await lock.release();
  }
}

/** Describes the live holder of `dir`'s lock, or undefined when there is none (or it is stale). */
export function lockHolder(dir: string): Promise<string | undefined> {
  return describeHolder(dir, LOCK_NAME);
}
