/**
 * Every store the benchmarks know, by id, in table order. Each adapter is
 * imported only when asked for, so a peer whose native build is missing
 * costs its own rows ("unavailable: why"), not the whole run.
 */
import type { StoreDescriptor } from './store.js';

/**
 * An adapter over a benchmark peer (bench/package.json). The specifier is
 * computed so that the library's compile, which reaches this file through
 * test/bench-reports.test.ts, does not follow it into a peer that the
 * library's `npm ci` does not install; bench/tsconfig.json compiles the
 * adapters themselves.
 */
async function peerAdapter<K extends string>(file: string, name: K): Promise<StoreDescriptor> {
  const adapter = (await import(new URL(file, import.meta.url).href)) as Record<K, StoreDescriptor>;
  return adapter[name];
}

export const STORE_IDS = [
  'raftlog-posix',
  'raftlog-uring',
  'raftlog-uring-direct',
  'raftlog-encrypted',
  'lmdb',
  'classic-level',
  'rocksdb',
  'sqlite',
  'raw-append',
  'raw-prealloc',
] as const;

export type StoreId = (typeof STORE_IDS)[number];

export function isStoreId(id: string): id is StoreId {
  return (STORE_IDS as readonly string[]).includes(id);
}

export async function loadStore(id: StoreId): Promise<StoreDescriptor> {
  switch (id) {
    case 'raftlog-posix':
    case 'raftlog-uring':
    case 'raftlog-uring-direct':
    case 'raftlog-encrypted': {
      const { raftlogStores } = await import('./raftlog.js');
      return raftlogStores.find((s) => s.id === id)!;
    }
    case 'lmdb':
      return peerAdapter('./lmdb.js', 'lmdbStore');
    case 'classic-level':
      return peerAdapter('./level.js', 'classicLevelStore');
    case 'rocksdb':
      return peerAdapter('./level.js', 'rocksdbStore');
    case 'sqlite':
      return peerAdapter('./sqlite.js', 'sqliteStore');
    case 'raw-append':
      return (await import('./raw-file.js')).rawAppendStore;
    case 'raw-prealloc':
      return (await import('./raw-file.js')).rawPreallocStore;
  }
}

/** Why a store cannot run here (its module fails to load, or it says so), or undefined. */
export async function unavailableReason(id: StoreId): Promise<string | undefined> {
  try {
    return await (await loadStore(id)).unavailable();
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}
