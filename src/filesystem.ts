/**
 * The one seam between the engine and storage. The engine imports nothing
 * else for I/O; every backend (POSIX, io_uring, persistent memory, memfs,
 * fault injection, encryption) implements these two interfaces.
 *
 * Names are plain file names relative to the FileSystem's root directory
 * (no '/', no '..'); raftlog keeps its files in one flat directory.
 *
 * Errors: every method rejects with a RaftlogError (see errors.ts), with
 * code NO_SPACE for ENOSPC, NOT_FOUND, EXISTS, LOCKED, UNSUPPORTED, and IO
 * for anything else. A backend never lets a raw errno escape.
 *
 * Durability: create, rename and remove are not durable until `syncDir()`
 * returns. Data written through a handle is not durable until a barrier
 * (`sync()`, or `write(..., { sync: true })`) returns successfully.
 */

export interface OpenOptions {
  /** Create the file if it does not exist (default false: NOT_FOUND). */
  create?: boolean;
  /** With `create`: fail with EXISTS if the file exists. */
  exclusive?: boolean;
  /** Open for reading only (no lock on writes, backends may map read-only). */
  readOnly?: boolean;
  /**
   * Size the file will grow to, when known at creation. Backends that must
   * reserve space up front (persistent memory maps a fixed capacity) use it;
   * others may ignore it.
   */
  capacityBytes?: number;
}

export interface WriteOptions {
  /**
   * Carry a durability barrier with the write: the promise resolves only once
   * the bytes (and every earlier write to this handle) are durable. io_uring
   * links the write and its fdatasync in one submission; persistent memory
   * copies then flushes exactly the written range.
   */
  sync?: boolean;
}

/** Static facts a backend declares instead of being sniffed. */
export interface FsCapabilities {
  /** Short backend name: 'posix', 'memfs', 'uring', 'pmem', 'fault', 'encrypted'. */
  readonly backend: string;
  /** Writes must be aligned to this many bytes (O_DIRECT); 1 when any offset works. */
  readonly writeAlignment: number;
  /** Files have a fixed capacity set at creation (`capacityBytes`) and cannot grow past it. */
  readonly fixedCapacity: boolean;
  /** A write that overwrites already-written blocks is cheaper to make durable than an append. */
  readonly overwriteIsCheaper: boolean;
}

export interface FileHandle {
  /** File name relative to the FileSystem root, as opened. */
  readonly name: string;

  /**
   * Reads up to `length` bytes at `position` into `target` starting at
   * `targetOffset`. Returns the number of bytes read, fewer only at end of
   * file (a backend loops over short reads itself). The caller owns `target`.
   */
  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number>;

  /**
   * Writes all `buffers`, back to back, starting at `position` (a vectored,
   * positional write). Resolves when every byte is written (backends loop over
   * short writes); with `{ sync: true }`, when every byte is durable as well.
   * The caller must not modify the buffers until the promise settles.
   */
  write(buffers: readonly Uint8Array[], position: number, options?: WriteOptions): Promise<void>;

  /**
   * The durability barrier (fdatasync semantics: data and the size needed to
   * read it back). If it fails, the data written since the last successful
   * barrier may be lost even if a later barrier succeeds; callers must treat a
   * failure as terminal for that data.
   */
  sync(): Promise<void>;

  /** Sets the file length (shrinks or extends with zeros). Not durable until `sync()`. */
  truncate(size: number): Promise<void>;

  /**
   * Reserves `[offset, offset + length)` so later writes there do not fail
   * with NO_SPACE and, where the backend can, do not need a metadata update to
   * become durable. The file size grows to at least `offset + length` and the
   * new range reads as zeros.
   */
  preallocate(offset: number, length: number): Promise<void>;

  /** Current file length in bytes. */
  size(): Promise<number>;

  /** Releases the handle. Pending writes are not made durable by closing. */
  close(): Promise<void>;
}

/** Held for as long as an engine owns the directory. */
export interface DirectoryLock {
  release(): Promise<void>;
}

export interface FileSystem {
  readonly capabilities: FsCapabilities;

  /** Human-readable description, e.g. `posix:/var/lib/raft`. */
  readonly description: string;

  /** Creates the root directory (and parents) if needed. Idempotent. */
  init(): Promise<void>;

  /** Names of the files in the root directory, in no particular order. */
  list(): Promise<string[]>;

  exists(name: string): Promise<boolean>;

  open(name: string, options?: OpenOptions): Promise<FileHandle>;

  /** Removes a file. Not durable until `syncDir()`. */
  remove(name: string): Promise<void>;

  /** Atomically renames `from` to `to`, replacing `to` if it exists. Not durable until `syncDir()`. */
  rename(from: string, to: string): Promise<void>;

  /**
   * Renames `from` to `to` and opens it for writing, for recycling an old log
   * file. Wrappers that keep per-file state (encryption IVs) must treat the
   * result as a new file: nothing written before is readable through it.
   */
  reuse(from: string, to: string): Promise<FileHandle>;

  /** Makes earlier creates, renames and removes in the root durable. */
  syncDir(): Promise<void>;

  /**
   * Takes an exclusive lock named `name` on the directory, held until
   * released or the process exits. Fails with LOCKED when another holder (in
   * this process or another) has it.
   */
  lock(name: string): Promise<DirectoryLock>;

  /** Releases resources the backend owns (rings, mappings). Open handles must be closed first. */
  close(): Promise<void>;
}
