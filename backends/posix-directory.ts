/**
 * Directory-level operations shared by the backends that keep their files in
 * a real directory (PosixFs, UringFs, PmemFs): they differ in how they read
 * and write file data, not in how they list, rename, remove, sync or lock the
 * directory. Each backend wraps these in its own closed-check and error
 * mapping (`fromSystemError`). The lock is in directory-lock.ts, the same
 * for all three (and for the CLI, which judges it without taking it).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { errnoOf } from './directory-lock.js';
import type { OpenOptions } from '../src/filesystem.js';
import { checkName } from './path-names.js';

export const FILE_MODE = 0o644;

export { errnoOf } from './directory-lock.js';

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
