/**
 * The errors Raft libraries expect from their storage (etcd-raft's
 * ErrCompacted, ErrUnavailable, ErrSnapOutOfDate; raft-rs's
 * StorageError::Compacted, Unavailable, SnapshotOutOfDate), as RaftlogErrors
 * with their own codes, so callers branch on `code` like everywhere else.
 */
import { ErrorCode, RaftlogError, type RaftlogErrorOptions } from '../errors.js';

export class CompactedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.COMPACTED, message, options);
  }
}

export class UnavailableError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.UNAVAILABLE, message, options);
  }
}

export class SnapshotOutOfDateError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.SNAPSHOT_OUT_OF_DATE, message, options);
  }
}
