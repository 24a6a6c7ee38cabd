/**
 * The vocabulary the pieces of UringFs pass between them: a caller's request,
 * the queue items a handle adds to its file, the ring operations (SQEs) a
 * chain is made of, and a read in progress. Kept apart so that the handle,
 * the per-file planner, the direct-I/O stager, the settler and the ring each
 * depend on these shapes and not on one another.
 */

import type { RaftlogError } from '../../src/errors.js';
import type { FileState } from './file-state.js';

/** A queue item expands to at most write + ftruncate + fdatasync. */
export const MAX_OPS_PER_ITEM = 3;

/** One caller-visible promise; settles when every op it depends on has. */
export class Request {
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

export type Item =
  | { kind: 'write'; fd: number; buffers: readonly Uint8Array[]; position: number; length: number; sync: boolean; req: Request }
  | { kind: 'sync'; fd: number; writable: boolean; req: Request }
  | { kind: 'fallocate'; fd: number; offset: number; length: number; req: Request }
  | { kind: 'task'; run: () => Promise<void>; req: Request };

/** One SQE of a chain. */
export interface ChainOp {
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

/** The ops of one file submitted as one linked chain; at most one per file is in flight. */
export interface Chain {
  readonly file: FileState;
  readonly ops: ChainOp[];
  left: number;
}

export interface ReadJob {
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

/** What a handle may ask of its UringFs; kept off the public class. */
export interface Core {
  readonly direct: boolean;
  closed(): boolean;
  /** The file system refused fallocate once: preallocate extends the file instead. */
  fallocateRefused(): boolean;
  enqueue(file: FileState, item: Item): void;
  read(job: ReadJob): void;
  released(file: FileState, fd: number): void;
  alignedBuffer(size: number, block: number): Uint8Array;
  /** Writes zeros over `[from, to)` of `fd` outside the ring, page by page (see backends/zero-fill.ts). */
  zeroFill(fd: number, from: number, to: number): Promise<void>;
}

export function op(
  kind: ChainOp['kind'],
  fd: number,
  buffers: Uint8Array[],
  position: number,
  length: number,
  req: Request | undefined,
): ChainOp {
  return { kind, fd, buffers, position, length, aligned: false, writable: true, reqs: req === undefined ? [] : [req], res: 0, attempts: 0 };
}

/** What a caller gives for a read; the rest of a ReadJob is filled in by readThrough. */
export type ReadRequest = Omit<ReadJob, 'done' | 'resolve' | 'reject'>;

/** Reads `job.remaining` bytes at `job.position` through `core`, resolving with the bytes read. */
export function readThrough(core: Pick<Core, 'read'>, job: ReadRequest): Promise<number> {
  return new Promise((resolve, reject) => core.read({ ...job, done: 0, resolve, reject }));
}
