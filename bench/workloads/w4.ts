/**
 * W4, recovery: load 512 MiB of 4 KiB entries over 1,000 regions, close;
 * then, each in a fresh process, reopen and read every region's last entry,
 * with the files in the page cache (warm) and after dropping them from it
 * (cold, see support/cache.ts). Reported: open time, time to read the 1,000
 * last entries, and the process's RSS after reopening.
 *
 * The reopen-at-scale benchmark (bench/reopen-scale.ts) runs the same cases
 * with other shapes through `params`: `regions`, `entryBytes`, `totalBytes`,
 * and `kill` (the load syncs and leaves the store open, and case.ts then
 * SIGKILLs its own process: the next reopen follows a crash, not a clean close).
 */
import type { CaseSpec } from '../support/cases.js';
import { DataPool } from '../support/driver.js';
import { directoryBytes } from '../support/driver.js';
import type { StoreDescriptor } from '../stores/store.js';

export const W4_REGIONS = 1000;
export const W4_ENTRY_BYTES = 4096;
export const W4_TOTAL_BYTES = 512 << 20;
/** Entries per load batch: big enough that the load is quick, small enough to look like Raft appends. */
const LOAD_BATCH = 16;
const LOAD_WRITERS = 8;

export interface W4LoadResult {
  entries: number;
  dataBytes: number;
  seconds: number;
  diskBytes: number;
  files: number;
  /** Last index written per region, for the reopen cases to verify against. */
  lastIndex: number[];
}

export interface W4ReopenResult {
  openMillis: number;
  readLastMillis: number;
  totalMillis: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  heapUsedAfterBytes: number;
  regionsFound: number;
}

export async function runW4Load(spec: CaseSpec, descriptor: StoreDescriptor): Promise<W4LoadResult> {
  const totalBytes = Number(spec.params['totalBytes'] ?? W4_TOTAL_BYTES);
  const { regions, entryBytes } = w4Shape(spec);
  const kill = isKillLoad(spec);
  const totalEntries = Math.floor(totalBytes / entryBytes);
  const store = await descriptor.create(spec.dir);
  await store.open();
  const started = performance.now();
  const pool = new DataPool(entryBytes * LOAD_BATCH);
  const next = new Array<number>(regions + 1).fill(1);
  let written = 0;
  let closeStore = true;
  try {
    // Writer w owns regions w+1, w+1+LOAD_WRITERS, ... and visits them round-robin,
    // so no region is appended by two writers at once.
    await Promise.all(
      Array.from({ length: LOAD_WRITERS }, async (_, w) => {
        const own: number[] = [];
        for (let r = w + 1; r <= regions; r += LOAD_WRITERS) own.push(r);
        for (let turn = 0; ; turn++) {
          const count = Math.min(LOAD_BATCH, totalEntries - written);
          if (count <= 0) return;
          written += count;
          const region = own[turn % own.length]!;
          const entries = Array.from({ length: count }, () => pool.next(entryBytes));
          await store.write({ region, firstIndex: next[region]!, entries }, false);
          next[region]! += count;
        }
      }),
    );
    // Unsynced bulk load, one barrier at the end: the load is setup, not the measurement.
    await store.sync();
    // Left open for the SIGKILL: no clean close, no seal, no index checkpoint.
    closeStore = !kill;
  } finally {
    if (closeStore) await store.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const disk = directoryBytes(spec.dir);
  return {
    entries: written,
    dataBytes: written * entryBytes,
    seconds,
    diskBytes: disk.bytes,
    files: disk.files,
    lastIndex: next.map((n) => n - 1),
  };
}

export async function runW4Reopen(spec: CaseSpec, descriptor: StoreDescriptor): Promise<W4ReopenResult> {
  const expected = JSON.parse(String(spec.params['lastIndex'])) as number[];
  const { regions, entryBytes } = w4Shape(spec);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rssBeforeBytes = process.memoryUsage().rss;
  const started = performance.now();
  const store = await descriptor.create(spec.dir);
  await store.open();
  const opened = performance.now();
  let found = 0;
  try {
    for (let region = 1; region <= regions; region++) {
      const last = await store.last(region);
      const want = expected[region] ?? 0;
      if (want === 0) continue;
      if (last === undefined || last.index !== want || last.data.byteLength !== entryBytes) {
        throw new Error(
          `${descriptor.id}: region ${region} reopened with last entry ${last?.index ?? 'none'} (${last?.data.byteLength ?? 0} bytes), expected ${want}`,
        );
      }
      found++;
    }
    const done = performance.now();
    const memory = process.memoryUsage();
    return {
      openMillis: opened - started,
      readLastMillis: done - opened,
      totalMillis: done - started,
      rssBeforeBytes,
      rssAfterBytes: memory.rss,
      heapUsedAfterBytes: memory.heapUsed,
      regionsFound: found,
    };
  } finally {
    await store.close();
  }
}

/** Regions and entry size of a W4-shaped case: W4's own unless the case's params say otherwise. */
export function w4Shape(spec: CaseSpec): { regions: number; entryBytes: number } {
  return { regions: Number(spec.params['regions'] ?? W4_REGIONS), entryBytes: Number(spec.params['entryBytes'] ?? W4_ENTRY_BYTES) };
}

/** A load that ends in a SIGKILL of its process instead of a close (see case.ts). */
export function isKillLoad(spec: CaseSpec): boolean {
  return spec.workload === 'w4-load' && Number(spec.params['kill'] ?? 0) === 1;
}
