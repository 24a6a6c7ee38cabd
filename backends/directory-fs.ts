/**
 * The part of a FileSystem that is the same for every backend over a
 * directory of real files (PosixFs, UringFs, PmemFs): the root and its
 * validation, listing, existence, remove, rename, recycling by rename, the
 * directory fsync and the directory lock, refusing work after close, and
 * mapping failures into the error family. The backends differ only in how a
 * file is opened and accessed (`openFile`), so that is all they implement;
 * the directory calls themselves are posix-directory.ts's.
 */

import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import * as path from 'node:path';

import { loadNative } from '../hardware/native.js';
import { ClosedError, InvalidArgumentError } from '../src/errors.js';
import type { DirectoryLock, FileHandle, OpenOptions } from '../src/filesystem.js';
import { checkOpenOptions } from './arguments.js';
import { lockDirectory } from './directory-lock.js';
import { mapErrors } from './error-edge.js';
import { fileExists, filePath, listFiles, makeRoot, openFlags } from './posix-directory.js';
import { removeFile, renameFile, syncDirectory } from './posix-directory.js';

const { O_RDWR } = fsConstants;
const native = loadNative();

/** posix_fadvise(DONTNEED) on a whole file, through the addon; best effort (it only costs page-cache state). */
function dropCachedPages(file: string): void {
  if (!native.ok) return;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    native.binding.fadviseDontNeed(fd);
  } catch {
    // An optimization: the reuse itself reports whatever is wrong with the file.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export abstract class DirectoryFs<H extends FileHandle = FileHandle> {
  /** Absolute path of the root directory. */
  readonly root: string;
  abstract readonly description: string;
  /** Set by the subclass's close(); every later operation is refused with CLOSED. */
  protected closed = false;

  /** `backend` names the class in the error for a missing root. */
  constructor(root: string, backend: string) {
    if (typeof root !== 'string' || root.length === 0) {
      throw new InvalidArgumentError(`${backend}: root must be a non-empty path`);
    }
    this.root = path.resolve(root);
  }

  /** Opens `file` (the validated path of `name`) with open(2) `flags` and returns a handle on it. */
  protected abstract openFile(name: string, file: string, flags: number, readOnly: boolean, options: OpenOptions): Promise<H>;

  init(): Promise<void> {
    return this.run('init', undefined, () => makeRoot(this.root));
  }

  list(): Promise<string[]> {
    return this.run('list', undefined, () => listFiles(this.root));
  }

  exists(name: string): Promise<boolean> {
    return this.run('exists', name, () => fileExists(this.root, name));
  }

  open(name: string, options: OpenOptions = {}): Promise<H> {
    return this.run('open', name, async () => {
      const file = filePath(this.root, name, 'open');
      const readOnly = checkOpenOptions(options, name);
      return this.openFile(name, file, openFlags(options, readOnly), readOnly, options);
    });
  }

  remove(name: string): Promise<void> {
    return this.run('remove', name, () => removeFile(this.root, name));
  }

  rename(from: string, to: string): Promise<void> {
    return this.run('rename', from, async () => {
      await renameFile(this.root, from, to, 'rename');
    });
  }

  /**
   * As on POSIX: the recycled file keeps its bytes and size until the caller
   * overwrites or truncates them. Its cached pages are dropped first (they
   * are clean: the file was synced before it was retired): Linux caches a
   * large write in one large folio and writes a dirty folio back whole, so
   * each small synced append into the old life's 256 KiB group writes, or a
   * prefill's 1 MiB zero writes, would write that whole folio to the device
   * again (measured here: 65 pages per 4 KiB synced write into a file written
   * in 256 KiB pieces, 2 after the drop). Without the addon nothing is dropped.
   */
  reuse(from: string, to: string): Promise<H> {
    return this.run('reuse', from, async () => {
      const target = await renameFile(this.root, from, to, 'reuse');
      dropCachedPages(target);
      return this.openFile(to, target, O_RDWR, false, {});
    });
  }

  syncDir(): Promise<void> {
    return this.run('syncDir', undefined, () => syncDirectory(this.root));
  }

  /** The directory lock every directory backend shares; see directory-lock.ts. */
  lock(name: string): Promise<DirectoryLock> {
    return this.run('lock', name, () => lockDirectory(this.root, name));
  }

  /** Runs one operation: rejects after close, and maps every failure into the error family. */
  protected async run<T>(operation: string, file: string | undefined, body: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError(`${operation}: ${this.description} is closed`, { file });
    return mapErrors(operation, file, body);
  }
}
