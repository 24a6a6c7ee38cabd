/**
 * The bench's derived figures, computed from saved case outcomes: the
 * encryption cost table (issue 7's target), W1's floor and ratios, and the
 * RFC's three comparisons (issue 20's targets).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encryptionCostRows,
  floorAppendMicros,
  floorMicros,
  rfcComparisons,
  rfcEffectRows,
  w1Pivot,
  w1RatioPivot,
  w1Rows,
} from '../bench/reports.js';
import type { CaseOutcome } from '../bench/support/cases.js';
import type { StoreId } from '../bench/stores/registry.js';
import type { FloorResult } from '../bench/workloads/floor.js';
import type { RfcResult } from '../bench/workloads/rfc.js';
import type { W1Result } from '../bench/workloads/w1.js';

interface Throughput {
  opsPerSecond: number;
}

function outcome(store: StoreId, writers: number, round: number, opsPerSecond: number, ok = true): CaseOutcome<Throughput> {
  return {
    spec: {
      name: `w2 ${store} C=${writers} run ${round}`,
      workload: 'w2',
      store,
      dir: '/nonexistent',
      warmupSeconds: 0,
      measureSeconds: 0,
      params: { writers },
    },
    ok,
    ...(ok ? { result: { opsPerSecond } } : { error: 'failed' }),
    wallSeconds: 0,
    loadBefore: 0,
    loadAfter: 0,
  };
}

describe('bench: EncryptedFs cost', () => {
  it('pairs cases by round, so drift shared by a pair cancels, and gives the ratio of medians beside it', () => {
    // The disk slows 2x from round 3 on; within each round encryption costs 10%.
    const outcomes = [
      outcome('raftlog-posix', 64, 1, 1000),
      outcome('raftlog-encrypted', 64, 1, 900),
      outcome('raftlog-encrypted', 64, 2, 990),
      outcome('raftlog-posix', 64, 2, 1100),
      outcome('raftlog-posix', 64, 3, 500),
      outcome('raftlog-encrypted', 64, 3, 450),
      outcome('lmdb', 64, 3, 5000),
    ];
    const [row, ...rest] = encryptionCostRows(outcomes, 'writers', 'C', String, (r) => r.opsPerSecond);
    assert.equal(rest.length, 0);
    assert.deepEqual(row, {
      C: '64',
      rounds: 3,
      'cost, median of round pairs': '10.0%',
      'round ratios': '0.900 to 0.900',
      'cost, ratio of medians': '10.0%',
    });
  });

  it('leaves out a round whose partner failed, and a parameter without both stores', () => {
    const outcomes = [
      outcome('raftlog-posix', 1, 1, 100),
      outcome('raftlog-encrypted', 1, 1, 95),
      outcome('raftlog-posix', 1, 2, 400),
      outcome('raftlog-encrypted', 1, 2, 0, false),
      outcome('raftlog-posix', 8, 1, 800),
    ];
    const rows = encryptionCostRows(outcomes, 'writers', 'C', String, (r) => r.opsPerSecond);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['rounds'], 1);
    assert.equal(rows[0]!['cost, median of round pairs'], '5.0%');
    // The medians, taken store by store, include the round the pair lost.
    assert.equal(rows[0]!['cost, ratio of medians'], `${(100 * (1 - 95 / 250)).toFixed(1)}%`);
  });
});

function caseOf<R>(
  name: string,
  workload: 'w1' | 'floor' | 'rfc',
  store: StoreId,
  params: Record<string, number | string>,
  result: R,
): CaseOutcome<R> {
  return {
    spec: { name, workload, store, dir: '/nonexistent', warmupSeconds: 0, measureSeconds: 0, params },
    ok: true,
    result,
    wallSeconds: 0,
    loadBefore: 0,
    loadAfter: 0,
  };
}

const latency = { mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 };

function w1(store: StoreId, valueBytes: number, microsPerOp: number, cpuMicrosPerWrite?: number): CaseOutcome<W1Result> {
  const result: W1Result = {
    valueBytes,
    ops: 1000,
    seconds: 1,
    microsPerOp,
    mbPerSecond: 1,
    latency,
    counters: {},
    cpu: { userMicros: 0, systemMicros: 0 },
    cpuMicrosPerWrite: cpuMicrosPerWrite ?? 0,
  };
  if (cpuMicrosPerWrite === undefined) {
    // A result saved before CPU time was measured.
    delete (result as Partial<W1Result>).cpu;
    delete (result as Partial<W1Result>).cpuMicrosPerWrite;
  }
  return caseOf(`w1 ${store} ${valueBytes}B`, 'w1', store, { valueBytes }, result);
}

function floorCase(round: number, overwrite: number, append: number): CaseOutcome<FloorResult> {
  const sync = (medianMicros: number): FloorResult['overwrite'] => ({ samples: 100, medianMicros, p90Micros: medianMicros });
  return caseOf(
    `w1 floor run ${round}`,
    'floor',
    'raw-prealloc',
    { samples: 100 },
    { overwrite: sync(overwrite), append: sync(append), fileSystem: 'ext4', device: '0:0' },
  );
}

describe('bench: W1 floor, ratios and CPU time', () => {
  const outcomes = [
    w1('raftlog-posix', 1024, 300, 50),
    w1('sqlite', 1024, 200, 40),
    w1('raftlog-posix', 4096, 400, 60),
    w1('sqlite', 4096, 100, 30),
  ];
  const floor = [floorCase(1, 100, 300), floorCase(2, 120, 320), floorCase(3, 500, 900)];

  it('takes the floor as the median over rounds of the probe medians, overwrite and append apart', () => {
    assert.equal(floorMicros(floor), 120);
    assert.equal(floorAppendMicros(floor), 320);
    assert.equal(floorMicros(undefined), undefined);
  });

  it('opens each size with the floor row and gives every store its ratio to the floor and to better-sqlite3', () => {
    const rows = w1Rows(outcomes, floor);
    assert.deepEqual(
      rows.map((r) => [r['V'], r['store'], r['µs/op'], r['x floor'], r['x sqlite'], r['CPU µs/op']]),
      [
        ['1K', 'floor', '120', '', '0.60x', ''],
        ['1K', 'raftlog-posix', '300', '2.50x', '1.50x', '50'],
        ['1K', 'sqlite', '200', '1.67x', '', '40'],
        ['4K', 'floor', '120', '', '1.20x', ''],
        ['4K', 'raftlog-posix', '400', '3.33x', '4.00x', '60'],
        ['4K', 'sqlite', '100', '0.83x', '', '30'],
      ],
    );
  });

  it('pivots the ratios store by size, and has none without a divisor', () => {
    assert.deepEqual(w1RatioPivot(outcomes, 'sqlite'), [{ store: 'raftlog-posix', '1K': '1.50x', '4K': '4.00x' }]);
    assert.deepEqual(w1RatioPivot(outcomes, 'floor', floor)[0], { store: 'raftlog-posix', '1K': '2.50x', '4K': '3.33x' });
    assert.deepEqual(w1RatioPivot(outcomes, 'floor', []), []);
    assert.deepEqual(w1Pivot(outcomes, 'microsPerOp', floor)[0], {
      store: 'floor (4 KiB overwrite + fdatasync)',
      '1K': '120',
      '4K': '120',
    });
  });

  it('shows "-" for CPU time in results saved before it was measured, not a failure', () => {
    const old = [w1('raftlog-posix', 1024, 300)];
    assert.deepEqual(w1Pivot(old, 'cpuMicrosPerWrite'), [{ store: 'raftlog-posix', '1K': '-' }]);
    assert.equal(w1Rows(old)[0]!['CPU µs/op'], '-');
  });
});

describe('bench: the RFC comparisons', () => {
  const rfc = (mode: string, samples: number[]): CaseOutcome<RfcResult> =>
    caseOf(
      `rfc ${mode} 1024B`,
      'rfc',
      'raftlog-posix',
      { mode, valueBytes: 1024 },
      { mode, valueBytes: 1024, samples, opsPerSample: 10, sameDevice: true },
    );
  // Separation halves the time per op; the log's engine changes nothing.
  const outcomes = [
    rfc('shared', [200, 201, 202, 203, 204, 205]),
    rfc('dedicated-level', [100, 101, 102, 103, 104, 105]),
    rfc('dedicated', [101, 102, 103, 100, 104, 105]),
  ];

  it('lays each effect on the pair of configurations that isolates it', () => {
    const [row, ...rest] = rfcEffectRows(outcomes);
    assert.equal(rest.length, 0);
    assert.match(String(row!['separation: LevelDB+LevelDB vs one']), /^-49\.\d\d% \(p=0\.002 n=6\+6\)$/);
    assert.match(String(row!['engine: raftlog+LevelDB vs LevelDB+LevelDB']), /^~ /);
    assert.match(String(row!['both: raftlog+LevelDB vs one']), /^-49\.\d\d% /);
  });

  it("keeps the older table's pair (shared against raftlog + LevelDB) as the default", () => {
    const { time } = rfcComparisons(outcomes);
    assert.deepEqual(time[0]!.new, [101, 102, 103, 100, 104, 105]);
    assert.deepEqual(rfcComparisons(outcomes, 'shared', 'dedicated-level').time[0]!.new, [100, 101, 102, 103, 104, 105]);
  });
});
