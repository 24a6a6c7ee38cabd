/**
 * How much a synced 4 KiB append into freshly preallocated space makes the
 * kernel write: Linux gives a buffered write a page-cache folio as large as
 * the write (up to 2 MiB) and writes a dirty folio back whole, so a
 * preallocation written in large pieces turns every small synced append into
 * a large write (see backends/zero-fill.ts). Measured with ru_oublock, which
 * counts 512-byte units as pages are dirtied, a whole folio at a time.
 */
import type { FileHandle } from '../../src/filesystem.js';
import { Random } from './random.js';

const PREALLOCATED = 8 << 20;
const WRITES = 32;

/**
 * KiB dirtied per synced 4 KiB append into `file` after preallocating 8 MiB,
 * or a reason string where the kernel does not account dirtied pages per task.
 */
export async function kibDirtiedPerSyncedAppend(file: FileHandle): Promise<number | string> {
  const before = process.resourceUsage().fsWrite;
  await file.preallocate(0, PREALLOCATED);
  const zeros = process.resourceUsage().fsWrite - before;
  if (zeros < PREALLOCATED / 512) return `this kernel does not account dirtied pages per task (${zeros} units for ${PREALLOCATED} bytes)`;
  await file.sync();
  const random = new Random(7);
  const start = process.resourceUsage().fsWrite;
  // Each append starts 100 bytes into a page, so it spans two.
  for (let i = 0; i < WRITES; i++) await file.write([random.bytes(4096)], (1 << 20) + i * 4096 + 100, { sync: true });
  return (process.resourceUsage().fsWrite - start) / 2 / WRITES;
}
