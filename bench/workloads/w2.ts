/**
 * W2, multi-Raft append: 1,000 regions, C concurrent writers. Each op is one
 * synced batch of 4 × 1 KiB entries (half random, half zeros) appended to a
 * random region, plus a 32-byte hard-state put for that region. A region is
 * never appended by two writers at once (one leader per Raft group), so
 * every batch's indexes are valid when it is written.
 */
import type { CaseSpec } from '../support/cases.js';
import { type CpuTime, DataPool, RegionPicker, halfRandomEntries, hardState, timedLoop } from '../support/driver.js';
import type { LatencySummary } from '../support/stats.js';
import type { LogStore, StoreDescriptor } from '../stores/store.js';

export const W2_WRITERS = [1, 8, 64] as const;
export const W2_REGIONS = 1000;
export const ENTRIES_PER_OP = 4;
export const ENTRY_BYTES = 1024;
export const HARD_STATE_BYTES = 32;
/** Application bytes per op: what MB/s counts. */
export const W2_OP_BYTES = ENTRIES_PER_OP * ENTRY_BYTES + HARD_STATE_BYTES;

export interface W2Result {
  writers: number;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  mbPerSecond: number;
  latency: LatencySummary;
  counters: Record<string, number>;
  /** Process CPU time (user and system, every thread) over the measured window, and per synced write. */
  cpu: CpuTime;
  cpuMicrosPerWrite: number;
}

/** The op W2 and W3 share; returns after the synced write resolves. */
export class MultiRaftWriter {
  readonly #store: LogStore;
  readonly #picker: RegionPicker;
  readonly #pool = new DataPool(1 << 20);
  /** Next index per region (index 0 unused). */
  readonly next: Float64Array;
  /** First index still held per region (after compactions). */
  readonly first: Float64Array;
  #entrySets: Uint8Array[][];
  #cursor = 0;

  constructor(store: LogStore, regions: number) {
    this.#store = store;
    this.#picker = new RegionPicker(regions);
    this.next = new Float64Array(regions + 1).fill(1);
    this.first = new Float64Array(regions + 1).fill(1);
    // A rotating set of prepared entries: building 4 KiB per op would measure the generator, not the store.
    this.#entrySets = Array.from({ length: 64 }, () => halfRandomEntries(ENTRIES_PER_OP, ENTRY_BYTES, this.#pool));
  }

  async append(): Promise<void> {
    const region = this.#picker.acquire();
    try {
      const firstIndex = this.next[region]!;
      const entries = this.#entrySets[this.#cursor++ % this.#entrySets.length]!;
      const commit = firstIndex + ENTRIES_PER_OP - 1;
      await this.#store.write({ region, firstIndex, entries, hardState: hardState(1, 1, commit) }, true);
      this.next[region] = commit + 1;
    } finally {
      this.#picker.release(region);
    }
  }
}

export async function runW2(spec: CaseSpec, descriptor: StoreDescriptor): Promise<W2Result> {
  const writers = Number(spec.params['writers']);
  const store = await descriptor.create(spec.dir);
  await store.open();
  try {
    const writer = new MultiRaftWriter(store, W2_REGIONS);
    const loop = await timedLoop({ writers, warmupSeconds: spec.warmupSeconds, measureSeconds: spec.measureSeconds }, async () => {
      await writer.append();
      return 'write';
    });
    const write = loop.kinds['write']!;
    return {
      writers,
      ops: write.ops,
      seconds: loop.seconds,
      opsPerSecond: write.opsPerSecond,
      mbPerSecond: (write.ops * W2_OP_BYTES) / loop.seconds / 1e6,
      latency: write.latency,
      counters: store.counters(),
      cpu: loop.cpu,
      cpuMicrosPerWrite: (loop.cpu.userMicros + loop.cpu.systemMicros) / write.ops,
    };
  } finally {
    await store.close();
  }
}
