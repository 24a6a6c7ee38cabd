/**
 * W1's floor: what the device itself takes to make a 4 KiB write durable,
 * measured in the same run, on the same file system, as the stores. It is
 * `raftlog probe`'s measurement (cli/probe.ts), imported rather than
 * copied, so the bench and the probe cannot drift apart: fdatasync after a
 * 4 KiB write into already-written, synced blocks (data only: no size or
 * extent change for the journal to commit), and beside it fdatasync after a
 * 4 KiB append (the file grows, as an append-only log's does without
 * preallocation or recycling).
 *
 * The probe times the fdatasync alone, not the write(2) before it (a copy
 * into the page cache, a few µs), and reports medians: a store's mean time
 * per synced op can approach the floor but not reach it.
 */
import { runProbe, type SyncLatency } from '../../cli/probe.js';
import type { CaseSpec } from '../support/cases.js';

export interface FloorResult {
  /** fdatasync after a 4 KiB overwrite of written blocks: the floor row. */
  overwrite: SyncLatency;
  /** fdatasync after a 4 KiB append, for comparison. */
  append: SyncLatency;
  fileSystem: string | undefined;
  device: string;
}

export async function runFloor(spec: CaseSpec): Promise<FloorResult> {
  const probe = await runProbe(spec.dir, { samples: Number(spec.params['samples']) });
  return {
    overwrite: probe.fdatasyncAfterOverwrite,
    append: probe.fdatasyncAfterAppend,
    fileSystem: probe.fileSystem,
    device: probe.device,
  };
}
