/**
 * Directory-level operations shared by the backends that keep their files in
 * a real directory (PosixFs, UringFs, PmemFs): they differ in how they read
 * and write file data, not in how they list, rename, remove, sync or lock the
 * directory. Each backend wraps these in its own closed-check and error
 * mapping (`fromSystemError`).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { LockedError, fromSystemError } from '../src/errors.js';
import type { DirectoryLock, OpenOptions } from '../src/filesystem.js';
import { checkName } from './path-names.js';

export const FILE_MODE = 0o644;
const LOCK_ATTEMPTS = 8;

export function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** open(2) flags for OpenOptions (already validated by checkOpenOptions). */
export function openFlags(options: OpenOptions, readOnly: boolean): number {
  const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL } = fs.constants;
  let flags = readOnly ? O_RDONLY : O_RDWR;
  if (options.create === true) flags |= O_CREAT;
  if (options.exclusive === true) flags |= O_EXCL;
  return flags;
}

/** `root/name` after checking that `name` is a plain file name. */
export function filePath(root: string, name: string, operation: string): string {
  return path.join(root, checkName(name, operation));
}

export async function makeRoot(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
}

/** Names of the regular files in `root`. */
export async function listFiles(root: string): Promise<string[]> {
  const entries = await fsp.readdir(root, { withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

export async function fileExists(root: string, name: string): Promise<boolean> {
  try {
    await fsp.lstat(filePath(root, name, 'exists'));
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw error;
  }
}

export async function removeFile(root: string, name: string): Promise<void> {
  await fsp.unlink(filePath(root, name, 'remove'));
}

/** Renames within `root`; returns the target path (for `reuse`, which opens it next). */
export async function renameFile(root: string, from: string, to: string, operation: string): Promise<string> {
  const target = filePath(root, to, operation);
  await fsp.rename(filePath(root, from, operation), target);
  return target;
}

/** fsync of the directory itself: makes creates, renames and removes in it durable. */
export async function syncDirectory(root: string): Promise<void> {
  const dir = await fsp.open(root, fs.constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * flock(2) on `root/name`: excludes other processes and other callers in this
 * one alike (the lock belongs to the open file description), and a crashed
 * holder's lock goes with its descriptors, so it never needs breaking. The
 * file is unlinked on release; a contender that locked the unlinked inode
 * notices (its descriptor no longer matches the path) and retries.
 */
export async function flockDirectory(root: string, name: string, flock: (fd: number) => void): Promise<DirectoryLock> {
  const file = filePath(root, name, 'lock');
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE);
    try {
      flock(fd);
    } catch (error) {
      fs.closeSync(fd);
      if (errnoOf(error) === 'EAGAIN' || errnoOf(error) === 'EWOULDBLOCK') {
        throw new LockedError(`lock ${name}: held by another owner (this process or another) of ${root}`, { file: name, cause: error });
      }
      throw error;
    }
    if (sameInode(fd, file)) return new FlockDirectoryLock(file, name, fd);
    fs.closeSync(fd);
  }
  throw new LockedError(`lock ${name}: still contended after ${LOCK_ATTEMPTS} attempts`, { file: name });
}

/** Whether `file` still names the inode open as `fd`. */
function sameInode(fd: number, file: string): boolean {
  const held = fs.fstatSync(fd, { bigint: true });
  try {
    const current = fs.statSync(file, { bigint: true });
    return current.ino === held.ino && current.dev === held.dev;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw error;
  }
}

class FlockDirectoryLock implements DirectoryLock {
  readonly #file: string;
  readonly #name: string;
  #fd: number | undefined;

  constructor(file: string, name: string, fd: number) {
    this.#file = file;
    this.#name = name;
    this.#fd = fd;
  }

  /** Idempotent; a later holder of the same name is unaffected (its file is another inode). */
  async release(): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      // Unlink only while holding the lock, and only our own inode.
      if (sameInode(fd, this.#file)) fs.unlinkSync(this.#file);
    } catch (error) {
      throw fromSystemError(error, 'release lock', this.#name);
    } finally {
      fs.closeSync(fd);
    }
  }
}
