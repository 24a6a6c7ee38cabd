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
import { UnsupportedError } from './errors.js';
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
}

interface MetricValue {
  value: number;
  labels?: Record<string, string>;
  metricName?: string;
}

type Kind = 'counter' | 'gauge' | 'histogram';

/** One prom-client custom metric: read from a fresh snapshot at every scrape. */
function customMetric(name: string, help: string, type: Kind, read: (m: EngineMetrics) => MetricValue[], snapshot: () => EngineMetrics) {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: read(snapshot()) }),
    reset: () => undefined,
  };
}

function histogramValues(name: string, histogram: HistogramSnapshot, scale = 1): MetricValue[] {
  const values: MetricValue[] = [];
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i]!;
    values.push({ metricName: `${name}_bucket`, labels: { le: Number.isFinite(bound) ? String(bound * scale) : '+Inf' }, value: cumulative });
  });
  values.push({ metricName: `${name}_sum`, value: histogram.sum * scale });
  values.push({ metricName: `${name}_count`, value: histogram.count });
  return values;
}

export async function registerPrometheus(engine: Engine, options: PrometheusOptions = {}): Promise<{ registry: PrometheusRegistry; unregister(): void }> {
  let client: { Registry: new () => PrometheusRegistry };
  try {
    client = (await import('prom-client')) as unknown as { Registry: new () => PrometheusRegistry };
  } catch (error) {
    throw new UnsupportedError('raftlog/prometheus needs the prom-client package: npm install prom-client', { cause: error });
  }
  const registry = options.registry ?? new client.Registry();
  const prefix = options.prefix ?? 'raftlog_';
  const snapshot = (): EngineMetrics => engine.metrics();
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
  const histograms: [keyof EngineMetrics['histograms'], string, string, number][] = [
    ['writeLatencyMicros', 'write_latency_seconds', 'From write() to its acknowledgement', 1e-6],
    ['syncLatencyMicros', 'sync_latency_seconds', 'Durability barrier duration', 1e-6],
    ['groupSize', 'group_size', 'Writes per group commit', 1],
    ['purgeLatencyMicros', 'purge_latency_seconds', 'purgeExpiredFiles() duration', 1e-6],
  ];
  const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const metrics = [
    ...counters.map(([key, help]) => customMetric(`${prefix}${snake(key)}_total`, help, 'counter', (m) => [{ value: m.counters[key] }], snapshot)),
    ...gauges.map(([key, help]) => customMetric(`${prefix}${snake(key)}`, help, 'gauge', (m) => [{ value: m.gauges[key] }], snapshot)),
    ...histograms.map(([key, name, help, scale]) =>
      customMetric(`${prefix}${name}`, help, 'histogram', (m) => histogramValues(`${prefix}${name}`, m.histograms[key], scale), snapshot),
    ),
  ];
  for (const metric of metrics) registry.registerMetric(metric as never);
  return {
    registry,
    unregister: () => {
      for (const metric of metrics) registry.removeSingleMetric(metric.name);
    },
  };
}
