/**
 * Regenerates the results section of docs/benchmarks.md (between the
 * `bench:results` markers) from the newest saved JSON of each workload in
 * bench/results/, so the tables there are always a run's output, never
 * typed in. `npm run bench` calls it at the end; `npm run bench:docs` runs it
 * alone (after a partial run, or to re-render committed results).
 *
 * If README.md has `<!-- bench:headline:start -->` / `<!-- bench:headline:end -->`
 * markers, the headline table (W2) and the machine line go between them too.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encryptionCostRows,
  floorAppendMicros,
  floorMicros,
  rfcEffectRows,
  rfcOrderTable,
  rfcTable,
  w1Pivot,
  w1RatioPivot,
  w2CpuPivot,
  w2Pivot,
  w2Rows,
  w3Rows,
  w4Rows,
  type StoreInfo,
  type SyscallOutcome,
  type W4Outcomes,
} from './reports.js';
import type { CaseOutcome } from './support/cases.js';
import { RESULTS_DIR, machineLine, markdownTable, type MachineInfo, type Row } from './support/report.js';
import { sizeLabel } from './support/stats.js';
import type { FloorResult } from './workloads/floor.js';
import type { RfcOrderResult, RfcResult } from './workloads/rfc.js';
import type { W1Result } from './workloads/w1.js';
import type { W2Result } from './workloads/w2.js';
import type { W3Result } from './workloads/w3.js';

const ROOT = join(RESULTS_DIR, '..', '..');
const DOC = join(ROOT, 'docs', 'benchmarks.md');
const README = join(ROOT, 'README.md');
const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';
const HEADLINE_START = '<!-- bench:headline:start -->';
const HEADLINE_END = '<!-- bench:headline:end -->';

interface Saved<T> {
  benchmark: string;
  date: string;
  machine: MachineInfo;
  results: T;
  file: string;
}

interface Common {
  quick?: boolean;
  runs?: number;
  durations?: Record<string, { warmup: number; measure: number }>;
  stores: StoreInfo[];
  load?: { min: number; max: number };
}

/** The saved runs of one workload, bench/results/<name>-<ISO stamp>.json, oldest first (stamps sort as text). */
function savedRuns(name: string): string[] {
  if (!existsSync(RESULTS_DIR)) return [];
  const pattern = new RegExp(`^${name}-\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z\\.json$`);
  return readdirSync(RESULTS_DIR)
    .filter((f) => pattern.test(f))
    .sort();
}

function load<T>(file: string): Saved<T> {
  return { ...(JSON.parse(readFileSync(join(RESULTS_DIR, file), 'utf8')) as Omit<Saved<T>, 'file'>), file };
}

function storesRun(saved: Saved<unknown>): StoreInfo[] {
  return (saved.results as { stores?: StoreInfo[] } | undefined)?.stores?.filter((s) => s.unavailable === undefined) ?? [];
}

/**
 * The run to publish: of the runs that covered the most stores, the newest.
 * A run limited with --stores (someone checking one change against a few
 * stores) does not displace a full run's tables.
 */
function newest<T>(name: string): Saved<T> | undefined {
  let best: { saved: Saved<T>; stores: number } | undefined;
  for (const file of savedRuns(name)) {
    const saved = load<T>(file);
    const stores = storesRun(saved).length;
    if (best === undefined || stores >= best.stores) best = { saved, stores };
  }
  return best?.saved;
}

/**
 * The run to take EncryptedFs's cost from: one in which raftlog-posix and
 * raftlog-encrypted ran for at least two rounds. A run limited to those two
 * stores (they then run back to back in every round, and usually for more
 * rounds than a full run affords) wins over a full run; the newest wins
 * among equals.
 */
function newestEncryptionPairs<R>(name: string): Saved<Common & { outcomes: CaseOutcome<R>[] }> | undefined {
  let best: { saved: Saved<Common & { outcomes: CaseOutcome<R>[] }>; onlyThePair: boolean } | undefined;
  for (const file of savedRuns(name)) {
    const saved = load<Common & { outcomes: CaseOutcome<R>[] }>(file);
    const ran = storesRun(saved).map((s) => s.id);
    if (
      saved.results.quick === true ||
      (saved.results.runs ?? 1) < 2 ||
      !ran.includes('raftlog-posix') ||
      !ran.includes('raftlog-encrypted')
    )
      continue;
    const onlyThePair = ran.length === 2;
    if (best === undefined || onlyThePair || !best.onlyThePair) best = { saved, onlyThePair };
  }
  return best?.saved;
}

/** What EncryptedFs costs in W1 and W2, from the runs that paired it with PosixFs round by round. */
function encryptionCostSection(): string | undefined {
  const w1 = newestEncryptionPairs<W1Result>('w1');
  const w2 = newestEncryptionPairs<W2Result>('w2');
  if (w1 === undefined && w2 === undefined) return undefined;
  const body = [
    "raftlog-encrypted against raftlog-posix: the same engine on PosixFs with and without `EncryptedFs`. Cost = 1 − encrypted / plain throughput. The ratio within a round cancels the disk's drift over a run, which the ratio of the two stores' medians, given beside it, does not.",
  ];
  for (const [label, run, rows] of [
    ['W2', w2, w2 === undefined ? [] : encryptionCostRows(w2.results.outcomes, 'writers', 'C', String, (r) => r.opsPerSecond)],
    ['W1', w1, w1 === undefined ? [] : encryptionCostRows(w1.results.outcomes, 'valueBytes', 'V', sizeLabel, (r) => 1 / r.microsPerOp)],
  ] as const) {
    if (run === undefined) continue;
    const d = run.results.durations?.[label.toLowerCase()];
    const order =
      storesRun(run).length === 2
        ? 'the two run back to back in each round, which goes first alternating'
        : `the two ran in the same rounds as ${storesRun(run).length - 2} other stores`;
    body.push(
      `**${label}**${d === undefined ? '' : `, ${d.warmup} s warm-up and ${d.measure} s measured per case`}; ${order}:`,
      provenance(run),
      markdownTable(rows),
    );
  }
  return section('EncryptedFs cost', body);
}

function link(file: string): string {
  const target = join(RESULTS_DIR, file);
  return `[${file}](${relative(join(ROOT, 'docs'), target)})`;
}

function chart(name: string, alt: string): string {
  const path = join(RESULTS_DIR, 'charts', `${name}.svg`);
  return existsSync(path) ? `![${alt}](${relative(join(ROOT, 'docs'), path)})\n` : '';
}

function provenance(saved: Saved<Common>, repeats?: string): string {
  const r = saved.results;
  const load =
    r.load === undefined ? '' : `; load average ${r.load.min.toFixed(1)}–${r.load.max.toFixed(1)} on ${saved.machine.cores} cores`;
  const runs =
    repeats !== undefined
      ? `; ${repeats}`
      : r.runs !== undefined && r.runs > 1
        ? `; median of ${r.runs} runs per case`
        : '; one run per case';
  return `_${saved.date.slice(0, 16).replace('T', ' ')} UTC, ${machineLine(saved.machine)}${load}${runs}. Data: ${link(saved.file)}._`;
}

function section(title: string, body: string[]): string {
  return [`### ${title}`, '', ...body.filter((b) => b !== ''), ''].join('\n\n').replace(/\n{3,}/g, '\n\n');
}

export function renderResults(): { markdown: string; headline: string | undefined } {
  const parts: string[] = [];
  let headline: string | undefined;
  const w1 = newest<Common & { outcomes: CaseOutcome<W1Result>[]; floor?: CaseOutcome<FloorResult>[] }>('w1');
  if (w1 !== undefined) {
    const d = w1.results.durations?.['w1'];
    const floor = w1.results.floor;
    const floorUs = floorMicros(floor);
    const outcomes = w1.results.outcomes;
    const toFloor = w1RatioPivot(outcomes, 'floor', floor);
    const toSqlite = w1RatioPivot(outcomes, 'sqlite');
    const cpu = w1Pivot(outcomes, 'cpuMicrosPerWrite');
    const hasCpu = outcomes.some((o) => o.result?.cpuMicrosPerWrite !== undefined);
    parts.push(
      section('W1 batch commit', [
        provenance(w1),
        d === undefined ? '' : `Each case: a fresh process and directory, ${d.warmup} s warm-up, ${d.measure} s measured.`,
        floorUs === undefined
          ? ''
          : `The floor row is the device's own latency, measured in the same run by \`raftlog probe\`'s code (\`cli/probe.ts\`) in a process and directory of its own at the start of each round: the median fdatasync after a 4 KiB write into already-written, synced blocks (${Math.round(floorUs)} µs here; after a 4 KiB append, which grows the file: ${floorAppendMicros(floor)?.toFixed(0) ?? '-'} µs). It is one 4 KiB figure, repeated under every size; it times the fdatasync alone (not the write into the page cache before it) and is a median, where the stores' figures are means.`,
        chart('w1', 'W1 chart'),
        '**µs per synced op** (mean; one writer, so this is 1/throughput):',
        markdownTable(w1Pivot(outcomes, 'microsPerOp', floor)),
        toFloor.length === 0 ? '' : "**× floor**: each store's µs per synced op over the floor's (the target for 1–16 KiB is ≤ 1.3×):",
        toFloor.length === 0 ? '' : markdownTable(toFloor),
        toSqlite.length === 0
          ? ''
          : "**× better-sqlite3**: each store's µs per synced op over better-sqlite3's at the same size (the target for 1–16 KiB is ≤ 1.0×):",
        toSqlite.length === 0 ? '' : markdownTable(toSqlite),
        hasCpu
          ? "**CPU µs per synced op**: user + system CPU time of the whole benchmark process (every thread: the JS thread, libuv's pool, a store's own threads) over the measured window, per synced write. The kernel's own threads (the journal, writeback) are not in it. The harness's share is the same for every store, so the difference from the raw files is the store's own work:"
          : '',
        hasCpu ? markdownTable(cpu) : '',
        '**MB/s** of values made durable:',
        markdownTable(w1Pivot(outcomes, 'mbPerSecond')),
        '**p50 latency**:',
        markdownTable(w1Pivot(outcomes, 'p50', floor)),
        '**p99 latency**:',
        markdownTable(w1Pivot(outcomes, 'p99')),
      ]),
    );
  }
  const w2 = newest<Common & { outcomes: CaseOutcome<W2Result>[] }>('w2');
  if (w2 !== undefined) {
    const d = w2.results.durations?.['w2'];
    const pivot = markdownTable(w2Pivot(w2.results.outcomes));
    headline = [
      `Synced multi-Raft appends per second (W2: 1,000 regions, C writers, 4 × 1 KiB entries + hard state per op; [all results](docs/benchmarks.md)):`,
      '',
      pivot,
      '',
      provenance(w2),
    ].join('\n');
    parts.push(
      section('W2 multi-Raft append', [
        provenance(w2),
        d === undefined ? '' : `Each case: a fresh process and directory, ${d.warmup} s warm-up, ${d.measure} s measured.`,
        chart('w2', 'W2 chart'),
        pivot,
        w2.results.outcomes.some((o) => o.result?.cpuMicrosPerWrite !== undefined)
          ? `**CPU µs per synced op**: user + system CPU time of the whole benchmark process (every thread) over the measured window, per synced write, and the share of it that is system time (as in W1, the kernel's own threads are not in it):\n\n${markdownTable(w2CpuPivot(w2.results.outcomes))}`
          : '',
        'All figures (ops/sync: ops per barrier, where the store reports its barriers — the group commit factor):',
        markdownTable(w2Rows(w2.results.outcomes)),
      ]),
    );
  }
  const costs = encryptionCostSection();
  if (costs !== undefined) parts.push(costs);
  const w3 = newest<Common & { outcomes: CaseOutcome<W3Result>[] }>('w3');
  if (w3 !== undefined) {
    const d = w3.results.durations?.['w3'];
    parts.push(
      section('W3 append–compact–read', [
        provenance(w3),
        d === undefined
          ? ''
          : `Each case: a fresh process and directory, ${d.warmup} s warm-up, ${d.measure} s measured. Disk is the apparent size of every file of the store after close (preallocation included); live is the entries still held (1 KiB each) plus the hard states.`,
        chart('w3', 'W3 chart'),
        markdownTable(w3Rows(w3.results.outcomes)),
      ]),
    );
  }
  const w4 = newest<
    Common & {
      outcomes: W4Outcomes;
      totalBytes: number;
      reopens: number;
      coldCache: string;
      evictions: Record<string, { residentBefore?: number; residentAfter?: number }[]>;
    }
  >('w4');
  if (w4 !== undefined) {
    const evictionRows: Row[] = Object.entries(w4.results.evictions ?? {}).map(([store, list]) => ({
      store,
      'resident before eviction (MiB)': list
        .map((e) => (e.residentBefore === undefined ? '?' : (e.residentBefore / 2 ** 20).toFixed(0)))
        .join(', '),
      'after (MiB)': list.map((e) => (e.residentAfter === undefined ? '?' : (e.residentAfter / 2 ** 20).toFixed(0))).join(', '),
    }));
    parts.push(
      section('W4 recovery', [
        provenance(w4, `one load per store, median of ${w4.results.reopens} reopens`),
        `${(w4.results.totalBytes / 2 ** 20).toFixed(0)} MiB of 4 KiB entries over 1,000 regions, loaded unsynced with one barrier at the end, closed; then each reopen in a fresh process: open the store and read every region's last entry (checked against what was written). Median of ${w4.results.reopens} reopens each. Cold: ${w4.results.coldCache}.`,
        chart('w4', 'W4 chart'),
        markdownTable(w4Rows(w4.results.outcomes)),
        evictionRows.length > 0
          ? `Page cache held by the store's files before and after each eviction (fincore):\n\n${markdownTable(evictionRows)}`
          : '',
      ]),
    );
  }
  const rfc = newest<
    Common & {
      outcomes: CaseOutcome<RfcResult>[];
      order: CaseOutcome<RfcOrderResult>[];
      rounds: number;
      samples: number;
      sampleMillis: number;
      sameDevice?: boolean;
    }
  >('rfc');
  if (rfc !== undefined) {
    const r = rfc.results;
    const hasLevelPair = r.outcomes.some((o) => o.result?.mode === 'dedicated-level');
    parts.push(
      section('The RFC table: shared engine vs dedicated', [
        provenance(rfc, 'n samples per cell as in the tables'),
        `CockroachDB's 2017 RFC "Dedicated storage engine for Raft", reproduced. Per op: the Raft log entry written synced, the command applied to the state machine unsynced. **shared**: both in one LevelDB (classic-level), alternating, so each synced log write also flushes the previous apply;${hasLevelPair ? " **LevelDB + LevelDB**: the RFC's own comparison, the same engine twice, the log in one LevelDB and the state machine in a second one in another directory;" : ''} **raftlog + LevelDB**: the log in raftlog (PosixFs), the state machine in LevelDB in another directory${r.sameDevice === true ? ' (the other directory is on the same device: this machine has one disk)' : ''}.${hasLevelPair ? '' : ' This run predates the LevelDB + LevelDB configuration, so it cannot separate the engine from the separation.'} The log is truncated every 128 ops, only up to what the state machine has made durable (the RFC's rule; see \`bench/workloads/rfc.ts\`). Samples: ${r.rounds} fresh processes per cell, alternating the order of the configurations, × ${r.samples} samples of about ${r.sampleMillis} ms; spread is benchstat's (largest distance from the mean after dropping outliers), p from a two-sided Mann-Whitney U test, "~" when p > 0.05.`,
        chart('rfc', 'RFC chart'),
        hasLevelPair
          ? 'Which effect each comparison isolates: **separation** (LevelDB + LevelDB against one LevelDB) holds the engine fixed and changes only whether the log and the state machine share a WAL: this is what the RFC measured. **engine** (raftlog + LevelDB against LevelDB + LevelDB) holds the separation fixed and changes only the engine holding the log. **both** (raftlog + LevelDB against one LevelDB, the benchstat tables below) changes the two at once, so it cannot say which one a difference comes from.'
          : '',
        hasLevelPair ? markdownTable(rfcEffectRows(r.outcomes)) : '',
        hasLevelPair
          ? "The RFC's own comparison as benchstat prints it (**old** = one LevelDB, **new** = LevelDB + LevelDB; separation alone):"
          : '',
        hasLevelPair ? '```text\n' + rfcTable(r.outcomes, 'shared', 'dedicated-level') + '\n```' : '',
        '**old** = one LevelDB, **new** = raftlog + LevelDB (separation and engine together):',
        '```text\n' + rfcTable(r.outcomes) + '\n```',
        "The RFC's second experiment: the same ops interleaved (S U S U …) or sequential (all synced log writes, then all applies). With independent engines the two should cost the same (S + U + S + U = S + S + U + U); with one engine, interleaving makes every sync also flush an apply:",
        '```text\n' + rfcOrderTable(r.order) + '\n```',
      ]),
    );
  }
  const sys = newest<{ skipped?: string; rows?: Row[]; results?: SyscallOutcome[] }>('syscalls');
  if (sys !== undefined) {
    parts.push(
      section('Durability check: flush syscalls per synced op', [
        `_${sys.date.slice(0, 16).replace('T', ' ')} UTC, ${machineLine(sys.machine)}. Data: ${link(sys.file)}._`,
        sys.results.skipped !== undefined
          ? `Not counted: ${sys.results.skipped}.`
          : "W2's op under `strace -f` (every thread), counted between two marker syscalls so that open, warm-up and close are excluded. UringFs's fdatasync is an SQE linked to its write inside `io_uring_enter`, invisible to strace: for raftlog the engine's own barrier count is shown beside it.",
        sys.results.rows === undefined ? '' : markdownTable(sys.results.rows),
      ]),
    );
  }
  const stores = (w2 ?? w1)?.results.stores;
  if (stores !== undefined) {
    parts.unshift(
      section('Stores in this run', [
        markdownTable(
          stores.map((s) => ({
            store: s.id,
            kind: s.kind,
            'a synced op is': s.durableMode,
            ...(s.unavailable === undefined ? {} : { unavailable: s.unavailable }),
          })),
        ),
      ]),
    );
  }
  return { markdown: parts.join('\n'), headline };
}

const TEMPLATE = `# Benchmarks\n\n${START}\n${END}\n`;

/** Rewrites the generated parts of docs/benchmarks.md (and README.md's headline, if it has the markers); returns the doc's path. */
export function writeDocs(): string {
  const { markdown, headline } = renderResults();
  const current = existsSync(DOC) ? readFileSync(DOC, 'utf8') : TEMPLATE;
  writeFileSync(
    DOC,
    replaceBetween(current.includes(START) ? current : `${current.trimEnd()}\n\n## Results\n\n${START}\n${END}\n`, START, END, markdown),
  );
  if (headline !== undefined && existsSync(README)) {
    const readme = readFileSync(README, 'utf8');
    // Links in the headline are written relative to docs/; the README sits one level up.
    const fromRoot = headline.replaceAll('](../', '](');
    if (readme.includes(HEADLINE_START) && readme.includes(HEADLINE_END))
      writeFileSync(README, replaceBetween(readme, HEADLINE_START, HEADLINE_END, fromRoot));
  }
  return DOC;
}

function replaceBetween(text: string, start: string, end: string, body: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end, from);
  return `${text.slice(0, from + start.length)}\n${body.trim()}\n${text.slice(to)}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`docs: ${writeDocs()}`);
}
