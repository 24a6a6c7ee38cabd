/**
 * The measuring loop every workload shares: N concurrent writers run ops
 * back to back; ops that start during the warm-up are not recorded; ops that
 * start during the measured window are, each with its latency (call to
 * resolve) under the kind the op reports ('write', 'read'). The window's
 * length is taken from its start to when the last op finished, so an op that
 * runs past the deadline is counted with the time it took.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LatencyRecorder, type LatencySummary } from './stats.js';
import { benchRandom } from './random.js';

export interface LoopOptions {
  writers: number;
  warmupSeconds: number;
  measureSeconds: number;
  /** Stop after this many recorded ops (all kinds) even if time is left; for fixed-count runs such as syscall counting. */
  maxOps?: number;
}

export interface KindResult {
  ops: number;
  opsPerSecond: number;
  latency: LatencySummary;
}

/** CPU time of the whole process (every thread: the JS thread, libuv's pool, a peer's own threads) over the measured window. */
export interface CpuTime {
  userMicros: number;
  systemMicros: number;
}

export interface LoopResult {
  seconds: number;
  kinds: Record<string, KindResult>;
  cpu: CpuTime;
}

/** Runs `op(writer)` from `writers` concurrent loops; `op` returns the kind of op it did. */
export async function timedLoop(options: LoopOptions, op: (writer: number) => Promise<string>): Promise<LoopResult> {
  const recorders = new Map<string, LatencyRecorder>();
  const started = performance.now();
  const measureFrom = started + options.warmupSeconds * 1000;
  const deadline = measureFrom + options.measureSeconds * 1000;
  const maxOps = options.maxOps ?? Number.POSITIVE_INFINITY;
  let recorded = 0;
  let failure: unknown;
  // Taken when the first measured op starts, so the window's CPU time and its
  // ops begin together (the warm-up's ops still in flight then bleed in, as
  // the ops running past the deadline do into the wall time).
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const loop = async (writer: number): Promise<void> => {
    for (;;) {
      const start = performance.now();
      if (start >= deadline || recorded >= maxOps || failure !== undefined) return;
      const measuring = start >= measureFrom;
      if (measuring) {
        cpuAtStart ??= process.cpuUsage();
        recorded++;
      }
      const kind = await op(writer);
      if (measuring) {
        let recorder = recorders.get(kind);
        if (recorder === undefined) recorders.set(kind, (recorder = new LatencyRecorder()));
        recorder.record((performance.now() - start) * 1e6);
      }
    }
  };
  await Promise.all(
    Array.from({ length: options.writers }, (_, w) =>
      loop(w).catch((error: unknown) => {
        failure ??= error;
      }),
    ),
  );
  const cpu = process.cpuUsage(cpuAtStart);
  if (failure !== undefined) throw failure;
  const seconds = Math.max(1e-9, (performance.now() - measureFrom) / 1000);
  const kinds: Record<string, KindResult> = {};
  for (const [kind, recorder] of recorders) {
    kinds[kind] = { ops: recorder.count, opsPerSecond: recorder.count / seconds, latency: recorder.summary() };
  }
  return {
    seconds,
    kinds,
    cpu: cpuAtStart === undefined ? { userMicros: 0, systemMicros: 0 } : { userMicros: cpu.user, systemMicros: cpu.system },
  };
}

/**
 * Random bytes to slice values from. Slices start at varying offsets, so
 * consecutive values differ (no store can dedupe or cache them) and are
 * incompressible, without generating fresh random data per op.
 */
export class DataPool {
  readonly #pool: Uint8Array;
  #cursor = 0;

  constructor(largestValue: number) {
    this.#pool = benchRandom('data').bytes(Math.max(4 << 20, largestValue * 2 + 4099));
  }

  /** `length` random bytes (a view into the pool: stores copy what they keep). */
  next(length: number): Uint8Array {
    this.#cursor = (this.#cursor + 4099) % (this.#pool.length - length);
    return this.#pool.subarray(this.#cursor, this.#cursor + length);
  }
}

/** W2/W3's entry: 1 KiB, half random and half zeros (a realistic mix that a compressing store may shrink). */
export function halfRandomEntries(count: number, size: number, pool: DataPool): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const entry = new Uint8Array(size);
    entry.set(pool.next(size >> 1));
    return entry;
  });
}

/** A 32-byte hard state: term, vote, commit as little-endian u64s plus padding, as a Raft implementation would persist it. */
export function hardState(term: number, vote: number, commit: number): Uint8Array {
  const bytes = new Uint8Array(32);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(term), true);
  view.setBigUint64(8, BigInt(vote), true);
  view.setBigUint64(16, BigInt(commit), true);
  return bytes;
}

/** Apparent size of every file under `dir` (preallocated space included: it is what the store holds on to). */
export function directoryBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) {
        files++;
        bytes += statSync(child).size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

/** Picks a region uniformly among those no other writer is appending to (a Raft group has one leader appending at a time). */
export class RegionPicker {
  readonly #busy: Uint8Array;
  readonly #regions: number;
  readonly #random = benchRandom('regions');

  constructor(regions: number) {
    this.#regions = regions;
    this.#busy = new Uint8Array(regions + 1);
  }

  acquire(): number {
    for (;;) {
      const region = 1 + this.#random.below(this.#regions);
      if (this.#busy[region] === 0) {
        this.#busy[region] = 1;
        return region;
      }
    }
  }

  release(region: number): void {
    this.#busy[region] = 0;
  }
}
