/**
 * What UringFs knows about one open inode: its queue, its chain in flight,
 * and in direct mode its logical size and block images. Shared by all
 * handles on the inode so they agree on size and never race on a block; the
 * scheduler, the direct-I/O stager and the handles all read and write it, so
 * it is plain state with no behaviour beyond its block cache's bound.
 */

import type { Chain, ChainOp, Item } from './ops.js';

/** Block images kept per direct-mode file; the tail block is the one that matters. */
const BLOCK_CACHE_ENTRIES = 8;

export class FileState {
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
