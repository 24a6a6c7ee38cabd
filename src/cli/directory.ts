/**
 * What is in a directory the CLI is pointed at, read without changing it:
 * which files are raftlog's, whether it is encrypted, and whether a running
 * engine holds its lock.
 *
 * The lock is judged without taking it: taking it writes to the directory
 * (PosixFs creates the lock file and a scratch name), and `dump` and `check`
 * promise to change nothing. Two kinds of holder exist: PosixFs writes its
 * owner into LOCK (judged by PosixFs's own liveness rule, which
 * backends/posix.ts keeps private: same host, same boot, pid alive); UringFs
 * and PmemFs flock(2) an empty LOCK, which a shared, non-blocking flock of our
 * own detects without changing anything.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from '../../backends/encrypted.js';
import { loadNative } from '../../hardware/native.js';
import { INDEX_CHECKPOINT_NAME, INDEX_CHECKPOINT_TMP_NAME, LOCK_NAME, MANIFEST_NAME, MANIFEST_TMP_NAME, parseLogFileName, parseRecycleFileName } from '../file-names.js';
import { Queue } from '../format/layout.js';
import type { FileSystem } from '../filesystem.js';
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
    name.startsWith('.raftlog-lock-')
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
    } else if (entry.isFile() && isRaftlogFileName(entry.name)) {
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
    const names = (await fsp.readdir(info.path)).filter((name) => isRaftlogFileName(name) && name !== LOCK_NAME && !name.startsWith('.raftlog-lock-'));
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
export async function lockHolder(dir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, LOCK_NAME), 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    // Unreadable lock file: assume held; it is the safe answer for repair and only a note for dump/check.
    return `lock file unreadable (${errnoOf(error) ?? 'error'})`;
  }
  if (text.trim() === '') return flockHolder(path.join(dir, LOCK_NAME));
  const fields = text.trim().split(/\s+/);
  if (fields.length < 3 || !/^[1-9]\d*$/.test(fields[0]!)) return undefined; // torn: stale by PosixFs's rule
  const pid = Number(fields[0]);
  const host = fields[1]!;
  const boot = fields[3] === undefined || fields[3] === '-' ? undefined : fields[3];
  const localHost = hostname().replace(/\s+/g, '_') || 'localhost';
  if (host !== localHost) return `held by pid ${pid} on host ${host}`;
  const currentBoot = bootId();
  if (boot !== undefined && currentBoot !== undefined && boot !== currentBoot) return undefined;
  if (pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errnoOf(error) === 'ESRCH') return undefined;
  }
  return `held by running process pid ${pid}`;
}

/**
 * An empty LOCK is either a PosixFs lock file torn by a crash (stale) or the
 * flock(2) target of UringFs/PmemFs. A shared, non-blocking flock tells them
 * apart: it fails only while someone holds the exclusive one.
 */
function flockHolder(file: string): string | undefined {
  const native = loadNative();
  if (!native.ok) return undefined; // no flock without the addon; the backend's own lock still guards writes
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    native.binding.flock(fd, false, true);
    native.binding.funlock(fd);
    return undefined;
  } catch (error) {
    return errnoOf(error) === 'EAGAIN' || errnoOf(error) === 'EWOULDBLOCK' ? 'held by a running engine (flock on LOCK)' : undefined;
  } finally {
    closeSync(fd);
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined; // not Linux: judged by pid alone, as PosixFs does
  }
}
