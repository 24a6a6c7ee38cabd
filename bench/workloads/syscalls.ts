/**
 * Durability check: how many flush system calls each store makes per synced
 * op. The case runs W2's op under `strace -f` (see support/strace.ts); it
 * marks the start and end of the counted ops with a failing `access()` of a
 * path no one else uses, so the parent counts only the flushes in between
 * (not open, warm-up or close).
 */
import { accessSync } from 'node:fs';
import type { CaseSpec } from '../support/cases.js';
import { timedLoop } from '../support/driver.js';
import type { StoreDescriptor } from '../stores/store.js';
import { MultiRaftWriter, W2_REGIONS } from './w2.js';

export const MARK_START = '/nonexistent/raftlog-bench-mark-start';
export const MARK_END = '/nonexistent/raftlog-bench-mark-end';

export interface SyscallCaseResult {
  writers: number;
  ops: number;
  counters: Record<string, number>;
}

function mark(path: string): void {
  try {
    accessSync(path);
  } catch {
    // Expected: the marker is the failing syscall itself.
  }
}

export async function runSyscalls(spec: CaseSpec, descriptor: StoreDescriptor): Promise<SyscallCaseResult> {
  const writers = Number(spec.params['writers']);
  const ops = Number(spec.params['ops']);
  const store = await descriptor.create(spec.dir);
  await store.open();
  try {
    const writer = new MultiRaftWriter(store, W2_REGIONS);
    // Warm-up outside the markers: first writes create files and preallocate.
    await timedLoop({ writers, warmupSeconds: 0, measureSeconds: spec.warmupSeconds, maxOps: Math.max(writers * 4, 64) }, async () => {
      await writer.append();
      return 'write';
    });
    const before = store.counters();
    mark(MARK_START);
    const loop = await timedLoop({ writers, warmupSeconds: 0, measureSeconds: spec.measureSeconds, maxOps: ops }, async () => {
      await writer.append();
      return 'write';
    });
    mark(MARK_END);
    const after = store.counters();
    const counters: Record<string, number> = {};
    for (const [key, value] of Object.entries(after)) counters[key] = value - (before[key] ?? 0);
    return { writers, ops: loop.kinds['write']?.ops ?? 0, counters };
  } finally {
    await store.close();
  }
}
