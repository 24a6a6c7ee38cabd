/**
 * LMDB through lmdb-js. Its durable mode needs care: on Linux lmdb-js
 * commits with `overlappingSync`, so a write's promise resolves when the
 * transaction is committed and visible, before the data is flushed. The
 * durable acknowledgement is `db.flushed`, which resolves once every commit
 * so far has been synced; a synced op here awaits both.
 */
import { open, type RootDatabase } from 'lmdb';
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

class LmdbStore implements LogStore {
  readonly #dir: string;
  #db: RootDatabase<Buffer, Buffer> | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get #live(): RootDatabase<Buffer, Buffer> {
    if (this.#db === undefined) throw new Error('lmdb store is not open');
    return this.#db;
  }

  async open(): Promise<void> {
    // Binary keys (our 16-byte big-endian keys sort as bytes) and raw binary
    // values: no msgpack, no compression, no cache, so LMDB stores exactly the
    // bytes the other stores get.
    this.#db = open<Buffer, Buffer>({ path: this.#dir, keyEncoding: 'binary', encoding: 'binary', compression: false, cache: false });
  }

  async write(op: LogWrite, sync: boolean): Promise<void> {
    const db = this.#live;
    // batch(): the puts go into the next queued transaction together, atomically.
    await db.batch(() => {
      for (let i = 0; i < op.entries.length; i++) void db.put(logKey(op.region, op.firstIndex + i), asBuffer(op.entries[i]!));
      if (op.hardState !== undefined) void db.put(hardStateKey(op.region), asBuffer(op.hardState));
    });
    if (sync) await db.flushed;
  }

  async compact(region: number, index: number): Promise<void> {
    const db = this.#live;
    // LMDB has no range delete: remove the prefix's keys in one transaction (freed pages are reused).
    await db.transaction(() => {
      for (const key of db.getKeys({ start: logKey(region, 0), end: logKey(region, index) })) void db.remove(key);
    });
  }

  async read(region: number, begin: number, end: number): Promise<StoredData[]> {
    const out: StoredData[] = [];
    for (const { key, value } of this.#live.getRange({ start: logKey(region, begin), end: logKey(region, end) })) {
      out.push({ index: keyIndex(key), data: value });
    }
    return out;
  }

  async last(region: number): Promise<StoredData | undefined> {
    // Reverse from just below the hard-state key: the first hit is the last entry.
    for (const { key, value } of this.#live.getRange({
      start: logKey(region, HARD_STATE_INDEX - 1n),
      end: logKey(region, 0),
      reverse: true,
      limit: 1,
    })) {
      return { index: keyIndex(key), data: value };
    }
    return undefined;
  }

  async maintain(): Promise<MaintenanceResult> {
    return { compactRegions: [] };
  }

  async sync(): Promise<void> {
    await this.#live.flushed;
  }

  async close(): Promise<void> {
    await this.#db?.close();
    this.#db = undefined;
  }

  counters(): Record<string, number> {
    return {};
  }
}

export const lmdbStore: StoreDescriptor = {
  id: 'lmdb',
  kind: 'peer',
  durableMode: 'lmdb-js defaults (overlappingSync on Linux); a synced op awaits the batch commit, then `db.flushed`',
  unavailable: async () => undefined,
  create: async (dir) => new LmdbStore(dir),
};
