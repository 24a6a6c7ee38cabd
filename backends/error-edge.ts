/**
 * The edge where a backend's failures enter raftlog's error family. Every
 * operation of a directory backend and of its handles runs through
 * `mapErrors`, so a system error (ENOSPC, EIO, ENOENT, ...) reaches the
 * engine as the same RaftlogError code whichever backend raised it; and a
 * write through a read-only handle is refused with the same error in all.
 */

import { InvalidArgumentError, fromSystemError } from '../src/errors.js';

/** `body()`, with any failure mapped by fromSystemError for `operation` on `file`. */
export async function mapErrors<T>(operation: string, file: string | undefined, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw fromSystemError(error, operation, file);
  }
}

/** The error for a change asked of a handle opened read-only. */
export function readOnlyError(operation: string, name: string): InvalidArgumentError {
  return new InvalidArgumentError(`${operation} ${name}: handle is read-only`, { file: name });
}
