/**
 * PosixFs: the FileSystem seam on plain `node:fs`, no native addon needed.
 * Where the addon is built, a write and its barrier go down as one
 * threadpool job (see nativeWriteSync); everything else is node:fs.
 *
 * What node:fs cannot do, and what stands in for it here:
 * - no fallocate: `preallocate` writes zeros past the current end (see there);
 * - no flock/fcntl locks: `lock` is the symlink lock of directory-lock.ts,
 *   the one UringFs and PmemFs take too, which needs no addon.
 *
 * Directory entries are made durable only by `syncDir()`, never implicitly:
 * the engine decides when a create/rename/remove has to be durable and pays
 * for one directory fsync per batch of them, not one per call.
 */

import * as fsp from 'node:fs/promises';

import { loadNativeWriteSync } from '../hardware/native.js';

import { ClosedError, IoError, fromSystemError } from '../src/errors.js';
import type { FileHandle, FileSystem, FsCapabilities, WriteOptions } from '../src/filesystem.js';
import { checkCount, checkRange, checkReadArgs, checkWriteArgs } from './arguments.js';
import { readCached } from './cached-read.js';
import { DirectoryFs } from './directory-fs.js';
import { mapErrors, readOnlyError } from './error-edge.js';
import { remainingBuffers } from './io-buffers.js';
import { writeZeroPages } from './zero-fill.js';
import { FILE_MODE } from './posix-directory.js';

/**
 * With the addon built, a write and its fdatasync run as one threadpool job
 * (hardware/write-sync.cc) instead of two node:fs jobs with a return to the
 * event loop between them. The same syscalls, in the same order, with errors
 * shaped like node:fs's, so nothing else here changes.
 */
const nativeWriteSync = loadNativeWriteSync();

/** One shared, never-written buffer of zeros for preallocation: large enough to amortise syscalls, small enough to keep. */
const ZEROS = new Uint8Array(1 << 20);

export class PosixFs extends DirectoryFs implements FileSystem {
  readonly capabilities: FsCapabilities = {
    backend: 'posix',
    writeAlignment: 1,
    fixedCapacity: false,
    overwriteIsCheaper: true,
  };
  readonly description: string;

  constructor(root: string) {
    super(root, 'PosixFs');
    this.description = `posix:${this.root}`;
  }

  /** Idempotent. Locks are not released by closing; release them first. */
  async close(): Promise<void> {
    this.closed = true;
  }

  protected openFile(name: string, file: string, flags: number, readOnly: boolean): Promise<FileHandle> {
    return PosixFileHandle.open(name, file, flags, readOnly);
  }
}

class PosixFileHandle implements FileHandle {
  readonly name: string;
  readonly #readOnly: boolean;
  #handle: fsp.FileHandle | undefined;
  readonly #gate = new WriteGate();

  private constructor(name: string, handle: fsp.FileHandle, readOnly: boolean) {
    this.name = name;
    this.#handle = handle;
    this.#readOnly = readOnly;
  }

  static async open(name: string, file: string, flags: number, readOnly: boolean): Promise<PosixFileHandle> {
    const handle = await fsp.open(file, flags, FILE_MODE);
    try {
      // A directory opens fine read-only and only fails on first read; refuse it now.
      if (!(await handle.stat()).isFile()) throw new IoError(`open ${name}: not a regular file`, { file: name });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new PosixFileHandle(name, handle, readOnly);
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#run('read', async () => {
      checkReadArgs(target, targetOffset, length, position, this.name);
      let done = 0;
      // What the page cache holds comes first, on this thread; only the rest goes through the threadpool.
      const cached = readCached(this.#live('read').fd, target, targetOffset, length, position);
      if (cached === 0) return 0; // end of file
      if (cached > 0) done = cached;
      while (done < length) {
        const { bytesRead } = await this.#live('read').read(target, targetOffset + done, length - done, position + done);
        if (bytesRead === 0) break; // end of file
        done += bytesRead;
      }
      return done;
    });
  }

  write(buffers: readonly Uint8Array[], position: number, options: WriteOptions = {}): Promise<void> {
    return this.#run('write', async () => {
      checkWriteArgs(buffers, position, this.name);
      this.#writable('write');
      const sync = options.sync === true;
      if (nativeWriteSync !== undefined) {
        await this.#gate.shared(() => nativeWriteSync(this.#live('write').fd, buffers, position, sync));
        return;
      }
      await this.#gate.shared(() => this.#writeAll(buffers, position));
      if (sync) await this.#live('write').datasync();
    });
  }

  sync(): Promise<void> {
    return this.#run('sync', () => this.#live('sync').datasync());
  }

  truncate(size: number): Promise<void> {
    return this.#run('truncate', async () => {
      checkCount(size, 'size', 'truncate', this.name);
      this.#writable('truncate');
      await this.#gate.shared(() => this.#live('truncate').truncate(size));
    });
  }

  /**
   * node:fs has no fallocate, so the range past the current end is written
   * with zeros instead. That costs one extra write pass, but it is what makes
   * later appends into the range cheap to make durable: on ext4 and xfs an
   * fdatasync after overwriting already-written blocks flushes data only,
   * while fallocate'd (unwritten) extents or a sparse tail still need a
   * journal commit to convert or allocate them. Bytes below the current size
   * are left alone: they are either data or already-allocated zeros. With
   * the addon the zeros go down a page per write (see zero-fill.ts: large
   * writes leave large page-cache folios, and every synced append into one
   * writes the whole folio back); without it, in 1 MiB writes.
   */
  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', async () => {
      const end = checkRange(offset, length, 'preallocate', this.name);
      this.#writable('preallocate');
      // Exclusive: the size is read then zeros are written after it, so a
      // concurrent write past the old end would otherwise be overwritten.
      await this.#gate.exclusive(async () => {
        const size = (await this.#live('preallocate').stat()).size;
        if (nativeWriteSync !== undefined) {
          await writeZeroPages(nativeWriteSync, this.#live('preallocate').fd, size, end);
          return;
        }
        for (let at = size; at < end; at += ZEROS.byteLength) {
          await this.#writeAll([ZEROS.subarray(0, Math.min(ZEROS.byteLength, end - at))], at);
        }
      });
    });
  }

  size(): Promise<number> {
    return this.#run('size', async () => (await this.#live('size').stat()).size);
  }

  /** Idempotent. Waits for operations in flight on the descriptor (node's FileHandle does; the gate, for the addon's writes). */
  async close(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    try {
      // node's FileHandle waits for its own operations, not for the addon's
      // writes on its descriptor: let those finish before the fd is released.
      await this.#gate.exclusive(async () => undefined);
      await handle.close();
    } catch (error) {
      throw fromSystemError(error, 'close', this.name);
    }
  }

  /** writev until every byte is down: a short write continues from the first unwritten byte. */
  async #writeAll(buffers: readonly Uint8Array[], position: number): Promise<void> {
    let pending = buffers;
    let at = position;
    let left = pending.reduce((sum, buffer) => sum + buffer.byteLength, 0);
    while (left > 0) {
      const { bytesWritten } = await this.#live('write').writev(pending, at);
      if (bytesWritten <= 0) {
        throw new IoError(`write ${this.name}: no progress at offset ${at}`, { file: this.name, offset: at });
      }
      left -= bytesWritten;
      at += bytesWritten;
      pending = remainingBuffers(pending, bytesWritten);
    }
  }

  #live(operation: string): fsp.FileHandle {
    if (this.#handle === undefined) throw new ClosedError(`${operation} ${this.name}: handle is closed`, { file: this.name });
    return this.#handle;
  }

  #writable(operation: string): void {
    this.#live(operation);
    if (this.#readOnly) throw readOnlyError(operation, this.name);
  }

  #run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    return mapErrors(operation, this.name, body);
  }
}

/**
 * Lets any number of writes run together, but runs an exclusive operation
 * (preallocate) only once no write is in flight, and holds new writes until
 * it is done.
 */
class WriteGate {
  #active = 0;
  #drained: (() => void) | undefined;
  #exclusive: Promise<void> | undefined;

  async shared<T>(body: () => Promise<T>): Promise<T> {
    while (this.#exclusive !== undefined) await this.#exclusive;
    this.#active++;
    try {
      return await body();
    } finally {
      this.#active--;
      if (this.#active === 0) this.#drained?.();
    }
  }

  async exclusive<T>(body: () => Promise<T>): Promise<T> {
    while (this.#exclusive !== undefined) await this.#exclusive;
    let finish!: () => void;
    this.#exclusive = new Promise<void>((resolve) => (finish = resolve));
    try {
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      return await body();
    } finally {
      this.#drained = undefined;
      this.#exclusive = undefined;
      finish();
    }
  }
}
