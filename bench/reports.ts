/**
 * From case outcomes to what people read: terminal/Markdown rows, the RFC's
 * benchstat-style table, and one Vega-Lite chart per workload. Pure
 * functions of the saved JSON, so docs/benchmarks.md can be regenerated
 * from committed results without rerunning anything.
 */
import type { CaseOutcome } from './support/cases.js';
import type { ChartSpec } from './support/chart.js';
import type { Row } from './support/report.js';
import { formatBytes, formatMicros, mannWhitneyU, median, sampleSummary, sizeLabel } from './support/stats.js';
import type { SyscallCounts } from './support/strace.js';
import type { FloorResult } from './workloads/floor.js';
import type { W1Result } from './workloads/w1.js';
import type { W2Result } from './workloads/w2.js';
import type { W3Result } from './workloads/w3.js';
import type { W4LoadResult, W4ReopenResult } from './workloads/w4.js';
import { RFC_MODES, type RfcMode, type RfcOrderResult, type RfcResult } from './workloads/rfc.js';
import type { SyscallCaseResult } from './workloads/syscalls.js';
import { STORE_IDS } from './stores/registry.js';

/** One color per store in every chart (ten stores, ten colors), and one dash style per kind. */
const STORE_COLOR = {
  field: 'store',
  type: 'nominal',
  scale: { domain: [...STORE_IDS], scheme: 'tableau10' },
  legend: { labelLimit: 200 },
} as const;

function kindOf(store: string): string {
  return store.startsWith('raftlog') ? 'raftlog' : store.startsWith('raw-') ? 'floor (raw file)' : 'peer';
}

export interface StoreInfo {
  id: string;
  kind: string;
  durableMode: string;
  /** Why it did not run, when it did not. */
  unavailable?: string;
}

/** Groups outcomes by a key, keeping insertion order (the run order: store order, then parameter). */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list === undefined) groups.set(k, [item]);
    else list.push(item);
  }
  return groups;
}

/** The median over the runs that succeeded of one metric, or undefined if none did. */
function med<R>(outcomes: readonly CaseOutcome<R>[], metric: (r: R) => number): number | undefined {
  const values = outcomes.filter((o) => o.ok && o.result !== undefined).map((o) => metric(o.result!));
  return values.length === 0 ? undefined : median(values);
}

/** Like med, for a metric older saved results may lack: undefined when no run has it. */
function medOf<R>(outcomes: readonly CaseOutcome<R>[], metric: (r: R) => number | undefined): number | undefined {
  const values = outcomes
    .filter((o) => o.ok && o.result !== undefined)
    .map((o) => metric(o.result!))
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length === 0 ? undefined : median(values);
}

/** A table cell for a case that failed: short (the full error is printed under the table and kept in the JSON). */
function failure(outcomes: readonly CaseOutcome<unknown>[]): string {
  const failed = outcomes.find((o) => !o.ok);
  if (failed === undefined) return 'no result';
  const error = failed.error ?? 'unknown error';
  return `failed: ${error.length > 48 ? `${error.slice(0, 47)}…` : error}`;
}

/** Every failed case's full error, for printing under a table. */
export function failures(outcomes: readonly CaseOutcome<unknown>[]): string[] {
  return outcomes.filter((o) => !o.ok).map((o) => `${o.spec.name}: ${o.error ?? 'unknown error'}`);
}

const fixed =
  (digits: number) =>
  (value: number | undefined): string =>
    value === undefined ? '-' : value.toFixed(digits);
const int = (value: number | undefined): string => (value === undefined ? '-' : Math.round(value).toLocaleString('en-US'));
const micros = (value: number | undefined): string => (value === undefined ? '-' : formatMicros(value));

// ---------------------------------------------------------------- W1

/** The floor: the median over the run's floor cases of the probe's median fdatasync after a 4 KiB overwrite, in µs. */
export function floorMicros(floor: readonly CaseOutcome<FloorResult>[] | undefined): number | undefined {
  return floor === undefined ? undefined : medOf(floor, (r) => r.overwrite.medianMicros);
}

/** The same, after a 4 KiB append (the file grows): printed beside the floor. */
export function floorAppendMicros(floor: readonly CaseOutcome<FloorResult>[] | undefined): number | undefined {
  return floor === undefined ? undefined : medOf(floor, (r) => r.append.medianMicros);
}

/** The store W1's targets are set against. */
export const W1_REFERENCE_STORE = 'sqlite';

const ratio = (value: number | undefined, against: number | undefined): string =>
  value === undefined || against === undefined || against <= 0 ? '' : `${(value / against).toFixed(2)}x`;

/**
 * W1's table: one row per store and value size, with each store's mean
 * µs/op as a ratio to the floor (the device's own 4 KiB overwrite + fdatasync,
 * measured in the same run) and to better-sqlite3 at the same size, and the
 * process CPU time per synced write. The floor opens each size's rows.
 */
export function w1Rows(outcomes: readonly CaseOutcome<W1Result>[], floor?: readonly CaseOutcome<FloorResult>[]): Row[] {
  const rows: Row[] = [];
  const floorUs = floorMicros(floor);
  const bySize = groupBy(outcomes, (o) => String(o.spec.params['valueBytes']));
  for (const [size, sizeOutcomes] of bySize) {
    const V = sizeLabel(Number(size));
    const reference = med(
      sizeOutcomes.filter((o) => o.spec.store === W1_REFERENCE_STORE),
      (r) => r.microsPerOp,
    );
    if (floorUs !== undefined)
      rows.push({
        V,
        store: 'floor',
        'µs/op': fixed(0)(floorUs),
        'x floor': '',
        'x sqlite': ratio(floorUs, reference),
        'MB/s': '',
        p50: micros(floorUs),
        p99: '',
        'CPU µs/op': '',
        runs: floor!.filter((o) => o.ok).length,
      });
    for (const [store, runs] of groupBy(sizeOutcomes, (o) => o.spec.store)) {
      const ok = runs.filter((o) => o.ok).length;
      if (ok === 0) {
        rows.push({
          V,
          store,
          'µs/op': failure(runs),
          'x floor': '',
          'x sqlite': '',
          'MB/s': '',
          p50: '',
          p99: '',
          'CPU µs/op': '',
          runs: 0,
        });
        continue;
      }
      const us = med(runs, (r) => r.microsPerOp);
      rows.push({
        V,
        store,
        'µs/op': fixed(0)(us),
        'x floor': ratio(us, floorUs),
        'x sqlite': store === W1_REFERENCE_STORE ? '' : ratio(us, reference),
        'MB/s': fixed(1)(med(runs, (r) => r.mbPerSecond)),
        p50: micros(med(runs, (r) => r.latency.p50)),
        p99: micros(med(runs, (r) => r.latency.p99)),
        'CPU µs/op': fixed(0)(medOf(runs, (r) => r.cpuMicrosPerWrite)),
        runs: ok,
      });
    }
  }
  return rows;
}

type W1Metric = 'microsPerOp' | 'mbPerSecond' | 'p50' | 'p99' | 'cpuMicrosPerWrite';

function w1Metric(r: W1Result, metric: W1Metric): number | undefined {
  return metric === 'p50' || metric === 'p99' ? r.latency[metric] : r[metric];
}

/**
 * store × value size, one metric per cell: the compact table for the docs.
 * With the run's floor cases, µs/op and p50 open with the floor row (the
 * same 4 KiB figure in every column: the floor each size is judged by).
 */
export function w1Pivot(outcomes: readonly CaseOutcome<W1Result>[], metric: W1Metric, floor?: readonly CaseOutcome<FloorResult>[]): Row[] {
  const sizes = [...new Set(outcomes.map((o) => Number(o.spec.params['valueBytes'])))].sort((a, b) => a - b);
  const rows: Row[] = [];
  const floorUs = floorMicros(floor);
  if (floorUs !== undefined && (metric === 'microsPerOp' || metric === 'p50')) {
    const row: Row = { store: 'floor (4 KiB overwrite + fdatasync)' };
    for (const size of sizes) row[sizeLabel(size)] = metric === 'p50' ? formatMicros(floorUs) : Math.round(floorUs).toLocaleString('en-US');
    rows.push(row);
  }
  for (const [store, runs] of groupBy(outcomes, (o) => o.spec.store)) {
    const row: Row = { store };
    for (const size of sizes) {
      const cell = runs.filter((o) => Number(o.spec.params['valueBytes']) === size);
      const value = medOf(cell, (r) => w1Metric(r, metric));
      row[sizeLabel(size)] =
        value === undefined
          ? cell.some((o) => o.ok)
            ? '-'
            : 'fail'
          : metric === 'mbPerSecond'
            ? value.toFixed(1)
            : metric === 'microsPerOp' || metric === 'cpuMicrosPerWrite'
              ? Math.round(value).toLocaleString('en-US')
              : formatMicros(value);
    }
    rows.push(row);
  }
  return rows;
}

/**
 * store × value size, each store's mean µs/op divided by the floor's (one
 * figure for every size) or by better-sqlite3's at the same size: the two
 * ratios W1's targets are stated in. No rows when the divisor is missing.
 */
export function w1RatioPivot(
  outcomes: readonly CaseOutcome<W1Result>[],
  against: 'floor' | 'sqlite',
  floor?: readonly CaseOutcome<FloorResult>[],
): Row[] {
  const sizes = [...new Set(outcomes.map((o) => Number(o.spec.params['valueBytes'])))].sort((a, b) => a - b);
  const divisor = (size: number): number | undefined =>
    against === 'floor'
      ? floorMicros(floor)
      : med(
          outcomes.filter((o) => o.spec.store === W1_REFERENCE_STORE && Number(o.spec.params['valueBytes']) === size),
          (r) => r.microsPerOp,
        );
  if (sizes.every((size) => divisor(size) === undefined)) return [];
  const rows: Row[] = [];
  for (const [store, runs] of groupBy(outcomes, (o) => o.spec.store)) {
    if (against === 'sqlite' && store === W1_REFERENCE_STORE) continue;
    const row: Row = { store };
    for (const size of sizes)
      row[sizeLabel(size)] =
        ratio(
          med(
            runs.filter((o) => Number(o.spec.params['valueBytes']) === size),
            (r) => r.microsPerOp,
          ),
          divisor(size),
        ) || '-';
    rows.push(row);
  }
  return rows;
}

/** W1's chart; with the run's floor cases, the floor is a dashed horizontal line across the µs panel. */
export function w1Chart(
  outcomes: readonly CaseOutcome<W1Result>[],
  subtitle: string | string[],
  floor?: readonly CaseOutcome<FloorResult>[],
): ChartSpec {
  const values = [...groupBy(outcomes, (o) => `${o.spec.store}|${o.spec.params['valueBytes']}`).values()].flatMap((runs) => {
    const us = med(runs, (r) => r.microsPerOp);
    const mb = med(runs, (r) => r.mbPerSecond);
    const bytes = Number(runs[0]!.spec.params['valueBytes']);
    const store = runs[0]!.spec.store;
    return us === undefined || mb === undefined ? [] : [{ store, kind: kindOf(store), bytes, size: sizeLabel(bytes), us, mb }];
  });
  const sizes = [...new Set(values.map((v) => v.bytes))].sort((a, b) => a - b).map(sizeLabel);
  const x = { field: 'size', type: 'ordinal', sort: sizes, axis: { title: 'value size', labelAngle: 0 } } as const;
  // The kind legend draws line segments: its default symbol (the point mark's
  // filled circle) shows no dash, which left three identical dots.
  const dash = {
    field: 'kind',
    type: 'nominal',
    title: 'kind (line style)',
    sort: ['raftlog', 'peer', 'floor (raw file)'],
    legend: {
      symbolType: 'stroke',
      symbolSize: 500,
      // A point mark's legend sets no stroke colour, so the dashed segment would be invisible.
      encode: { symbols: { update: { stroke: { value: '#444' }, strokeWidth: { value: 2 }, fill: { value: 'transparent' } } } },
    },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'W1 batch commit: one writer, one synced entry of V bytes', subtitle },
    data: { values },
    hconcat: [
      {
        width: 360,
        height: 280,
        layer: [
          {
            mark: { type: 'line', point: true },
            encoding: {
              x,
              y: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'µs per synced op (mean; lower is better)' },
              color: STORE_COLOR,
              strokeDash: dash,
            },
          },
          ...floorLayers(floorMicros(floor)),
        ],
      },
      {
        width: 360,
        height: 280,
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'mb', type: 'quantitative', scale: { type: 'log' }, title: 'MB/s of values made durable' },
          color: STORE_COLOR,
          strokeDash: dash,
        },
      },
    ],
  };
}

/** The floor as a rule with its label, in the µs panel's scale; nothing when the run has no floor. */
function floorLayers(floorUs: number | undefined) {
  if (floorUs === undefined) return [];
  const data = { values: [{ us: floorUs, label: `floor: 4 KiB overwrite + fdatasync, ${Math.round(floorUs)} µs` }] };
  return [
    { data, mark: { type: 'rule', color: '#444', strokeDash: [2, 2] as number[] }, encoding: { y: { field: 'us', type: 'quantitative' } } },
    {
      data,
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, dy: 3, x: 0, fontSize: 10, color: '#444' },
      encoding: { y: { field: 'us', type: 'quantitative' }, text: { field: 'label' } },
    },
  ] as const;
}

// ---------------------------------------------------------------- W2

export function w2Rows(outcomes: readonly CaseOutcome<W2Result>[]): Row[] {
  const rows: Row[] = [];
  // Results saved before CPU time was measured get no CPU column rather than a column of dashes.
  const cpuMeasured = outcomes.some((o) => o.result?.cpuMicrosPerWrite !== undefined);
  for (const [writers, byC] of groupBy(outcomes, (o) => String(o.spec.params['writers']))) {
    for (const [store, runs] of groupBy(byC, (o) => o.spec.store)) {
      const ok = runs.filter((o) => o.ok).length;
      if (ok === 0) {
        rows.push({
          C: Number(writers),
          store,
          'ops/s': failure(runs),
          'MB/s': '',
          p50: '',
          p99: '',
          'ops/sync': '',
          ...(cpuMeasured ? { 'CPU µs/op': '' } : {}),
          runs: 0,
        });
        continue;
      }
      const perSync = med(runs, (r) =>
        r.counters['syncs'] === undefined || r.counters['syncs'] === 0 ? Number.NaN : (r.counters['writes'] ?? r.ops) / r.counters['syncs'],
      );
      rows.push({
        C: Number(writers),
        store,
        'ops/s': int(med(runs, (r) => r.opsPerSecond)),
        'MB/s': fixed(2)(med(runs, (r) => r.mbPerSecond)),
        p50: micros(med(runs, (r) => r.latency.p50)),
        p99: micros(med(runs, (r) => r.latency.p99)),
        'ops/sync': perSync === undefined || Number.isNaN(perSync) ? '' : perSync.toFixed(1),
        ...(cpuMeasured ? { 'CPU µs/op': fixed(0)(medOf(runs, (r) => r.cpuMicrosPerWrite)) } : {}),
        runs: ok,
      });
    }
  }
  return rows;
}

/** One row per store, the cells of each writer count C filled by `fill` from that (store, C)'s runs. */
function pivotByWriters(
  outcomes: readonly CaseOutcome<W2Result>[],
  fill: (row: Row, c: number, cell: readonly CaseOutcome<W2Result>[]) => void,
): Row[] {
  const cs = [...new Set(outcomes.map((o) => Number(o.spec.params['writers'])))].sort((a, b) => a - b);
  const rows: Row[] = [];
  for (const [store, runs] of groupBy(outcomes, (o) => o.spec.store)) {
    const row: Row = { store };
    for (const c of cs)
      fill(
        row,
        c,
        runs.filter((o) => Number(o.spec.params['writers']) === c),
      );
    rows.push(row);
  }
  return rows;
}

export function w2Pivot(outcomes: readonly CaseOutcome<W2Result>[]): Row[] {
  return pivotByWriters(outcomes, (row, c, cell) => {
    const ops = med(cell, (r) => r.opsPerSecond);
    row[`C=${c} ops/s`] = ops === undefined ? 'fail' : int(ops);
    row[`C=${c} p99`] = micros(med(cell, (r) => r.latency.p99));
  });
}

/** store × C: process CPU time (user + system, every thread) per synced write, in µs; `undefined` rows for results saved before it was measured. */
export function w2CpuPivot(outcomes: readonly CaseOutcome<W2Result>[]): Row[] {
  return pivotByWriters(outcomes, (row, c, cell) => {
    const user = medOf(cell, (r) => (r.cpu === undefined ? undefined : r.cpu.userMicros / r.ops));
    const system = medOf(cell, (r) => (r.cpu === undefined ? undefined : r.cpu.systemMicros / r.ops));
    row[`C=${c} CPU µs/op`] = int(medOf(cell, (r) => r.cpuMicrosPerWrite));
    row[`C=${c} of it sys`] =
      user === undefined || system === undefined || user + system === 0 ? '-' : `${Math.round((100 * system) / (user + system))}%`;
  });
}

export function w2Chart(outcomes: readonly CaseOutcome<W2Result>[], subtitle: string | string[]): ChartSpec {
  const values = [...groupBy(outcomes, (o) => `${o.spec.store}|${o.spec.params['writers']}`).values()].flatMap((runs) => {
    const ops = med(runs, (r) => r.opsPerSecond);
    return ops === undefined
      ? []
      : [{ store: runs[0]!.spec.store, writers: `C=${runs[0]!.spec.params['writers']}`, c: Number(runs[0]!.spec.params['writers']), ops }];
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'W2 multi-Raft append: synced 4 × 1 KiB + hard state, 1,000 regions', subtitle },
    data: { values },
    width: 640,
    height: 300,
    mark: 'bar',
    encoding: {
      x: { field: 'store', type: 'nominal', sort: null, axis: { labelAngle: -30, title: null } },
      xOffset: { field: 'writers', type: 'nominal', sort: { field: 'c' } },
      y: { field: 'ops', type: 'quantitative', title: 'synced ops/s (higher is better)' },
      color: { field: 'writers', type: 'nominal', title: 'writers', sort: { field: 'c' }, scale: { scheme: 'blues' } },
    },
  };
}

// ---------------------------------------------------------------- encryption cost

/** The two stores whose throughput ratio is what EncryptedFs costs: the same engine on PosixFs, with and without the wrapper. */
const PLAIN_STORE = 'raftlog-posix';
const ENCRYPTED_STORE = 'raftlog-encrypted';

/** The round a case ran in (its name ends "run N" when there were several). */
function roundOf(outcome: CaseOutcome<unknown>): number {
  const match = / run (\d+)$/.exec(outcome.spec.name);
  return match === null ? 1 : Number(match[1]);
}

const percent = (fraction: number): string => `${(100 * fraction).toFixed(1)}%`;

/**
 * What EncryptedFs costs, as a fraction of the PosixFs throughput, for each
 * value of `parameter` (W1's value size, W2's writer count), shown in the
 * column `column`. Within a round the two cases run back to back, so their
 * ratio cancels the disk's drift over a run (here up to 2x), which the two
 * stores' separate medians do not; both figures are given, with the spread
 * of the per-round ratios. No rows unless both stores ran.
 */
export function encryptionCostRows<R>(
  outcomes: readonly CaseOutcome<R>[],
  parameter: string,
  column: string,
  label: (value: number) => string,
  throughput: (result: R) => number,
): Row[] {
  const rows: Row[] = [];
  for (const [value, cases] of groupBy(outcomes, (o) => String(o.spec.params[parameter]))) {
    const plain = new Map<number, number>();
    const encrypted = new Map<number, number>();
    for (const o of cases) {
      if (!o.ok || o.result === undefined) continue;
      if (o.spec.store === PLAIN_STORE) plain.set(roundOf(o), throughput(o.result));
      if (o.spec.store === ENCRYPTED_STORE) encrypted.set(roundOf(o), throughput(o.result));
    }
    const ratios = [...encrypted].filter(([round]) => plain.has(round)).map(([round, t]) => t / plain.get(round)!);
    if (ratios.length === 0) continue;
    rows.push({
      [column]: label(Number(value)),
      rounds: ratios.length,
      'cost, median of round pairs': percent(1 - median(ratios)),
      'round ratios': `${Math.min(...ratios).toFixed(3)} to ${Math.max(...ratios).toFixed(3)}`,
      'cost, ratio of medians': percent(1 - median([...encrypted.values()]) / median([...plain.values()])),
    });
  }
  return rows;
}

// ---------------------------------------------------------------- W3

export function w3Rows(outcomes: readonly CaseOutcome<W3Result>[]): Row[] {
  const rows: Row[] = [];
  for (const [store, runs] of groupBy(outcomes, (o) => o.spec.store)) {
    const ok = runs.filter((o) => o.ok);
    if (ok.length === 0) {
      rows.push({
        store,
        'write ops/s': failure(runs),
        'write p99': '',
        'read ops/s': '',
        'read p99': '',
        disk: '',
        live: '',
        'disk/live': '',
        reclamation: '',
        runs: 0,
      });
      continue;
    }
    rows.push({
      store,
      'write ops/s': int(med(runs, (r) => r.writes.opsPerSecond)),
      'write p99': micros(med(runs, (r) => r.writes.latency.p99)),
      'read ops/s': int(med(runs, (r) => r.reads.opsPerSecond)),
      'read p99': micros(med(runs, (r) => r.reads.latency.p99)),
      disk: formatBytes(med(runs, (r) => r.diskBytes) ?? Number.NaN),
      live: formatBytes(med(runs, (r) => r.liveBytes) ?? Number.NaN),
      'disk/live': fixed(1)(med(runs, (r) => r.diskPerLive)),
      reclamation: ok[0]!.result!.reclamation,
      runs: ok.length,
    });
  }
  return rows;
}

export function w3Chart(outcomes: readonly CaseOutcome<W3Result>[], subtitle: string | string[]): ChartSpec {
  const values = [...groupBy(outcomes, (o) => o.spec.store).values()].flatMap((runs) => {
    const writes = med(runs, (r) => r.writes.opsPerSecond);
    const reads = med(runs, (r) => r.reads.opsPerSecond);
    const ratio = med(runs, (r) => r.diskPerLive);
    return writes === undefined || reads === undefined || ratio === undefined ? [] : [{ store: runs[0]!.spec.store, writes, reads, ratio }];
  });
  const x = { field: 'store', type: 'nominal', sort: null, axis: { labelAngle: -30, title: null } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'W3 append-compact-read: 100 regions, 8 workers, keep last 256, 10% reads', subtitle },
    data: { values },
    hconcat: [
      {
        width: 300,
        height: 260,
        mark: 'bar',
        encoding: { x, y: { field: 'writes', type: 'quantitative', title: 'synced write ops/s' }, color: { value: '#4c78a8' } },
      },
      {
        width: 300,
        height: 260,
        mark: 'bar',
        encoding: {
          x,
          y: { field: 'ratio', type: 'quantitative', title: 'disk bytes / live bytes (lower is better)' },
          color: { value: '#e45756' },
        },
      },
    ],
  };
}

// ---------------------------------------------------------------- W4

export interface W4Outcomes {
  load: CaseOutcome<W4LoadResult>[];
  warm: CaseOutcome<W4ReopenResult>[];
  cold: CaseOutcome<W4ReopenResult>[];
}

export function w4Rows(o: W4Outcomes): Row[] {
  const rows: Row[] = [];
  for (const load of o.load) {
    const store = load.spec.store;
    const warm = o.warm.filter((c) => c.spec.store === store);
    const cold = o.cold.filter((c) => c.spec.store === store);
    if (!load.ok || load.result === undefined) {
      rows.push({
        store,
        data: failure([load]),
        'on disk': '',
        'load s': '',
        'warm open': '',
        'warm total': '',
        'cold open': '',
        'cold total': '',
        'RSS after reopen': '',
      });
      continue;
    }
    const ms = (value: number | undefined): string =>
      value === undefined ? '-' : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`;
    rows.push({
      store,
      data: formatBytes(load.result.dataBytes),
      'on disk': formatBytes(load.result.diskBytes),
      'load s': load.result.seconds.toFixed(1),
      'warm open': warm.some((c) => c.ok) ? ms(med(warm, (r) => r.openMillis)) : failure(warm),
      'warm total': ms(med(warm, (r) => r.totalMillis)),
      'cold open': cold.some((c) => c.ok) ? ms(med(cold, (r) => r.openMillis)) : failure(cold),
      'cold total': ms(med(cold, (r) => r.totalMillis)),
      'RSS after reopen': formatBytes(med(warm.length > 0 ? warm : cold, (r) => r.rssAfterBytes) ?? Number.NaN),
    });
  }
  return rows;
}

export function w4Chart(o: W4Outcomes, subtitle: string | string[]): ChartSpec {
  const values = o.load.flatMap((load) => {
    const store = load.spec.store;
    return (['warm', 'cold'] as const).flatMap((cache) => {
      const runs = (cache === 'warm' ? o.warm : o.cold).filter((c) => c.spec.store === store);
      const total = med(runs, (r) => r.totalMillis);
      const rss = med(runs, (r) => r.rssAfterBytes);
      return total === undefined ? [] : [{ store, cache, seconds: total / 1000, rssMiB: (rss ?? 0) / 2 ** 20 }];
    });
  });
  const x = { field: 'store', type: 'nominal', sort: null, axis: { labelAngle: -30, title: null } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: "W4 recovery: reopen, then read every region's last entry (4 KiB entries, 1,000 regions)", subtitle },
    data: { values },
    hconcat: [
      {
        width: 360,
        height: 260,
        mark: 'bar',
        encoding: {
          x,
          xOffset: { field: 'cache', type: 'nominal', sort: ['warm', 'cold'] },
          y: { field: 'seconds', type: 'quantitative', title: 'reopen + read last entries (s)' },
          color: { field: 'cache', type: 'nominal', sort: ['warm', 'cold'], title: 'page cache' },
        },
      },
      {
        width: 300,
        height: 260,
        transform: [{ filter: "datum.cache === 'warm'" }],
        mark: 'bar',
        encoding: { x, y: { field: 'rssMiB', type: 'quantitative', title: 'RSS after reopen (MiB)' }, color: { value: '#54a24b' } },
      },
    ],
  };
}

// ---------------------------------------------------------------- RFC

export interface Comparison {
  name: string;
  old: number[];
  new: number[];
}

/** benchstat's delta: the change of the centers in percent, or "~" when the samples do not differ (p > 0.05); and the p and n it rests on. */
function delta(old: readonly number[], now: readonly number[]): { delta: string; evidence: string } {
  const a = sampleSummary(old);
  const b = sampleSummary(now);
  const { p } = mannWhitneyU(old, now);
  const change = ((b.center - a.center) / a.center) * 100;
  const significant = Number.isFinite(p) && p <= 0.05;
  return {
    delta: significant ? `${change >= 0 ? '+' : ''}${change.toFixed(2)}%` : '~',
    evidence: `(p=${Number.isFinite(p) ? p.toFixed(3) : '-'} n=${a.kept}+${b.kept})`,
  };
}

/** benchstat's three columns: old ± spread, new ± spread, delta (or ~) with p and n. */
export function benchstatLines(title: [string, string, string], comparisons: readonly Comparison[], format: (v: number) => string): string {
  const rows = comparisons.map((c) => {
    const a = sampleSummary(c.old);
    const b = sampleSummary(c.new);
    const pct = (s: number): string => `±${Math.round(s * 100)}%`;
    const d = delta(c.old, c.new);
    return [c.name, `${format(a.center)} ${pct(a.spread)}`, `${format(b.center)} ${pct(b.spread)}`, d.delta, d.evidence];
  });
  const header = ['name', ...title];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : i === 4 ? cell : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line([...header, '']), ...rows.map(line)].join('\n');
}

function rfcSizes(outcomes: readonly CaseOutcome<RfcResult>[]): number[] {
  return [...new Set(outcomes.map((o) => Number(o.spec.params['valueBytes'])))].sort((a, b) => a - b);
}

/** Every µs/op sample of one configuration at one value size, over the processes that ran it. */
function rfcSamples(outcomes: readonly CaseOutcome<RfcResult>[], mode: RfcMode, size: number): number[] {
  return outcomes.filter((o) => o.ok && o.result?.mode === mode && o.result.valueBytes === size).flatMap((o) => o.result!.samples);
}

/** old = `oldMode`, new = `newMode`, per value size: time per op and benchstat's speed (bytes per op over time per op). */
export function rfcComparisons(
  outcomes: readonly CaseOutcome<RfcResult>[],
  oldMode: RfcMode = 'shared',
  newMode: RfcMode = 'dedicated',
): { time: Comparison[]; speed: Comparison[] } {
  const time: Comparison[] = [];
  const speed: Comparison[] = [];
  for (const size of rfcSizes(outcomes)) {
    const old = rfcSamples(outcomes, oldMode, size);
    const now = rfcSamples(outcomes, newMode, size);
    if (old.length === 0 && now.length === 0) continue;
    const name = `BatchCommit/vs=${size}`;
    time.push({ name, old, new: now });
    const mbps = (us: number): number => size / us;
    speed.push({ name, old: old.map(mbps), new: now.map(mbps) });
  }
  return { time, speed };
}

/** The benchstat tables (time/op, speed) of one pair of configurations. */
export function rfcTable(outcomes: readonly CaseOutcome<RfcResult>[], oldMode: RfcMode = 'shared', newMode: RfcMode = 'dedicated'): string {
  const { time, speed } = rfcComparisons(outcomes, oldMode, newMode);
  return [
    benchstatLines(['old time/op', 'new time/op', 'delta'], time, formatMicros),
    '',
    benchstatLines(['old speed', 'new speed', 'delta'], speed, (v) => `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}MB/s`),
  ].join('\n');
}

/** What each RFC configuration is, for tables and the chart legend. */
export const RFC_CONFIG_LABELS: Record<RfcMode, string> = {
  shared: 'shared (one LevelDB)',
  'dedicated-level': 'dedicated (LevelDB + LevelDB)',
  dedicated: 'dedicated (raftlog + LevelDB)',
};

/**
 * The three configurations side by side, per value size, and the three
 * effects they separate: separation (two LevelDBs against one: the RFC's
 * own comparison, the engine held fixed), engine (raftlog against LevelDB
 * holding the log, both separated), and both at once (raftlog + LevelDB
 * against one LevelDB: the comparison the older table makes, which
 * confounds the two). Time per op as benchstat's center; deltas as
 * benchstat's (~ when p > 0.05).
 */
export function rfcEffectRows(outcomes: readonly CaseOutcome<RfcResult>[]): Row[] {
  const rows: Row[] = [];
  for (const size of rfcSizes(outcomes)) {
    const samples = Object.fromEntries(RFC_MODES.map((m) => [m, rfcSamples(outcomes, m, size)])) as Record<RfcMode, number[]>;
    const center = (m: RfcMode): string => (samples[m].length === 0 ? '-' : formatMicros(sampleSummary(samples[m]).center));
    const effect = (from: RfcMode, to: RfcMode): string => {
      if (samples[from].length === 0 || samples[to].length === 0) return '-';
      const d = delta(samples[from], samples[to]);
      return `${d.delta} ${d.evidence}`;
    };
    rows.push({
      V: sizeLabel(size),
      [RFC_CONFIG_LABELS.shared]: center('shared'),
      [RFC_CONFIG_LABELS['dedicated-level']]: center('dedicated-level'),
      [RFC_CONFIG_LABELS.dedicated]: center('dedicated'),
      'separation: LevelDB+LevelDB vs one': effect('shared', 'dedicated-level'),
      'engine: raftlog+LevelDB vs LevelDB+LevelDB': effect('dedicated-level', 'dedicated'),
      'both: raftlog+LevelDB vs one': effect('shared', 'dedicated'),
    });
  }
  return rows;
}

export function rfcOrderTable(outcomes: readonly CaseOutcome<RfcOrderResult>[]): string {
  const comparisons: Comparison[] = [];
  for (const mode of RFC_MODES) {
    const sizes = [...new Set(outcomes.filter((o) => o.spec.params['mode'] === mode).map((o) => Number(o.spec.params['valueBytes'])))].sort(
      (a, b) => a - b,
    );
    for (const size of sizes) {
      const runs = outcomes.filter((o) => o.ok && o.result?.mode === mode && o.result.valueBytes === size);
      comparisons.push({
        name: `Order/${mode}/vs=${size}`,
        old: runs.flatMap((o) => o.result!.interleaved),
        new: runs.flatMap((o) => o.result!.sequential),
      });
    }
  }
  return benchstatLines(['interleaved', 'sequential', 'delta'], comparisons, formatMicros);
}

export function rfcChart(outcomes: readonly CaseOutcome<RfcResult>[], subtitle: string | string[]): ChartSpec {
  const configs = RFC_MODES.filter((m) => outcomes.some((o) => o.result?.mode === m)).map((m) => RFC_CONFIG_LABELS[m]);
  const values = rfcSizes(outcomes).flatMap((size) =>
    RFC_MODES.flatMap((mode) => {
      const samples = rfcSamples(outcomes, mode, size);
      if (samples.length === 0) return [];
      const s = sampleSummary(samples);
      return [
        {
          size: sizeLabel(size),
          bytes: size,
          config: RFC_CONFIG_LABELS[mode],
          us: s.center,
          lo: Math.min(...samples),
          hi: Math.max(...samples),
        },
      ];
    }),
  );
  const sizes = [...new Set(values.map((v) => v.bytes))].sort((a, b) => a - b).map(sizeLabel);
  const x = { field: 'size', type: 'ordinal', sort: sizes, title: 'value size', axis: { labelAngle: 0 } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'RFC: Raft log + state machine, shared engine vs dedicated', subtitle },
    data: { values },
    width: 520,
    height: 300,
    // Points and min-max rules rather than bars: bars on a log scale have no honest baseline.
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          x,
          xOffset: { field: 'config', type: 'nominal', sort: configs },
          y: { field: 'lo', type: 'quantitative' },
          y2: { field: 'hi' },
          color: { field: 'config', type: 'nominal', sort: configs },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          x,
          xOffset: { field: 'config', type: 'nominal', sort: configs },
          y: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'µs per op (mean, min-max)' },
          color: { field: 'config', type: 'nominal', sort: configs, title: null, legend: { orient: 'top', labelLimit: 300 } },
        },
      },
    ],
  };
}

// ---------------------------------------------------------------- syscalls

export interface SyscallOutcome {
  outcome: CaseOutcome<SyscallCaseResult>;
  counts: SyscallCounts | undefined;
}

export function syscallRows(results: readonly SyscallOutcome[]): Row[] {
  return results.map(({ outcome, counts }) => {
    const base: Row = { store: outcome.spec.store, C: Number(outcome.spec.params['writers']) };
    const ops = outcome.result?.ops ?? 0;
    if (!outcome.ok || counts === undefined || ops === 0) {
      return {
        ...base,
        'synced ops': ops,
        'fdatasync/op': outcome.ok ? 'no markers in trace' : failure([outcome]),
        'fsync/op': '',
        'msync/op': '',
        'sync_file_range/op': '',
        'io_uring_enter/op': '',
        'engine barriers/op': '',
      };
    }
    const per = (n: number): string => (n / ops).toFixed(2);
    const syncs = outcome.result?.counters['syncs'];
    return {
      ...base,
      'synced ops': ops,
      'fdatasync/op': per(counts.fdatasync),
      'fsync/op': per(counts.fsync),
      'msync/op': per(counts.msync),
      'sync_file_range/op': per(counts.sync_file_range),
      'io_uring_enter/op': per(counts.io_uring_enter),
      'engine barriers/op': syncs === undefined ? '' : per(syncs),
    };
  });
}
