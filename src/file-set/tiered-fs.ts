/**
 * A primary FileSystem with a spill FileSystem behind it, seen by the engine
 * as one directory. Files are created on the primary unless the engine has
 * switched to spilling (because the primary reported NO_SPACE); every other
 * operation goes to whichever file system holds the file, so reads, renames
 * and recycling work across both. File names are unique across the two
 * (sequence numbers), so the union of their listings is one log.
 */
import { NotFoundError } from '../errors.js';
import type { DirectoryLock, FileHandle, FileSystem, FsCapabilities, OpenOptions } from '../filesystem.js';

export class TieredFs implements FileSystem {
  readonly #primary: FileSystem;
  readonly #spill: FileSystem;
  /** Where each known file lives; filled by list() and create. */
  readonly #location = new Map<string, FileSystem>();
  #spilling = false;

  constructor(primary: FileSystem, spill: FileSystem) {
    this.#primary = primary;
    this.#spill = spill;
  }

  get capabilities(): FsCapabilities {
    return this.#primary.capabilities;
  }

  get description(): string {
    return `${this.#primary.description} (spill: ${this.#spill.description})`;
  }

  /** New files go to the spill file system until `preferPrimary()`. */
  get spilling(): boolean {
    return this.#spilling;
  }

  spill(): void {
    this.#spilling = true;
  }

  preferPrimary(): void {
    this.#spilling = false;
  }

  /** Which file system holds `name`: 'primary' or 'spill'. */
  tierOf(name: string): 'primary' | 'spill' | undefined {
    const fs = this.#location.get(name);
    return fs === undefined ? undefined : fs === this.#primary ? 'primary' : 'spill';
  }

  async init(): Promise<void> {
    await this.#primary.init();
    await this.#spill.init();
  }

  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const fs of [this.#spill, this.#primary]) {
      for (const name of await fs.list()) {
        this.#location.set(name, fs);
        names.add(name);
      }
    }
    return [...names];
  }

  async exists(name: string): Promise<boolean> {
    return (await this.#primary.exists(name)) || (await this.#spill.exists(name));
  }

  async open(name: string, options: OpenOptions = {}): Promise<FileHandle> {
    const known = await this.#holder(name);
    if (known !== undefined) return known.open(name, options);
    if (options.create !== true) throw new NotFoundError(`open ${name}: no such file in either directory`, { file: name });
    const target = this.#spilling ? this.#spill : this.#primary;
    const handle = await target.open(name, options);
    this.#location.set(name, target);
    return handle;
  }

  async remove(name: string): Promise<void> {
    const fs = await this.#required(name, 'remove');
    await fs.remove(name);
    this.#location.delete(name);
  }

  async rename(from: string, to: string): Promise<void> {
    const fs = await this.#required(from, 'rename');
    await fs.rename(from, to);
    this.#location.delete(from);
    this.#location.set(to, fs);
  }

  async reuse(from: string, to: string): Promise<FileHandle> {
    const fs = await this.#required(from, 'reuse');
    const handle = await fs.reuse(from, to);
    this.#location.delete(from);
    this.#location.set(to, fs);
    return handle;
  }

  async syncDir(): Promise<void> {
    await this.#primary.syncDir();
    await this.#spill.syncDir();
  }

  async lock(name: string): Promise<DirectoryLock> {
    const primary = await this.#primary.lock(name);
    try {
      const spill = await this.#spill.lock(name);
      return {
        release: async () => {
          await spill.release();
          await primary.release();
        },
      };
    } catch (error) {
      await primary.release();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#primary.close();
    await this.#spill.close();
  }

  async #holder(name: string): Promise<FileSystem | undefined> {
    const cached = this.#location.get(name);
    if (cached !== undefined) return cached;
    for (const fs of [this.#primary, this.#spill]) {
      if (await fs.exists(name)) {
        this.#location.set(name, fs);
        return fs;
      }
    }
    return undefined;
  }

  async #required(name: string, operation: string): Promise<FileSystem> {
    const fs = await this.#holder(name);
    if (fs === undefined) throw new NotFoundError(`${operation} ${name}: no such file in either directory`, { file: name });
    return fs;
  }
}
