/**
 * The per-file request scheduler behind UringFs. Nothing is submitted when a
 * handle asks: its items queue on the file (FileState), and one flush per
 * event-loop turn starts the next step of every idle file with work (a
 * resubmission, a task, a direct-mode reload or partial-block read, or a new
 * chain) and hands all of it to the kernel in one enter. A file keeps at most
 * one chain in flight; what exceeds the ring's room waits in its queue until
 * completions free some. This is also the `Core` the handles talk to, and it
 * knows when everything is idle, for UringFs.close.
 */

import { fromSystemError, type RaftlogError } from '../../src/errors.js';
import type { NativeBinding } from '../../hardware/native.js';
import { alignPlan, readBlocks, reloadState } from './direct.js';
import { writeZeroPages } from '../zero-fill.js';
import { FileState } from './file-state.js';
import { MAX_OPS_PER_ITEM, type Chain, type ChainOp, type Core, type Item, type ReadJob } from './ops.js';
import { errorFromCqe } from './errors.js';
import { planChain } from './plan.js';
import { Ring, type RingListener } from './ring.js';
import { settleChain } from './settle.js';

export class Scheduler implements Core, RingListener {
  readonly direct: boolean;
  readonly ring: Ring;
  readonly #native: NativeBinding;
  readonly #files = new Map<string, FileState>();
  readonly #dirty = new Set<FileState>();
  readonly #reads: ReadJob[] = [];
  #flushScheduled = false;
  #closed = false;
  /** Set by the first fallocate the file system refuses (FUSE, ramfs, ...); see UringFileHandle.preallocate. */
  #fallocateRefused = false;
  #idleWaiters: (() => void)[] = [];

  /** Throws UnsupportedError as Ring's constructor does. */
  constructor(native: NativeBinding, queueDepth: number, direct: boolean) {
    this.#native = native;
    this.direct = direct;
    this.ring = new Ring(native, queueDepth, this);
  }

  // ---- Core: what handles ask ---------------------------------------------

  closed(): boolean {
    return this.#closed;
  }

  fallocateRefused(): boolean {
    return this.#fallocateRefused;
  }

  /** Queues an item on a file and arranges a flush this turn. */
  enqueue(file: FileState, item: Item): void {
    if (item.kind === 'write') item.req.left += item.sync ? 2 : 1;
    else item.req.left += 1;
    file.queue.push(item);
    this.#dirty.add(file);
    this.#schedule();
  }

  read(job: ReadJob): void {
    this.#reads.push(job);
    this.#schedule();
  }

  /** Called by a handle's close once its queue item ran. */
  released(file: FileState, fd: number): void {
    file.handles--;
    file.fds.delete(fd);
    if (file.handles === 0 && !file.hasWork() && !file.busy) {
      this.#files.delete(file.key);
      this.#dirty.delete(file);
    }
  }

  alignedBuffer(size: number, block: number): Uint8Array {
    return new Uint8Array(this.#native.alignedAlloc(size, block));
  }

  zeroFill(fd: number, from: number, to: number): Promise<void> {
    return writeZeroPages(this.#native.writeSync, fd, from, to);
  }

  /** The state of the inode `key` for a new handle on `fd`; `create` makes it when none is open. */
  attach(key: string, fd: number, create: () => FileState): FileState {
    let state = this.#files.get(key);
    if (state === undefined) {
      state = create();
      this.#files.set(key, state);
    }
    state.handles++;
    state.fds.add(fd);
    return state;
  }

  /** Refuses new work and resolves once every request in flight or queued has settled. */
  async drain(): Promise<void> {
    this.#closed = true;
    while (this.#busy()) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  // ---- RingListener: completions ------------------------------------------

  readDone(job: ReadJob, asked: number, res: number): void {
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

  chainDone(chain: Chain): void {
    const { file } = chain;
    file.chain = undefined;
    const { retry, rejections, fallocateRefused } = settleChain(chain);
    if (fallocateRefused) this.#fallocateRefused = true;
    file.retry = retry;
    this.#dirty.add(file);
    // Rejections wait, in direct mode, until size and cache are reloaded, so
    // a caller who sees the error also sees the file as it really is.
    if (rejections.length > 0 && this.direct) {
      this.#runAside(
        file,
        () => reloadState(file).catch(() => undefined),
        () => {
          for (const [req, error] of rejections) req.fail(error);
        },
      );
      return;
    }
    for (const [req, error] of rejections) req.fail(error);
    this.#schedule();
  }

  drained(): void {
    this.#schedule();
  }

  // ---- the flush --------------------------------------------------------------

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.ring.closed) return;
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
        failPlan(file.plan ?? [], failure);
        for (const item of file.queue.splice(0)) item.req.fail(failure);
        file.plan = undefined;
        file.stale = true;
      }
    }
    while (this.#reads.length > 0 && this.ring.room() >= 1) this.ring.prepRead(this.#reads.shift()!);
    this.ring.submit();
    this.#notifyIdle();
  }

  /** Starts the next step for an idle file with work: a task, a partial-block read, or a chain. */
  #advance(file: FileState): void {
    if (file.retry.length > 0) {
      if (this.ring.room() < file.retry.length) return;
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
      // One attempt: if even fstat fails, the next write's own error says so.
      this.#runAside(file, () => reloadState(file).catch(() => undefined));
      return;
    }
    const room = this.ring.room();
    if (room < MAX_OPS_PER_ITEM) return;
    const plan = file.plan ?? planChain(file, room, this.direct);
    file.plan = undefined;
    if (plan.length === 0) return;
    if (!this.direct) {
      this.#submitChain(file, plan);
      return;
    }
    this.#stage(file, plan);
  }

  /** Direct mode: submits the plan staged in aligned blocks, or first reads the partial blocks it needs. */
  #stage(file: FileState, plan: ChainOp[]): void {
    const alloc = (size: number, block: number): Uint8Array => this.alignedBuffer(size, block);
    const missing = new Set<number>();
    const built = alignPlan(file, plan, missing, alloc, this.ring.ftruncateInChain);
    if (missing.size === 0) {
      this.#submitChain(file, built);
      return;
    }
    file.plan = plan;
    const read = (): Promise<void> =>
      readBlocks(file, plan, [...missing], alloc, this).catch((error: unknown) => {
        failPlan(plan, fromSystemError(error, 'read', file.name));
        file.plan = undefined;
      });
    this.#runAside(file, read);
  }

  /** Runs `work` with the file held busy, then (after `then`) lets the flush look at it again. */
  #runAside(file: FileState, work: () => Promise<void>, then?: () => void): void {
    file.running = true;
    void work().finally(() => {
      file.running = false;
      then?.();
      this.#schedule();
    });
  }

  #submitChain(file: FileState, ops: ChainOp[]): void {
    const chain: Chain = { file, ops, left: ops.length };
    file.chain = chain;
    this.ring.prepChain(chain);
  }

  #busy(): boolean {
    return this.ring.inflight > 0 || this.#reads.length > 0 || [...this.#files.values()].some((f) => f.busy || f.hasWork());
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    if (this.#busy()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

function failPlan(plan: readonly ChainOp[], failure: RaftlogError): void {
  for (const o of plan) for (const req of o.reqs) req.fail(failure);
}
