/**
 * A FileSystem that passes everything to a real one (a MemFs, say) but can
 * hold one chosen read or write at its start until the test releases it:
 * tests prove an ordering ("this write completed while the purge was copying")
 * by what happens while the operation waits, not by timing.
 */
import type { DirectoryLock, FileHandle, FileSystem, FsCapabilities, OpenOptions, WriteOptions } from '../../src/filesystem.js';

export interface Gate {
  /** Resolves when a matching operation has started and is being held. */
  readonly reached: Promise<void>;
  /** Lets the held operation (and every later one) proceed. */
  release(): void;
}

type Op = 'read' | 'write';

interface Armed {
  op: Op;
  match: RegExp;
  reached: () => void;
  released: Promise<void>;
}

export class GatedFs implements FileSystem {
  readonly #inner: FileSystem;
  #armed: Armed | undefined;

  constructor(inner: FileSystem) {
    this.#inner = inner;
  }

  /** Holds the next `op` on a file whose name matches. One operation per gate. */
  gate(op: Op, match: RegExp): Gate {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#armed = { op, match, reached, released };
    return { reached: reachedPromise, release };
  }

  /** Called by handles: waits if this operation is the one armed. */
  async pass(op: Op, name: string): Promise<void> {
    const armed = this.#armed;
    if (armed === undefined || armed.op !== op || !armed.match.test(name)) return;
    this.#armed = undefined;
    armed.reached();
    await armed.released;
  }

  get capabilities(): FsCapabilities {
    return this.#inner.capabilities;
  }

  get description(): string {
    return `gated:${this.#inner.description}`;
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  list(): Promise<string[]> {
    return this.#inner.list();
  }

  exists(name: string): Promise<boolean> {
    return this.#inner.exists(name);
  }

  async open(name: string, options?: OpenOptions): Promise<FileHandle> {
    return new GatedHandle(this, await this.#inner.open(name, options));
  }

  remove(name: string): Promise<void> {
    return this.#inner.remove(name);
  }

  rename(from: string, to: string): Promise<void> {
    return this.#inner.rename(from, to);
  }

  async reuse(from: string, to: string): Promise<FileHandle> {
    return new GatedHandle(this, await this.#inner.reuse(from, to));
  }

  syncDir(): Promise<void> {
    return this.#inner.syncDir();
  }

  lock(name: string): Promise<DirectoryLock> {
    return this.#inner.lock(name);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

class GatedHandle implements FileHandle {
  constructor(
    readonly fs: GatedFs,
    readonly inner: FileHandle,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  async read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    await this.fs.pass('read', this.inner.name);
    return this.inner.read(target, targetOffset, length, position);
  }

  async write(buffers: readonly Uint8Array[], position: number, options?: WriteOptions): Promise<void> {
    await this.fs.pass('write', this.inner.name);
    return this.inner.write(buffers, position, options);
  }

  sync(): Promise<void> {
    return this.inner.sync();
  }

  truncate(size: number): Promise<void> {
    return this.inner.truncate(size);
  }

  preallocate(offset: number, length: number): Promise<void> {
    return this.inner.preallocate(offset, length);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
