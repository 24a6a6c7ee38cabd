/**
 * Completion and retry of one chain, once every SQE of it has completed.
 * Decides, op by op, what each completion means for the caller: done; failed
 * (and everything after it cancelled with the cause); cut short by the kernel
 * (a short write, or -ECANCELED behind one), so resubmitted from where it
 * stopped; or refused because the file system has no fallocate. A short read
 * or write is never reported as success. What to do with the verdict (requeue
 * the retries, reload direct-mode state before rejecting) is the scheduler's.
 */

import { constants as osConstants } from 'node:os';

import { IoError, type RaftlogError } from '../../src/errors.js';
import { remainingBuffers } from '../io-buffers.js';
import { cancelled, errorFromCqe, refusesFallocate } from './errors.js';
import type { Chain, ChainOp, Request } from './ops.js';

const ECANCELED = osConstants.errno.ECANCELED;
const MAX_ATTEMPTS = 1000;

export interface Settlement {
  /** Ops to resubmit as a new chain, barrier included. */
  readonly retry: ChainOp[];
  /** Requests to reject, once the caller may see the file as it really is. */
  readonly rejections: [Request, RaftlogError][];
  /** The file system refused fallocate: later preallocations fall back. */
  readonly fallocateRefused: boolean;
}

/** Settles a completed chain: resolves what succeeded and reports the rest. */
export function settleChain(chain: Chain): Settlement {
  const { file, ops } = chain;
  let failure: RaftlogError | undefined;
  let fallocateRefused = false;
  const retry: ChainOp[] = [];
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
      fallocateRefused = true;
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
      failure = shortWrite(o, file.name, file.block);
      if (failure !== undefined) reject(o.reqs, failure);
      else retry.push(o);
      continue;
    }
    for (const req of o.reqs) req.done();
  }
  return { retry, rejections, fallocateRefused };
}

/**
 * A write the kernel did only in part: moves `o` past what was written (or,
 * in direct mode off a block boundary, keeps it whole) for a retry, or
 * returns the failure when it made no progress or keeps coming back short.
 */
function shortWrite(o: ChainOp, name: string, block: number): RaftlogError | undefined {
  if (o.res === 0) {
    return new IoError(`write ${name}: no progress at offset ${o.position}`, { file: name, offset: o.position });
  }
  if (++o.attempts > MAX_ATTEMPTS) {
    return new IoError(`write ${name}: still short after ${MAX_ATTEMPTS} attempts`, { file: name, offset: o.position });
  }
  // Direct mode continues only from a block boundary; an unaligned
  // remainder would be refused, so then the whole block range is redone.
  if (!o.aligned || o.res % block === 0) {
    o.buffers = remainingBuffers(o.buffers, o.res);
    o.position += o.res;
    o.length -= o.res;
  }
  return undefined;
}
