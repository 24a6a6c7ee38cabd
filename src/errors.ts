/**
 * One error family for everything raftlog raises. Callers branch on `code`,
 * never on message text; `instanceof RaftlogError` works across duplicate
 * copies of the package because the brand is a registered symbol.
 */

const BRAND = Symbol.for('raftlog.error');

export const ErrorCode = {
  /** Bad input from the caller; nothing was written. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** Stored bytes fail verification; `file` and `offset` say where. */
  CORRUPTION: 'CORRUPTION',
  /** The directory is held by another engine (this process or another). */
  LOCKED: 'LOCKED',
  /** The engine or handle was closed. */
  CLOSED: 'CLOSED',
  /** An I/O operation failed (EIO and anything not covered below). */
  IO: 'IO',
  /** The device is full (ENOSPC, EDQUOT). */
  NO_SPACE: 'NO_SPACE',
  /** A durability barrier failed; the engine is fail-stopped until reopened. */
  FSYNC_FAILED: 'FSYNC_FAILED',
  /** An earlier write or barrier failed; no write is accepted until reopen. */
  FAILED: 'FAILED',
  /** A file or directory does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** Creating something that exists already. */
  EXISTS: 'EXISTS',
  /** This backend or platform cannot do what was asked (e.g. io_uring refused). */
  UNSUPPORTED: 'UNSUPPORTED',
  /** Encryption keys do not match the data (wrong master key). */
  BAD_KEY: 'BAD_KEY',
  /** RaftStorage: the index is at or below the last compacted one (Raft's ErrCompacted). */
  COMPACTED: 'COMPACTED',
  /** RaftStorage: the index is past the last entry (Raft's ErrUnavailable). */
  UNAVAILABLE: 'UNAVAILABLE',
  /** RaftStorage: the snapshot is not newer than the one stored (Raft's ErrSnapOutOfDate). */
  SNAPSHOT_OUT_OF_DATE: 'SNAPSHOT_OUT_OF_DATE',
  /**
   * An internal invariant failed (src/assert.ts): a bug in raftlog, never the
   * caller's input or the disk's state. On the write path it fail-stops the
   * engine like any write failure; please report it with the message.
   */
  BUG: 'BUG',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface RaftlogErrorOptions {
  cause?: unknown;
  /** File name relative to the FileSystem root, when the error concerns one file. */
  file?: string;
  /** Byte offset in `file`, when known. */
  offset?: number;
  /** The OS errno name behind an I/O error (EIO, ENOSPC, …). */
  errno?: string;
}

export class RaftlogError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly errno: string | undefined;

  constructor(code: ErrorCode, message: string, options: RaftlogErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.file = options.file;
    this.offset = options.offset;
    this.errno = options.errno;
  }

  override get name(): string {
    return `RaftlogError[${this.code}]`;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}
Object.defineProperty(RaftlogError.prototype, BRAND, { value: true });

export class InvalidArgumentError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
  }
}

export class CorruptionError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.CORRUPTION, message, options);
  }
}

export class LockedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.LOCKED, message, options);
  }
}

export class ClosedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.CLOSED, message, options);
  }
}

export class IoError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.IO, message, options);
  }
}

export class NoSpaceError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.NO_SPACE, message, options);
  }
}

export class FsyncFailedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.FSYNC_FAILED, message, options);
  }
}

export class EngineFailedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.FAILED, message, options);
  }
}

export class NotFoundError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.NOT_FOUND, message, options);
  }
}

export class ExistsError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.EXISTS, message, options);
  }
}

export class UnsupportedError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.UNSUPPORTED, message, options);
  }
}

export class BadKeyError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.BAD_KEY, message, options);
  }
}

/** A failed internal assertion (see src/assert.ts); the message starts with "raftlog bug: ". */
export class BugError extends RaftlogError {
  constructor(message: string, options?: RaftlogErrorOptions) {
    super(ErrorCode.BUG, `raftlog bug: ${message}`, options);
  }
}

export function isRaftlogError(value: unknown, code?: ErrorCode): value is RaftlogError {
  return value instanceof RaftlogError && (code === undefined || value.code === code);
}

/**
 * Maps an OS-level error (node:fs, memfs, the native addon) to the family.
 * Backends call this at their edge so the engine only ever sees RaftlogError.
 */
export function fromSystemError(error: unknown, operation: string, file?: string): RaftlogError {
  if (error instanceof RaftlogError) return error;
  const errno = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const errnoName = typeof errno === 'string' ? errno : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  const options: RaftlogErrorOptions = { cause: error, file, errno: errnoName };
  const where = file === undefined ? operation : `${operation} ${file}`;
  switch (errnoName) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new NoSpaceError(`${where}: no space left on device`, options);
    case 'ENOENT':
      return new NotFoundError(`${where}: no such file or directory`, options);
    case 'EEXIST':
      return new ExistsError(`${where}: already exists`, options);
    case 'EAGAIN':
    case 'EWOULDBLOCK':
      return new LockedError(`${where}: locked by another process`, options);
    case 'ENOSYS':
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return new UnsupportedError(`${where}: not supported (${errnoName})`, options);
    default:
      return new IoError(`${where}: ${detail}`, options);
  }
}
