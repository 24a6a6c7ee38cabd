/**
 * `npm run bench`: every workload, every store, each case in a fresh process
 * on a fresh directory (see support/cases.ts), side by side in one run.
 * Prints a table per workload, saves its JSON (with the machine line and the
 * load average) under bench/results/, renders its chart to
 * bench/results/charts/, then regenerates docs/benchmarks.md from the newest
 * results (bench/docs.ts).
 *
 * Usage: node dist/bench/run.js [--only w1,w2,w3,w4,rfc,syscalls] [--stores id,...]
 *          [--quick] [--warmup S] [--measure S] [--runs N] [--dir DIR] [--sm-dir DIR] [--no-docs]
 * The same knobs as environment variables: BENCH_ONLY, BENCH_STORES, BENCH_WARMUP,
 * BENCH_MEASURE, BENCH_RUNS, BENCH_DIR, BENCH_SM_DIR; BENCH_NO_INSTALL=1 keeps
 * the syscall count from apt-get installing strace.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeDocs } from './docs.js';
import {
  encryptionCostRows,
  failures,
  rfcChart,
  floorAppendMicros,
  floorMicros,
  RFC_CONFIG_LABELS,
  rfcEffectRows,
  rfcOrderTable,
  rfcTable,
  syscallRows,
  w1Chart,
  w1Rows,
  w2Chart,
  w2CpuPivot,
  w2Rows,
  w3Chart,
  w3Rows,
  w4Chart,
  w4Rows,
  type StoreInfo,
  type SyscallOutcome,
} from './reports.js';
import { evictDirectory, evictionUnavailable, type EvictionReport } from './support/cache.js';
import { runCase, safeName, type CaseOutcome, type CaseSpec, type WorkloadId } from './support/cases.js';
import { writeChart, type ChartSpec } from './support/chart.js';
import { RESULTS_DIR, machineInfo, machineLine, printTable, saveResults, type MachineInfo, type Row } from './support/report.js';
import { sizeLabel } from './support/stats.js';
import { countBetweenMarkers, straceUnavailable, straceWrapper } from './support/strace.js';
import { STORE_IDS, isStoreId, loadStore, unavailableReason, type StoreId } from './stores/registry.js';
import type { FloorResult } from './workloads/floor.js';
import type { RfcOrderResult, RfcResult } from './workloads/rfc.js';
import { RFC_MODES, RFC_VALUE_SIZES } from './workloads/rfc.js';
import type { SyscallCaseResult } from './workloads/syscalls.js';
import { W1_VALUE_SIZES, type W1Result } from './workloads/w1.js';
import { W2_WRITERS, type W2Result } from './workloads/w2.js';
import type { W3Result } from './workloads/w3.js';
import { W4_TOTAL_BYTES, type W4LoadResult, type W4ReopenResult } from './workloads/w4.js';

const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'rfc', 'syscalls'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Durations {
  warmup: number;
  measure: number;
}

/**
 * Case lengths. The full run is sized to finish in about ten minutes on a
 * 2-core machine with all ten stores; every figure can be raised with
 * --warmup/--measure/--runs for a longer, steadier run.
 */
const FULL: Record<'w1' | 'w2' | 'w3' | 'syscalls', Durations> = {
  w1: { warmup: 0.5, measure: 1.5 },
  w2: { warmup: 1, measure: 2.5 },
  w3: { warmup: 1, measure: 5 },
  syscalls: { warmup: 0.5, measure: 5 },
};
/** Synced 4 KiB writes per floor measurement (each of the probe's two: after an overwrite, after an append); one measurement per W1 round. */
const FLOOR_SAMPLES = { full: 500, quick: 100 };

const QUICK: typeof FULL = {
  w1: { warmup: 0.2, measure: 0.4 },
  w2: { warmup: 0.3, measure: 0.7 },
  w3: { warmup: 0.3, measure: 1.5 },
  syscalls: { warmup: 0.2, measure: 2 },
};

interface Context {
  quick: boolean;
  runs: number;
  durations: typeof FULL;
  stores: StoreId[];
  storeInfo: StoreInfo[];
  base: string;
  smBase: string;
  resultsDir: string;
  chartsDir: string;
  machine: MachineInfo;
  allowInstall: boolean;
}

function option(env: string, fallback?: string): string | undefined {
  const value = process.env[env];
  return value !== undefined && value !== '' ? value : fallback;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      stores: { type: 'string' },
      quick: { type: 'boolean', default: false },
      warmup: { type: 'string' },
      measure: { type: 'string' },
      runs: { type: 'string' },
      dir: { type: 'string' },
      'sm-dir': { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick === true || process.env['BENCH_QUICK'] === '1';
  const only = (values.only ?? option('BENCH_ONLY') ?? WORKLOADS.join(',')).split(',').map((w) => w.trim());
  for (const w of only)
    if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload ${w}; pick from ${WORKLOADS.join(', ')}`);
  const storeList = (values.stores ?? option('BENCH_STORES') ?? STORE_IDS.join(',')).split(',').map((s) => s.trim());
  for (const s of storeList) if (!isStoreId(s)) throw new Error(`unknown store ${s}; pick from ${STORE_IDS.join(', ')}`);
  const durations = structuredClone(quick ? QUICK : FULL);
  const warmup = values.warmup ?? option('BENCH_WARMUP');
  const measure = values.measure ?? option('BENCH_MEASURE');
  for (const d of [durations.w1, durations.w2, durations.w3]) {
    if (warmup !== undefined) d.warmup = Number(warmup);
    if (measure !== undefined) d.measure = Number(measure);
  }
  const runs = Number(values.runs ?? option('BENCH_RUNS') ?? '1');
  const base = resolve(values.dir ?? option('BENCH_DIR') ?? join(RESULTS_DIR, 'tmp', 'data'));
  const smBase = resolve(values['sm-dir'] ?? option('BENCH_SM_DIR') ?? join(base, 'state-machine'));
  mkdirSync(base, { recursive: true });
  mkdirSync(smBase, { recursive: true });
  const machine = machineInfo(base);

  const storeInfo: StoreInfo[] = [];
  const stores: StoreId[] = [];
  for (const id of storeList as StoreId[]) {
    const descriptor = await loadStore(id).catch(() => undefined);
    const unavailable = await unavailableReason(id);
    const info: StoreInfo = { id, kind: descriptor?.kind ?? 'unknown', durableMode: descriptor?.durableMode ?? '' };
    if (unavailable !== undefined) info.unavailable = unavailable;
    storeInfo.push(info);
    if (unavailable === undefined) stores.push(id);
  }
  const ctx: Context = {
    quick,
    runs,
    durations,
    stores,
    storeInfo,
    base,
    smBase,
    resultsDir: quick ? join(RESULTS_DIR, 'tmp', 'quick') : RESULTS_DIR,
    // A run limited to some stores (checking one change against a few) keeps
    // its charts apart, as docs.ts keeps its tables apart: the published
    // charts stay those of the full run the README's tables come from, and
    // the partial ones go to tmp/ (not committed: nothing references them).
    chartsDir: quick
      ? join(RESULTS_DIR, 'tmp', 'quick', 'charts')
      : storeList.length < STORE_IDS.length
        ? join(RESULTS_DIR, 'tmp', 'partial', 'charts')
        : join(RESULTS_DIR, 'charts'),
    machine,
    allowInstall: process.env['BENCH_NO_INSTALL'] !== '1',
  };

  console.log(`raftlog benchmarks${quick ? ' (quick: short cases, W4 at 64 MiB; not for quoting)' : ''}`);
  console.log(`machine: ${machineLine(machine)}`);
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (${machine.cores} cores)`,
  );
  console.log(`data under ${base}; RFC state machine under ${smBase}`);
  for (const info of storeInfo) if (info.unavailable !== undefined) console.log(`store ${info.id} unavailable: ${info.unavailable}`);
  console.log(`stores: ${stores.join(', ')}; workloads: ${only.join(', ')}; runs per case: ${runs}`);

  const started = performance.now();
  for (const workload of only as Workload[]) {
    const t = performance.now();
    switch (workload) {
      case 'w1':
        await runW1(ctx);
        break;
      case 'w2':
        await runW2(ctx);
        break;
      case 'w3':
        await runW3(ctx);
        break;
      case 'w4':
        await runW4(ctx);
        break;
      case 'rfc':
        await runRfc(ctx);
        break;
      case 'syscalls':
        await runSyscalls(ctx);
        break;
    }
    console.log(`(${workload} took ${((performance.now() - t) / 1000).toFixed(0)} s)`);
  }
  rmSync(join(base, `cases-${process.pid}`), { recursive: true, force: true });
  console.log(
    `\nall done in ${((performance.now() - started) / 1000 / 60).toFixed(1)} min; load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (!quick && values['no-docs'] !== true) console.log(`docs: ${writeDocs()}`);
}

// ---------------------------------------------------------------- running cases

let caseCounter = 0;

/** Case directories live under a directory of this run's own, so two runs sharing --dir never touch each other's cases. */
function caseDir(ctx: Context, name: string): string {
  return join(ctx.base, `cases-${process.pid}`, safeName(name));
}

async function run<R>(spec: CaseSpec, summary: (r: R) => string, options: { wrapper?: string[] } = {}): Promise<CaseOutcome<R>> {
  caseCounter++;
  process.stdout.write(`  [${caseCounter}] ${spec.name} ... `);
  const timeoutSeconds = spec.warmupSeconds + spec.measureSeconds + (spec.workload.startsWith('w4') ? 600 : 120);
  const outcome = await runCase<R>(spec, { timeoutSeconds, ...(options.wrapper === undefined ? {} : { wrapper: options.wrapper }) });
  const note = outcome.ok && outcome.result !== undefined ? summary(outcome.result) : `FAILED: ${outcome.error}`;
  process.stdout.write(`${note} (${outcome.wallSeconds.toFixed(1)} s, load ${outcome.loadBefore.toFixed(1)})\n`);
  if (spec.keepDir !== true && spec.workload !== 'w4-load') rmSync(spec.dir, { recursive: true, force: true });
  if (spec.dir2 !== undefined) rmSync(spec.dir2, { recursive: true, force: true });
  return outcome;
}

function loadRange(outcomes: readonly CaseOutcome<unknown>[]): { min: number; max: number } {
  const loads = outcomes.flatMap((o) => [o.loadBefore, o.loadAfter]);
  return { min: Math.min(...loads), max: Math.max(...loads) };
}

/** Chart subtitle: the machine line in two pieces (one line is wider than the charts), then the load. */
function subtitle(ctx: Context, outcomes: readonly CaseOutcome<unknown>[]): string[] {
  const m = ctx.machine;
  const load = loadRange(outcomes);
  return [
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`,
    `disk ${m.disk}${m.diskDevice === undefined ? '' : ` [${m.diskDevice}]`}`,
    `load average ${load.min.toFixed(1)}-${load.max.toFixed(1)}${ctx.runs > 1 ? `; median of ${ctx.runs} runs` : '; one run per case'}${ctx.quick ? '; QUICK run, not for quoting' : ''}`,
  ];
}

async function publish(
  ctx: Context,
  name: string,
  title: string,
  rows: Row[],
  data: Record<string, unknown>,
  chart: ChartSpec | undefined,
  outcomes: readonly CaseOutcome<unknown>[],
): Promise<void> {
  printTable(title, rows);
  for (const line of failures(outcomes)) console.log(`  failed case: ${line}`);
  const load = outcomes.length > 0 ? loadRange(outcomes) : undefined;
  if (load !== undefined)
    console.log(`load average during ${name}: ${load.min.toFixed(2)}-${load.max.toFixed(2)} on ${ctx.machine.cores} cores`);
  const path = saveResults(
    name,
    { quick: ctx.quick, runs: ctx.runs, durations: ctx.durations, stores: ctx.storeInfo, load, ...data },
    ctx.machine,
    ctx.resultsDir,
  );
  console.log(`saved: ${path}`);
  if (chart !== undefined) console.log(`chart: ${await writeChart(join(ctx.chartsDir, `${name}.svg`), chart)}`);
}

function spec(
  ctx: Context,
  workload: WorkloadId,
  store: StoreId,
  name: string,
  durations: Durations,
  params: Record<string, number | string>,
): CaseSpec {
  return { name, workload, store, dir: caseDir(ctx, name), warmupSeconds: durations.warmup, measureSeconds: durations.measure, params };
}

/**
 * The stores in the order a round runs them: as given in odd rounds,
 * reversed in even ones. A case inherits the state the one before it leaves
 * (writeback of its data, the deletion of its directory), so a fixed order
 * would bill every store for its left neighbour; alternating balances that
 * over a run of several rounds.
 */
function storesInRound(ctx: Context, round: number): readonly StoreId[] {
  return round % 2 === 1 ? ctx.stores : [...ctx.stores].reverse();
}

/** The encryption cost table under W1's and W2's, when both raftlog-posix and raftlog-encrypted ran. */
function printEncryptionCost(ctx: Context, rows: Row[]): void {
  const pairing = ctx.stores.length === 2 ? 'each round runs the two back to back' : 'paired within each round';
  if (rows.length > 0) printTable(`EncryptedFs cost: 1 - raftlog-encrypted / raftlog-posix throughput (${pairing})`, rows);
}

// ---------------------------------------------------------------- workloads

async function runW1(ctx: Context): Promise<void> {
  console.log(
    `\nW1 batch commit (${ctx.durations.w1.warmup} s warm-up, ${ctx.durations.w1.measure} s measured per case; the floor first in each round)`,
  );
  const outcomes: CaseOutcome<W1Result>[] = [];
  const floor: CaseOutcome<FloorResult>[] = [];
  const samples = ctx.quick ? FLOOR_SAMPLES.quick : FLOOR_SAMPLES.full;
  for (let round = 1; round <= ctx.runs; round++) {
    // The floor is the device's, so it is measured in every round, in its own
    // process and directory like a store, and the stores are judged by the median.
    const name = `w1 floor${ctx.runs > 1 ? ` run ${round}` : ''}`;
    floor.push(
      await run<FloorResult>(
        spec(ctx, 'floor', 'raw-prealloc', name, { warmup: 0, measure: 0 }, { samples }),
        (r) =>
          `fdatasync after 4 KiB overwrite ${r.overwrite.medianMicros} µs, after append ${r.append.medianMicros} µs (medians of ${r.overwrite.samples})`,
      ),
    );
    for (const size of W1_VALUE_SIZES) {
      for (const store of storesInRound(ctx, round)) {
        const name = `w1 ${store} ${size}B${ctx.runs > 1 ? ` run ${round}` : ''}`;
        outcomes.push(
          await run<W1Result>(
            spec(ctx, 'w1', store, name, ctx.durations.w1, { valueBytes: size }),
            (r) => `${r.microsPerOp.toFixed(0)} µs/op, ${r.mbPerSecond.toFixed(1)} MB/s, CPU ${r.cpuMicrosPerWrite.toFixed(0)} µs/op`,
          ),
        );
      }
    }
  }
  const cost = encryptionCostRows(outcomes, 'valueBytes', 'V', sizeLabel, (r) => 1 / r.microsPerOp);
  const title =
    "W1 batch commit: one writer, one synced batch of one V-byte entry (x floor, x sqlite: mean µs/op over the floor's, over better-sqlite3's at the same V; CPU: process user + system per synced write)";
  await publish(
    ctx,
    'w1',
    title,
    w1Rows(outcomes, floor),
    { outcomes, floor, encryptionCost: cost },
    w1Chart(outcomes, subtitle(ctx, [...outcomes, ...floor]), floor),
    [...outcomes, ...floor],
  );
  const floorUs = floorMicros(floor);
  if (floorUs !== undefined) {
    console.log(
      `floor: the probe's fdatasync after a 4 KiB write into written blocks, ${floorUs.toFixed(0)} µs (median; after a 4 KiB append: ${floorAppendMicros(floor)?.toFixed(0) ?? '-'} µs)`,
    );
  }
  printEncryptionCost(ctx, cost);
}

async function runW2(ctx: Context): Promise<void> {
  console.log(`\nW2 multi-Raft append (${ctx.durations.w2.warmup} s warm-up, ${ctx.durations.w2.measure} s measured per case)`);
  const outcomes: CaseOutcome<W2Result>[] = [];
  for (let round = 1; round <= ctx.runs; round++) {
    for (const writers of W2_WRITERS) {
      for (const store of storesInRound(ctx, round)) {
        const name = `w2 ${store} C=${writers}${ctx.runs > 1 ? ` run ${round}` : ''}`;
        outcomes.push(
          await run<W2Result>(
            spec(ctx, 'w2', store, name, ctx.durations.w2, { writers }),
            (r) =>
              `${Math.round(r.opsPerSecond)} ops/s, p99 ${(r.latency.p99 / 1000).toFixed(1)} ms, CPU ${r.cpuMicrosPerWrite.toFixed(0)} µs/op`,
          ),
        );
      }
    }
  }
  const cost = encryptionCostRows(outcomes, 'writers', 'C', String, (r) => r.opsPerSecond);
  await publish(
    ctx,
    'w2',
    'W2 multi-Raft append: 1,000 regions, C writers, synced 4 x 1 KiB + 32 B hard state per op (CPU: process user + system per synced write)',
    w2Rows(outcomes),
    { outcomes, encryptionCost: cost },
    w2Chart(outcomes, subtitle(ctx, outcomes)),
    outcomes,
  );
  printTable(
    'W2 CPU time per synced write (user + system, every thread of the process; the share that is system time)',
    w2CpuPivot(outcomes),
  );
  printEncryptionCost(ctx, cost);
}

async function runW3(ctx: Context): Promise<void> {
  console.log(`\nW3 append-compact-read (${ctx.durations.w3.warmup} s warm-up, ${ctx.durations.w3.measure} s measured per case)`);
  const outcomes: CaseOutcome<W3Result>[] = [];
  for (let round = 1; round <= ctx.runs; round++) {
    for (const store of storesInRound(ctx, round)) {
      const name = `w3 ${store}${ctx.runs > 1 ? ` run ${round}` : ''}`;
      outcomes.push(
        await run<W3Result>(
          spec(ctx, 'w3', store, name, ctx.durations.w3, {}),
          (r) =>
            `${Math.round(r.writes.opsPerSecond)} writes/s, ${Math.round(r.reads.opsPerSecond)} reads/s, disk/live ${r.diskPerLive.toFixed(1)}`,
        ),
      );
    }
  }
  const purge = outcomes.find((o) => o.spec.store.startsWith('raftlog') && o.ok)?.result?.reclamation;
  if (purge !== undefined && purge !== 'purgeExpiredFiles')
    console.log('note: this engine build has no purgeExpiredFiles(); raftlog disk/live is without purge');
  await publish(
    ctx,
    'w3',
    'W3 append-compact-read: 100 regions, 8 workers, compact to last 256 every 1,000 writes, 10% reads of the last 16 (raftlog: 8 MiB files)',
    w3Rows(outcomes),
    { outcomes },
    w3Chart(outcomes, subtitle(ctx, outcomes)),
    outcomes,
  );
}

async function runW4(ctx: Context): Promise<void> {
  const totalBytes = ctx.quick ? 64 << 20 : W4_TOTAL_BYTES;
  const reopens = ctx.quick ? 1 : Math.max(ctx.runs, 3);
  const coldUnavailable = evictionUnavailable();
  console.log(
    `\nW4 recovery (${totalBytes >> 20} MiB of 4 KiB entries over 1,000 regions; ${reopens} warm and ${reopens} cold reopens per store, each in a fresh process)`,
  );
  if (coldUnavailable !== undefined) console.log(`cold-cache reopens skipped: ${coldUnavailable}`);
  const load: CaseOutcome<W4LoadResult>[] = [];
  const warm: CaseOutcome<W4ReopenResult>[] = [];
  const cold: CaseOutcome<W4ReopenResult>[] = [];
  const evictions: Record<string, EvictionReport[]> = {};
  const none = { warmup: 0, measure: 0 };
  for (const store of ctx.stores) {
    const loadSpec = spec(ctx, 'w4-load', store, `w4 ${store} load`, none, { totalBytes });
    const loaded = await run<W4LoadResult>(
      loadSpec,
      (r) => `${(r.dataBytes / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(1)} s, ${(r.diskBytes / 2 ** 20).toFixed(0)} MiB on disk`,
    );
    load.push(loaded);
    if (loaded.ok && loaded.result !== undefined) {
      const params = { lastIndex: JSON.stringify(loaded.result.lastIndex) };
      const reopen = (name: string): CaseSpec => ({
        ...spec(ctx, 'w4-reopen', store, name, none, params),
        dir: loadSpec.dir,
        keepDir: true,
      });
      const summary = (r: W4ReopenResult): string =>
        `open ${r.openMillis.toFixed(0)} ms, total ${r.totalMillis.toFixed(0)} ms, RSS ${(r.rssAfterBytes / 2 ** 20).toFixed(0)} MiB`;
      for (let i = 1; i <= reopens; i++) warm.push(await run<W4ReopenResult>(reopen(`w4 ${store} warm ${i}`), summary));
      if (coldUnavailable === undefined) {
        for (let i = 1; i <= reopens; i++) {
          const eviction = evictDirectory(loadSpec.dir);
          (evictions[store] ??= []).push(eviction);
          cold.push(await run<W4ReopenResult>(reopen(`w4 ${store} cold ${i}`), summary));
        }
      }
    }
    rmSync(loadSpec.dir, { recursive: true, force: true });
  }
  const all = [...load, ...warm, ...cold];
  const outcomes = { load, warm, cold };
  await publish(
    ctx,
    'w4',
    `W4 recovery: ${totalBytes >> 20} MiB of 4 KiB entries over 1,000 regions; reopen and read every region's last entry (median of ${reopens})`,
    w4Rows(outcomes),
    { totalBytes, reopens, coldCache: coldUnavailable ?? 'posix_fadvise(DONTNEED) on every file after fsync', evictions, outcomes },
    w4Chart(outcomes, subtitle(ctx, all)),
    all,
  );
}

async function runRfc(ctx: Context): Promise<void> {
  const rounds = ctx.quick ? 1 : 2;
  const samples = ctx.quick ? 3 : 5;
  const orderSamples = ctx.quick ? 3 : 5;
  const sampleMillis = ctx.quick ? 60 : 200;
  const warmup = ctx.quick ? 0.15 : 0.3;
  console.log(
    `\nRFC shared vs dedicated (${rounds} processes x ${samples} samples of ~${sampleMillis} ms per configuration and size, alternating)`,
  );
  const outcomes: CaseOutcome<RfcResult>[] = [];
  const order: CaseOutcome<RfcOrderResult>[] = [];
  const rfcSpec = (workload: 'rfc' | 'rfc-order', mode: (typeof RFC_MODES)[number], size: number, name: string, n: number): CaseSpec => ({
    ...spec(ctx, workload, 'raftlog-posix', name, { warmup, measure: 0 }, { mode, valueBytes: size, samples: n, sampleMillis }),
    ...(mode !== 'shared' ? { dir2: join(ctx.smBase, `${process.pid}-${safeName(name)}`) } : {}),
  });
  const summary = (r: RfcResult): string => `${(r.samples.reduce((a, b) => a + b, 0) / r.samples.length).toFixed(0)} µs/op`;
  for (const size of RFC_VALUE_SIZES) {
    for (let round = 1; round <= rounds; round++) {
      // Alternate the order of the configurations, so slow drift of the disk does not favour one.
      const modes = round % 2 === 1 ? RFC_MODES : [...RFC_MODES].reverse();
      for (const mode of modes)
        outcomes.push(await run<RfcResult>(rfcSpec('rfc', mode, size, `rfc ${mode} ${size}B ${round}`, samples), summary));
    }
  }
  for (const size of RFC_VALUE_SIZES) {
    for (const mode of RFC_MODES) {
      order.push(
        await run<RfcOrderResult>(rfcSpec('rfc-order', mode, size, `rfc-order ${mode} ${size}B`, orderSamples), (r) => {
          const m = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
          return `interleaved ${m(r.interleaved).toFixed(0)} µs/op, sequential ${m(r.sequential).toFixed(0)} µs/op`;
        }),
      );
    }
  }
  const table = rfcTable(outcomes);
  const separationTable = rfcTable(outcomes, 'shared', 'dedicated-level');
  const effects = rfcEffectRows(outcomes);
  const orderTable = rfcOrderTable(order);
  const sameDevice = outcomes.find((o) => o.result?.sameDevice !== undefined)?.result?.sameDevice;
  console.log(
    '\nRFC table (old = shared: log synced + state machine unsynced in one LevelDB; new = dedicated: log in raftlog, state machine in LevelDB elsewhere)',
  );
  if (sameDevice === true)
    console.log('note: the state machine directory is on the same device as the log (this machine has one disk; --sm-dir moves it)');
  console.log(table);
  console.log(
    `\nThe RFC's own comparison, the same engine twice (old = ${RFC_CONFIG_LABELS.shared}; new = ${RFC_CONFIG_LABELS['dedicated-level']}): the separation alone`,
  );
  console.log(separationTable);
  printTable('The three configurations side by side (time per op) and the effect each pair isolates', effects);
  console.log('\nInterleaved (S U S U ...) vs sequential (S S ... U U ...), per configuration');
  console.log(orderTable);
  const all = [...outcomes, ...order];
  for (const line of failures(all)) console.log(`  failed case: ${line}`);
  const load = loadRange(all);
  console.log(`load average during rfc: ${load.min.toFixed(2)}-${load.max.toFixed(2)} on ${ctx.machine.cores} cores`);
  const path = saveResults(
    'rfc',
    {
      quick: ctx.quick,
      stores: ctx.storeInfo,
      load,
      rounds,
      samples,
      sampleMillis,
      sameDevice,
      table,
      separationTable,
      effects,
      orderTable,
      outcomes,
      order,
    },
    ctx.machine,
    ctx.resultsDir,
  );
  console.log(`saved: ${path}`);
  console.log(`chart: ${await writeChart(join(ctx.chartsDir, 'rfc.svg'), rfcChart(outcomes, subtitle(ctx, all)))}`);
}

async function runSyscalls(ctx: Context): Promise<void> {
  console.log('\nDurability check: flush syscalls per synced op (W2 op under strace -f, counted between markers)');
  const unavailable = straceUnavailable(ctx.allowInstall);
  if (unavailable !== undefined) {
    console.log(`skipped: ${unavailable}`);
    saveResults('syscalls', { skipped: unavailable, stores: ctx.storeInfo }, ctx.machine, ctx.resultsDir);
    return;
  }
  const results: SyscallOutcome[] = [];
  for (const writers of [1, 64]) {
    for (const store of ctx.stores) {
      const name = `syscalls ${store} C=${writers}`;
      const traceFile = join(ctx.base, `${process.pid}-${safeName(name)}.strace`);
      rmSync(traceFile, { force: true });
      const ops = ctx.quick ? (writers === 1 ? 50 : 400) : writers === 1 ? 200 : 2000;
      const caseSpec = spec(ctx, 'syscalls', store, name, ctx.durations.syscalls, { writers, ops });
      const outcome = await run<SyscallCaseResult>(caseSpec, (r) => `${r.ops} synced ops traced`, { wrapper: straceWrapper(traceFile) });
      let counts;
      try {
        counts = outcome.ok ? countBetweenMarkers(traceFile) : undefined;
      } catch {
        counts = undefined;
      }
      rmSync(traceFile, { force: true });
      results.push({ outcome, counts });
    }
  }
  const rows = syscallRows(results);
  printTable('Flush syscalls per synced op (strace -f; uring barriers ride inside io_uring_enter)', rows);
  for (const line of failures(results.map((r) => r.outcome))) console.log(`  failed case: ${line}`);
  const path = saveResults('syscalls', { stores: ctx.storeInfo, rows, results }, ctx.machine, ctx.resultsDir);
  console.log(`saved: ${path}`);
}

await main();
