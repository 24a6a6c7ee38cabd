/**
 * Engine metrics: counters and fixed-bucket histograms kept in typed arrays,
 * so recording a sample on the write path is an increment, never an
 * allocation. `engine.metrics()` returns a snapshot; `raftlog/prometheus`
 * exports it to prom-client for those who use it (an optional dependency).
 */

/** Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf). */
export const LATENCY_BUCKETS_MICROS: readonly number[] = [
  25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
/** Upper bounds of the group-size buckets (writes per group commit). */
export const GROUP_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export interface HistogramSnapshot {
  /** Upper bound of each bucket; the last one is +Infinity. */
  bounds: number[];
  /** Samples in each bucket (not cumulative). */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let bucket = 0;
    while (bucket < this.#bounds.length && value > this.#bounds[bucket]!) bucket++;
    this.#counts[bucket]!++;
    this.#sum += value;
    this.#count++;
  }

  /** The bucket upper bound below which `q` of the samples fall (0 when empty). */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return i < this.#bounds.length ? this.#bounds[i]! : Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: [...this.#bounds, Number.POSITIVE_INFINITY], counts: [...this.#counts], sum: this.#sum, count: this.#count };
  }
}

export interface EngineMetrics {
  counters: {
    writes: number;
    writeErrors: number;
    bytesWritten: number;
    groups: number;
    syncs: number;
    rotations: number;
    purges: number;
    filesRemoved: number;
    filesRecycled: number;
    bytesRewritten: number;
    entriesCompacted: number;
    /** Background scrub passes completed (EngineOptions.scrub). */
    scrubPasses: number;
    /** Bytes of the log the background scrub read and verified. */
    scrubBytes: number;
    /** Distinct problems (damaged records, index entries pointing at them) found by the scrub, `verify()` or `consistencyCheck()`. */
    corruptionsFound: number;
  };
  gauges: {
    regions: number;
    entries: number;
    memtableIndexBytes: number;
    /** Bytes of decompressed records held by the read cache (at most EngineOptions.readCacheBytes). */
    readCacheBytes: number;
    liveBytes: number;
    logFiles: number;
    logFileBytes: number;
    failed: number;
  };
  histograms: {
    /** From `write()` to its acknowledgement, µs. */
    writeLatencyMicros: HistogramSnapshot;
    /** Duration of each durability barrier (write carrying it, or a bare sync), µs. */
    syncLatencyMicros: HistogramSnapshot;
    /** Writes per group commit. */
    groupSize: HistogramSnapshot;
    /** Duration of each purgeExpiredFiles(), µs. */
    purgeLatencyMicros: HistogramSnapshot;
    /** How long each purge held the write queue (its swap step), µs: the stall writers saw. */
    purgeStallMicros: HistogramSnapshot;
  };
}

/** The histograms and counters the engine records into as it runs. */
export class MetricsRecorder {
  readonly writeLatency = new Histogram(LATENCY_BUCKETS_MICROS);
  readonly syncLatency = new Histogram(LATENCY_BUCKETS_MICROS);
  readonly groupSize = new Histogram(GROUP_SIZE_BUCKETS);
  readonly purgeLatency = new Histogram(LATENCY_BUCKETS_MICROS);
  readonly purgeStall = new Histogram(LATENCY_BUCKETS_MICROS);
  writeErrors = 0;
  filesRemoved = 0;
  filesRecycled = 0;
  entriesCompacted = 0;
  scrubPasses = 0;
  scrubBytes = 0;
  corruptionsFound = 0;
}
