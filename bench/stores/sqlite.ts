/**
 * SQLite through better-sqlite3, in its honest durable mode: WAL journal
 * with `synchronous=FULL`, so a committed transaction's WAL frames are
 * fsynced before COMMIT returns. better-sqlite3 is synchronous: a write
 * blocks the event loop for its whole duration, so concurrent writers in one
 * process take turns (no group commit).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
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

function load(): typeof BetterSqlite3 {
  const require = createRequire(import.meta.url);
  return require('better-sqlite3') as typeof BetterSqlite3;
}

interface Row {
  k: Buffer;
  v: Buffer;
}

class SqliteStore implements LogStore {
  readonly #path: string;
  #db: BetterSqlite3.Database | undefined;
  #synchronous: 'FULL' | 'OFF' = 'FULL';
  #put!: BetterSqlite3.Statement<[Buffer, Buffer]>;
  #deleteRange!: BetterSqlite3.Statement<[Buffer, Buffer]>;
  #range!: BetterSqlite3.Statement<[Buffer, Buffer], Row>;
  #lastRow!: BetterSqlite3.Statement<[Buffer, Buffer], Row>;
  #writeTxn!: (op: LogWrite) => void;

  constructor(dir: string) {
    this.#path = join(dir, 'log.sqlite');
  }

  get #live(): BetterSqlite3.Database {
    if (this.#db === undefined) throw new Error('sqlite store is not open');
    return this.#db;
  }

  async open(): Promise<void> {
    const Database = load();
    const db = new Database(this.#path);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // WITHOUT ROWID: one B-tree keyed by the 16-byte key, the layout the other key-value peers have.
    db.exec('CREATE TABLE IF NOT EXISTS log (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
    this.#put = db.prepare('INSERT OR REPLACE INTO log (k, v) VALUES (?, ?)');
    this.#deleteRange = db.prepare('DELETE FROM log WHERE k >= ? AND k < ?');
    this.#range = db.prepare<[Buffer, Buffer], Row>('SELECT k, v FROM log WHERE k >= ? AND k < ? ORDER BY k');
    this.#lastRow = db.prepare<[Buffer, Buffer], Row>('SELECT k, v FROM log WHERE k >= ? AND k < ? ORDER BY k DESC LIMIT 1');
    this.#writeTxn = db.transaction((op: LogWrite) => {
      for (let i = 0; i < op.entries.length; i++) this.#put.run(logKey(op.region, op.firstIndex + i), asBuffer(op.entries[i]!));
      if (op.hardState !== undefined) this.#put.run(hardStateKey(op.region), asBuffer(op.hardState));
    });
  }

  async write(op: LogWrite, sync: boolean): Promise<void> {
    // Unsynced writes (W4's bulk load, the RFC's state machine) switch the
    // connection to synchronous=OFF; synced ones run under FULL.
    this.#setSynchronous(sync ? 'FULL' : 'OFF');
    this.#writeTxn(op);
  }

  async compact(region: number, index: number): Promise<void> {
    this.#deleteRange.run(logKey(region, 0), logKey(region, index));
  }

  async read(region: number, begin: number, end: number): Promise<StoredData[]> {
    return this.#range.all(logKey(region, begin), logKey(region, end)).map((row) => ({ index: keyIndex(row.k), data: row.v }));
  }

  async last(region: number): Promise<StoredData | undefined> {
    const row = this.#lastRow.get(logKey(region, 0), logKey(region, HARD_STATE_INDEX));
    return row === undefined ? undefined : { index: keyIndex(row.k), data: row.v };
  }

  async maintain(): Promise<MaintenanceResult> {
    // WAL checkpoints run automatically; freed pages go to the freelist and are reused.
    return { compactRegions: [] };
  }

  async sync(): Promise<void> {
    this.#setSynchronous('FULL');
    // A full checkpoint under synchronous=FULL syncs the WAL and the database file.
    this.#live.pragma('wal_checkpoint(FULL)');
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
  }

  counters(): Record<string, number> {
    return {};
  }

  #setSynchronous(mode: 'FULL' | 'OFF'): void {
    if (this.#synchronous === mode) return;
    this.#live.pragma(`synchronous = ${mode}`);
    this.#synchronous = mode;
  }
}

export const sqliteStore: StoreDescriptor = {
  id: 'sqlite',
  kind: 'peer',
  durableMode: 'SQLite: journal_mode=WAL, synchronous=FULL, one transaction per op (WAL fsync at COMMIT)',
  unavailable: async () => {
    try {
      load();
      return undefined;
    } catch (error) {
      return `better-sqlite3 failed to load: ${(error as Error).message}`;
    }
  },
  create: async (dir) => new SqliteStore(dir),
};
