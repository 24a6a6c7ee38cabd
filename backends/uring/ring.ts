/**
 * The ring and its completions: the one place that prepares SQEs, calls
 * io_uring_enter and matches CQEs back to what asked for them. It keeps the
 * bound that makes the ring safe to use from JS (never more SQEs in flight
 * than the CQ holds, so the kernel never overflows it) and hands every
 * completion back, by id, to the scheduler. What goes into a chain, and what
 * a completion means, are decided elsewhere (plan.ts, settle.ts).
 */

import { UnsupportedError } from '../../src/errors.js';
import { explainUringRefusal } from '../../hardware/native.js';
import type { NativeBinding, NativeRing, RingStats } from '../../hardware/native.js';
import { errnoOf } from '../posix-directory.js';
import type { Chain, ChainOp, ReadJob } from './ops.js';

/** Reads larger than this are issued in pieces, so one huge read cannot hog the ring. */
const READ_CHUNK = 16 * 1024 * 1024;

type Pending = { chain: Chain; op: ChainOp } | { read: ReadJob; asked: number };

/** Where the ring delivers its completions. */
export interface RingListener {
  /** Every SQE of `chain` has completed (each op's `res` is set). */
  chainDone(chain: Chain): void;
  /** `asked` bytes of `job` were read as `res` (bytes, or a negative errno). */
  readDone(job: ReadJob, asked: number, res: number): void;
  /** A batch of completions was delivered: room may have freed. */
  drained(): void;
}

export class Ring {
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** Whether barriers can fix a direct-mode file's size in-chain (IORING_OP_FTRUNCATE). */
  readonly ftruncateInChain: boolean;
  readonly #ring: NativeRing;
  readonly #listener: RingListener;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** SQEs prepared (submitted or about to be) whose completion has not arrived. */
  #inflight = 0;
  #closed = false;

  /** Throws UnsupportedError when the kernel refuses io_uring or lacks an operation UringFs needs. */
  constructor(native: NativeBinding, queueDepth: number, listener: RingListener) {
    this.#listener = listener;
    try {
      this.#ring = new native.Ring(queueDepth, (cqes) => this.#onComplete(cqes));
    } catch (error) {
      throw new UnsupportedError(`UringFs: ${explainUringRefusal(errnoOf(error))}`, { cause: error, errno: errnoOf(error) });
    }
    const missing = (['read', 'write', 'writev', 'fsync', 'fallocate'] as const).filter((op) => !this.#ring.supports(op));
    if (missing.length > 0) {
      this.#ring.close();
      throw new UnsupportedError(`UringFs: the kernel's io_uring lacks ${missing.join(', ')} (Linux 5.6 or later is needed)`);
    }
    const stats = this.#ring.stats();
    this.sqEntries = stats.sqEntries;
    this.cqEntries = stats.cqEntries;
    this.ftruncateInChain = this.#ring.supports('ftruncate');
  }

  get inflight(): number {
    return this.#inflight;
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): RingStats {
    return this.#ring.stats();
  }

  close(): void {
    this.#closed = true;
    this.#ring.close();
  }

  /** Room for new SQEs: the CQ bound minus what is in flight, and the SQ size. */
  room(): number {
    return Math.min(this.sqEntries, this.cqEntries - this.#inflight);
  }

  /** Prepares `chain` as linked SQEs, all or none. */
  prepChain(chain: Chain): void {
    const { ops } = chain;
    if (this.#ring.sqSpace() < ops.length) this.submit();
    // Checked before preparing anything: a chain cut in half would leave
    // SQEs in the ring that nothing waits for.
    if (this.#ring.sqSpace() < ops.length) throw new Error(`UringFs: a chain of ${ops.length} SQEs does not fit the ring`);
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

  /** Prepares the next piece (at most READ_CHUNK) of a read. */
  prepRead(job: ReadJob): void {
    if (this.#ring.sqSpace() < 1) this.submit();
    const id = this.#id();
    const asked = Math.min(job.remaining, READ_CHUNK);
    this.#ring.prepRead(id, job.fd, job.target, job.targetOffset, asked, job.position, false);
    this.#pending.set(id, { read: job, asked });
    this.#inflight++;
  }

  /** Hands everything prepared to the kernel in one io_uring_enter. */
  submit(): void {
    try {
      this.#ring.submit();
    } catch (error) {
      // EAGAIN/EBUSY: the kernel is short of resources right now. The SQEs
      // stay in the ring; try again shortly rather than fail the requests.
      if (errnoOf(error) === 'EAGAIN' || errnoOf(error) === 'EBUSY' || errnoOf(error) === 'EINTR') {
        setTimeout(() => this.submit(), 1);
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

  #onComplete(cqes: Int32Array): void {
    for (let i = 0; i < cqes.length; i += 3) {
      const id = cqes[i]!;
      const res = cqes[i + 1]!;
      const pending = this.#pending.get(id);
      if (pending === undefined) continue;
      this.#pending.delete(id);
      this.#inflight--;
      if ('read' in pending) {
        this.#listener.readDone(pending.read, pending.asked, res);
      } else {
        pending.op.res = res;
        pending.chain.left--;
        if (pending.chain.left === 0) this.#listener.chainDone(pending.chain);
      }
    }
    this.#listener.drained();
  }
}
