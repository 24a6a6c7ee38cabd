/**
 * PosixFs: the FileSystem seam on plain `node:fs`, no native addon.
 *
 * What node:fs cannot do, and what stands in for it here:
 * - no fallocate: `preallocate` writes zeros past the current end (see there);
 * - no flock/fcntl locks: `lock` combines a process-wide registry with a lock
 *   file holding the owner's pid, checked for liveness (see `acquireLock`).
 *
 * Directory entries are made durable only by `syncDir()`, never implicitly:
 * the engine decides when a create/rename/remove has to be durable and pays
 * for one directory fsync per batch of them, not one per call.
 */

import { constants as fsConstants, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as path from 'node:path';

import {
  ClosedError,
  InvalidArgumentError,
  IoError,
  LockedError,
  fromSystemError,
} from '../src/errors.js';
import type {
  DirectoryLock,
  FileHandle,
  FileSystem,
  FsCapabilities,
  OpenOptions,
  WriteOptions,
} from '../src/filesystem.js';
import { FILE_MODE, errnoOf, fileExists, filePath, openFlags, listFiles, makeRoot, removeFile, renameFile, syncDirectory } from './posix-directory.js';
import { checkCount, checkName, checkOpenOptions, checkRange, checkReadArgs, checkWriteArgs } from './path-names.js';

const { O_RDWR } = fsConstants;

/** One shared, never-written buffer of zeros for preallocation: large enough to amortise syscalls, small enough to keep. */
const ZEROS = new Uint8Array(1 << 20);


export class PosixFs implements FileSystem {
  readonly capabilities: FsCapabilities = {
    backend: 'posix',
    writeAlignment: 1,
    fixedCapacity: false,
    overwriteIsCheaper: true,
  };
  readonly description: string;
  /** Absolute path of the root directory. */
  readonly root: string;
  #closed = false;

  constructor(root: string) {
    if (typeof root !== 'string' || root.length === 0) {
      throw new InvalidArgumentError('PosixFs: root must be a non-empty path');
    }
    this.root = path.resolve(root);
    this.description = `posix:${this.root}`;
  }

  init(): Promise<void> {
    return this.#run('init', undefined, () => makeRoot(this.root));
  }

  list(): Promise<string[]> {
    return this.#run('list', undefined, () => listFiles(this.root));
  }

  exists(name: string): Promise<boolean> {
    return this.#run('exists', name, () => fileExists(this.root, name));
  }

  open(name: string, options: OpenOptions = {}): Promise<FileHandle> {
    return this.#run('open', name, async () => {
      const file = this.#path(name, 'open');
      const readOnly = checkOpenOptions(options, name);
      const flags = openFlags(options, readOnly);
      return PosixFileHandle.open(name, file, flags, readOnly);
    });
  }

  remove(name: string): Promise<void> {
    return this.#run('remove', name, () => removeFile(this.root, name));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run('rename', from, async () => {
      await renameFile(this.root, from, to, 'rename');
    });
  }

  reuse(from: string, to: string): Promise<FileHandle> {
    return this.#run('reuse', from, async () => {
      const target = await renameFile(this.root, from, to, 'reuse');
      return PosixFileHandle.open(to, target, O_RDWR, false);
    });
  }

  syncDir(): Promise<void> {
    return this.#run('syncDir', undefined, () => syncDirectory(this.root));
  }

  lock(name: string): Promise<DirectoryLock> {
    return this.#run('lock', name, async () => {
      checkName(name, 'lock');
      // Keyed by the real path so two PosixFs reaching one directory through
      // different (symlinked, relative) paths still exclude each other.
      const lockPath = path.join(await fsp.realpath(this.root), name);
      return acquireLock(lockPath, name);
    });
  }

  /** Idempotent. Locks are not released by closing; release them first. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #path(name: string, operation: string): string {
    return filePath(this.root, name, operation);
  }

  /** Runs one operation: rejects after close, and maps every failure into the error family. */
  async #run<T>(operation: string, file: string | undefined, body: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError(`${operation}: ${this.description} is closed`, { file });
    try {
      return await body();
    } catch (error) {
      throw fromSystemError(error, operation, file);
    }
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
      await this.#gate.shared(() => this.#writeAll(buffers, position));
      if (options.sync === true) await this.#live('write').datasync();
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
   * are left alone: they are either data or already-allocated zeros.
   */
  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', async () => {
      const end = checkRange(offset, length, 'preallocate', this.name);
      this.#writable('preallocate');
      // Exclusive: the size is read then zeros are written after it, so a
      // concurrent write past the old end would otherwise be overwritten.
      await this.#gate.exclusive(async () => {
        const size = (await this.#live('preallocate').stat()).size;
        for (let at = size; at < end; at += ZEROS.byteLength) {
          await this.#writeAll([ZEROS.subarray(0, Math.min(ZEROS.byteLength, end - at))], at);
        }
      });
    });
  }

  size(): Promise<number> {
    return this.#run('size', async () => (await this.#live('size').stat()).size);
  }

  /** Idempotent. Waits for operations in flight on the descriptor (node's FileHandle does). */
  async close(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    try {
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
    if (this.#readOnly) throw new InvalidArgumentError(`${operation} ${this.name}: handle is read-only`, { file: this.name });
  }

  async #run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw fromSystemError(error, operation, this.name);
    }
  }
}

/**
 * The buffers still to write after the first `written` bytes went down: whole
 * buffers are dropped and the first partly written one is re-viewed (no copy).
 * Exported for unit tests; not part of the public API.
 */
export function remainingBuffers(buffers: readonly Uint8Array[], written: number): Uint8Array[] {
  let skip = written;
  let index = 0;
  while (index < buffers.length && skip >= buffers[index]!.byteLength) {
    skip -= buffers[index]!.byteLength;
    index++;
  }
  const rest = buffers.slice(index);
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
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

// ---------------------------------------------------------------------------
// Directory lock.
//
// node has no flock, so exclusivity has two layers:
// 1. a registry shared by every copy of this module in the process (lock path
//    -> token), checked and set synchronously, so concurrent lock() calls in
//    one process cannot both pass;
// 2. a lock file `pid host token boot-id`, created atomically with full
//    content (written under a temporary name, then link(2)ed into place, which
//    fails with EEXIST if the name is taken), so another process that finds it
//    never reads a half-written owner.
//
// A lock file whose owner is provably gone is stale and is taken over, so a
// crashed engine never blocks its own restart: the owner's pid no longer
// exists, the machine rebooted since (boot id differs), the file is empty or
// unreadable (it is never fsynced, so a power loss can leave it empty), or it
// names this very process while the registry says we do not hold it.
//
// Limitations: liveness is only judged on the same host; a lock file from
// another host is always treated as held. A pid reused by an unrelated
// process after a crash (same boot) looks alive, and the error names the pid
// so an operator can remove the file. Link needs a file system with hard
// links (every local Linux one, and NFS).
// ---------------------------------------------------------------------------

const REGISTRY_KEY = Symbol.for('raftlog.posix.locks');
const TAKEOVER_ATTEMPTS = 5;

function lockRegistry(): Map<string, string> {
  const slot = globalThis as unknown as Record<symbol, Map<string, string> | undefined>;
  let registry = slot[REGISTRY_KEY];
  if (registry === undefined) {
    registry = new Map();
    slot[REGISTRY_KEY] = registry;
  }
  return registry;
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  /** Linux boot id, undefined where the platform has none. */
  readonly boot: string | undefined;
}

let cachedBootId: string | null | undefined;

function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null; // not Linux: liveness falls back to pid checks alone
    }
  }
  return cachedBootId ?? undefined;
}

/** Whitespace separates the fields, so it cannot appear inside one. */
function localHost(): string {
  return hostname().replace(/\s+/g, '_') || 'localhost';
}

function formatOwner(owner: LockOwner): string {
  return `${owner.pid} ${owner.host} ${owner.token} ${owner.boot ?? '-'}\n`;
}

function parseOwner(text: string): LockOwner | undefined {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 3 || fields.length > 4 || !/^[1-9][0-9]*$/.test(fields[0]!)) return undefined;
  const boot = fields[3];
  return {
    pid: Number(fields[0]),
    host: fields[1]!,
    token: fields[2]!,
    boot: boot === undefined || boot === '-' ? undefined : boot,
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else. Only ESRCH proves it gone.
    return errnoOf(error) !== 'ESRCH';
  }
}

/** Why the lock file's owner still holds it, or undefined if the file is stale. */
function liveHolder(owner: LockOwner | undefined): string | undefined {
  if (owner === undefined) return undefined;
  if (owner.host !== localHost()) {
    return `held by pid ${owner.pid} on host ${owner.host} (liveness cannot be checked from here; remove the lock file if that engine is gone)`;
  }
  const boot = bootId();
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return undefined;
  if (owner.pid === process.pid) return undefined;
  if (!pidAlive(owner.pid)) return undefined;
  return `held by running process pid ${owner.pid}`;
}

async function acquireLock(lockPath: string, name: string): Promise<DirectoryLock> {
  const registry = lockRegistry();
  if (registry.has(lockPath)) {
    throw new LockedError(`lock ${name}: already held in this process (pid ${process.pid})`, { file: name });
  }
  const token = randomBytes(16).toString('hex');
  registry.set(lockPath, token);
  try {
    const content = formatOwner({ pid: process.pid, host: localHost(), token, boot: bootId() });
    for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
      if (await createLockFile(lockPath, content, token)) return new PosixDirectoryLock(lockPath, name, token);
      const current = await readIfExists(lockPath);
      if (current === undefined) continue; // released between our link and our read
      const holder = liveHolder(parseOwner(current));
      if (holder !== undefined) throw new LockedError(`lock ${name}: ${holder}`, { file: name });
      await removeIfUnchanged(lockPath, current, token);
    }
    throw new LockedError(`lock ${name}: still contended after ${TAKEOVER_ATTEMPTS} takeover attempts`, { file: name });
  } catch (error) {
    registry.delete(lockPath);
    throw error;
  }
}

/** Publishes `content` at `lockPath` atomically; false if the name is taken. */
async function createLockFile(lockPath: string, content: string, token: string): Promise<boolean> {
  const temporary = scratchPath(lockPath, token, 'tmp');
  await fsp.writeFile(temporary, content, { mode: FILE_MODE });
  try {
    await fsp.link(temporary, lockPath);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false;
    throw error;
  } finally {
    await unlinkQuietly(temporary);
  }
}

/**
 * Removes a stale lock file, but only if it is still the one we judged:
 * a plain unlink could delete a fresh lock another process took over in the
 * meantime. Renaming to a private name claims whatever is there atomically;
 * if that turns out not to be the stale file, it is linked back.
 *
 * Residual race: while the displaced file is aside, a third contender can
 * create the name; the link back then fails and the displaced owner no
 * longer has a file. It takes three processes contending for one stale lock
 * within microseconds.
 */
async function removeIfUnchanged(lockPath: string, judged: string, token: string): Promise<void> {
  const aside = scratchPath(lockPath, token, 'stale');
  try {
    await fsp.rename(lockPath, aside);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return; // someone else removed it first
    throw error;
  }
  try {
    if ((await fsp.readFile(aside, 'utf8')) === judged) return;
    await fsp.link(aside, lockPath).catch((error: unknown) => {
      if (errnoOf(error) !== 'EEXIST') throw error;
    });
  } finally {
    await unlinkQuietly(aside);
  }
}

class PosixDirectoryLock implements DirectoryLock {
  readonly #lockPath: string;
  readonly #name: string;
  readonly #token: string;
  #released: Promise<void> | undefined;

  constructor(lockPath: string, name: string, token: string) {
    this.#lockPath = lockPath;
    this.#name = name;
    this.#token = token;
  }

  /** Idempotent: later calls return the first call's promise. */
  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    try {
      // Only our own file: if it was taken over (we were judged stale), it is not ours to delete.
      const current = await readIfExists(this.#lockPath);
      if (current !== undefined && parseOwner(current)?.token === this.#token) await fsp.unlink(this.#lockPath);
    } catch (error) {
      throw fromSystemError(error, 'release lock', this.#name);
    } finally {
      const registry = lockRegistry();
      if (registry.get(this.#lockPath) === this.#token) registry.delete(this.#lockPath);
    }
  }
}

/**
 * A uniquely named scratch file next to the lock: the same directory, so
 * link(2) and rename(2) stay on one file system, and not derived from the
 * lock's name, so a long lock name cannot push it past NAME_MAX.
 */
function scratchPath(lockPath: string, token: string, kind: 'tmp' | 'stale'): string {
  return path.join(path.dirname(lockPath), `.raftlog-lock-${token}.${kind}`);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** For our own scratch files: a leftover is harmless, and failing the lock over it would not be. */
async function unlinkQuietly(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch {
    // Nothing to do: the file is uniquely named and never read again.
  }
}

