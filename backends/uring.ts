/**
 * UringFs: the FileSystem seam on io_uring, through raftlog's own N-API addon
 * (hardware/), with an optional O_DIRECT mode. This file is the facade (the
 * directory operations, opening files, close); the design below is carried
 * out by the modules in uring/: the ring and its completions (ring.ts), the
 * per-file scheduler (scheduler.ts) and its planner (plan.ts), completion and
 * retry of a chain (settle.ts), direct-I/O block staging (direct.ts), the
 * per-inode state (file-state.ts), and the handle (handle.ts).
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

import { InvalidArgumentError, IoError, UnsupportedError } from '../src/errors.js';
import type { FileHandle, FileSystem, FsCapabilities } from '../src/filesystem.js';
import { requireNative } from '../hardware/native.js';
import type { NativeBinding } from '../hardware/native.js';
import { DirectoryFs } from './directory-fs.js';
import { errnoOf } from './posix-directory.js';
import { directBlockSize } from './uring/direct.js';
import { closeFd, fstatFd, openFd } from './uring/fd.js';
import { FileState } from './uring/file-state.js';
import { UringFileHandle } from './uring/handle.js';
import { Scheduler } from './uring/scheduler.js';

export { errorFromCqe } from './uring/errors.js';

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

const { O_DIRECT } = fs.constants;
const DEFAULT_QUEUE_DEPTH = 64;
const MIN_QUEUE_DEPTH = 4;

export class UringFs extends DirectoryFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly direct: boolean;

  readonly #native: NativeBinding;
  readonly #scheduler: Scheduler;

  /**
   * Throws UnsupportedError (code UNSUPPORTED) when the addon is missing or the
   * kernel refuses io_uring (seccomp, kernel.io_uring_disabled, too old), with
   * the reason in the message.
   */
  constructor(root: string, options: UringFsOptions = {}) {
    super(root, 'UringFs');
    const queueDepth = options.queueDepth ?? DEFAULT_QUEUE_DEPTH;
    if (!Number.isSafeInteger(queueDepth) || queueDepth < MIN_QUEUE_DEPTH || queueDepth > 32768) {
      throw new InvalidArgumentError(`UringFs: queueDepth must be an integer in [${MIN_QUEUE_DEPTH}, 32768]`);
    }
    this.direct = options.direct === true;
    this.#native = requireNative('UringFs');
    this.#scheduler = new Scheduler(this.#native, queueDepth, this.direct);
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
      new UringFs('.', { queueDepth: MIN_QUEUE_DEPTH }).#scheduler.ring.close();
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  stats(): UringStats {
    const ring = this.#scheduler.ring;
    const s = ring.stats();
    return {
      submissions: s.enters,
      sqes: s.sqes,
      completions: s.completions,
      inflight: s.inflight,
      sqEntries: s.sqEntries,
      cqEntries: s.cqEntries,
      direct: this.direct,
      ftruncateInChain: ring.ftruncateInChain,
    };
  }

  /** Idempotent. Waits for in-flight requests, then tears the ring down. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.#scheduler.drain();
    this.#scheduler.ring.close();
  }

  protected async openFile(name: string, file: string, flags: number, readOnly: boolean): Promise<FileHandle> {
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
      const state = this.#scheduler.attach(key, fd, () => {
        const size = Number(st.size);
        return new FileState(key, name, this.direct ? directBlockSize(this.#native, fd, name) : 1, size, size);
      });
      return new UringFileHandle(this.#scheduler, state, name, fd, readOnly);
    } catch (error) {
      await closeFd(fd);
      throw error;
    }
  }
}
