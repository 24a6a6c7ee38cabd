/**
 * Statistics the reports need: latency percentiles, medians over repeated
 * runs, and benchstat's way of comparing two sets of samples (spread after
 * dropping outliers, and a Mann-Whitney U test), so the RFC table can be
 * printed the way the RFC printed it.
 */

/** Latencies of one case, in nanoseconds, kept exactly (a case records at most a few hundred thousand ops). */
export class LatencyRecorder {
  #values = new Float64Array(1024);
  #count = 0;

  record(nanoseconds: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = nanoseconds;
  }

  get count(): number {
    return this.#count;
  }

  reset(): void {
    this.#count = 0;
  }

  /** Sorted copy of the recorded values. */
  sorted(): Float64Array {
    return this.#values.slice(0, this.#count).sort();
  }

  summary(): LatencySummary {
    return summarize(this.sorted());
  }
}

export interface LatencySummary {
  /** All in microseconds. */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

/** Percentile by the nearest-rank method on sorted values (no interpolation: every figure is a latency that happened). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(sortedNs: Float64Array): LatencySummary {
  const us = (ns: number): number => ns / 1000;
  let sum = 0;
  for (const v of sortedNs) sum += v;
  return {
    mean: sortedNs.length === 0 ? Number.NaN : us(sum / sortedNs.length),
    p50: us(percentile(sortedNs, 50)),
    p90: us(percentile(sortedNs, 90)),
    p99: us(percentile(sortedNs, 99)),
    p999: us(percentile(sortedNs, 99.9)),
    max: us(sortedNs.length === 0 ? Number.NaN : sortedNs[sortedNs.length - 1]!),
    count: sortedNs.length,
  };
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Values inside Tukey's fences (1.5 IQR beyond the quartiles), as benchstat keeps them. */
export function withoutOutliers(values: readonly number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length < 4) return sorted;
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const iqr = q3 - q1;
  return sorted.filter((v) => v >= q1 - 1.5 * iqr && v <= q3 + 1.5 * iqr);
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export interface SampleSummary {
  /** Mean of the samples left after dropping outliers. */
  center: number;
  /** Largest distance of a kept sample from the center, as a fraction of it (benchstat's "± x%"). */
  spread: number;
  /** Samples kept / taken. */
  kept: number;
  taken: number;
}

export function sampleSummary(values: readonly number[]): SampleSummary {
  const kept = withoutOutliers(values);
  const center = mean(kept);
  const spread = kept.length === 0 ? Number.NaN : Math.max(...kept.map((v) => Math.abs(v - center))) / center;
  return { center, spread, kept: kept.length, taken: values.length };
}

/**
 * Two-sided Mann-Whitney U test: the probability of samples this far apart
 * if both came from one distribution. Exact (by counting rank sums) when
 * there are no ties and the samples are small, as benchstat does; normal
 * approximation with tie correction otherwise.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): { u: number; p: number } {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, p: Number.NaN };
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[k] = rank;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  let r1 = 0;
  for (let i = 0; i < all.length; i++) if (all[i]!.g === 0) r1 += ranks[i]!;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u = Math.min(u1, n1 * n2 - u1);
  if (tieTerm === 0 && n1 <= 50 && n2 <= 50) return { u, p: Math.min(1, 2 * exactLowerTail(n1, n2, u)) };
  const mu = (n1 * n2) / 2;
  const n = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, p: 1 };
  const z = (Math.abs(u1 - mu) - 0.5) / sigma;
  return { u, p: Math.min(1, 2 * (1 - normalCdf(Math.max(0, z)))) };
}

/** P(U <= u) for sample sizes n1, n2 without ties: counts of rank arrangements by U, divided by C(n1+n2, n1). */
function exactLowerTail(n1: number, n2: number, u: number): number {
  // ways[i][j][k]: arrangements of i values from the first sample and j from the second with U = k.
  // Rolling over i keeps memory at (n2+1) * (n1*n2+1).
  const maxU = n1 * n2;
  let prev: Float64Array[] = Array.from({ length: n2 + 1 }, () => new Float64Array(maxU + 1));
  for (let j = 0; j <= n2; j++) prev[j]![0] = 1;
  for (let i = 1; i <= n1; i++) {
    const cur: Float64Array[] = Array.from({ length: n2 + 1 }, () => new Float64Array(maxU + 1));
    cur[0]![0] = 1;
    for (let j = 1; j <= n2; j++) {
      // The largest value comes from sample 1 (adds j to U: it beats all j of sample 2) or from sample 2 (adds 0).
      const fromA = prev[j]!;
      const fromB = cur[j - 1]!;
      const out = cur[j]!;
      for (let k = 0; k <= maxU; k++) out[k] = (k >= j ? fromA[k - j]! : 0) + fromB[k]!;
    }
    prev = cur;
  }
  const counts = prev[n2]!;
  let total = 0;
  let below = 0;
  for (let k = 0; k <= maxU; k++) {
    total += counts[k]!;
    if (k <= u) below += counts[k]!;
  }
  return below / total;
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf), plenty for p-values printed to three places. */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** A duration in microseconds the way benchstat prints one: 75.4µs, 117µs, 1.05ms. */
export function formatMicros(micros: number): string {
  if (!Number.isFinite(micros)) return '-';
  const [value, unit] = micros >= 1e6 ? [micros / 1e6, 's'] : micros >= 1e3 ? [micros / 1e3, 'ms'] : [micros, 'µs'];
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)}${unit}`;
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** Value sizes as the workloads name them: 1K, 4K, 1M. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20}M`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes >> 10}K`;
  return `${bytes}`;
}
