/**
 * Prometheus export of `engine.metrics()` through prom-client, which stays an
 * optional dependency: the engine never imports this module, and this module
 * loads prom-client only when called. Import it as `raftlog/prometheus`.
 *
 *   import { registerPrometheus } from 'raftlog/prometheus';
 *   const { registry } = await registerPrometheus(engine);   // or { registry: client.register }
 *   http.createServer(async (_, res) => res.end(await registry.metrics())).listen(9464);
 */
import type { Engine } from './engine.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import type { EngineMetrics, HistogramSnapshot } from './metrics.js';

/** The part of a prom-client Registry this module uses. */
export interface PrometheusRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
}

export interface PrometheusOptions {
  /** Registry to add the metrics to; a new prom-client Registry by default. */
  registry?: PrometheusRegistry;
  /** Metric name prefix. Default `raftlog_`. */
  prefix?: string;
  /**
   * Value of the `engine` label on every sample, unique per registry and
   * prefix: several engines share one registry, told apart by it. Default `default`.
   */
  engine?: string;
}

interface MetricValue {
  value: number;
  labels: Record<string, string>;
  metricName?: string;
}

type Kind = 'counter' | 'gauge' | 'histogram';

/** The engines exporting through one (registry, prefix): the metrics are registered once and list every engine. */
interface Exporters {
  readonly engines: Map<string, () => EngineMetrics>;
  readonly metrics: { readonly name: string }[];
}

const exporters = new WeakMap<PrometheusRegistry, Map<string, Exporters>>();

/** One prom-client custom metric: read from a fresh snapshot of every engine at every scrape. */
function customMetric(
  name: string,
  help: string,
  type: Kind,
  read: (m: EngineMetrics, labels: Record<string, string>) => MetricValue[],
  engines: Exporters['engines'],
) {
  const collect = (): MetricValue[] => [...engines].flatMap(([engine, snapshot]) => read(snapshot(), { engine }));
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: collect() }),
    reset: () => undefined,
  };
}

/**
 * A bucket bound as Prometheus shows it: `bound / divisor` in shortest
 * decimal form. Dividing an integer bound by an exact power of ten is one
 * correctly rounded operation, so 25 µs prints as 0.000025; multiplying by
 * 1e-6 (itself inexact) printed 0.000024999999999999998.
 */
function bucketLabel(bound: number, divisor: number): string {
  return Number.isFinite(bound) ? String(bound / divisor) : '+Inf';
}

function histogramValues(name: string, histogram: HistogramSnapshot, divisor: number, labels: Record<string, string>): MetricValue[] {
  const values: MetricValue[] = [];
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i]!;
    values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bucketLabel(bound, divisor) }, value: cumulative });
  });
  values.push({ metricName: `${name}_sum`, labels, value: histogram.sum / divisor });
  values.push({ metricName: `${name}_count`, labels, value: histogram.count });
  return values;
}

export async function registerPrometheus(
  engine: Engine,
  options: PrometheusOptions = {},
): Promise<{ registry: PrometheusRegistry; unregister(): void }> {
  let client: { Registry: new () => PrometheusRegistry };
  try {
    client = (await import('prom-client')) as unknown as { Registry: new () => PrometheusRegistry };
  } catch (error) {
    throw new UnsupportedError('raftlog/prometheus needs the prom-client package: npm install prom-client', { cause: error });
  }
  const registry = options.registry ?? new client.Registry();
  const prefix = options.prefix ?? 'raftlog_';
  const label = options.engine ?? 'default';
  if (typeof label !== 'string' || label.length === 0)
    throw new InvalidArgumentError('registerPrometheus: engine must be a non-empty string');
  let byPrefix = exporters.get(registry);
  if (byPrefix === undefined) {
    byPrefix = new Map();
    exporters.set(registry, byPrefix);
  }
  let shared = byPrefix.get(prefix);
  if (shared === undefined) {
    const engines: Exporters['engines'] = new Map();
    shared = { engines, metrics: defineMetrics(prefix, engines) };
    for (const metric of shared.metrics) registry.registerMetric(metric as never);
    byPrefix.set(prefix, shared);
  }
  if (shared.engines.has(label)) {
    throw new InvalidArgumentError(
      `registerPrometheus: an engine labelled engine="${label}" is already registered here; give each engine its own { engine: 'name' }`,
    );
  }
  const exporting = shared;
  exporting.engines.set(label, () => engine.metrics());
  return {
    registry,
    unregister: () => {
      if (!exporting.engines.delete(label) || exporting.engines.size > 0) return;
      for (const metric of exporting.metrics) registry.removeSingleMetric(metric.name);
      byPrefix.delete(prefix);
    },
  };
}

function defineMetrics(prefix: string, engines: Exporters['engines']) {
  const counters: [keyof EngineMetrics['counters'], string][] = [
    ['writes', 'Batches written'],
    ['writeErrors', 'Writes that failed'],
    ['bytesWritten', 'Bytes written to log files'],
    ['groups', 'Group commits'],
    ['syncs', 'Durability barriers'],
    ['rotations', 'Log file rotations'],
    ['purges', 'purgeExpiredFiles() passes'],
    ['filesRemoved', 'Log files removed by GC'],
    ['filesRecycled', 'Log files kept by GC for reuse'],
    ['bytesRewritten', 'Bytes GC copied into checkpoints'],
    ['entriesCompacted', 'Entries dropped by compaction'],
    ['scrubPasses', 'Background scrub passes completed'],
    ['scrubBytes', 'Bytes the background scrub verified'],
    ['corruptionsFound', 'Distinct problems found by verify(), consistencyCheck() or the scrub'],
  ];
  const gauges: [keyof EngineMetrics['gauges'], string][] = [
    ['regions', 'Regions holding entries or keys'],
    ['entries', 'Entries indexed'],
    ['memtableIndexBytes', 'Bytes of the memtable index'],
    ['readCacheBytes', 'Bytes of decompressed records in the read cache'],
    ['liveBytes', 'Bytes of live entries and keys'],
    ['logFiles', 'Append-queue log files'],
    ['logFileBytes', 'Bytes of log files on disk'],
    ['failed', '1 when the engine has fail-stopped'],
  ];
  /** [metric, name, help, divisor to the unit in the name] */
  const histograms: [keyof EngineMetrics['histograms'], string, string, number][] = [
    ['writeLatencyMicros', 'write_latency_seconds', 'From write() to its acknowledgement', 1e6],
    ['syncLatencyMicros', 'sync_latency_seconds', 'Durability barrier duration', 1e6],
    ['groupSize', 'group_size', 'Writes per group commit', 1],
    ['purgeLatencyMicros', 'purge_latency_seconds', 'purgeExpiredFiles() duration', 1e6],
    ['purgeStallMicros', 'purge_stall_seconds', 'Time each purge held the write queue (its swap step)', 1e6],
  ];
  const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return [
    ...counters.map(([key, help]) =>
      customMetric(`${prefix}${snake(key)}_total`, help, 'counter', (m, labels) => [{ value: m.counters[key], labels }], engines),
    ),
    ...gauges.map(([key, help]) =>
      customMetric(`${prefix}${snake(key)}`, help, 'gauge', (m, labels) => [{ value: m.gauges[key], labels }], engines),
    ),
    ...histograms.map(([key, name, help, divisor]) =>
      customMetric(
        `${prefix}${name}`,
        help,
        'histogram',
        (m, labels) => histogramValues(`${prefix}${name}`, m.histograms[key], divisor, labels),
        engines,
      ),
    ),
  ];
}
