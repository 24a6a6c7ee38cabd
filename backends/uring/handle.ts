/**
 * The FileHandle of UringFs. It validates the caller's arguments, turns each
 * call into queue items on its file (or a read job), and waits for them; it
 * never touches the ring. Direct mode shows here only where the handle must
 * know the logical size (size, reads that stop at it, the size fix on close)
 * and where reads go through aligned memory.
 */

import { ClosedError, RaftlogError } from '../../src/errors.js';
import type { FileHandle, WriteOptions } from '../../src/filesystem.js';
import { checkCount, checkRange, checkReadArgs, checkWriteArgs } from '../arguments.js';
import { mapErrors, readOnlyError } from '../error-edge.js';
import { FALLOCATE_REFUSALS } from './errors.js';
import { readCached } from '../cached-read.js';
import { closeFd, fstatFd, ftruncateFd } from './fd.js';
import type { FileState } from './file-state.js';
import { Request, readThrough, type Core, type Item } from './ops.js';

export class UringFileHandle implements FileHandle {
  readonly name: string;
  readonly #core: Core;
  readonly #file: FileState;
  readonly #fd: number;
  readonly #readOnly: boolean;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(core: Core, file: FileState, name: string, fd: number, readOnly: boolean) {
    this.#core = core;
    this.#file = file;
    this.name = name;
    this.#fd = fd;
    this.#readOnly = readOnly;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#run('read', async () => {
      this.#live('read');
      checkReadArgs(target, targetOffset, length, position, this.name);
      if (length === 0) return 0;
      if (!this.#core.direct) {
        // What the page cache holds comes first, on this thread; only the rest goes through the ring.
        const cached = readCached(this.#fd, target, targetOffset, length, position);
        if (cached === length || cached === 0) return cached;
        const done = Math.max(0, cached);
        return done + (await this.#readInto(target, targetOffset + done, length - done, position + done, 1));
      }
      // Direct: an aligned read of whole blocks into aligned memory, then a copy out.
      const B = this.#file.block;
      const end = Math.min(position + length, this.#file.logical);
      if (end <= position) return 0;
      const start = Math.floor(position / B) * B;
      const alignedEnd = Math.ceil(end / B) * B;
      const buffer = this.#core.alignedBuffer(alignedEnd - start, B);
      const got = await this.#readInto(buffer, 0, alignedEnd - start, start, B);
      const available = Math.max(0, Math.min(end, start + got) - position);
      target.set(buffer.subarray(position - start, position - start + available), targetOffset);
      return available;
    });
  }

  #readInto(target: Uint8Array, targetOffset: number, length: number, position: number, block: number): Promise<number> {
    const fd = this.#fd;
    return readThrough(this.#core, { fd, target, targetOffset, remaining: length, position, block, name: this.name });
  }

  write(buffers: readonly Uint8Array[], position: number, options: WriteOptions = {}): Promise<void> {
    return this.#run('write', async () => {
      this.#writable('write');
      const length = checkWriteArgs(buffers, position, this.name);
      const sync = options.sync === true;
      if (length === 0) {
        if (sync) await this.#submit((req) => ({ kind: 'sync', fd: this.#fd, writable: true, req }));
        return;
      }
      const parts = buffers.filter((b) => b.byteLength > 0);
      await this.#submit((req) => ({ kind: 'write', fd: this.#fd, buffers: parts, position, length, sync, req }));
    });
  }

  sync(): Promise<void> {
    return this.#run('sync', async () => {
      this.#live('sync');
      await this.#submit((req) => ({ kind: 'sync', fd: this.#fd, writable: !this.#readOnly, req }));
    });
  }

  truncate(size: number): Promise<void> {
    return this.#run('truncate', async () => {
      this.#writable('truncate');
      checkCount(size, 'size', 'truncate', this.name);
      const file = this.#file;
      await this.#submit((req) => ({
        kind: 'task',
        req,
        run: async () => {
          await ftruncateFd(this.#fd, size);
          file.logical = size;
          file.physical = size;
          file.zeroFrom = Math.min(file.zeroFrom, size);
          file.cache.clear();
        },
      }));
    });
  }

  /**
   * Buffered mode writes zeros from the current end to `offset + length`, as
   * PosixFs does, in a task queued behind the file's earlier work (so it
   * reads the size those writes left, and later writes wait for it). Not
   * fallocate: on ext4 and xfs that leaves unwritten extents, and every
   * fdatasync after an append into one must commit the journal to convert
   * it, where an overwrite of written zeros flushes data only (measured
   * here: a synced 4 KiB append costs about 50 us more in fallocate'd space).
   * The zeros go down a page per write (backends/zero-fill.ts says why)
   * and are paid once, by the first barrier after the preallocation.
   *
   * Direct mode: fallocate(2) in the ring. Where the file system refuses it
   * (FUSE without fallocate, ramfs), the file is extended with ftruncate
   * instead: the range
   * reads as zeros and the size is what the contract promises, but nothing is
   * reserved, so a later write there can still fail with NO_SPACE (as on any
   * file system without fallocate). After the first refusal the ring op is
   * skipped. (Zeros written with a plain descriptor would need aligned
   * buffers here, and the block cache told about them.)
   */
  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', async () => {
      this.#writable('preallocate');
      const end = checkRange(offset, length, 'preallocate', this.name);
      if (length === 0) return; // fallocate(2) refuses a zero length; there is nothing to reserve
      const file = this.#file;
      if (!this.#core.direct) {
        await this.#submit((req) => ({
          kind: 'task',
          req,
          run: async () => this.#core.zeroFill(this.#fd, Number((await fstatFd(this.#fd)).size), end),
        }));
        return;
      }
      if (!this.#core.fallocateRefused()) {
        try {
          await this.#submit((req) => ({ kind: 'fallocate', fd: this.#fd, offset, length, req }));
          return;
        } catch (error) {
          if (!(error instanceof RaftlogError && FALLOCATE_REFUSALS.has(error.errno ?? ''))) throw error;
        }
      }
      await this.#submit((req) => ({
        kind: 'task',
        req,
        run: async () => {
          if (Number((await fstatFd(this.#fd)).size) < end) await ftruncateFd(this.#fd, end);
          file.logical = Math.max(file.logical, end);
          file.physical = Math.max(file.physical, end);
        },
      }));
    });
  }

  size(): Promise<number> {
    return this.#run('size', async () => {
      this.#live('size');
      if (this.#core.direct) return this.#file.logical;
      return Number((await fstatFd(this.#fd)).size);
    });
  }

  /**
   * Idempotent. Runs after the operations queued before it (it is queued
   * behind them), without making them durable. In direct mode the last
   * handle on a file sets its on-disk size to the logical size.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const file = this.#file;
    const fixSize = async (): Promise<void> => {
      if (this.#core.direct && !this.#readOnly && file.physical !== file.logical) {
        await ftruncateFd(this.#fd, file.logical);
        file.physical = file.logical;
      }
    };
    this.#closing = this.#run('close', async () => {
      try {
        // Queued behind this file's earlier work; with the file system
        // already closed there is none left, so it runs directly.
        if (this.#core.closed()) await fixSize();
        else await this.#submit((req) => ({ kind: 'task', req, run: fixSize }));
      } finally {
        this.#core.released(file, this.#fd);
        await closeFd(this.#fd);
      }
    });
    return this.#closing;
  }

  #submit(make: (req: Request) => Item): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#core.enqueue(this.#file, make(new Request(resolve, reject)));
    });
  }

  #live(operation: string): void {
    if (this.#closed) throw new ClosedError(`${operation} ${this.name}: handle is closed`, { file: this.name });
    if (this.#core.closed()) throw new ClosedError(`${operation} ${this.name}: file system is closed`, { file: this.name });
  }

  #writable(operation: string): void {
    this.#live(operation);
    if (this.#readOnly) throw readOnlyError(operation, this.name);
  }

  #run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    return mapErrors(operation, this.name, body);
  }
}
