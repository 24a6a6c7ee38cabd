/**
 * Counting flush system calls with strace. The case runs under
 * `strace -f -qq -e trace=<flushes and markers> -o FILE`; only the calls
 * between the case's two marker `access()` calls are counted (every thread:
 * LMDB, LevelDB and RocksDB sync from threads of their own).
 *
 * io_uring is the exception strace cannot see into: UringFs puts its
 * fdatasync in the ring as an SQE linked to the write, so the trace shows
 * io_uring_enter calls, not fdatasyncs. Those are counted separately, and
 * the engine's own barrier count (stats().syncs) is reported beside them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { MARK_END, MARK_START } from '../workloads/syscalls.js';

export const FLUSH_SYSCALLS = ['fsync', 'fdatasync', 'msync', 'sync_file_range', 'syncfs', 'sync'] as const;
const TRACED = [...FLUSH_SYSCALLS, 'io_uring_enter', 'access', 'faccessat', 'faccessat2'];

export type SyscallCounts = Record<(typeof FLUSH_SYSCALLS)[number] | 'io_uring_enter', number>;

/** Why strace cannot be used here, or undefined. Tries `apt-get install strace` once when allowed and missing. */
export function straceUnavailable(allowInstall: boolean): string | undefined {
  if (works()) return undefined;
  if (allowInstall && process.getuid?.() === 0) {
    try {
      process.stderr.write('bench: strace is missing; installing it with apt-get (BENCH_NO_INSTALL=1 skips this)\n');
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 120_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'strace'], { stdio: 'ignore', timeout: 180_000 });
    } catch {
      // Reported below as missing.
    }
    if (works()) return undefined;
  }
  return 'strace is not installed (apt-get install strace) or ptrace is not permitted here: flush syscalls were not counted';
}

function works(): boolean {
  try {
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=fdatasync', '-o', '/dev/null', 'true'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export function straceWrapper(outputFile: string): string[] {
  return ['strace', '-f', '-qq', '-e', `trace=${TRACED.join(',')}`, '-o', outputFile];
}

/** Counts flush calls between the markers in an strace -f output file. */
export function countBetweenMarkers(traceFile: string): SyscallCounts | undefined {
  const lines = readFileSync(traceFile, 'utf8').split('\n');
  const counts: SyscallCounts = { fsync: 0, fdatasync: 0, msync: 0, sync_file_range: 0, syncfs: 0, sync: 0, io_uring_enter: 0 };
  let inside = false;
  let sawEnd = false;
  // "1234  fdatasync(17) = 0" or "1234  fdatasync(17 <unfinished ...>"; the matching
  // "<... fdatasync resumed>" line is the same call and is not counted again.
  const call = /^\d+\s+([a-z_0-9]+)\(/;
  for (const line of lines) {
    if (line.includes(MARK_START)) {
      inside = true;
      continue;
    }
    if (line.includes(MARK_END)) {
      sawEnd = true;
      break;
    }
    if (!inside) continue;
    const name = call.exec(line)?.[1];
    if (name !== undefined && name in counts) counts[name as keyof SyscallCounts]++;
  }
  return inside && sawEnd ? counts : undefined;
}
