/**
 * The bench's encryption cost table: the figure issue 7's target is judged
 * by, computed from saved case outcomes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encryptionCostRows } from '../bench/reports.js';
import type { CaseOutcome } from '../bench/support/cases.js';
import type { StoreId } from '../bench/stores/registry.js';

interface Throughput {
  opsPerSecond: number;
}

function outcome(store: StoreId, writers: number, round: number, opsPerSecond: number, ok = true): CaseOutcome<Throughput> {
  return {
    spec: { name: `w2 ${store} C=${writers} run ${round}`, workload: 'w2', store, dir: '/nonexistent', warmupSeconds: 0, measureSeconds: 0, params: { writers } },
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
