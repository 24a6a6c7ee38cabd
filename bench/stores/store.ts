/**
 * What every workload drives: a Raft log store, whether raftlog on one of
 * its backends, a peer (LMDB, LevelDB, RocksDB, SQLite) holding the log as
 * key-value pairs, or the floor (a raw append-only file).
 *
 * The contract is Raft's, not any one store's: an atomic write of a region's
 * consecutive entries plus its hard state, durable when `sync` is set;
 * compaction of a region's prefix; reads of a range and of the last entry.
 */

export interface LogWrite {
  region: number;
  /** Index of `entries[0]`; the rest follow consecutively. */
  firstIndex: number;
  entries: readonly Uint8Array[];
  /** The region's Raft hard state (term, vote, commit), in the same atomic write. */
  hardState?: Uint8Array;
}

export interface StoredData {
  index: number;
  data: Uint8Array;
}

export interface MaintenanceResult {
  /** Regions the store asks its user to compact (raftlog's purge answer); empty when it has no opinion. */
  compactRegions: number[];
}

export interface LogStore {
  open(): Promise<void>;
  /** One atomic batch; with `sync`, resolves only once it (and everything before it) is durable. */
  write(op: LogWrite, sync: boolean): Promise<void>;
  /** Drops the region's entries below `index`: raftlog's compactTo, a range delete for the key-value peers. */
  compact(region: number, index: number): Promise<void>;
  /** Entries `[begin, end)` of a region. */
  read(region: number, begin: number, end: number): Promise<StoredData[]>;
  /** The region's last entry, found the way the store would after a restart (no cached index from the workload). */
  last(region: number): Promise<StoredData | undefined>;
  /** Space reclamation the store leaves to its user (raftlog's purgeExpiredFiles); a no-op where the store does it itself. */
  maintain(): Promise<MaintenanceResult>;
  /** A durability barrier for everything written so far. */
  sync(): Promise<void>;
  close(): Promise<void>;
  /** Store-specific counters for the JSON (raftlog: groups, syncs; uring: submissions). */
  counters(): Record<string, number>;
}

export type StoreKind = 'raftlog' | 'peer' | 'floor';

/** Per-workload settings; a store ignores what does not apply to it. */
export interface StoreTuning {
  /** raftlog's `targetFileSize` (W3 shrinks it so files rotate, and purge has work, within a short run). */
  raftlogTargetFileSize?: number;
}

export interface StoreDescriptor {
  /** Stable id used on the command line and in the JSON, e.g. `raftlog-posix`, `lmdb`. */
  readonly id: string;
  readonly kind: StoreKind;
  /** What "synced" means for this store, as the docs state it. */
  readonly durableMode: string;
  /** Why the store cannot run here, or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  create(dir: string, tuning?: StoreTuning): Promise<LogStore>;
}

const KEY_BYTES = 16;
/** Index used for the hard-state key: above every real entry index, so a range delete of a log prefix never reaches it. */
export const HARD_STATE_INDEX = 0xffff_ffff_ffff_ffffn;

/**
 * The peers' key: region id and index, 8 bytes big-endian each, so byte
 * order is (region, index) order and a log prefix is one key range.
 */
export function logKey(region: number, index: number | bigint): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  key.writeBigUInt64BE(BigInt(region), 0);
  key.writeBigUInt64BE(BigInt(index), 8);
  return key;
}

export function hardStateKey(region: number): Buffer {
  return logKey(region, HARD_STATE_INDEX);
}

export function keyIndex(key: Uint8Array): number {
  return Number(Buffer.from(key.buffer, key.byteOffset, key.byteLength).readBigUInt64BE(8));
}

/** A Buffer view of bytes without copying (native bindings want Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
