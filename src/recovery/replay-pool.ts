/**
 * Worker threads for parallel replay (recoveryThreads): each verifies and
 * decodes chunks of log bytes the main thread read (replay-chunk.ts) into
 * shared slots. The workers start at the first chunk, are unref'd (a pool
 * that was somehow not closed never keeps the process alive) and are
 * terminated by `close()`.
 *
 * Every job goes to every worker and to no queue: the first thread to claim
 * it (an atomic compare-and-swap on its slot's cell) does it, the others skip
 * it. The main thread claims too: a chunk it needs that no worker has begun
 * (workers still starting, or busy) it verifies itself instead of waiting,
 * so replay never runs slower than on the main thread alone by more than the
 * cost of the reads ahead.
 */
import { Worker } from 'node:worker_threads';
import { assert } from '../assert.js';
import type { ChunkJob, ChunkResult, PoolShare } from './replay-chunk.js';

/** Workers started and not yet exited, across every pool: tests check that none outlive their recovery. */
const running = new Set<Worker>();

export function liveReplayWorkers(): number {
  return running.size;
}

/** Most workers a recovery uses. */
export const MAX_RECOVERY_THREADS = 64;
/** Most chunk slots a pool shares (each has one claim cell). */
const MAX_SLOTS = 1024;

export interface PoolJob {
  /** Claims the job for the calling (main) thread; false when a worker already has it. */
  claim(): boolean;
  /** The worker's result; rejects if the workers died or the pool closed first. Only meaningful when `claim()` returned false. */
  result: Promise<ChunkResult>;
}

interface Pending {
  resolve: (result: ChunkResult) => void;
  reject: (error: Error) => void;
}

export class ReplayPool {
  readonly #threads: number;
  #workers: Worker[] = [];
  #ids = 0;
  readonly #pending = new Map<number, Pending>();
  #closed = false;
  #broken = false;
  readonly #slots: SharedArrayBuffer[] = [];
  /** Per slot: the id of the job waiting in it; a worker that claims it negates it, the main thread zeroes it. */
  readonly #claims = new Int32Array(new SharedArrayBuffer(4 * MAX_SLOTS));

  constructor(threads: number) {
    this.#threads = threads;
  }

  /** Makes `bytes` the next slot on every worker, and returns its number. */
  share(bytes: SharedArrayBuffer): number {
    assert(this.#slots.length < MAX_SLOTS, 'replay pool: more slots than claim cells');
    this.#slots.push(bytes);
    for (const worker of this.#workers) worker.postMessage(this.#shareMessage(this.#slots.length - 1));
    return this.#slots.length - 1;
  }

  slot(index: number): SharedArrayBuffer {
    return this.#slots[index]!;
  }

  /** Offers one chunk (already in its slot) to the workers. */
  run(job: ChunkJob): PoolJob {
    const id = ++this.#ids;
    job.id = id;
    const claims = this.#claims;
    const claim = (): boolean => {
      if (Atomics.compareExchange(claims, job.slot, id, 0) !== id) return false;
      this.#pending.delete(id);
      return true;
    };
    Atomics.store(claims, job.slot, id);
    const result = new Promise<ChunkResult>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // A rejection nobody awaits (the main thread claimed the job) is no error.
    result.catch(() => undefined);
    if (this.#closed || this.#broken) {
      // After a worker died the rest of the replay runs on the main thread.
      this.#fail(new Error('replay pool closed or broken'));
      return { claim, result };
    }
    if (this.#workers.length === 0) this.#start();
    for (const worker of this.#workers) worker.postMessage(job);
    return { claim, result };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers;
    this.#workers = [];
    await Promise.all(
      workers.map(async (worker) => {
        await worker.terminate();
        running.delete(worker);
      }),
    );
    this.#fail(new Error('replay pool closed'));
  }

  #shareMessage(slot: number): PoolShare {
    return { share: slot, bytes: this.#slots[slot]!, claims: this.#claims };
  }

  #start(): void {
    for (let i = 0; i < this.#threads; i++) {
      const worker = new Worker(new URL('./replay-worker.js', import.meta.url));
      worker.unref();
      running.add(worker);
      worker.on('message', (result: ChunkResult) => {
        const pending = this.#pending.get(result.id);
        if (pending === undefined) return;
        this.#pending.delete(result.id);
        pending.resolve(result);
      });
      worker.on('error', (error) => {
        this.#broken = true;
        this.#fail(error);
      });
      worker.on('exit', () => {
        running.delete(worker);
        this.#broken = true;
        this.#fail(new Error('replay worker exited'));
      });
      for (let slot = 0; slot < this.#slots.length; slot++) worker.postMessage(this.#shareMessage(slot));
      this.#workers.push(worker);
    }
  }

  /** Rejects every result still owed (a job a dead worker had claimed would never come). */
  #fail(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
