/**
 * Per-file planning: how the items queued on one file become the linked
 * chain of SQEs submitted for it in one flush. This is where a group commit
 * (contiguous writes, then one barrier) turns into a single writev plus a
 * single fdatasync, and where a chain is kept within the ring's room. It
 * knows nothing of the ring itself, nor of direct mode beyond the SQE it may
 * add per barrier (direct.ts).
 */

import type { FileState } from './file-state.js';
import { MAX_OPS_PER_ITEM, op, type ChainOp } from './ops.js';

/** Linux IOV_MAX: a writev with more buffers fails, so longer lists are concatenated. */
const IOV_MAX = 1024;

/**
 * Takes items from the head of a file's queue (up to a task, and within
 * `room` SQEs) and turns them into a chain of ops: contiguous writes merge
 * into one writev, consecutive barriers share one fdatasync.
 */
export function planChain(file: FileState, room: number, direct: boolean): ChainOp[] {
  const ops: ChainOp[] = [];
  // Direct mode may put an ftruncate before each fsync (alignPlan): count it now.
  let budget = 0;
  const cost = (): number => ops.length + (direct ? ops.filter((o) => o.kind === 'fsync').length : 0);
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
