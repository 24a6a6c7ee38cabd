/**
 * ProcessFs: one process's view of a FileSystem, so the torture suite can
 * kill a process without cutting the power.
 *
 * A `kill -9` closes the process's descriptors and drops its locks, but the
 * kernel keeps the page cache: unsynced writes stay readable, and a later
 * power loss may still lose them. FaultFs models the page cache; this wrapper
 * models the process. `kill()` lets operations already inside the kernel
 * finish (a syscall in progress completes), then closes every handle,
 * releases every lock and rejects everything the dead engine tries later.
 * A restarted engine gets a new ProcessFs over the same FaultFs.
 */
import { IoError } from '../../src/errors.js';
import type { DirectoryLock, FileHandle, FileSystem, FsCapabilities, OpenOptions, WriteOptions } from '../../src/filesystem.js';

export class ProcessFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly #inner: FileSystem;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #handles = new Set<FileHandle>();
  readonly #locks = new Set<DirectoryLock>();
  #dead = false;
  /** Calls still admitted before the process dies on its own (killAfter). */
  #budget: number | undefined;
  /** Calls made so far (admitted or not). */
  calls = 0;

  constructor(inner: FileSystem) {
    this.#inner = inner;
    this.capabilities = inner.capabilities;
    this.description = `process:${inner.description}`;
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** Kills the process: in-flight calls complete, then descriptors and locks go away. */
  async kill(): Promise<void> {
    this.#dead = true;
    // Bounded: nothing new enters the set once dead, and each call settles.
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    for (const handle of this.#handles) await handle.close().catch(() => undefined);
    this.#handles.clear();
    for (const lock of this.#locks) await lock.release().catch(() => undefined);
    this.#locks.clear();
  }

  /** The process dies just before its `calls`-th next call (0: now); `kill()` still does the cleanup. */
  killAfter(calls: number): void {
    this.#budget = calls;
  }

  /** Runs one call on behalf of the live process; a dead one gets EIO at once. */
  run<T>(what: string, call: () => Promise<T>): Promise<T> {
    this.calls++;
    if (this.#budget !== undefined && this.#budget-- <= 0) this.#dead = true;
    if (this.#dead) return Promise.reject(new IoError(`process killed: ${what} rejected`, { errno: 'EIO' }));
    const promise = call();
    this.#inFlight.add(promise);
    const forget = (): void => {
      this.#inFlight.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }

  init(): Promise<void> {
    return this.run('init', () => this.#inner.init());
  }

  list(): Promise<string[]> {
    return this.run('list', () => this.#inner.list());
  }

  exists(name: string): Promise<boolean> {
    return this.run(`exists ${name}`, () => this.#inner.exists(name));
  }

  async open(name: string, options?: OpenOptions): Promise<FileHandle> {
    return this.#adopt(await this.run(`open ${name}`, () => this.#inner.open(name, options)));
  }

  remove(name: string): Promise<void> {
    return this.run(`remove ${name}`, () => this.#inner.remove(name));
  }

  rename(from: string, to: string): Promise<void> {
    return this.run(`rename ${from}`, () => this.#inner.rename(from, to));
  }

  async reuse(from: string, to: string): Promise<FileHandle> {
    return this.#adopt(await this.run(`reuse ${from}`, () => this.#inner.reuse(from, to)));
  }

  syncDir(): Promise<void> {
    return this.run('syncDir', () => this.#inner.syncDir());
  }

  async lock(name: string): Promise<DirectoryLock> {
    const lock = await this.run(`lock ${name}`, () => this.#inner.lock(name));
    if (this.#dead) {
      // Granted to a process that died meanwhile: the kernel drops it.
      await lock.release().catch(() => undefined);
      throw new IoError(`process killed: lock ${name} rejected`, { errno: 'EIO' });
    }
    this.#locks.add(lock);
    return {
      release: async () => {
        if (!this.#locks.delete(lock)) return;
        await lock.release();
      },
    };
  }

  close(): Promise<void> {
    return this.run('closeFs', () => this.#inner.close());
  }

  async #adopt(handle: FileHandle): Promise<FileHandle> {
    if (this.#dead) {
      await handle.close().catch(() => undefined);
      throw new IoError(`process killed: open ${handle.name} rejected`, { errno: 'EIO' });
    }
    this.#handles.add(handle);
    return new ProcessHandle(this, handle, () => this.#handles.delete(handle));
  }
}

class ProcessHandle implements FileHandle {
  readonly name: string;
  readonly #process: ProcessFs;
  readonly #inner: FileHandle;
  readonly #forget: () => void;

  constructor(process: ProcessFs, inner: FileHandle, forget: () => void) {
    this.#process = process;
    this.#inner = inner;
    this.#forget = forget;
    this.name = inner.name;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#process.run(`read ${this.name}`, () => this.#inner.read(target, targetOffset, length, position));
  }

  write(buffers: readonly Uint8Array[], position: number, options?: WriteOptions): Promise<void> {
    return this.#process.run(`write ${this.name}`, () => this.#inner.write(buffers, position, options));
  }

  sync(): Promise<void> {
    return this.#process.run(`sync ${this.name}`, () => this.#inner.sync());
  }

  truncate(size: number): Promise<void> {
    return this.#process.run(`truncate ${this.name}`, () => this.#inner.truncate(size));
  }

  preallocate(offset: number, length: number): Promise<void> {
    return this.#process.run(`preallocate ${this.name}`, () => this.#inner.preallocate(offset, length));
  }

  size(): Promise<number> {
    return this.#process.run(`size ${this.name}`, () => this.#inner.size());
  }

  close(): Promise<void> {
    return this.#process.run(`close ${this.name}`, async () => {
      this.#forget();
      await this.#inner.close();
    });
  }
}
