/**
 * raftlog itself, on each backend a user can pick: PosixFs, UringFs
 * buffered and O_DIRECT, and EncryptedFs over PosixFs. Everything goes
 * through the package root, as a user's code would.
 */
import { createHash } from 'node:crypto';
import { Engine, EncryptedFs, LogBatch, PosixFs, UringFs, type FileSystem } from '../../index.js';
import type { LogStore, LogWrite, MaintenanceResult, StoreDescriptor, StoredData, StoreTuning } from './store.js';

const HARD_STATE = 'hard_state';

/** Purge is feature-detected: the bench must build and run against an engine with or without it. */
interface PurgeCapable {
  purgeExpiredFiles(): Promise<unknown>;
}

function purgeOf(engine: Engine): (() => Promise<unknown>) | undefined {
  const candidate = (engine as unknown as Partial<PurgeCapable>).purgeExpiredFiles;
  return typeof candidate === 'function' ? () => candidate.call(engine) : undefined;
}

/** The regions a purge result asks to compact, whatever shape the engine returns (an id list, or an object holding one). */
function regionsFrom(result: unknown): number[] {
  if (Array.isArray(result)) return result.filter((r): r is number => typeof r === 'number');
  if (typeof result === 'object' && result !== null) {
    for (const field of ['regionsToCompact', 'compactRegions', 'regions']) {
      const value = (result as Record<string, unknown>)[field];
      if (Array.isArray(value)) return value.filter((r): r is number => typeof r === 'number');
    }
  }
  return [];
}

class RaftlogStore implements LogStore {
  readonly #fs: FileSystem;
  readonly #engine: Engine;
  /** Batches are reused, but never while a write that sealed one is in flight (the record points into its buffer). */
  readonly #free: LogBatch[] = [];
  #purges = 0;
  #purgeMillis = 0;

  constructor(fs: FileSystem, tuning: StoreTuning = {}) {
    this.#fs = fs;
    this.#engine = new Engine(tuning.raftlogTargetFileSize === undefined ? { fs } : { fs, targetFileSize: tuning.raftlogTargetFileSize });
  }

  /** Whether this build of the engine has purge; reported with W3. */
  get purgeAvailable(): boolean {
    return purgeOf(this.#engine) !== undefined;
  }

  async open(): Promise<void> {
    await this.#engine.open();
  }

  async write(op: LogWrite, sync: boolean): Promise<void> {
    const batch = this.#free.pop() ?? new LogBatch();
    try {
      batch.addEntries(
        op.region,
        op.entries.map((data, i) => ({ index: op.firstIndex + i, term: 1, data })),
      );
      if (op.hardState !== undefined) batch.put(op.region, HARD_STATE, op.hardState);
      await this.#engine.write(batch, { sync });
    } finally {
      batch.clear();
      this.#free.push(batch);
    }
  }

  async compact(region: number, index: number): Promise<void> {
    await this.#engine.compactTo(region, index);
  }

  async read(region: number, begin: number, end: number): Promise<StoredData[]> {
    const entries = await this.#engine.fetchEntriesTo(region, begin, end);
    return entries.map((e) => ({ index: e.index, data: e.data }));
  }

  async last(region: number): Promise<StoredData | undefined> {
    const index = this.#engine.lastIndex(region);
    if (index === undefined) return undefined;
    const entry = await this.#engine.getEntry(region, index);
    return entry === undefined ? undefined : { index: entry.index, data: entry.data };
  }

  async maintain(): Promise<MaintenanceResult> {
    const purge = purgeOf(this.#engine);
    if (purge === undefined) return { compactRegions: [] };
    const started = performance.now();
    const result = await purge();
    this.#purges++;
    this.#purgeMillis += performance.now() - started;
    return { compactRegions: regionsFrom(result) };
  }

  async sync(): Promise<void> {
    await this.#engine.sync();
  }

  async close(): Promise<void> {
    try {
      await this.#engine.close();
    } finally {
      await this.#fs.close();
    }
  }

  counters(): Record<string, number> {
    const stats = this.#engine.stats();
    const out: Record<string, number> = {
      writes: stats.writes,
      groups: stats.groups,
      syncs: stats.syncs,
      bytesWritten: stats.bytesWritten,
      files: stats.files,
      purgeAvailable: this.purgeAvailable ? 1 : 0,
      purges: this.#purges,
      purgeMillis: this.#purgeMillis,
    };
    if (this.#fs instanceof UringFs) {
      const ring = this.#fs.stats();
      out['uringSubmissions'] = ring.submissions;
      out['uringSqes'] = ring.sqes;
    }
    return out;
  }
}

const RAFTLOG_DURABLE =
  'engine.write(batch, { sync: true }) resolves after the group commit leader has written the group and its barrier returned';

/**
 * The master key for a case directory: derived from its path, so W4's reopen
 * processes find the key the load process used (a real deployment gets it
 * from a KMS). Benchmark data only; never a way to key real data.
 */
function benchMasterKey(dir: string): Uint8Array {
  return createHash('sha256').update(`raftlog-bench-master-key:${dir}`).digest();
}

/** Why UringFs cannot run here (no addon, io_uring refused), from its own probe. */
async function uringUnavailable(): Promise<string | undefined> {
  return UringFs.unavailableReason();
}

export const raftlogStores: readonly StoreDescriptor[] = [
  {
    id: 'raftlog-posix',
    kind: 'raftlog',
    durableMode: `${RAFTLOG_DURABLE} (PosixFs: writev, then fdatasync)`,
    unavailable: async () => undefined,
    create: async (dir, tuning) => new RaftlogStore(new PosixFs(dir), tuning),
  },
  {
    id: 'raftlog-uring',
    kind: 'raftlog',
    durableMode: `${RAFTLOG_DURABLE} (UringFs buffered: writev and a linked fdatasync in one io_uring_enter)`,
    unavailable: uringUnavailable,
    create: async (dir, tuning) => new RaftlogStore(new UringFs(dir, { direct: false }), tuning),
  },
  {
    id: 'raftlog-uring-direct',
    kind: 'raftlog',
    durableMode: `${RAFTLOG_DURABLE} (UringFs O_DIRECT: aligned writes and a linked fdatasync in one io_uring_enter)`,
    unavailable: uringUnavailable,
    create: async (dir, tuning) => new RaftlogStore(new UringFs(dir, { direct: true }), tuning),
  },
  {
    id: 'raftlog-encrypted',
    kind: 'raftlog',
    durableMode: `${RAFTLOG_DURABLE} (EncryptedFs over PosixFs: AES-256-CTR, then writev + fdatasync)`,
    unavailable: async () => undefined,
    create: async (dir, tuning) => new RaftlogStore(new EncryptedFs(new PosixFs(dir), { masterKey: benchMasterKey(dir) }), tuning),
  },
];
