/**
 * Cold-cache runs: drop a store's files from the page cache before a
 * reopen. `posix_fadvise(POSIX_FADV_DONTNEED)` through raftlog's addon, on
 * every file under the directory, after an fsync (DONTNEED skips dirty
 * pages). This evicts exactly the store's files, unlike
 * `echo 1 > /proc/sys/vm/drop_caches`, which needs privileges a container
 * usually lacks and evicts everything else too.
 *
 * `fincore` (util-linux), when installed, reports how much of the files was
 * resident before and after, so the JSON shows the eviction worked.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '../../hardware/native.js';

export interface EvictionReport {
  files: number;
  /** Resident bytes of the files before and after, from fincore; undefined without fincore. */
  residentBefore: number | undefined;
  residentAfter: number | undefined;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Resident page-cache bytes of `files`, summed; undefined when fincore is not there. */
export function residentBytes(files: string[]): number | undefined {
  if (files.length === 0) return 0;
  try {
    const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', ...files], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((n) => Number.isFinite(n))
      .reduce((a, b) => a + b, 0);
  } catch {
    return undefined;
  }
}

/** Why eviction cannot run here, or undefined. */
export function evictionUnavailable(): string | undefined {
  const native = loadNative();
  return native.ok ? undefined : native.reason;
}

export function evictDirectory(dir: string): EvictionReport {
  const native = loadNative();
  if (!native.ok) throw new Error(`cold-cache runs need raftlog's native addon for posix_fadvise: ${native.reason}`);
  const files = filesUnder(dir);
  const residentBefore = residentBytes(files);
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      fsyncSync(fd);
      native.binding.fadviseDontNeed(fd);
    } finally {
      closeSync(fd);
    }
  }
  return { files: files.length, residentBefore, residentAfter: residentBytes(files) };
}
