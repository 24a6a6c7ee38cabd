/**
 * Reopen at scale (issue 18, item 4): does raftlog's reopen grow with the
 * log, or only with what follows its index checkpoint?
 *
 * W4's cases (workloads/w4.ts), at other sizes and shapes: logs of 256 MiB,
 * 1 GiB and 4 GiB of 4 KiB entries over 1,000 regions, and of 10,000 and
 * 100,000 regions (smaller entries). Each log is loaded in its own process,
 * which syncs and is then SIGKILLed (no clean close). Then, each in a fresh
 * process: one reopen after the kill (full replay; its page cache is warm
 * from the load), whose clean close writes the index checkpoint; then warm
 * reopens after a clean close, and cold ones (the log's files evicted from
 * the page cache first, support/cache.ts). A reopen is open + reading the
 * last entry of every region; RSS is the process's after that.
 *
 * The W4 target rows (512 MiB) run the peers too (better-sqlite3, lmdb),
 * loaded and closed cleanly, side by side with raftlog in the same run.
 *
 *   node dist/bench/reopen-scale.js [--quick] [--reopens N] [--dir DIR] [--only 256M,1G,...] [--no-peers]
 *
 * --quick drops the 4 GiB log and the 100,000-region log's size, and does one
 * reopen of each kind. Prints a table; writes JSON to bench/results/.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { evictDirectory, evictionUnavailable, type EvictionReport } from './support/cache.js';
import { runCase, safeName, type CaseOutcome, type CaseSpec } from './support/cases.js';
import { RESULTS_DIR, machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';
import { median } from './support/stats.js';
import { unavailableReason, type StoreId } from './stores/registry.js';
import type { W4LoadResult, W4ReopenResult } from './workloads/w4.js';

interface Shape {
  label: string;
  totalBytes: number;
  regions: number;
  entryBytes: number;
  /** Run the peers on this shape as well (the W4 target rows). */
  peers: boolean;
}

const MiB = 1 << 20;
const SHAPES: Shape[] = [
  { label: '256M', totalBytes: 256 * MiB, regions: 1000, entryBytes: 4096, peers: false },
  { label: '512M', totalBytes: 512 * MiB, regions: 1000, entryBytes: 4096, peers: true },
  { label: '1G', totalBytes: 1024 * MiB, regions: 1000, entryBytes: 4096, peers: false },
  { label: '4G', totalBytes: 4096 * MiB, regions: 1000, entryBytes: 4096, peers: false },
  { label: '10k-regions', totalBytes: 256 * MiB, regions: 10_000, entryBytes: 1024, peers: false },
  { label: '100k-regions', totalBytes: 256 * MiB, regions: 100_000, entryBytes: 256, peers: false },
];
const QUICK_SHAPES = new Set(['256M', '512M', '1G', '10k-regions', '100k-regions']);
const QUICK_100K_BYTES = 64 * MiB;
const PEERS: StoreId[] = ['sqlite', 'lmdb'];
const RAFTLOG: StoreId = 'raftlog-posix';

type ReopenKind = 'after kill, warm' | 'clean, warm' | 'clean, cold';

interface Measured {
  shape: string;
  store: StoreId;
  kind: ReopenKind;
  outcome: CaseOutcome<W4ReopenResult>;
  eviction?: EvictionReport;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reopens: { type: 'string' },
      dir: { type: 'string' },
      only: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick === true;
  const reopens = Number(values.reopens ?? (quick ? 1 : 3));
  const only = values.only?.split(',').map((s) => s.trim());
  const shapes = SHAPES.filter((s) => (only === undefined ? !quick || QUICK_SHAPES.has(s.label) : only.includes(s.label))).map((s) =>
    quick && s.label === '100k-regions' ? { ...s, totalBytes: QUICK_100K_BYTES } : s,
  );
  const base = resolve(values.dir ?? join(RESULTS_DIR, 'tmp', 'reopen-scale'));
  const runDir = join(base, `run-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  const machine = machineInfo(base);
  const peers: StoreId[] = [];
  if (values['no-peers'] !== true) {
    for (const id of PEERS) {
      const why = await unavailableReason(id);
      if (why === undefined) peers.push(id);
      else console.log(`peer ${id} unavailable: ${why}`);
    }
  }
  const coldUnavailable = evictionUnavailable();
  console.log(
    `reopen at scale${quick ? ' (quick)' : ''}: ${shapes.map((s) => s.label).join(', ')}; ${reopens} reopen(s) of each kind, each in a fresh process`,
  );
  console.log(`machine: ${machineLine(machine)}`);
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (coldUnavailable !== undefined) console.log(`cold reopens skipped: ${coldUnavailable}`);

  const loads: { shape: string; store: StoreId; kill: boolean; outcome: CaseOutcome<W4LoadResult> }[] = [];
  const measured: Measured[] = [];
  const started = performance.now();
  try {
    for (const shape of shapes) {
      for (const store of [RAFTLOG, ...(shape.peers ? peers : [])]) {
        // raftlog's load is killed: its first reopen is the crash recovery. The peers close cleanly.
        const kill = store === RAFTLOG;
        const shapeParams = { totalBytes: shape.totalBytes, regions: shape.regions, entryBytes: shape.entryBytes };
        const name = `${shape.label} ${store}`;
        const dir = join(runDir, safeName(name));
        const loadSpec: CaseSpec = {
          name: `${name} load`,
          workload: 'w4-load',
          store,
          dir,
          warmupSeconds: 0,
          measureSeconds: 0,
          params: { ...shapeParams, kill: kill ? 1 : 0 },
        };
        const loaded = await runOne<W4LoadResult>(
          loadSpec,
          (r) => `${(r.dataBytes / MiB).toFixed(0)} MiB in ${r.seconds.toFixed(1)} s${kill ? ', then SIGKILL' : ''}`,
        );
        loads.push({ shape: shape.label, store, kill, outcome: loaded });
        if (loaded.ok && loaded.result !== undefined) {
          const params = { ...shapeParams, lastIndex: JSON.stringify(loaded.result.lastIndex) };
          const reopen = (label: string): CaseSpec => ({
            name: `${name} ${label}`,
            workload: 'w4-reopen',
            store,
            dir,
            keepDir: true,
            warmupSeconds: 0,
            measureSeconds: 0,
            params,
          });
          if (kill)
            measured.push({ shape: shape.label, store, kind: 'after kill, warm', outcome: await runOne(reopen('after kill'), summary) });
          for (let i = 1; i <= reopens; i++)
            measured.push({ shape: shape.label, store, kind: 'clean, warm', outcome: await runOne(reopen(`warm ${i}`), summary) });
          if (coldUnavailable === undefined) {
            for (let i = 1; i <= reopens; i++) {
              const eviction = evictDirectory(dir);
              measured.push({
                shape: shape.label,
                store,
                kind: 'clean, cold',
                outcome: await runOne(reopen(`cold ${i}`), summary),
                eviction,
              });
            }
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }

  const rows = tableRows(shapes, loads, measured);
  printTable('Reopen at scale: open + read the last entry of every region, in a fresh process (median; RSS after)', rows);
  const minutes = (performance.now() - started) / 60_000;
  console.log(
    `\ndone in ${minutes.toFixed(1)} min; load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (${machine.cores} cores)`,
  );
  const path = saveResults(
    quick ? 'reopen-scale-quick' : 'reopen-scale',
    {
      quick,
      reopens,
      shapes,
      coldCache: coldUnavailable ?? 'posix_fadvise(DONTNEED) on every file after fsync',
      loadAverageEnd: loadavg(),
      rows,
      // Without the per-region last indexes (100,000 numbers for the largest shape): the reopens checked them.
      loads: loads.map((l) => ({
        ...l,
        outcome: {
          ...l.outcome,
          spec: withoutLastIndex(l.outcome.spec),
          result: l.outcome.result === undefined ? undefined : { ...l.outcome.result, lastIndex: [] },
        },
      })),
      measured: measured.map((m) => ({ ...m, outcome: { ...m.outcome, spec: withoutLastIndex(m.outcome.spec) } })),
    },
    machine,
  );
  console.log(`results: ${path}`);
}

function withoutLastIndex(spec: CaseSpec): CaseSpec {
  const { lastIndex: _, ...params } = spec.params;
  return { ...spec, params };
}

function summary(r: W4ReopenResult): string {
  return `open ${r.openMillis.toFixed(0)} ms, total ${r.totalMillis.toFixed(0)} ms, RSS ${(r.rssAfterBytes / MiB).toFixed(0)} MiB`;
}

async function runOne<R>(spec: CaseSpec, describe: (r: R) => string): Promise<CaseOutcome<R>> {
  process.stdout.write(`  ${spec.name} ... `);
  // A 4 GiB load on a busy 2-core machine takes minutes.
  const outcome = await runCase<R>(spec, { timeoutSeconds: 3600 });
  const note = outcome.ok && outcome.result !== undefined ? describe(outcome.result) : `FAILED: ${outcome.error}`;
  process.stdout.write(`${note} (${outcome.wallSeconds.toFixed(1)} s, load ${outcome.loadBefore.toFixed(1)})\n`);
  return outcome;
}

function tableRows(
  shapes: readonly Shape[],
  loads: readonly { shape: string; store: StoreId; outcome: CaseOutcome<W4LoadResult> }[],
  measured: readonly Measured[],
): Row[] {
  const rows: Row[] = [];
  const ms = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(0)} ms`);
  for (const shape of shapes) {
    for (const store of [RAFTLOG, ...PEERS]) {
      const load = loads.find((l) => l.shape === shape.label && l.store === store);
      if (load === undefined) continue;
      const of = (kind: ReopenKind): W4ReopenResult[] =>
        measured
          .filter((m) => m.shape === shape.label && m.store === store && m.kind === kind && m.outcome.ok)
          .map((m) => m.outcome.result!);
      const total = (kind: ReopenKind): number | undefined => {
        const results = of(kind);
        return results.length === 0 ? undefined : median(results.map((r) => r.totalMillis));
      };
      const open = (kind: ReopenKind): number | undefined => {
        const results = of(kind);
        return results.length === 0 ? undefined : median(results.map((r) => r.openMillis));
      };
      const warm = of('clean, warm');
      rows.push({
        log: `${shape.label} (${(shape.totalBytes / MiB).toFixed(0)} MiB, ${shape.regions.toLocaleString('en-US')} regions, ${shape.entryBytes} B entries)`,
        store,
        load: load.outcome.ok ? `${load.outcome.result!.seconds.toFixed(1)} s` : `FAILED: ${load.outcome.error}`,
        'after kill (open)': store === RAFTLOG ? `${ms(total('after kill, warm'))} (${ms(open('after kill, warm'))})` : '-',
        'clean warm (open)': `${ms(total('clean, warm'))} (${ms(open('clean, warm'))})`,
        'clean cold (open)': `${ms(total('clean, cold'))} (${ms(open('clean, cold'))})`,
        'RSS clean warm': warm.length === 0 ? '-' : `${(median(warm.map((r) => r.rssAfterBytes)) / MiB).toFixed(0)} MiB`,
        'RSS after kill':
          store === RAFTLOG && of('after kill, warm').length > 0
            ? `${(of('after kill, warm')[0]!.rssAfterBytes / MiB).toFixed(0)} MiB`
            : '-',
      });
    }
  }
  return rows;
}

await main();
