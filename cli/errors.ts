/**
 * How the CLI fails: one line on stderr and an exit code a script can branch
 * on. Stack traces are for developers only (RAFTLOG_DEBUG=1); an operator
 * looking at a damaged or locked directory needs the one sentence that says
 * what is wrong and where.
 */
import { ErrorCode, isRaftlogError } from '../src/errors.js';

/** Exit codes, documented in `raftlog --help`. */
export const ExitCode = {
  OK: 0,
  /** Anything not listed below: I/O failure, permission denied, missing path. */
  FAILURE: 1,
  /** Bad usage, a directory that is not a raftlog directory, or a refusal (repair or stress without --yes). */
  USAGE: 2,
  /** The directory is locked by a running engine. */
  LOCKED: 3,
  /** Damage found (check), or damage the chosen mode cannot repair (repair). */
  CORRUPTION: 4,
  /** Stopped by SIGINT before finishing its work. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI raises itself, with the exit code that describes it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

const CODE_EXIT: Partial<Record<ErrorCode, ExitCode>> = {
  [ErrorCode.INVALID_ARGUMENT]: ExitCode.USAGE,
  [ErrorCode.LOCKED]: ExitCode.LOCKED,
  [ErrorCode.CORRUPTION]: ExitCode.CORRUPTION,
};

export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (isRaftlogError(error)) return CODE_EXIT[error.code] ?? ExitCode.FAILURE;
  return ExitCode.FAILURE;
}

/** The one line printed for `error`: no stack, no embedded newlines. */
export function describeError(error: unknown): string {
  let text: string;
  if (error instanceof CliError) text = error.message;
  else if (isRaftlogError(error)) {
    const denied = (error.errno === 'EACCES' || error.errno === 'EPERM') && !/permission denied/i.test(error.message);
    text = denied ? `${error.message} (permission denied)` : error.message;
  } else if (error instanceof Error) text = error.message;
  else text = String(error);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Raw node:fs errors (outside a FileSystem) carry an errno name in `code`. */
export function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Turns a raw node:fs error about `path` into a one-line CliError. */
export function pathError(error: unknown, path: string, doing: string): CliError {
  switch (errnoOf(error)) {
    case 'ENOENT':
      return new CliError(`${path}: no such file or directory`, ExitCode.FAILURE);
    case 'EACCES':
    case 'EPERM':
      return new CliError(`${path}: permission denied (${doing})`, ExitCode.FAILURE);
    case 'ENOTDIR':
      return new CliError(`${path}: not a directory`, ExitCode.USAGE);
    case 'ENOSPC':
      return new CliError(`${path}: no space left on device (${doing})`, ExitCode.FAILURE);
    default:
      return new CliError(`${path}: ${doing} failed: ${describeError(error)}`, ExitCode.FAILURE);
  }
}

export function isDebug(): boolean {
  return process.env['RAFTLOG_DEBUG'] === '1';
}

export { ErrorCode };
