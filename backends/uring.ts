/**
 * UringFs: the FileSystem seam on io_uring, through raftlog's own N-API addon
 * (hardware/), with an optional O_DIRECT mode.
 *
 * Submission. Nothing is submitted when a method is called: operations queue
 * per file and one flush per event-loop turn (setImmediate) prepares them all
 * and hands them to the kernel in a single io_uring_enter. Within a file, the
 * operations of one flush form one linked chain (IOSQE_IO_LINK), so a group
 * commit, writes plus the fdatasync that carries the barrier, is a single
 * submission, and the barrier covers exactly the writes before it. A file
 * keeps at most one chain in flight; the next waits for it. That is what
 * makes `sync()` cover every earlier write without IOSQE_IO_DRAIN (which
 * would stall the whole ring, every file), and what keeps two O_DIRECT chains
 * from rewriting the same partial block out of order. Reads bypass the
 * chains and go out in the same enter.
 *
 * Bounds. The ring has `queueDepth` SQ entries and twice as many CQ entries.
 * JS never has more SQEs in flight than the CQ holds (so the kernel never
 * overflows it), and a chain never exceeds the SQ. When more work is queued
 * than fits, it waits in the per-file queues until completions free room;
 * nothing ever blocks the event loop waiting on the kernel.
 *
 * Completions arrive on the event loop through the ring's registered eventfd
 * (see hardware/ring.cc); a short read or write is continued from where it
 * stopped, never reported as success. io_uring treats a short write in a chain
 * as a failure and cancels the rest of the chain (-ECANCELED); the cancelled
 * tail is resubmitted as a new chain, barrier included.
 *
 * Direct mode (`direct: true`): files are opened O_DIRECT and the kernel only
 * ever sees writes of whole blocks from aligned memory, at aligned offsets:
 * every write is turned into an aligned, padded block range built in a buffer
 * from `alignedAlloc`, whose partial first and last blocks are filled from a
 * small per-file cache of block images (normally just the tail block, which
 * is what makes an unaligned append cost no read: the next append rewrites
 * that block with the new bytes after the old ones). A partial block that is
 * not cached is read first (aligned), with no chain of the file in flight,
 * unless it lies where the disk is known to hold zeros: past the end, or in
 * space this UringFs preallocated and has not written since (so appends into
 * a preallocated file never read).
 * Block size: what statx(STATX_DIOALIGN) demands, raised to the file
 * system's block size up to 4096 (4096 where the kernel cannot say). Not
 * always 4096: on a file system with 1 KiB blocks the padding of a 4 KiB
 * block past the end of file needs blocks the file does not have, so
 * rewriting a tail (LogWriter.resume at open) failed with ENOSPC on a full
 * disk (issue 15 case 5); padding within the file system's own block never
 * allocates.
 *
 * Direct-mode file size. The logical size is tracked in JS per file (shared by
 * every handle of this UringFs on the same inode); `size()` returns it and
 * reads stop at it. Padding makes the on-disk size run ahead of it by less
 * than a block, and every barrier puts it right: a chain that syncs includes
 * IORING_OP_FTRUNCATE to the logical size before its fdatasync (Linux 6.9+;
 * on older kernels the size is fixed when a writable handle closes instead).
 * So after a crash a file's size is exact as of its last barrier, plus at most
 * one block of zeros past data written after it, which is the same state a
 * preallocated file is in. The bytes between the logical and the on-disk size
 * are always zeros. Direct mode assumes no other writer (another process, or
 * another FileSystem instance) changes a file while this one has it open; the
 * engine's directory lock guarantees that.
 */

import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';

import {
  ClosedError,
  InvalidArgumentError,
  IoError,
  RaftlogError,
  UnsupportedError,
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
import { explainUringRefusal, requireNative } from '../hardware/native.js';
import type { NativeBinding, NativeRing } from '../hardware/native.js';
import { lockDirectory } from './directory-lock.js';
import { FILE_MODE, errnoOf, fileExists, filePath, openFlags, listFiles, makeRoot, removeFile, renameFile, syncDirectory } from './posix-directory.js';
import { checkCount, checkOpenOptions, checkRange, checkReadArgs, checkWriteArgs } from './path-names.js';

export interface UringFsOptions {
  /** Open files with O_DIRECT and write only aligned, padded blocks (default false). */
  direct?: boolean;
  /** Submission-queue entries (default 64, at least 4; the kernel rounds up to a power of two). */
  queueDepth?: number;
}

/** Counters of the ring behind a UringFs, for tests and benchmarks. */
export interface UringStats {
  /** io_uring_enter calls that submitted work: one per event-loop turn with I/O. */
  readonly submissions: number;
  /** SQEs submitted (a group commit of contiguous appends is 2: writev + fdatasync). */
  readonly sqes: number;
  readonly completions: number;
  /** SQEs submitted whose completion has not arrived. */
  readonly inflight: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly direct: boolean;
  /** Whether barriers can fix a direct-mode file's size in-chain (IORING_OP_FTRUNCATE). */
  readonly ftruncateInChain: boolean;
}

const { O_RDWR, O_DIRECT } = fs.constants;
const DEFAULT_QUEUE_DEPTH = 64;
const MIN_QUEUE_DEPTH = 4;
/** A queue item expands to at most write + ftruncate + fdatasync. */
const MAX_OPS_PER_ITEM = 3;
/** Linux IOV_MAX: a writev with more buffers fails, so longer lists are concatenated. */
const IOV_MAX = 1024;
/** Reads larger than this are issued in pieces, so one huge read cannot hog the ring. */
const READ_CHUNK = 16 * 1024 * 1024;
/** Block images kept per direct-mode file; the tail block is the one that matters. */
const BLOCK_CACHE_ENTRIES = 8;
/** The direct-mode block where the kernel cannot tell (no STATX_DIOALIGN), and the most a file system's block size raises it to. */
const DIRECT_BLOCK = 4096;
const ECANCELED = osConstants.errno.ECANCELED;
const MAX_ATTEMPTS = 1000;

const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** A Node-style system error for a negative errno from a CQE, for fromSystemError. */
function cqeError(res: number, syscall: string): Error {
  const code = ERRNO_NAMES.get(-res) ?? `E${-res}`;
  return Object.assign(new Error(`${syscall} failed: ${code}`), { code, errno: res, syscall });
}

/**
 * The RaftlogError UringFs reports for a failed completion (`res` < 0):
 * NO_SPACE for ENOSPC/EDQUOT, IO for EIO and the rest, with `errno` set.
 * Exported so the mapping can be tested against real CQEs.
 */
export function errorFromCqe(res: number, operation: string, file: string): RaftlogError {
  return fromSystemError(cqeError(res, operation), operation, file);
}


// ---- promisified fd calls (node:fs/promises works on FileHandles, not fds) ----

function openFd(file: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, FILE_MODE, (e, fd) => (e ? reject(e) : resolve(fd))));
}
function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve())));
}
function fstatFd(fd: number): Promise<fs.BigIntStats> {
  return new Promise((resolve, reject) => fs.fstat(fd, { bigint: true }, (e, s) => (e ? reject(e) : resolve(s))));
}
function ftruncateFd(fd: number, size: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, size, (e) => (e ? reject(e) : resolve())));
}

// ---------------------------------------------------------------------------
// Requests, queue items and ring operations.

/** One caller-visible promise; settles when every op it depends on has. */
class Request {
  left = 0;
  settled = false;
  constructor(
    readonly resolve: () => void,
    readonly reject: (error: RaftlogError) => void,
  ) {}

  done(): void {
    if (this.settled) return;
    this.left--;
    if (this.left === 0) {
      this.settled = true;
      this.resolve();
    }
  }

  fail(error: RaftlogError): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}

type Item =
  | { kind: 'write'; fd: number; buffers: readonly Uint8Array[]; position: number; length: number; sync: boolean; req: Request }
  | { kind: 'sync'; fd: number; writable: boolean; req: Request }
  | { kind: 'fallocate'; fd: number; offset: number; length: number; req: Request }
  | { kind: 'task'; run: () => Promise<void>; req: Request };

/** One SQE of a chain. */
interface ChainOp {
  kind: 'write' | 'fsync' | 'fallocate' | 'ftruncate';
  fd: number;
  /** write: what is still to be written; direct mode: the single aligned buffer. */
  buffers: Uint8Array[];
  /** write: file offset of buffers[0]; fallocate: offset; ftruncate: the new size. */
  position: number;
  /** write: bytes still to write; fallocate: length. */
  length: number;
  /** Direct-mode writes are retried whole: a remainder could be misaligned. */
  aligned: boolean;
  /** fsync: issued through a writable descriptor (ftruncate needs one). */
  writable: boolean;
  /** Resubmissions after a short write cut the chain; bounded so a kernel bug cannot spin. */
  attempts: number;
  reqs: Request[];
  res: number;
}

interface Chain {
  readonly file: FileState;
  readonly ops: ChainOp[];
  left: number;
}

interface ReadJob {
  readonly fd: number;
  readonly target: Uint8Array;
  targetOffset: number;
  remaining: number;
  position: number;
  done: number;
  /** Direct mode: a short read that is not a whole number of blocks is end of file. */
  readonly block: number;
  readonly resolve: (bytes: number) => void;
  readonly reject: (error: RaftlogError) => void;
  readonly name: string;
}

type Pending = { chain: Chain; op: ChainOp } | { read: ReadJob; asked: number };

/** What a handle may ask of its UringFs; kept off the public class. */
interface Core {
  readonly direct: boolean;
  closed(): boolean;
  /** The file system refused fallocate once: preallocate extends the file instead. */
  fallocateRefused(): boolean;
  enqueue(file: FileState, item: Item): void;
  read(job: ReadJob): void;
  released(file: FileState, fd: number): void;
  alignedBuffer(size: number, block: number): Uint8Array;
}

// ---------------------------------------------------------------------------

/**
 * What this UringFs knows about one open inode: its queue, its chain in
 * flight, and in direct mode its logical size and block images. Shared by all
 * handles on the inode so they agree on size and never race on a block.
 */
class FileState {
  readonly queue: Item[] = [];
  /** Ops cancelled by a short write, to resubmit before anything else. */
  retry: ChainOp[] = [];
  chain: Chain | undefined;
  /** A task, or a direct-mode read of partial blocks, is running. */
  running = false;
  handles = 0;
  /** Direct mode: a plan whose partial blocks are being read. */
  plan: ChainOp[] | undefined;
  /** Direct mode: after a failed chain, size and cache are reloaded before the next build. */
  stale = false;
  readonly cache = new Map<number, Uint8Array>();
  /** Direct mode: blocks read from disk for `plan`, consulted before the cache (which may be smaller). */
  prefetched = new Map<number, Uint8Array>();
  /** Descriptors of the open handles (any will do for fstat). */
  readonly fds = new Set<number>();
  /**
   * Direct mode: every byte on disk at or past this offset is zero. It is
   * what lets an append into a preallocated range skip reading the block it
   * starts filling: fallocate'd space reads as zeros, and only our own writes
   * (which move this up) put anything there.
   */
  zeroFrom: number;

  constructor(
    readonly key: string,
    readonly name: string,
    /** Direct mode: block size; 1 in buffered mode. */
    readonly block: number,
    public logical: number,
    public physical: number,
  ) {
    this.zeroFrom = physical;
  }

  get busy(): boolean {
    return this.chain !== undefined || this.running;
  }

  hasWork(): boolean {
    return this.queue.length > 0 || this.retry.length > 0 || this.plan !== undefined;
  }

  remember(index: number, image: Uint8Array): void {
    this.cache.delete(index);
    this.cache.set(index, image);
    while (this.cache.size > BLOCK_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
  }
}

export class UringFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly root: string;
  readonly direct: boolean;

  readonly #native: NativeBinding;
  readonly #ring: NativeRing;
  readonly #cqEntries: number;
  readonly #sqEntries: number;
  readonly #ftruncateInChain: boolean;
  readonly #pending = new Map<number, Pending>();
  readonly #files = new Map<string, FileState>();
  readonly #dirty = new Set<FileState>();
  readonly #reads: ReadJob[] = [];
  #nextId = 1;
  /** SQEs prepared (submitted or about to be) whose completion has not arrived. */
  #inflight = 0;
  #flushScheduled = false;
  #closed = false;
  /** Set by the first fallocate the file system refuses (FUSE, ramfs, ...); see UringFileHandle.preallocate. */
  #fallocateRefused = false;
  #idleWaiters: (() => void)[] = [];
  #ringClosed = false;
  #core: Core = {
    direct: false,
    closed: () => this.#closed,
    fallocateRefused: () => this.#fallocateRefused,
    enqueue: (file, item) => this.#enqueue(file, item),
    read: (job) => this.#read(job),
    released: (file, fd) => this.#released(file, fd),
    alignedBuffer: (size, block) => this.#alignedBuffer(size, block),
  };

  /**
   * Throws UnsupportedError (code UNSUPPORTED) when the addon is missing or the
   * kernel refuses io_uring (seccomp, kernel.io_uring_disabled, too old), with
   * the reason in the message.
   */
  constructor(root: string, options: UringFsOptions = {}) {
    if (typeof root !== 'string' || root.length === 0) throw new InvalidArgumentError('UringFs: root must be a non-empty path');
    const queueDepth = options.queueDepth ?? DEFAULT_QUEUE_DEPTH;
    if (!Number.isSafeInteger(queueDepth) || queueDepth < MIN_QUEUE_DEPTH || queueDepth > 32768) {
      throw new InvalidArgumentError(`UringFs: queueDepth must be an integer in [${MIN_QUEUE_DEPTH}, 32768]`);
    }
    this.direct = options.direct === true;
    this.#core = { ...this.#core, direct: this.direct };
    this.root = path.resolve(root);
    this.#native = requireNative('UringFs');
    try {
      this.#ring = new this.#native.Ring(queueDepth, (cqes) => this.#onComplete(cqes));
    } catch (error) {
      throw new UnsupportedError(`UringFs: ${explainUringRefusal(errnoOf(error))}`, { cause: error, errno: errnoOf(error) });
    }
    const missing = (['read', 'write', 'writev', 'fsync', 'fallocate'] as const).filter((op) => !this.#ring.supports(op));
    if (missing.length > 0) {
      this.#ring.close();
      throw new UnsupportedError(`UringFs: the kernel's io_uring lacks ${missing.join(', ')} (Linux 5.6 or later is needed)`);
    }
    const stats = this.#ring.stats();
    this.#sqEntries = stats.sqEntries;
    this.#cqEntries = stats.cqEntries;
    this.#ftruncateInChain = this.#ring.supports('ftruncate');
    this.description = `${this.direct ? 'uring+direct' : 'uring'}:${this.root}`;
    this.capabilities = {
      backend: 'uring',
      // Any offset works: direct mode stages unaligned writes into aligned blocks itself.
      writeAlignment: 1,
      fixedCapacity: false,
      overwriteIsCheaper: true,
    };
  }

  /** Why `new UringFs()` would throw here, or undefined if it would work. */
  static unavailableReason(): string | undefined {
    try {
      new UringFs('.', { queueDepth: MIN_QUEUE_DEPTH }).#closeRing();
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  stats(): UringStats {
    const s = this.#ring.stats();
    return {
      submissions: s.enters,
      sqes: s.sqes,
      completions: s.completions,
      inflight: s.inflight,
      sqEntries: s.sqEntries,
      cqEntries: s.cqEntries,
      direct: this.direct,
      ftruncateInChain: this.#ftruncateInChain,
    };
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
      return this.#openHandle(name, file, flags, readOnly);
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
      return this.#openHandle(to, target, O_RDWR, false);
    });
  }

  syncDir(): Promise<void> {
    return this.#run('syncDir', undefined, () => syncDirectory(this.root));
  }

  /** The directory lock every directory backend shares; see directory-lock.ts. */
  lock(name: string): Promise<DirectoryLock> {
    return this.#run('lock', name, () => lockDirectory(this.root, name));
  }


  /** Idempotent. Waits for in-flight requests, then tears the ring down. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inflight > 0 || this.#reads.length > 0 || [...this.#files.values()].some((f) => f.busy || f.hasWork())) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    this.#closeRing();
  }

  #closeRing(): void {
    this.#ringClosed = true;
    this.#ring.close();
  }

  // ---- handles ------------------------------------------------------------

  async #openHandle(name: string, file: string, flags: number, readOnly: boolean): Promise<UringFileHandle> {
    let fd: number;
    try {
      fd = await openFd(file, this.direct ? flags | O_DIRECT : flags);
    } catch (error) {
      if (this.direct && errnoOf(error) === 'EINVAL') {
        throw new UnsupportedError(`open ${name}: the file system under ${this.root} does not support O_DIRECT`, {
          file: name,
          cause: error,
          errno: 'EINVAL',
        });
      }
      throw error;
    }
    try {
      const st = await fstatFd(fd);
      if (!st.isFile()) throw new IoError(`open ${name}: not a regular file`, { file: name });
      const key = `${st.dev}:${st.ino}`;
      let state = this.#files.get(key);
      if (state === undefined) {
        const size = Number(st.size);
        state = new FileState(key, name, this.direct ? this.#blockSize(fd, name) : 1, size, size);
        this.#files.set(key, state);
      }
      state.handles++;
      state.fds.add(fd);
      return new UringFileHandle(this.#core, state, name, fd, readOnly);
    } catch (error) {
      await closeFd(fd);
      throw error;
    }
  }

  #blockSize(fd: number, name: string): number {
    const align = this.#native.statxDioAlign(fd);
    if (align === null) return DIRECT_BLOCK;
    if (align.offsetAlign === 0) {
      throw new UnsupportedError(`open ${name}: O_DIRECT is not supported for this file`, { file: name });
    }
    // Capped: some file systems report a large preferred I/O size (NFS, ZFS), and every write pads to this.
    const fsBlock = Math.min(fs.fstatSync(fd).blksize, DIRECT_BLOCK);
    const block = Math.max(align.offsetAlign, align.memAlign, fsBlock);
    return block % align.offsetAlign === 0 ? block : DIRECT_BLOCK;
  }

  /** Queues an item on a file and arranges a flush this turn. */
  #enqueue(file: FileState, item: Item): void {
    if (item.kind === 'write') item.req.left += item.sync ? 2 : 1;
    else item.req.left += 1;
    file.queue.push(item);
    this.#dirty.add(file);
    this.#schedule();
  }

  #read(job: ReadJob): void {
    this.#reads.push(job);
    this.#schedule();
  }

  /** Called by a handle's close once its queue item ran. */
  #released(file: FileState, fd: number): void {
    file.handles--;
    file.fds.delete(fd);
    if (file.handles === 0 && !file.hasWork() && !file.busy) {
      this.#files.delete(file.key);
      this.#dirty.delete(file);
    }
  }

  #alignedBuffer(size: number, block: number): Uint8Array {
    return new Uint8Array(this.#native.alignedAlloc(size, block));
  }

  // ---- submission -----------------------------------------------------------

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Room for new SQEs: the CQ bound minus what is in flight, and the SQ size. */
  #room(): number {
    return Math.min(this.#sqEntries, this.#cqEntries - this.#inflight);
  }

  #flush(): void {
    if (this.#ringClosed) return;
    for (const file of [...this.#dirty]) {
      if (file.busy) continue;
      if (!file.hasWork()) {
        this.#dirty.delete(file);
        continue;
      }
      try {
        this.#advance(file);
      } catch (error) {
        // Only a bug gets here (the ring refused an SQE it had room for):
        // fail this file's waiting work rather than crash the event loop.
        const failure = fromSystemError(error, 'submit', file.name);
        for (const o of file.plan ?? []) for (const req of o.reqs) req.fail(failure);
        for (const item of file.queue.splice(0)) item.req.fail(failure);
        file.plan = undefined;
        file.stale = true;
      }
    }
    while (this.#reads.length > 0 && this.#room() >= 1) this.#prepRead(this.#reads.shift()!);
    this.#submit();
    this.#notifyIdle();
  }

  /** Starts the next step for an idle file with work: a task, a partial-block read, or a chain. */
  #advance(file: FileState): void {
    if (file.retry.length > 0) {
      if (this.#room() < file.retry.length) return;
      const ops = file.retry;
      file.retry = [];
      this.#submitChain(file, ops);
      return;
    }
    if (file.plan === undefined && file.queue[0]?.kind === 'task') {
      const task = file.queue.shift() as Extract<Item, { kind: 'task' }>;
      file.running = true;
      task
        .run()
        .then(
          () => task.req.done(),
          (error: unknown) => task.req.fail(fromSystemError(error, 'io', file.name)),
        )
        .finally(() => {
          file.running = false;
          this.#dirty.add(file);
          this.#schedule();
        });
      return;
    }
    if (this.direct && file.stale) {
      file.running = true;
      // One attempt: if even fstat fails, the next write's own error says so.
      this.#reloadState(file)
        .catch(() => undefined)
        .finally(() => {
          file.running = false;
          this.#schedule();
        });
      return;
    }
    const room = this.#room();
    if (room < MAX_OPS_PER_ITEM) return;
    const plan = file.plan ?? this.#plan(file, room);
    file.plan = undefined;
    if (plan.length === 0) return;
    if (!this.direct) {
      this.#submitChain(file, plan);
      return;
    }
    const missing = new Set<number>();
    const built = this.#alignPlan(file, plan, missing);
    if (missing.size === 0) {
      this.#submitChain(file, built);
      return;
    }
    file.plan = plan;
    file.running = true;
    this.#readBlocks(file, plan, [...missing])
      .catch((error: unknown) => {
        const failure = fromSystemError(error, 'read', file.name);
        for (const op of plan) for (const req of op.reqs) req.fail(failure);
        file.plan = undefined;
      })
      .finally(() => {
        file.running = false;
        this.#schedule();
      });
  }

  /**
   * Takes items from the head of a file's queue (up to a task, and within
   * `room` SQEs) and turns them into a chain of ops: contiguous writes merge
   * into one writev, consecutive barriers share one fdatasync.
   */
  #plan(file: FileState, room: number): ChainOp[] {
    const ops: ChainOp[] = [];
    // Direct mode may put an ftruncate before each fsync (#alignPlan): count it now.
    let budget = 0;
    const cost = (): number => ops.length + (this.direct ? ops.filter((o) => o.kind === 'fsync').length : 0);
    while (file.queue.length > 0 && budget + MAX_OPS_PER_ITEM <= room) {
      const item = file.queue[0]!;
      if (item.kind === 'task') break;
      file.queue.shift();
      const last = ops[ops.length - 1];
      if (item.kind === 'write') {
        const buffers = item.buffers.length > IOV_MAX ? [Buffer.concat(item.buffers)] : [...item.buffers];
        if (
          last !== undefined &&
          last.kind === 'write' &&
          last.fd === item.fd &&
          last.position + last.length === item.position &&
          last.buffers.length + buffers.length <= IOV_MAX
        ) {
          last.buffers.push(...buffers);
          last.length += item.length;
          last.reqs.push(item.req);
        } else {
          ops.push(op('write', item.fd, buffers, item.position, item.length, item.req));
        }
        if (item.sync) ops.push(op('fsync', item.fd, [], 0, 0, item.req));
      } else if (item.kind === 'sync') {
        if (last !== undefined && last.kind === 'fsync') {
          last.reqs.push(item.req);
        } else {
          const barrier = op('fsync', item.fd, [], 0, 0, item.req);
          barrier.writable = item.writable;
          ops.push(barrier);
        }
      } else {
        ops.push(op('fallocate', item.fd, [], item.offset, item.length, item.req));
      }
      budget = cost();
    }
    // Two barriers with only a fsync between them were merged above; a write
    // followed by its own fsync and then a sync() item merges too.
    return mergeAdjacentFsyncs(ops);
  }

  /**
   * Direct mode: rewrites a plan so every write is whole aligned blocks from
   * an aligned buffer, and every barrier first fixes the file size. With
   * `missing`, blocks that would have to come from disk are collected instead
   * and nothing is committed; without, the plan's state changes are applied
   * to `file` (logical/physical size, block images).
   */
  #alignPlan(file: FileState, plan: ChainOp[], missing: Set<number>): ChainOp[] {
    const B = file.block;
    let logical = file.logical;
    let physical = file.physical;
    const written: { start: number; end: number; buffer: Uint8Array }[] = [];
    const out: ChainOp[] = [];
    const zeros = new Uint8Array(B);

    const image = (index: number): Uint8Array => {
      const at = index * B;
      for (let i = written.length - 1; i >= 0; i--) {
        const run = written[i]!;
        if (at >= run.start && at < run.end) return run.buffer.subarray(at - run.start, at - run.start + B);
      }
      const cached = file.prefetched.get(index) ?? file.cache.get(index);
      if (cached !== undefined) return cached;
      // Past the logical size the disk holds only padding zeros; past zeroFrom, only zeros.
      if (at >= file.logical || at >= file.zeroFrom) return zeros;
      missing.add(index);
      return zeros;
    };

    for (const o of plan) {
      if (o.kind === 'write') {
        const start = o.position;
        const end = start + o.length;
        const alignedStart = Math.floor(start / B) * B;
        const alignedEnd = Math.ceil(end / B) * B;
        const buffer = this.#alignedBuffer(alignedEnd - alignedStart, B);
        if (start > alignedStart) buffer.set(image(alignedStart / B), 0);
        if (end < alignedEnd && !(start > alignedStart && alignedEnd - B === alignedStart)) {
          buffer.set(image(alignedEnd / B - 1), alignedEnd - B - alignedStart);
        }
        let at = start - alignedStart;
        for (const b of o.buffers) {
          buffer.set(b, at);
          at += b.byteLength;
        }
        written.push({ start: alignedStart, end: alignedEnd, buffer });
        const aligned = op('write', o.fd, [buffer], alignedStart, alignedEnd - alignedStart, undefined);
        aligned.aligned = true;
        aligned.reqs = o.reqs;
        out.push(aligned);
        logical = Math.max(logical, end);
        physical = Math.max(physical, alignedEnd);
      } else if (o.kind === 'fallocate') {
        out.push(o);
        logical = Math.max(logical, o.position + o.length);
        physical = Math.max(physical, o.position + o.length);
      } else if (o.kind === 'fsync') {
        if (physical !== logical && this.#ftruncateInChain && o.writable) {
          // No requests of its own: if it fails, the fsync after it is
          // cancelled and fails the barrier's requests.
          out.push(op('ftruncate', o.fd, [], logical, 0, undefined));
          physical = logical;
        }
        out.push(o);
      } else {
        out.push(o);
      }
    }
    if (missing.size > 0) return [];

    file.logical = logical;
    file.physical = physical;
    file.prefetched = new Map();
    for (const run of written) {
      file.zeroFrom = Math.max(file.zeroFrom, run.end);
      const first = run.start / B;
      const last = run.end / B - 1;
      for (const index of [...file.cache.keys()]) {
        if (index >= first && index <= last) file.remember(index, run.buffer.subarray((index - first) * B, (index - first + 1) * B));
      }
      file.remember(first, run.buffer.subarray(0, B));
      file.remember(last, run.buffer.subarray(run.buffer.byteLength - B));
    }
    return out;
  }

  /** Direct mode: reads whole blocks from disk into the cache (no chain of the file is in flight). */
  async #readBlocks(file: FileState, plan: ChainOp[], indexes: number[]): Promise<void> {
    const fd = plan[0]!.fd;
    await Promise.all(
      indexes.map(async (index) => {
        const buffer = this.#alignedBuffer(file.block, file.block);
        await new Promise<number>((resolve, reject) =>
          this.#read({
            fd,
            target: buffer,
            targetOffset: 0,
            remaining: file.block,
            position: index * file.block,
            done: 0,
            block: file.block,
            resolve,
            reject,
            name: file.name,
          }),
        );
        // Past the logical size the block must read as zeros, whatever padding the disk holds.
        const keep = file.logical - index * file.block;
        if (keep < file.block) buffer.fill(0, Math.max(0, keep));
        file.prefetched.set(index, buffer);
      }),
    );
  }

  /** After a failed direct-mode chain nothing cached can be trusted: start again from the disk. */
  async #reloadState(file: FileState): Promise<void> {
    file.cache.clear();
    file.prefetched = new Map();
    file.stale = false;
    const fd = file.fds.values().next().value as number | undefined;
    if (fd === undefined) return;
    const size = Number((await fstatFd(fd)).size);
    file.logical = Math.min(file.logical, size);
    file.physical = size;
    // A failed write may have landed anywhere: only past the end is known zero now.
    file.zeroFrom = size;
  }

  #submitChain(file: FileState, ops: ChainOp[]): void {
    if (this.#ring.sqSpace() < ops.length) this.#submit();
    // Checked before preparing anything: a chain cut in half would leave
    // SQEs in the ring that nothing waits for.
    if (this.#ring.sqSpace() < ops.length) throw new Error(`UringFs: a chain of ${ops.length} SQEs does not fit the ring`);
    const chain: Chain = { file, ops, left: ops.length };
    file.chain = chain;
    ops.forEach((o, i) => {
      const id = this.#id();
      const link = i < ops.length - 1;
      let queued: boolean;
      switch (o.kind) {
        case 'write':
          queued = this.#ring.prepWrite(id, o.fd, o.buffers, o.position, link);
          break;
        case 'fsync':
          queued = this.#ring.prepFsync(id, o.fd, true, link);
          break;
        case 'fallocate':
          queued = this.#ring.prepFallocate(id, o.fd, 0, o.position, o.length, link);
          break;
        case 'ftruncate':
          queued = this.#ring.prepFtruncate(id, o.fd, o.position, link);
          break;
      }
      // sqSpace was checked above and nothing else prepares SQEs meanwhile.
      if (!queued) throw new Error('UringFs: submission queue unexpectedly full');
      this.#pending.set(id, { chain, op: o });
      this.#inflight++;
    });
  }

  #prepRead(job: ReadJob): void {
    if (this.#ring.sqSpace() < 1) this.#submit();
    const id = this.#id();
    const asked = Math.min(job.remaining, READ_CHUNK);
    this.#ring.prepRead(id, job.fd, job.target, job.targetOffset, asked, job.position, false);
    this.#pending.set(id, { read: job, asked });
    this.#inflight++;
  }

  #submit(): void {
    try {
      this.#ring.submit();
    } catch (error) {
      // EAGAIN/EBUSY: the kernel is short of resources right now. The SQEs
      // stay in the ring; try again shortly rather than fail the requests.
      if (errnoOf(error) === 'EAGAIN' || errnoOf(error) === 'EBUSY' || errnoOf(error) === 'EINTR') {
        setTimeout(() => this.#submit(), 1);
        return;
      }
      throw error;
    }
  }

  #id(): number {
    // Ids only need to be unique among requests in flight, far fewer than 2^31.
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    return id;
  }

  // ---- completion -----------------------------------------------------------

  #onComplete(cqes: Int32Array): void {
    for (let i = 0; i < cqes.length; i += 3) {
      const id = cqes[i]!;
      const res = cqes[i + 1]!;
      const pending = this.#pending.get(id);
      if (pending === undefined) continue;
      this.#pending.delete(id);
      this.#inflight--;
      if ('read' in pending) {
        this.#readDone(pending.read, pending.asked, res);
      } else {
        pending.op.res = res;
        pending.chain.left--;
        if (pending.chain.left === 0) this.#settle(pending.chain);
      }
    }
    this.#schedule();
  }

  #readDone(job: ReadJob, asked: number, res: number): void {
    if (res < 0) {
      job.reject(errorFromCqe(res, 'read', job.name));
      return;
    }
    job.done += res;
    job.remaining -= res;
    job.targetOffset += res;
    job.position += res;
    const endOfFile = res === 0 || (res < asked && res % job.block !== 0);
    if (job.remaining === 0 || endOfFile) job.resolve(job.done);
    else this.#reads.unshift(job);
  }

  #settle(chain: Chain): void {
    const { file, ops } = chain;
    file.chain = undefined;
    let failure: RaftlogError | undefined;
    const retry: ChainOp[] = [];
    // Rejections wait, in direct mode, until size and cache are reloaded, so
    // a caller who sees the error also sees the file as it really is.
    const rejections: [Request, RaftlogError][] = [];
    const reject = (reqs: Request[], error: RaftlogError): void => {
      for (const req of reqs) rejections.push([req, error]);
    };
    for (const o of ops) {
      if (failure !== undefined) {
        reject(o.reqs, cancelled(failure, o.kind, file.name));
        continue;
      }
      if (o.kind === 'fallocate' && refusesFallocate(o.res)) {
        // Not a failure of the file: the file system has no fallocate. The
        // caller falls back (UringFileHandle.preallocate), and the ops the
        // kernel cancelled behind it are retried. Nothing was written, so
        // direct mode's planned state stays right and needs no reload.
        this.#fallocateRefused = true;
        const refusal = errorFromCqe(o.res, 'preallocate', file.name);
        for (const req of o.reqs) req.fail(refusal);
        continue;
      }
      if (o.res === -ECANCELED || retry.length > 0) {
        // An earlier op of this chain was short: the kernel cut the link here.
        if (++o.attempts > MAX_ATTEMPTS) {
          failure = new IoError(`${o.kind} ${file.name}: cancelled ${MAX_ATTEMPTS} times in a row`, { file: file.name, errno: 'ECANCELED' });
          reject(o.reqs, failure);
          continue;
        }
        retry.push(o);
        continue;
      }
      if (o.res < 0) {
        failure = errorFromCqe(o.res, o.kind === 'fsync' ? 'sync' : o.kind, file.name);
        reject(o.reqs, failure);
        continue;
      }
      if (o.kind === 'write' && o.res < o.length) {
        if (o.res === 0) {
          failure = new IoError(`write ${file.name}: no progress at offset ${o.position}`, { file: file.name, offset: o.position });
          reject(o.reqs, failure);
          continue;
        }
        if (++o.attempts > MAX_ATTEMPTS) {
          failure = new IoError(`write ${file.name}: still short after ${MAX_ATTEMPTS} attempts`, { file: file.name, offset: o.position });
          reject(o.reqs, failure);
          continue;
        }
        // Direct mode continues only from a block boundary; an unaligned
        // remainder would be refused, so then the whole block range is redone.
        if (!o.aligned || o.res % file.block === 0) {
          o.buffers = remainingBuffers(o.buffers, o.res);
          o.position += o.res;
          o.length -= o.res;
        }
        retry.push(o);
        continue;
      }
      for (const req of o.reqs) req.done();
    }
    file.retry = retry;
    this.#dirty.add(file);
    if (rejections.length > 0 && this.direct) {
      file.running = true;
      this.#reloadState(file)
        .catch(() => undefined)
        .finally(() => {
          file.running = false;
          for (const [req, error] of rejections) req.fail(error);
          this.#schedule();
        });
      return;
    }
    for (const [req, error] of rejections) req.fail(error);
    this.#schedule();
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const busy = this.#inflight > 0 || this.#reads.length > 0 || [...this.#files.values()].some((f) => f.busy || f.hasWork());
    if (busy) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  // ---- helpers --------------------------------------------------------------

  #path(name: string, operation: string): string {
    return filePath(this.root, name, operation);
  }

  async #run<T>(operation: string, file: string | undefined, body: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError(`${operation}: ${this.description} is closed`, { file });
    try {
      return await body();
    } catch (error) {
      throw fromSystemError(error, operation, file);
    }
  }
}

/** The errnos with which a file system says it has no fallocate (FUSE without it, ramfs, ...). */
const FALLOCATE_REFUSALS = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOSYS']);

function refusesFallocate(res: number): boolean {
  return res < 0 && FALLOCATE_REFUSALS.has(ERRNO_NAMES.get(-res) ?? '');
}

function op(kind: ChainOp['kind'], fd: number, buffers: Uint8Array[], position: number, length: number, req: Request | undefined): ChainOp {
  return { kind, fd, buffers, position, length, aligned: false, writable: true, reqs: req === undefined ? [] : [req], res: 0, attempts: 0 };
}

function mergeAdjacentFsyncs(ops: ChainOp[]): ChainOp[] {
  const out: ChainOp[] = [];
  for (const o of ops) {
    const last = out[out.length - 1];
    if (o.kind === 'fsync' && last !== undefined && last.kind === 'fsync' && last.fd === o.fd) {
      // The request counted this op; the merged op completes it instead.
      last.reqs.push(...o.reqs);
      last.writable ||= o.writable;
      continue;
    }
    out.push(o);
  }
  return out;
}

/** The error for an op the kernel never ran because an earlier one in its chain failed. */
function cancelled(failure: RaftlogError, kind: ChainOp['kind'], file: string): RaftlogError {
  return new RaftlogError(failure.code, `${kind === 'fsync' ? 'sync' : kind} ${file}: not done, an earlier operation failed (${failure.message})`, {
    cause: failure,
    file,
    errno: failure.errno,
  });
}

/** The buffers still to write after the first `written` bytes (views, no copy). */
function remainingBuffers(buffers: readonly Uint8Array[], written: number): Uint8Array[] {
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

// ---------------------------------------------------------------------------

class UringFileHandle implements FileHandle {
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
      if (!this.#core.direct) return this.#readInto(target, targetOffset, length, position, 1);
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
    return new Promise((resolve, reject) =>
      this.#core.read({
        fd: this.#fd,
        target,
        targetOffset,
        remaining: length,
        position,
        done: 0,
        block,
        resolve,
        reject,
        name: this.name,
      }),
    );
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
   * fallocate(2) in the ring. Where the file system refuses it (FUSE without
   * fallocate, ramfs), the file is extended with ftruncate instead: the range
   * reads as zeros and the size is what the contract promises, but nothing is
   * reserved, so a later write there can still fail with NO_SPACE (as on any
   * file system without fallocate). Writing zeros, as PosixFs does, would
   * have to be ordered against writes queued meanwhile; a sparse extension
   * in a queued task needs no such care. After the first refusal the ring op
   * is skipped.
   */
  preallocate(offset: number, length: number): Promise<void> {
    return this.#run('preallocate', async () => {
      this.#writable('preallocate');
      const end = checkRange(offset, length, 'preallocate', this.name);
      if (length === 0) return; // fallocate(2) refuses a zero length; there is nothing to reserve
      if (!this.#core.fallocateRefused()) {
        try {
          await this.#submit((req) => ({ kind: 'fallocate', fd: this.#fd, offset, length, req }));
          return;
        } catch (error) {
          if (!(error instanceof RaftlogError && FALLOCATE_REFUSALS.has(error.errno ?? ''))) throw error;
        }
      }
      const file = this.#file;
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

