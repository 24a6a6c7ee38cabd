/**
 * W1, batch commit: one writer, each op one synced batch holding one entry
 * of V bytes (random, so incompressible) appended to one region.
 */
import type { CaseSpec } from '../support/cases.js';
import { type CpuTime, DataPool, timedLoop } from '../support/driver.js';
import type { LatencySummary } from '../support/stats.js';
import type { StoreDescriptor } from '../stores/store.js';

export const W1_VALUE_SIZES = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] as const;

export interface W1Result {
  valueBytes: number;
  ops: number;
  seconds: number;
  /** Mean time per op (the inverse of throughput with one writer). */
  microsPerOp: number;
  /** Value bytes made durable per second, in MB (10^6). */
  mbPerSecond: number;
  latency: LatencySummary;
  counters: Record<string, number>;
  /** Process CPU time (user and system, every thread) over the measured window, and per synced write. */
  cpu: CpuTime;
  cpuMicrosPerWrite: number;
}

export async function runW1(spec: CaseSpec, descriptor: StoreDescriptor): Promise<W1Result> {
  const valueBytes = Number(spec.params['valueBytes']);
  const store = await descriptor.create(spec.dir);
  await store.open();
  try {
    const pool = new DataPool(valueBytes);
    let next = 1;
    const loop = await timedLoop({ writers: 1, warmupSeconds: spec.warmupSeconds, measureSeconds: spec.measureSeconds }, async () => {
      await store.write({ region: 1, firstIndex: next++, entries: [pool.next(valueBytes)] }, true);
      return 'write';
    });
    const write = loop.kinds['write']!;
    return {
      valueBytes,
      ops: write.ops,
      seconds: loop.seconds,
      microsPerOp: (loop.seconds * 1e6) / write.ops,
      mbPerSecond: (write.ops * valueBytes) / loop.seconds / 1e6,
      latency: write.latency,
      counters: store.counters(),
      cpu: loop.cpu,
      cpuMicrosPerWrite: (loop.cpu.userMicros + loop.cpu.systemMicros) / write.ops,
    };
  } finally {
    await store.close();
  }
}
