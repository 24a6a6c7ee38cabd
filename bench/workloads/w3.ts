/**
 * W3, append-compact-read: 100 regions, 8 concurrent workers. 90% of ops are
 * W2's synced append; 10% read the last 16 entries of a random region. Every
 * 1,000 writes every region is compacted to its last 256 entries, then the
 * store's own reclamation runs as it asks (raftlog: purgeExpiredFiles, and
 * the regions it names are compacted again; the peers reclaim space by
 * themselves). Reported: write and read throughput and p99s, and how much
 * disk the store holds per byte of live data at the end.
 */
import type { CaseSpec } from '../support/cases.js';
import { directoryBytes, timedLoop } from '../support/driver.js';
import { benchRandom } from '../support/random.js';
import type { LatencySummary } from '../support/stats.js';
import type { StoreDescriptor } from '../stores/store.js';
import { ENTRY_BYTES, HARD_STATE_BYTES, MultiRaftWriter } from './w2.js';

export const W3_REGIONS = 100;
export const W3_WORKERS = 8;
export const W3_COMPACT_EVERY = 1000;
export const W3_KEEP = 256;
export const W3_READ_FRACTION = 0.1;
export const W3_READ_ENTRIES = 16;
/**
 * raftlog's file size in W3. At the default (128 MiB) a run of a few seconds
 * never fills its first file, so nothing could be purged and disk/live would
 * only say how long the run was; at 8 MiB files rotate every second or two
 * and purge (threshold 8 files) has work within the run.
 */
export const W3_RAFTLOG_TARGET_FILE_SIZE = 8 << 20;

export interface W3Result {
  seconds: number;
  writes: { ops: number; opsPerSecond: number; latency: LatencySummary };
  reads: { ops: number; opsPerSecond: number; latency: LatencySummary };
  compactionRounds: number;
  /** Milliseconds over all compaction rounds (compactTo/range deletes plus the store's reclamation). */
  compactionMillis: number;
  /** Whether the store was asked to reclaim space (raftlog with purgeExpiredFiles), or reclaims by itself. */
  reclamation: 'purgeExpiredFiles' | 'none (engine has no purge)' | 'store-internal';
  /** Regions the store asked to have compacted, summed over rounds. */
  regionsAskedToCompact: number;
  diskBytes: number;
  liveBytes: number;
  diskPerLive: number;
  files: number;
  counters: Record<string, number>;
}

export async function runW3(spec: CaseSpec, descriptor: StoreDescriptor): Promise<W3Result> {
  const store = await descriptor.create(spec.dir, { raftlogTargetFileSize: W3_RAFTLOG_TARGET_FILE_SIZE });
  await store.open();
  try {
    const writer = new MultiRaftWriter(store, W3_REGIONS);
    let writes = 0;
    let rounds = 0;
    let compactionMillis = 0;
    let asked = 0;
    let compacting: Promise<void> = Promise.resolve();
    const compactAll = async (): Promise<void> => {
      const started = performance.now();
      // Compact every region to its last W3_KEEP entries (what a Raft
      // implementation does once the state machine has applied and persisted
      // them), then let the store reclaim what that freed.
      const keepFrom = (region: number): number => Math.max(writer.first[region]!, writer.next[region]! - W3_KEEP);
      for (let region = 1; region <= W3_REGIONS; region++) {
        const to = keepFrom(region);
        if (to > writer.first[region]!) {
          await store.compact(region, to);
          writer.first[region] = to;
        }
      }
      const { compactRegions } = await store.maintain();
      asked += compactRegions.length;
      for (const region of compactRegions) {
        // The store names regions whose old entries pin old files: compact
        // them as far as the workload's rule (keep the last 256) allows.
        if (region < 1 || region > W3_REGIONS) continue;
        const to = keepFrom(region);
        if (to > writer.first[region]!) {
          await store.compact(region, to);
          writer.first[region] = to;
        }
      }
      rounds++;
      compactionMillis += performance.now() - started;
    };
    const reads = benchRandom('w3-reads');
    const loop = await timedLoop(
      { writers: W3_WORKERS, warmupSeconds: spec.warmupSeconds, measureSeconds: spec.measureSeconds },
      async () => {
        if (reads.chance(W3_READ_FRACTION)) {
          const region = 1 + reads.below(W3_REGIONS);
          const end = writer.next[region]!;
          const begin = Math.max(writer.first[region]!, end - W3_READ_ENTRIES);
          if (end > begin) {
            const entries = await store.read(region, begin, end);
            if (entries.length !== end - begin)
              throw new Error(`${descriptor.id}: read ${entries.length} of ${end - begin} entries of region ${region}`);
          }
          return 'read';
        }
        await writer.append();
        if (++writes % W3_COMPACT_EVERY === 0) {
          // One round at a time, off the writer's path: compaction is background work in a Raft server.
          compacting = compacting.then(compactAll);
        }
        return 'write';
      },
    );
    await compacting;
    let liveEntries = 0;
    for (let region = 1; region <= W3_REGIONS; region++) liveEntries += writer.next[region]! - writer.first[region]!;
    const liveBytes = liveEntries * ENTRY_BYTES + W3_REGIONS * HARD_STATE_BYTES;
    const counters = store.counters();
    await store.close();
    // Measured after close: every store has written back what it buffers, and nothing is still allocated for writing.
    const disk = directoryBytes(spec.dir);
    const reclamation =
      descriptor.kind !== 'raftlog'
        ? 'store-internal'
        : counters['purgeAvailable'] === 1
          ? 'purgeExpiredFiles'
          : 'none (engine has no purge)';
    const write = loop.kinds['write']!;
    const read = loop.kinds['read']!;
    return {
      seconds: loop.seconds,
      writes: { ops: write.ops, opsPerSecond: write.opsPerSecond, latency: write.latency },
      reads: { ops: read.ops, opsPerSecond: read.opsPerSecond, latency: read.latency },
      compactionRounds: rounds,
      compactionMillis,
      reclamation,
      regionsAskedToCompact: asked,
      diskBytes: disk.bytes,
      liveBytes,
      diskPerLive: disk.bytes / liveBytes,
      files: disk.files,
      counters,
    };
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}
