/**
 * The errors of UringFs's completions. A CQE carries only a negative errno,
 * not the Node-style system error that the rest of the backends map with
 * fromSystemError, so this file turns one into the other, once, for every
 * piece of the ring (the chain settler, the handle's fallocate fallback, the
 * read path) to report failures in the same error family as PosixFs.
 */

import { constants as osConstants } from 'node:os';

import { RaftlogError, fromSystemError } from '../../src/errors.js';

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

/** The errnos with which a file system says it has no fallocate (FUSE without it, ramfs, ...). */
export const FALLOCATE_REFUSALS: ReadonlySet<string> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOSYS']);

/** Whether a completion is a file system's refusal of fallocate (not a failure of the file). */
export function refusesFallocate(res: number): boolean {
  return res < 0 && FALLOCATE_REFUSALS.has(ERRNO_NAMES.get(-res) ?? '');
}

/** The error for an op the kernel never ran because an earlier one in its chain failed. */
export function cancelled(failure: RaftlogError, kind: string, file: string): RaftlogError {
  return new RaftlogError(
    failure.code,
    `${kind === 'fsync' ? 'sync' : kind} ${file}: not done, an earlier operation failed (${failure.message})`,
    {
      cause: failure,
      file,
      errno: failure.errno,
    },
  );
}
