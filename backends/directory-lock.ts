/**
 * The directory lock, one scheme for every backend that keeps its files in a
 * real directory (PosixFs, UringFs, PmemFs, and EncryptedFs over any of
 * them), and the one judge of who holds it (the CLI asks `describeHolder`).
 *
 * ## The choice: a symlink whose target names the holder
 *
 * `LOCK` is a symbolic link created by symlink(2), which is atomic and fails
 * with EEXIST when the name is taken. Its target is not a path but the
 * holder's identity, `raftlog-lock/<pid>/<start>/<boot>/<host>/<thread>`
 * (docs/format.md):
 * - it needs no free space: a target this short (at most 59 bytes) is a
 *   "fast" symlink, kept in the inode itself on ext4, xfs and tmpfs, so a
 *   100%-full disk can still be locked (only an inode and a directory entry
 *   are needed, as for any create);
 * - it needs no native addon (node:fs has symlink and readlink), so PosixFs
 *   takes exactly the same lock on macOS as UringFs does on Linux;
 * - it is never torn: the content exists the moment the name does, so a
 *   contender never reads a half-written owner, and nothing is fsynced (a
 *   lock that a power loss takes away was stale anyway: the boot changed).
 * Alternatives weighed: flock(2) is released by the kernel when its holder
 *   dies, but needs the addon, so PosixFs without it would take something
 *   else and the two would not see each other (issue 15, case 1); a pid file
 *   created by link(2) needs a data block, so it fails on a full disk
 *   (case 5). Taking both flock and a symlink would add a second thing to
 *   keep consistent for no gain: the symlink alone excludes everyone.
 *
 * ## Exclusion
 * - In this process: a registry keyed by the directory's real path and the
 *   lock name, shared by every copy of this module (a global symbol), and
 *   checked and set synchronously, so two backends (or two engines on one
 *   backend, or concurrent calls) in one process cannot both pass.
 * - Across processes, and across worker threads of one process (each has its
 *   own registry): the symlink, whose target carries the thread id.
 *
 * ## Stale locks
 * A crashed holder leaves its symlink. It is taken over when its holder is
 * provably gone: same host (hash of the host name) and either another boot
 * (a prefix of the kernel's random boot id), or no process with that pid, or
 * a process with that pid that started at another time (pid reuse; start
 * time from /proc/<pid>/stat, in clock ticks since boot). A lock naming this
 * thread that the registry does not know is a leftover of ours: stale; one
 * naming another thread of this process is held (a thread's end cannot be
 * seen from another, so a worker's leftover lasts until the process exits).
 * Takeover renames the stale link aside (claiming it atomically), checks it
 * is still what was judged, and only then deletes it; a fresh lock moved
 * aside by mistake is put back. Residual race: three processes contending
 * for one stale lock within microseconds can, at worst, leave the one that
 * was put back without its link.
 * Leftovers of the earlier schemes never make a directory unopenable: a
 * regular `LOCK` holding `pid host token boot` (PosixFs's old pid file) is
 * judged by its pid as before, and an empty one (the old flock target of
 * UringFs/PmemFs) is held only while a shared non-blocking flock on it fails
 * (checked where the addon exists); otherwise both are stale.
 *
 * Limitations: a lock from another host (a directory shared over NFS, or a
 * container with its own host name) is never judged stale: the error names
 * its pid and asks the operator to remove it. Where there is no /proc
 * (macOS), liveness is judged by pid alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { threadId } from 'node:worker_threads';
import { loadNative } from '../hardware/native.js';
import { LockedError, fromSystemError } from '../src/errors.js';
import type { DirectoryLock } from '../src/filesystem.js';
import { checkName } from './path-names.js';

/** First component of every lock target: tells a raftlog lock from any other symlink. */
export const LOCK_TARGET_PREFIX = 'raftlog-lock';
/** Scratch names used while taking over a stale lock (the CLI counts them as raftlog's). */
export const LOCK_SCRATCH_PREFIX = '.raftlog-lock-';
const TAKEOVER_ATTEMPTS = 5;
const REGISTRY_KEY = Symbol.for('raftlog.directory.locks');

/** The identity a lock target carries. `undefined` fields were unknown to the holder. */
export interface LockOwner {
  readonly pid: number;
  /** Process start time in clock ticks since boot (Linux), as decimal text. */
  readonly start: string | undefined;
  /** First 8 hex digits of the kernel's boot id. */
  readonly boot: string | undefined;
  /** First 8 hex digits of SHA-256 of the host name. */
  readonly host: string;
  /** worker_threads threadId of the holder (0: the main thread). */
  readonly thread: number;
}

// ---- identity -------------------------------------------------------------

let cachedBoot: string | null | undefined;
let cachedSelf: string | undefined;

function bootTag(): string | undefined {
  if (cachedBoot === undefined) {
    try {
      const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')
        .replace(/[^0-9a-f]/gi, '')
        .toLowerCase();
      cachedBoot = id.length >= 8 ? id.slice(0, 8) : null;
    } catch {
      cachedBoot = null; // not Linux
    }
  }
  return cachedBoot ?? undefined;
}

function hostTag(): string {
  return createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
}

/** Start time of `pid` from /proc/<pid>/stat (field 22), undefined where unreadable. */
function startTime(pid: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

function selfTarget(): string {
  cachedSelf ??= formatTarget({ pid: process.pid, start: startTime(process.pid), boot: bootTag(), host: hostTag(), thread: threadId });
  return cachedSelf;
}

export function formatTarget(owner: LockOwner): string {
  return [LOCK_TARGET_PREFIX, owner.pid, owner.start ?? '-', owner.boot ?? '-', owner.host, owner.thread].join('/');
}

export function parseTarget(target: string): LockOwner | undefined {
  const fields = target.split('/');
  if (fields.length !== 6 || fields[0] !== LOCK_TARGET_PREFIX || !/^[1-9]\d*$/.test(fields[1]!)) return undefined;
  const [, pid, start, boot, host, thread] = fields as [string, string, string, string, string, string];
  if (!/^(\d+|-)$/.test(start) || !/^([0-9a-f]{8}|-)$/.test(boot) || !/^[0-9a-f]{8}$/.test(host) || !/^\d+$/.test(thread)) return undefined;
  return {
    pid: Number(pid),
    start: start === '-' ? undefined : start,
    boot: boot === '-' ? undefined : boot,
    host,
    thread: Number(thread),
  };
}

// ---- judging a holder -----------------------------------------------------

/** What is at the lock's name, read without changing anything. */
type Found = { kind: 'symlink'; target: string } | { kind: 'file'; text: string } | { kind: 'other' } | { kind: 'none' };

async function inspect(lockPath: string): Promise<Found> {
  try {
    const stat = await fsp.lstat(lockPath);
    if (stat.isSymbolicLink()) return { kind: 'symlink', target: await fsp.readlink(lockPath) };
    if (stat.isFile()) return { kind: 'file', text: await fsp.readFile(lockPath, 'utf8') };
    return { kind: 'other' };
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return { kind: 'none' };
    throw error;
  }
}

function sameFound(a: Found, b: Found): boolean {
  if (a.kind === 'symlink' && b.kind === 'symlink') return a.target === b.target;
  if (a.kind === 'file' && b.kind === 'file') return a.text === b.text;
  return a.kind === b.kind;
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else. Only ESRCH proves it gone.
    return errnoOf(error) !== 'ESRCH';
  }
}

/** Why `owner` still holds the lock, or undefined when it is provably gone. */
function liveOwner(owner: LockOwner): string | undefined {
  if (owner.host !== hostTag()) {
    return `held by pid ${owner.pid} on another host (host tag ${owner.host}); liveness cannot be checked from here, remove LOCK if that engine is gone`;
  }
  const boot = bootTag();
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return undefined;
  if (!pidExists(owner.pid)) return undefined;
  if (owner.start !== undefined) {
    const now = startTime(owner.pid);
    if (now !== undefined && now !== owner.start) return undefined; // the pid was reused
  }
  if (owner.pid === process.pid) {
    return owner.thread === threadId
      ? `held by this process (pid ${owner.pid})`
      : `held by worker thread ${owner.thread} of this process (pid ${owner.pid})`;
  }
  return `held by running process pid ${owner.pid}`;
}

/** The old PosixFs pid file, `pid host token boot-id`: held while that pid lives (same host, same boot). */
function legacyPidFileHolder(text: string): string | undefined {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 3 || fields.length > 4 || !/^[1-9]\d*$/.test(fields[0]!)) return undefined;
  const pid = Number(fields[0]);
  const host = fields[1]!;
  if (host !== (hostname().replace(/\s+/g, '_') || 'localhost')) {
    return `held by pid ${pid} on host ${host} (an older raftlog's lock file); remove LOCK if that engine is gone`;
  }
  let boot: string | undefined;
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    boot = undefined;
  }
  const theirs = fields[3];
  if (theirs !== undefined && theirs !== '-' && boot !== undefined && theirs !== boot) return undefined;
  if (pid === process.pid || !pidExists(pid)) return undefined;
  return `held by running process pid ${pid} (an older raftlog's lock file)`;
}

/** The old UringFs/PmemFs flock target: held while someone holds an exclusive flock on it. */
function legacyFlockHolder(lockPath: string): string | undefined {
  const native = loadNative();
  if (!native.ok) return undefined; // that scheme needed the addon; without it here, nothing can be holding it here
  let fd: number;
  try {
    fd = openSync(lockPath, 'r');
  } catch {
    return undefined;
  }
  try {
    native.binding.flock(fd, false, true);
    native.binding.funlock(fd);
    return undefined;
  } catch (error) {
    const held = errnoOf(error) === 'EAGAIN' || errnoOf(error) === 'EWOULDBLOCK';
    return held ? 'held by a running engine of an older raftlog (flock on LOCK)' : undefined;
  } finally {
    closeSync(fd);
  }
}

/** Why what was found still holds the lock, or undefined when it is stale. */
function holderOf(found: Found, lockPath: string): string | undefined {
  switch (found.kind) {
    case 'none':
      return undefined;
    case 'symlink': {
      const owner = parseTarget(found.target);
      if (owner === undefined) {
        return `LOCK is a symlink raftlog did not write (-> ${JSON.stringify(found.target)}); remove it if no engine uses the directory`;
      }
      return liveOwner(owner);
    }
    case 'file':
      return found.text.trim() === '' ? legacyFlockHolder(lockPath) : legacyPidFileHolder(found.text);
    case 'other':
      return 'LOCK is neither a symlink nor a file; remove it if no engine uses the directory';
  }
}

/**
 * Who holds `dir`'s lock `name`, or undefined when nobody does (absent or
 * stale). Reads only: for tools that promise not to change the directory.
 */
export async function describeHolder(dir: string, name: string): Promise<string | undefined> {
  const lockPath = path.join(dir, name);
  let found: Found;
  try {
    found = await inspect(lockPath);
  } catch (error) {
    // Unreadable: assume held, the safe answer for a tool about to write.
    return `LOCK unreadable (${errnoOf(error) ?? 'error'})`;
  }
  const holder = holderOf(found, lockPath);
  // A lock of this very thread is live if the registry knows it, else a leftover.
  if (holder !== undefined && found.kind === 'symlink' && found.target === selfTarget()) {
    const realDir = await fsp.realpath(dir).catch(() => path.resolve(dir));
    return registry().has(registryKey(realDir, name)) ? holder : undefined;
  }
  return holder;
}

// ---- taking and releasing -------------------------------------------------

function registry(): Set<string> {
  const slot = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  let set = slot[REGISTRY_KEY];
  if (set === undefined) {
    set = new Set();
    slot[REGISTRY_KEY] = set;
  }
  return set;
}

function registryKey(realDir: string, name: string): string {
  return path.join(realDir, name);
}

/**
 * Takes lock `name` on directory `root` (which must exist: NOT_FOUND
 * otherwise). LOCKED, naming the holder, while anyone else holds it.
 */
export async function lockDirectory(root: string, name: string): Promise<DirectoryLock> {
  checkName(name, 'lock');
  // Keyed by the real path, so two backends reaching one directory through
  // different (symlinked, relative) paths still exclude each other.
  const realDir = await fsp.realpath(root);
  const lockPath = path.join(realDir, name);
  const key = registryKey(realDir, name);
  const held = registry();
  if (held.has(key)) {
    throw new LockedError(`lock ${name}: already held in this process (pid ${process.pid}) on ${realDir}`, { file: name });
  }
  held.add(key);
  try {
    const target = selfTarget();
    for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
      try {
        await fsp.symlink(target, lockPath);
        return new SymlinkLock(lockPath, key, name, target);
      } catch (error) {
        if (errnoOf(error) !== 'EEXIST') throw error;
      }
      const found = await inspect(lockPath);
      if (found.kind === 'none') continue; // released between our symlink and our look
      // This thread's, but not in the registry: a leftover of an earlier lock here.
      const ours = found.kind === 'symlink' && found.target === target;
      const holder = ours ? undefined : holderOf(found, lockPath);
      if (holder !== undefined) throw new LockedError(`lock ${name}: ${holder} (${realDir})`, { file: name });
      await removeIfUnchanged(lockPath, found);
    }
    throw new LockedError(`lock ${name}: still contended after ${TAKEOVER_ATTEMPTS} takeover attempts (${realDir})`, { file: name });
  } catch (error) {
    held.delete(key);
    throw error;
  }
}

/**
 * Removes a stale lock, but only if it is still the one judged: renaming it
 * to a private name claims whatever is there atomically; if that turns out
 * to be a fresh lock, it is put back.
 */
async function removeIfUnchanged(lockPath: string, judged: Found): Promise<void> {
  const aside = path.join(path.dirname(lockPath), `${LOCK_SCRATCH_PREFIX}${randomBytes(8).toString('hex')}.stale`);
  try {
    await fsp.rename(lockPath, aside);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return; // someone else removed it first
    throw error;
  }
  try {
    const claimed = await inspect(aside);
    if (sameFound(claimed, judged)) return;
    // A fresh lock taken between our look and our rename: give it back.
    if (claimed.kind === 'symlink') await ignoreExists(fsp.symlink(claimed.target, lockPath));
    else await ignoreExists(fsp.link(aside, lockPath));
  } finally {
    await fsp.unlink(aside).catch(() => undefined); // uniquely named, never read again
  }
}

async function ignoreExists(operation: Promise<void>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
  }
}

class SymlinkLock implements DirectoryLock {
  readonly #lockPath: string;
  readonly #key: string;
  readonly #name: string;
  readonly #target: string;
  #released: Promise<void> | undefined;

  constructor(lockPath: string, key: string, name: string, target: string) {
    this.#lockPath = lockPath;
    this.#key = key;
    this.#name = name;
    this.#target = target;
  }

  /** Idempotent: later calls return the first call's promise. A later holder is unaffected. */
  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    try {
      // Only our own link: a lock that is no longer ours is not ours to delete.
      const found = await inspect(this.#lockPath);
      if (found.kind === 'symlink' && found.target === this.#target) await fsp.unlink(this.#lockPath);
    } catch (error) {
      throw fromSystemError(error, 'release lock', this.#name);
    } finally {
      registry().delete(this.#key);
    }
  }
}

export function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
