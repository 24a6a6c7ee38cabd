/**
 * MemFs: the FileSystem seam on an in-memory `memfs` Volume, one Volume per
 * instance with the root at '/'. It is the default backend for tests, so its
 * observable behaviour (error codes, sizes, zero-filled gaps, lock semantics,
 * a visible lock file) is kept identical to PosixFs; the conformance suite
 * holds both to it.
 *
 * Barriers are no-ops: memfs has no durability model. Crash simulation
 * belongs to FaultFs, which wraps a MemFs, tracks what was synced itself and
 * builds the post-crash file system with `MemFs.fromSnapshot`.
 *
 * memfs's synchronous API is used throughout (it is faster than its promise
 * layer and memfs is synchronous underneath anyway); every method is still
 * async, so failures arrive as rejections, never as synchronous throws.
 */

import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Volume } from 'memfs';

import { ClosedError, InvalidArgumentError, LockedError, UnsupportedError, fromSystemError } from '../src/errors.js';
import type { DirectoryLock, FileHandle, FileSystem } from '../src/filesystem.js';
import type { FsCapabilities, OpenOptions, WriteOptions } from '../src/filesystem.js';
import { checkCount, checkOpenOptions, checkRange, checkReadArgs, checkWriteArgs } from './arguments.js';
import { checkName } from './path-names.js';

const ROOT = '/';

let volumeClass: typeof Volume | undefined;

/**
 * memfs is loaded by the first MemFs, not by `import 'raftlog'`: it is an
 * optional peer dependency (a test backend has no place in a production
 * install), so where it is missing this is where it fails, saying how to get
 * it. A synchronous require (memfs is CommonJS) keeps `new MemFs()` synchronous.
 */
function newVolume(): Volume {
  if (volumeClass === undefined) {
    try {
      volumeClass = (createRequire(import.meta.url)('memfs') as typeof import('memfs')).Volume;
    } catch (cause) {
      throw new UnsupportedError('MemFs needs the memfs package, an optional peer dependency of raftlog: npm install --save-dev memfs', {
        cause,
      });
    }
  }
  return new volumeClass();
}

export class MemFs implements FileSystem {
  readonly capabilities: FsCapabilities = {
    backend: 'memfs',
    writeAlignment: 1,
    fixedCapacity: false,
    overwriteIsCheaper: false,
  };
  readonly description = 'memfs:/';
  readonly #volume: Volume = newVolume();
  /** Lock name -> token of the current holder. Per instance: a MemFs is its own world. */
  readonly #locks = new Map<string, string>();
  #closed = false;

  /**
   * A new, independent MemFs holding copies of `files` (name -> contents).
   * Used to build the file system that survives a simulated crash. Locks are
   * not part of a snapshot: a lock file in `files` is just a file, and the
   * new instance can take the lock, as a restarted engine must.
   */
  static fromSnapshot(files: ReadonlyMap<string, Uint8Array>): MemFs {
    const fs = new MemFs();
    for (const [name, contents] of files) {
      checkName(name, 'fromSnapshot');
      if (!(contents instanceof Uint8Array)) {
        throw new InvalidArgumentError(`fromSnapshot: contents of ${name} must be a Uint8Array`, { file: name });
      }
      fs.#volume.writeFileSync(ROOT + name, Uint8Array.from(contents));
    }
    return fs;
  }

  /** Copies of every file in the root (name -> contents); later writes do not show through, nor do edits to the copies. */
  snapshot(): Map<string, Uint8Array> {
    const files = new Map<string, Uint8Array>();
    for (const name of this.#fileNames()) {
      files.set(name, Uint8Array.from(this.#volume.readFileSync(ROOT + name) as Uint8Array));
    }
    return files;
  }

  /** The root always exists in a Volume; kept for the contract. */
  init(): Promise<void> {
    return this.#run('init', undefined, () => undefined);
  }

  list(): Promise<string[]> {
    return this.#run('list', undefined, () => this.#fileNames());
  }

  exists(name: string): Promise<boolean> {
    return this.#run('exists', name, () => this.#volume.existsSync(this.#path(name, 'exists')));
  }

  open(name: string, options: OpenOptions = {}): Promise<FileHandle> {
    return this.#run('open', name, () => {
      const file = this.#path(name, 'open');
      const readOnly = checkOpenOptions(options, name);
      const flags = readOnly ? 'r' : 'r+';
      if (options.create === true) {
        // Without O_EXCL a plain create must open an existing file untouched,
        // which no string flag does ('w' truncates), so create it first if missing.
        if (options.exclusive === true) this.#volume.closeSync(this.#volume.openSync(file, 'wx'));
        else if (!this.#volume.existsSync(file)) this.#volume.writeFileSync(file, new Uint8Array(0));
      }
      return this.#openHandle(name, file, flags);
    });
  }

  remove(name: string): Promise<void> {
    return this.#run('remove', name, () => this.#volume.unlinkSync(this.#path(name, 'remove')));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run('rename', from, () => this.#volume.renameSync(this.#path(from, 'rename'), this.#path(to, 'rename')));
  }

  reuse(from: string, to: string): Promise<FileHandle> {
    return this.#run('reuse', from, () => {
      const target = this.#path(to, 'reuse');
      this.#volume.renameSync(this.#path(from, 'reuse'), target);
      return this.#openHandle(to, target, 'r+');
    });
  }

  /** No-op: memfs has no durability model (FaultFs adds one). */
  syncDir(): Promise<void> {
    return this.#run('syncDir', undefined, () => undefined);
  }

  /**
   * Exclusive within this instance. A lock file is written as well, so
   * `list()` shows the same files as on PosixFs.
   */
  lock(name: string): Promise<DirectoryLock> {
    return this.#run('lock', name, () => {
      const file = this.#path(name, 'lock');
      if (this.#locks.has(name)) {
        throw new LockedError(`lock ${name}: already held on ${this.description} (pid ${process.pid})`, { file: name });
      }
      const token = randomBytes(16).toString('hex');
      this.#volume.writeFileSync(file, `${process.pid} memfs ${token}\n`);
      this.#locks.set(name, token);
      return new MemDirectoryLock(() => this.#unlock(name, file, token));
    });
  }

  /** Idempotent; later calls on the file system reject with CLOSED. Locks are not released by closing. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #unlock(name: string, file: string, token: string): void {
    if (this.#locks.get(name) !== token) return;
    this.#locks.delete(name);
    if (this.#volume.existsSync(file) && String(this.#volume.readFileSync(file, 'utf8')).includes(token)) {
      this.#volume.unlinkSync(file);
    }
  }

  #openHandle(name: string, file: string, flags: string): MemFileHandle {
    const fd = this.#volume.openSync(file, flags);
    if (!this.#volume.fstatSync(fd).isFile()) {
      this.#volume.closeSync(fd);
      throw fromSystemError(Object.assign(new Error('not a regular file'), { code: 'EISDIR' }), 'open', name);
    }
    return new MemFileHandle(name, this.#volume, fd, flags === 'r');
  }

  #fileNames(): string[] {
    const entries = this.#volume.readdirSync(ROOT, { withFileTypes: true }) as { name: unknown; isFile(): boolean }[];
    return entries.filter((entry) => entry.isFile()).map((entry) => String(entry.name));
  }

  #path(name: string, operation: string): string {
    return ROOT + checkName(name, operation);
  }

  async #run<T>(operation: string, file: string | undefined, body: () => T): Promise<T> {
    if (this.#closed) throw new ClosedError(`${operation}: ${this.description} is closed`, { file });
    try {
      return body();
    } catch (error) {
      throw fromSystemError(error, operation, file);
    }
  }
}

class MemFileHandle implements FileHandle {
  readonly name: string;
  readonly #volume: Volume;
  readonly #readOnly: boolean;
  #fd: number | undefined;

  constructor(name: string, volume: Volume, fd: number, readOnly: boolean) {
    this.name = name;
    this.#volume = volume;
    this.#fd = fd;
    this.#readOnly = readOnly;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#run('read', () => {
      checkReadArgs(target, targetOffset, length, position, this.name);
      const fd = this.#live('read');
      let done = 0;
      while (done < length) {
        const n = this.#volume.readSync(fd, target, targetOffset + done, length - done, position + done);
        if (n === 0) break; // end of file
        done += n;
      }
      return done;
    });
  }

  write(buffers: readonly Uint8Array[], position: number, _options?: WriteOptions): Promise<void> {
    return this.#run('write', () => {
      checkWriteArgs(buffers, position, this.name);
      const fd = this.#writable('write');
      let at = position;
      for (const buffer of buffers) {
        for (let done = 0; done < buffer.byteLength; ) {
          done += this.#volume.writeSync(fd, buffer, done, buffer.byteLength - done, at + done);
        }
        at += buffer.byteLength;
      }
      // `sync` needs nothing more: there is no durability to wait for.
    });
  }

  sync(): Promise<void> {
    return this.#run('sync', () => void this.#live('sync'));
  }

  truncate(size: number): Promise<void> {
    return this.#run('truncate', () => {
      checkCount(size, 'size', 'truncate', this.name);
      this.#volume.ftruncateSync(this.#writable('truncate'), size);
    });
  }

  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', () => {
      const end = checkRange(offset, length, 'preallocate', this.name);
      const fd = this.#writable('preallocate');
      if (this.#volume.fstatSync(fd).size < end) this.#volume.ftruncateSync(fd, end);
    });
  }

  size(): Promise<number> {
    return this.#run('size', () => this.#volume.fstatSync(this.#live('size')).size);
  }

  /** Idempotent. */
  close(): Promise<void> {
    return this.#run('close', () => {
      const fd = this.#fd;
      if (fd === undefined) return;
      this.#fd = undefined;
      this.#volume.closeSync(fd);
    });
  }

  #live(operation: string): number {
    if (this.#fd === undefined) throw new ClosedError(`${operation} ${this.name}: handle is closed`, { file: this.name });
    return this.#fd;
  }

  /** memfs does not enforce read-only descriptors itself, so the handle does. */
  #writable(operation: string): number {
    const fd = this.#live(operation);
    if (this.#readOnly) throw new InvalidArgumentError(`${operation} ${this.name}: handle is read-only`, { file: this.name });
    return fd;
  }

  async #run<T>(operation: string, body: () => T): Promise<T> {
    try {
      return body();
    } catch (error) {
      throw fromSystemError(error, operation, this.name);
    }
  }
}

class MemDirectoryLock implements DirectoryLock {
  #unlock: (() => void) | undefined;

  constructor(unlock: () => void) {
    this.#unlock = unlock;
  }

  /** Idempotent. */
  async release(): Promise<void> {
    const unlock = this.#unlock;
    this.#unlock = undefined;
    try {
      unlock?.();
    } catch (error) {
      throw fromSystemError(error, 'release lock');
    }
  }
}
