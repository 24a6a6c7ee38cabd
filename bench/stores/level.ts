/**
 * LevelDB through classic-level, and RocksDB through @nxtedition/rocksdb:
 * both abstract-level stores, so one adapter serves both. A synced op is a
 * batch written with `{ sync: true }` (the WAL is fsynced before the write
 * returns; it also makes every earlier unsynced write durable).
 *
 * Differences that show in the numbers and are theirs, not the adapter's:
 * classic-level runs each batch on the libuv thread pool, so concurrent
 * batches can meet in LevelDB's writer queue and share one log sync;
 * @nxtedition/rocksdb writes a batch synchronously on the JavaScript thread,
 * so concurrent writers in one process are serialized, one sync each.
 */
import { createRequire } from 'node:module';
import {
  HARD_STATE_INDEX,
  asBuffer,
  hardStateKey,
  keyIndex,
  logKey,
  type LogStore,
  type LogWrite,
  type MaintenanceResult,
  type StoreDescriptor,
  type StoredData,
} from './store.js';

/** The slice of the abstract-level API the adapter uses, typed once for both bindings. */
interface BatchOp {
  type: 'put' | 'del';
  key: Buffer;
  value?: Buffer;
}

interface LevelIterator {
  all(): Promise<[Buffer, Buffer][]>;
}

interface LevelDatabase {
  open(): Promise<void>;
  close(): Promise<void>;
  batch(ops: BatchOp[], options: { sync: boolean }): Promise<void>;
  iterator(options: { gte: Buffer; lt: Buffer; reverse?: boolean; limit?: number }): LevelIterator;
  clear(options: { gte: Buffer; lt: Buffer }): Promise<void>;
}

type LevelConstructor = new (location: string, options: { keyEncoding: 'buffer'; valueEncoding: 'buffer' }) => LevelDatabase;

/** The two bindings are CommonJS; loaded lazily so a missing native build costs only its own store. */
function load(module: 'classic-level' | '@nxtedition/rocksdb'): LevelConstructor {
  const require = createRequire(import.meta.url);
  const exports = require(module) as Record<string, unknown>;
  const Class = module === 'classic-level' ? exports['ClassicLevel'] : exports['RocksLevel'];
  if (typeof Class !== 'function') throw new Error(`${module} does not export its database class`);
  return Class as LevelConstructor;
}

const SYNC_MARKER = Buffer.from('bench:sync');

class LevelStore implements LogStore {
  readonly #db: LevelDatabase;

  constructor(Class: LevelConstructor, dir: string) {
    this.#db = new Class(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  }

  async open(): Promise<void> {
    await this.#db.open();
  }

  async write(op: LogWrite, sync: boolean): Promise<void> {
    const ops: BatchOp[] = op.entries.map((data, i) => ({ type: 'put', key: logKey(op.region, op.firstIndex + i), value: asBuffer(data) }));
    if (op.hardState !== undefined) ops.push({ type: 'put', key: hardStateKey(op.region), value: asBuffer(op.hardState) });
    await this.#db.batch(ops, { sync });
  }

  async compact(region: number, index: number): Promise<void> {
    // clear() is each binding's range delete: RocksDB's DeleteRange tombstone;
    // LevelDB has none, so classic-level iterates the range and deletes the keys.
    await this.#db.clear({ gte: logKey(region, 0), lt: logKey(region, index) });
  }

  async read(region: number, begin: number, end: number): Promise<StoredData[]> {
    const rows = await this.#db.iterator({ gte: logKey(region, begin), lt: logKey(region, end) }).all();
    return rows.map(([key, value]) => ({ index: keyIndex(key), data: value }));
  }

  async last(region: number): Promise<StoredData | undefined> {
    const rows = await this.#db.iterator({ gte: logKey(region, 0), lt: logKey(region, HARD_STATE_INDEX), reverse: true, limit: 1 }).all();
    const row = rows[0];
    return row === undefined ? undefined : { index: keyIndex(row[0]), data: row[1] };
  }

  async maintain(): Promise<MaintenanceResult> {
    // Both compact in background threads of their own; there is nothing to drive.
    return { compactRegions: [] };
  }

  async sync(): Promise<void> {
    // Neither binding exposes a bare flush: a synced write syncs the WAL and with it every earlier write.
    await this.#db.batch([{ type: 'put', key: SYNC_MARKER, value: Buffer.alloc(0) }], { sync: true });
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  counters(): Record<string, number> {
    return {};
  }
}

export const classicLevelStore: StoreDescriptor = {
  id: 'classic-level',
  kind: 'peer',
  durableMode: 'LevelDB: db.batch(ops, { sync: true }) (WAL fdatasync before the batch resolves)',
  unavailable: async () => {
    try {
      load('classic-level');
      return undefined;
    } catch (error) {
      return `classic-level failed to load: ${(error as Error).message}`;
    }
  },
  create: async (dir) => new LevelStore(load('classic-level'), dir),
};

export const rocksdbStore: StoreDescriptor = {
  id: 'rocksdb',
  kind: 'peer',
  durableMode: 'RocksDB: db.batch(ops, { sync: true }) (WAL fsync before the batch returns; the binding writes on the JS thread)',
  unavailable: async () => {
    try {
      load('@nxtedition/rocksdb');
      return undefined;
    } catch (error) {
      return `@nxtedition/rocksdb failed to load: ${(error as Error).message}`;
    }
  },
  create: async (dir) => new LevelStore(load('@nxtedition/rocksdb'), dir),
};
