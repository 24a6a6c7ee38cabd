/**
 * The CockroachDB RFC "Dedicated storage engine for Raft" (2017), reproduced.
 *
 * Each op is what a Raft replica does per proposal: persist the log entry
 * (synced) and apply the command to the state machine (unsynced).
 *  - shared: both writes go to one LevelDB, alternating; every synced log
 *    write also flushes the previous unsynced state-machine write, because
 *    LevelDB has one WAL;
 *  - dedicated: the log entry goes to raftlog, the state machine write to a
 *    LevelDB in another directory (another device when there is one); the
 *    log's sync flushes only the log.
 *  - dedicated-level: the RFC's own comparison, the same engine twice: the
 *    log entry goes to one LevelDB, the state machine write to a second
 *    LevelDB in the other directory. Against shared it isolates the
 *    separation (same engine, one WAL against two); against dedicated, the
 *    engine that holds the log (both separated). shared against dedicated
 *    confounds the two.
 *
 * Log truncation follows the RFC's rule: a log prefix is dropped only once
 * the state machine has made the commands in it durable. Shared, a synced
 * log write carries every earlier state machine write to disk, so the
 * replica tracks how far that reaches and truncates only that far, with no
 * extra sync; dedicated, the state machine engine is synced first (a synced
 * write of the applied index), then raftlog compacts. See each `truncate`.
 *
 * `rfc` cases take timed samples of time per op. `rfc-order` cases repeat
 * the RFC's second experiment: the same ops interleaved (S U S U ...) and
 * sequential (S S ... U U ...); with independent engines the two cost the
 * same (S + U + S + U = S + S + U + U), with a shared one they do not.
 */
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import { Engine, LogBatch, PosixFs } from '../../index.js';
import type { CaseSpec } from '../support/cases.js';
import { DataPool } from '../support/driver.js';
import { logKey } from '../stores/store.js';

export const RFC_VALUE_SIZES = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] as const;
/** Ops between log truncations. */
export const RFC_TRUNCATE_EVERY = 128;
const REGION = 1;

interface LevelBatchOp {
  type: 'put' | 'del';
  key: Buffer;
  value?: Buffer;
}

interface LevelDatabase {
  open(): Promise<void>;
  close(): Promise<void>;
  batch(ops: LevelBatchOp[], options: { sync: boolean }): Promise<void>;
}

function openLevel(dir: string): LevelDatabase {
  const require = createRequire(import.meta.url);
  const { ClassicLevel } = require('classic-level') as {
    ClassicLevel: new (location: string, options: { keyEncoding: 'buffer'; valueEncoding: 'buffer' }) => LevelDatabase;
  };
  return new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
}

/** State-machine keys live apart from the log's (region, index) keys: a user key per command. */
function stateMachineKey(op: number): Buffer {
  const key = Buffer.allocUnsafe(12);
  key.write('sm:\0', 0, 'latin1');
  key.writeBigUInt64BE(BigInt(op), 4);
  return key;
}

const APPLIED_KEY = Buffer.from('sm:applied-index');

/** One of the two configurations, behind the three things an op does. */
interface Replica {
  /** Persist the log entry at `index`: synced. */
  appendLog(index: number, value: Uint8Array): Promise<void>;
  /** Apply command `index` to the state machine: unsynced. */
  apply(index: number, value: Uint8Array): Promise<void>;
  /** Drop log entries that are applied and durably so (the RFC's rule). */
  truncate(appliedIndex: number): Promise<void>;
  close(): Promise<void>;
}

class SharedReplica implements Replica {
  readonly #db: LevelDatabase;
  #firstLogIndex = 1;
  /** Highest command applied to the state machine. */
  #applied = 0;
  /** Highest command whose state machine write a later synced write has made durable. */
  #durablyApplied = 0;

  constructor(db: LevelDatabase) {
    this.#db = db;
  }

  async appendLog(index: number, value: Uint8Array): Promise<void> {
    const applied = this.#applied;
    await this.#db.batch(
      [{ type: 'put', key: logKey(REGION, index), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) }],
      { sync: true },
    );
    // One engine, one WAL: this sync also made every earlier write durable,
    // the state machine's writes included.
    this.#durablyApplied = applied;
  }

  async apply(index: number, value: Uint8Array): Promise<void> {
    await this.#db.batch(
      [{ type: 'put', key: stateMachineKey(index), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) }],
      { sync: false },
    );
    this.#applied = index;
  }

  async truncate(_appliedIndex: number): Promise<void> {
    // The RFC's rule without an extra sync: drop only commands whose state
    // machine writes a synced log write has already carried to disk
    // (#durablyApplied), which may lag the applied index. The deletes and
    // the new truncation point are one batch.
    const upTo = this.#durablyApplied;
    if (upTo <= this.#firstLogIndex) return;
    const ops: LevelBatchOp[] = [];
    for (let index = this.#firstLogIndex; index < upTo; index++) ops.push({ type: 'del', key: logKey(REGION, index) });
    ops.push({ type: 'put', key: APPLIED_KEY, value: indexBytes(upTo) });
    await this.#db.batch(ops, { sync: false });
    this.#firstLogIndex = upTo;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

/** The log half of a dedicated configuration: its own engine, synced appends, unsynced compaction. */
interface DedicatedLog {
  append(index: number, value: Uint8Array): Promise<void>;
  /** Drops entries before `index`; unsynced (losing a compaction is harmless). */
  compactTo(index: number): Promise<void>;
  close(): Promise<void>;
}

class RaftlogLog implements DedicatedLog {
  readonly #engine: Engine;
  readonly #batch = new LogBatch();

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  async append(index: number, value: Uint8Array): Promise<void> {
    this.#batch.clear();
    this.#batch.addEntries(REGION, [{ index, term: 1, data: value }]);
    await this.#engine.write(this.#batch, { sync: true });
  }

  async compactTo(index: number): Promise<void> {
    await this.#engine.compactTo(REGION, index);
  }

  async close(): Promise<void> {
    await this.#engine.close();
  }
}

/** The log in a LevelDB of its own, keyed as the shared configuration keys it. */
class LevelLog implements DedicatedLog {
  readonly #db: LevelDatabase;
  #first = 1;

  constructor(db: LevelDatabase) {
    this.#db = db;
  }

  async append(index: number, value: Uint8Array): Promise<void> {
    await this.#db.batch(
      [{ type: 'put', key: logKey(REGION, index), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) }],
      { sync: true },
    );
  }

  async compactTo(index: number): Promise<void> {
    if (index <= this.#first) return;
    const ops: LevelBatchOp[] = [];
    for (let i = this.#first; i < index; i++) ops.push({ type: 'del', key: logKey(REGION, i) });
    await this.#db.batch(ops, { sync: false });
    this.#first = index;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

class DedicatedReplica implements Replica {
  readonly #log: DedicatedLog;
  readonly #stateMachine: LevelDatabase;

  constructor(log: DedicatedLog, stateMachine: LevelDatabase) {
    this.#log = log;
    this.#stateMachine = stateMachine;
  }

  async appendLog(index: number, value: Uint8Array): Promise<void> {
    await this.#log.append(index, value);
  }

  async apply(index: number, value: Uint8Array): Promise<void> {
    await this.#stateMachine.batch(
      [{ type: 'put', key: stateMachineKey(index), value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) }],
      { sync: false },
    );
  }

  async truncate(appliedIndex: number): Promise<void> {
    // Two engines: the log's syncs never flushed the state machine's writes.
    // Before the log may drop a command, the state machine must have made its
    // effect durable, so sync the state machine first (a synced write of the
    // applied index flushes its WAL, and every unsynced write before it).
    // Only then compact the log (unsynced: losing a compaction is harmless).
    await this.#stateMachine.batch([{ type: 'put', key: APPLIED_KEY, value: indexBytes(appliedIndex) }], { sync: true });
    await this.#log.compactTo(appliedIndex);
  }

  async close(): Promise<void> {
    try {
      await this.#log.close();
    } finally {
      await this.#stateMachine.close();
    }
  }
}

function indexBytes(index: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeBigUInt64BE(BigInt(index));
  return bytes;
}

/** The configurations, in the order the tables show them. */
export const RFC_MODES = ['shared', 'dedicated-level', 'dedicated'] as const;
export type RfcMode = (typeof RFC_MODES)[number];

async function openReplica(spec: CaseSpec): Promise<Replica> {
  const mode = String(spec.params['mode']);
  if (mode === 'shared') {
    const db = openLevel(spec.dir);
    await db.open();
    return new SharedReplica(db);
  }
  if (mode !== 'dedicated' && mode !== 'dedicated-level')
    throw new Error(`unknown RFC configuration ${mode}; pick from ${RFC_MODES.join(', ')}`);
  if (spec.dir2 === undefined) throw new Error(`the ${mode} configuration needs a second directory (dir2) for the state machine`);
  let log: DedicatedLog;
  if (mode === 'dedicated') {
    const engine = new Engine({ fs: new PosixFs(spec.dir) });
    await engine.open();
    log = new RaftlogLog(engine);
  } else {
    const db = openLevel(spec.dir);
    await db.open();
    log = new LevelLog(db);
  }
  const stateMachine = openLevel(spec.dir2);
  await stateMachine.open();
  return new DedicatedReplica(log, stateMachine);
}

/** Runs proposals in order; truncating the log every RFC_TRUNCATE_EVERY of them. */
class Proposer {
  #index = 1;
  readonly #replica: Replica;
  readonly #pool: DataPool;
  readonly #valueBytes: number;

  constructor(replica: Replica, valueBytes: number) {
    this.#replica = replica;
    this.#valueBytes = valueBytes;
    this.#pool = new DataPool(valueBytes);
  }

  /** One proposal: synced log append, then the unsynced apply. */
  async interleaved(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const index = this.#index++;
      await this.#replica.appendLog(index, this.#pool.next(this.#valueBytes));
      await this.#replica.apply(index, this.#pool.next(this.#valueBytes));
      await this.#maybeTruncate(index);
    }
  }

  /** The same `count` proposals, all log appends first, then all applies. */
  async sequential(count: number): Promise<void> {
    const first = this.#index;
    this.#index += count;
    for (let i = 0; i < count; i++) await this.#replica.appendLog(first + i, this.#pool.next(this.#valueBytes));
    for (let i = 0; i < count; i++) {
      await this.#replica.apply(first + i, this.#pool.next(this.#valueBytes));
      await this.#maybeTruncate(first + i);
    }
  }

  async #maybeTruncate(appliedIndex: number): Promise<void> {
    if (appliedIndex % RFC_TRUNCATE_EVERY === 0) await this.#replica.truncate(appliedIndex);
  }
}

export interface RfcResult {
  mode: string;
  valueBytes: number;
  /** Mean microseconds per op (one synced log write plus one unsynced apply), one per sample. */
  samples: number[];
  opsPerSample: number;
  /** Whether the state machine's directory is on the same device as the log's. */
  sameDevice: boolean | undefined;
}

export interface RfcOrderResult {
  mode: string;
  valueBytes: number;
  interleaved: number[];
  sequential: number[];
  opsPerSample: number;
  sameDevice: boolean | undefined;
}

function sameDevice(spec: CaseSpec): boolean | undefined {
  if (spec.dir2 === undefined) return undefined;
  return statSync(spec.dir).dev === statSync(spec.dir2).dev;
}

/** Warms up for the spec's warm-up time and returns ops per sample so that a sample lasts about `sampleMillis`. */
async function warmUp(proposer: Proposer, spec: CaseSpec): Promise<number> {
  const sampleMillis = Number(spec.params['sampleMillis']);
  const until = performance.now() + spec.warmupSeconds * 1000;
  let ops = 0;
  const started = performance.now();
  do {
    await proposer.interleaved(1);
    ops++;
  } while (performance.now() < until);
  const perOp = (performance.now() - started) / ops;
  return Math.max(3, Math.round(sampleMillis / perOp));
}

export async function runRfc(spec: CaseSpec): Promise<RfcResult> {
  const valueBytes = Number(spec.params['valueBytes']);
  const samples = Number(spec.params['samples']);
  const replica = await openReplica(spec);
  try {
    const proposer = new Proposer(replica, valueBytes);
    const opsPerSample = await warmUp(proposer, spec);
    const out: number[] = [];
    for (let s = 0; s < samples; s++) {
      const started = performance.now();
      await proposer.interleaved(opsPerSample);
      out.push(((performance.now() - started) * 1000) / opsPerSample);
    }
    return { mode: String(spec.params['mode']), valueBytes, samples: out, opsPerSample, sameDevice: sameDevice(spec) };
  } finally {
    await replica.close();
  }
}

export async function runRfcOrder(spec: CaseSpec): Promise<RfcOrderResult> {
  const valueBytes = Number(spec.params['valueBytes']);
  const samples = Number(spec.params['samples']);
  const replica = await openReplica(spec);
  try {
    const proposer = new Proposer(replica, valueBytes);
    const opsPerSample = await warmUp(proposer, spec);
    const interleaved: number[] = [];
    const sequential: number[] = [];
    for (let s = 0; s < samples; s++) {
      // Alternate which order goes first, so drift in the disk's speed lands on both.
      for (const order of s % 2 === 0 ? (['interleaved', 'sequential'] as const) : (['sequential', 'interleaved'] as const)) {
        const started = performance.now();
        if (order === 'interleaved') await proposer.interleaved(opsPerSample);
        else await proposer.sequential(opsPerSample);
        (order === 'interleaved' ? interleaved : sequential).push(((performance.now() - started) * 1000) / opsPerSample);
      }
    }
    return { mode: String(spec.params['mode']), valueBytes, interleaved, sequential, opsPerSample, sameDevice: sameDevice(spec) };
  } finally {
    await replica.close();
  }
}
