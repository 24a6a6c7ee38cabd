/**
 * RaftStorage: one Raft group's log and state over an Engine region, with the
 * interface Raft libraries expect of their storage (etcd-raft's `Storage`,
 * raft-rs's `Storage`) and the semantics of etcd-raft's `MemoryStorage`:
 *
 * - A dummy entry sits at the last compacted index (the snapshot's, or the
 *   one given to `compact`): `firstIndex() === dummy.index + 1`, and
 *   `term(dummy.index)` is its term, kept for Raft's log matching.
 * - `entries(lo, hi)` fails with COMPACTED for `lo <= dummy.index` and with
 *   UNAVAILABLE past `lastIndex() + 1`; `maxSize` limits the encoded size but
 *   at least one entry is returned.
 * - `append` ignores entries at or below the dummy and replaces the log from
 *   the first appended index on (Raft's conflicting-tail truncation).
 * - `applySnapshot` drops every entry and moves the dummy to the snapshot's
 *   index and term; `compact(i)` drops entries up to `i` and moves the dummy
 *   to `i`.
 *
 * Where the state lives: entries are the region's entries in the engine;
 * everything else is under the region's keys below (reserved: write them only
 * through this class). Each mutation, and each `save` of a whole Ready, is one
 * LogBatch, so a crash leaves either all of it or none.
 *
 * | key | value |
 * |---|---|
 * | `raftlog/raft/hard_state` | eraftpb.HardState |
 * | `raftlog/raft/conf_state` | eraftpb.ConfState |
 * | `raftlog/raft/snapshot` | eraftpb.SnapshotMetadata of the latest snapshot |
 * | `raftlog/raft/truncated` | eraftpb.Entry with only `index` and `term`: the dummy entry |
 *
 * Conf state: as raft-rs's MemStorage, it is its own key (`setConfState`),
 * which `applySnapshot` replaces with the snapshot's; `initialState()`
 * returns it.
 *
 * Mutations run one at a time in call order; reads see what has been applied.
 */
import { Engine } from '../engine.js';
import { CorruptionError, InvalidArgumentError } from '../errors.js';
import { toSafeInteger } from '../format/entry-codec.js';
import { requireInteger } from '../validate.js';
import { LogBatch } from '../log-batch.js';
import type { StoredEntry } from '../protos.js';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { ConfState, Entry, HardState, SnapshotMetadata, type ConfStateInit, type SnapshotMetadataInit } from './messages.js';

/** The keys RaftStorage keeps in its region; reserved for it. */
export const RAFT_STORAGE_KEYS = {
  hardState: 'raftlog/raft/hard_state',
  confState: 'raftlog/raft/conf_state',
  snapshot: 'raftlog/raft/snapshot',
  truncated: 'raftlog/raft/truncated',
} as const;

export interface RaftStorageOptions {
  /**
   * Writes resolve only once durable. Default true: Raft must not answer a
   * message before the state it answers from survives a crash.
   */
  sync?: boolean;
}

export interface RaftStorageWriteOptions {
  /** Overrides the storage's `sync` for this write. */
  sync?: boolean;
}

/** What `initialState()` returns. */
export interface RaftState {
  hardState: HardState;
  confState: ConfState;
}

/** What one Raft Ready persists; `save` writes it as one atomic batch, in this order. */
export interface RaftUpdate {
  snapshot?: SnapshotMetadataInit;
  entries?: readonly Entry[];
  confState?: ConfStateInit;
  hardState?: Partial<HardState>;
}

interface Dummy {
  index: number;
  term: number;
}

/** The log's shape while a batch is being built: later parts of a batch see earlier ones. */
interface Draft {
  dummy: Dummy;
  lastIndex: number;
  snapshot: SnapshotMetadata;
  /** The last entry the batch appends. */
  lastAppended: Dummy | undefined;
}

export class RaftStorage {
  readonly engine: Engine;
  readonly region: number;
  readonly #sync: boolean;
  /** The last mutation queued; each waits for the one before. */
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * The term of one entry known to be in the log, usually the last: Raft asks
   * for term(lastIndex) on every append it receives, and reading the entry
   * costs a file read. Trusted only while none of this storage's writes is in
   * flight, so it never outlives the state it was taken from.
   */
  #termHint: Dummy | undefined;
  #writesInFlight = 0;
  /** Changes when a write starts or ends: a read that began before it may not fill the hint. */
  #generation = 0;

  /** The engine must be open. Use one RaftStorage per region. */
  constructor(engine: Engine, region: number, options: RaftStorageOptions = {}) {
    if (!(engine instanceof Engine)) throw new InvalidArgumentError('RaftStorage needs an open Engine');
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('RaftStorage options must be an object');
    this.#sync = syncOption(options.sync, true);
    this.engine = engine;
    this.region = requireInteger(region, 'region');
    // The region must hold exactly the entries after the dummy.
    const first = engine.firstIndex(this.region);
    const dummy = this.#dummy();
    if (first !== undefined && first !== dummy.index + 1) {
      if (engine.get(this.region, RAFT_STORAGE_KEYS.truncated) === undefined) {
        throw new InvalidArgumentError(
          `region ${this.region} holds entries from ${first} but no RaftStorage state: it was not written through RaftStorage`,
        );
      }
      throw new CorruptionError(`region ${this.region} holds entries from ${first}, but RaftStorage compacted it through ${dummy.index}`);
    }
  }

  /** The hard state and conf state saved last (zero values when none was). */
  initialState(): RaftState {
    return {
      hardState: this.#read(RAFT_STORAGE_KEYS.hardState, HardState) ?? HardState.create(),
      confState: this.#read(RAFT_STORAGE_KEYS.confState, ConfState) ?? ConfState.create(),
    };
  }

  /** Index of the first entry `entries` can return: one past the last compacted index. */
  firstIndex(): number {
    return this.#dummy().index + 1;
  }

  /** Index of the last entry (the last compacted index when the log is empty). */
  lastIndex(): number {
    return this.engine.lastIndex(this.region) ?? this.#dummy().index;
  }

  /** Metadata of the latest snapshot applied or created (index 0 when none). */
  snapshot(): SnapshotMetadata {
    return this.#read(RAFT_STORAGE_KEYS.snapshot, SnapshotMetadata) ?? SnapshotMetadata.create();
  }

  /**
   * The term of entry `index`, which must be in `[firstIndex() - 1, lastIndex()]`:
   * COMPACTED below, UNAVAILABLE above.
   */
  async term(index: number): Promise<number> {
    index = requireInteger(index, 'index');
    const dummy = this.#dummy();
    if (index < dummy.index) throw new CompactedError(`term(${index}): compacted through ${dummy.index}`);
    if (index === dummy.index) return dummy.term;
    const last = this.lastIndex();
    if (index > last) throw new UnavailableError(`term(${index}): the last entry is ${last}`);
    const hint = this.#termHint;
    if (hint !== undefined && hint.index === index && this.#writesInFlight === 0) return hint.term;
    const generation = this.#generation;
    // The engine locates the entry in this same tick, so no write applied
    // since the checks above can have moved it.
    const entry = await this.engine.getEntry(this.region, index);
    if (entry === undefined)
      throw new Error(`RaftStorage invariant: region ${this.region} has no entry ${index} within (${dummy.index}, ${last}]`);
    if (index === last && this.#writesInFlight === 0 && generation === this.#generation) this.#termHint = { index, term: entry.term };
    return entry.term;
  }

  /**
   * Entries `[lo, hi)`, stopping before the encoded size passes `maxSize`
   * (at least one entry is returned). COMPACTED when `lo <= firstIndex() - 1`,
   * UNAVAILABLE when `hi > lastIndex() + 1` or the log holds no entry.
   */
  async entries(lo: number, hi: number, maxSize?: number): Promise<StoredEntry[]> {
    lo = requireInteger(lo, 'lo');
    hi = requireInteger(hi, 'hi');
    if (maxSize !== undefined && (typeof maxSize !== 'number' || !(maxSize >= 0))) {
      throw new InvalidArgumentError(`maxSize must be a non-negative number or undefined, got ${String(maxSize)}`);
    }
    const dummy = this.#dummy();
    if (lo <= dummy.index) throw new CompactedError(`entries(${lo}, ${hi}): compacted through ${dummy.index}`);
    const last = this.lastIndex();
    if (hi > last + 1) throw new UnavailableError(`entries(${lo}, ${hi}): the last entry is ${last}`);
    if (last === dummy.index) throw new UnavailableError(`entries(${lo}, ${hi}): the log holds no entries after ${dummy.index}`);
    if (lo > hi) throw new InvalidArgumentError(`entries: lo ${lo} is after hi ${hi}`);
    if (lo === hi) return [];
    // The engine limits on each entry's encoded size, as etcd's limitSize does
    // on proto.Size; a zero budget still returns the first entry. It checks
    // and locates the range in this same tick, so no write applied since the
    // checks above can turn them into its NOT_FOUND.
    if (maxSize === 0) return this.engine.fetchEntriesTo(this.region, lo, lo + 1);
    return this.engine.fetchEntriesTo(this.region, lo, hi, maxSize);
  }

  /** Appends entries, replacing the log from the first new index on; entries at or below the last compacted index are ignored. */
  append(entries: readonly Entry[], options?: RaftStorageWriteOptions): Promise<void> {
    return this.save({ entries }, options);
  }

  setHardState(hardState: Partial<HardState>, options?: RaftStorageWriteOptions): Promise<void> {
    return this.save({ hardState }, options);
  }

  setConfState(confState: ConfStateInit, options?: RaftStorageWriteOptions): Promise<void> {
    return this.save({ confState }, options);
  }

  /**
   * Replaces the log with a snapshot's: drops every entry, moves the dummy to
   * the snapshot's index and term, stores the metadata and its conf state.
   * SNAPSHOT_OUT_OF_DATE unless newer than the stored snapshot (a first
   * snapshot at index 0 carrying only a conf state is a bootstrap, accepted).
   */
  applySnapshot(metadata: SnapshotMetadataInit, options?: RaftStorageWriteOptions): Promise<void> {
    return this.save({ snapshot: metadata }, options);
  }

  /**
   * Records a snapshot of the state machine at applied index `index` (the
   * caller keeps the data); `confState` defaults to the previous snapshot's.
   * Does not compact the log.
   */
  createSnapshot(index: number, confState?: ConfStateInit, options?: RaftStorageWriteOptions): Promise<SnapshotMetadata> {
    return this.#exclusive(async () => {
      index = requireInteger(index, 'index');
      const previous = this.snapshot();
      if (index <= previous.index)
        throw new SnapshotOutOfDateError(`createSnapshot(${index}): the snapshot is already at ${previous.index}`);
      const last = this.lastIndex();
      if (index > last) throw new UnavailableError(`createSnapshot(${index}): the last entry is ${last}`);
      const metadata = SnapshotMetadata.create({ index, term: await this.term(index), confState: confState ?? previous.confState });
      const batch = new LogBatch();
      batch.put(this.region, RAFT_STORAGE_KEYS.snapshot, SnapshotMetadata.encode(metadata));
      await this.#write(batch, syncOption(options?.sync, this.#sync), 'keep');
      return metadata;
    });
  }

  /**
   * Drops entries up to and including `index`, keeping its term as the
   * dummy's. COMPACTED when `index` is already compacted, UNAVAILABLE past
   * the last entry.
   */
  compact(index: number, options?: RaftStorageWriteOptions): Promise<void> {
    return this.#exclusive(async () => {
      index = requireInteger(index, 'index');
      const dummy = this.#dummy();
      if (index <= dummy.index) throw new CompactedError(`compact(${index}): compacted through ${dummy.index}`);
      const last = this.lastIndex();
      if (index > last) throw new UnavailableError(`compact(${index}): the last entry is ${last}`);
      const term = await this.term(index);
      const batch = new LogBatch();
      batch.compactTo(this.region, index + 1);
      batch.put(this.region, RAFT_STORAGE_KEYS.truncated, Entry.encode({ index, term, data: EMPTY }));
      // Entries above `index` stay as they were, and so does the hint.
      await this.#write(batch, syncOption(options?.sync, this.#sync), 'keep');
    });
  }

  /**
   * Persists one Ready atomically (one LogBatch): the snapshot, then the
   * entries, then the conf state and hard state. Bad input is refused before
   * anything is written.
   */
  save(update: RaftUpdate, options?: RaftStorageWriteOptions): Promise<void> {
    return this.#exclusive(async () => {
      if (typeof update !== 'object' || update === null) throw new InvalidArgumentError('save needs an object');
      const sync = syncOption(options?.sync, this.#sync);
      const batch = new LogBatch();
      const draft: Draft = { dummy: this.#dummy(), lastIndex: this.lastIndex(), snapshot: this.snapshot(), lastAppended: undefined };
      if (update.snapshot !== undefined) this.#stageSnapshot(batch, draft, update.snapshot);
      if (update.entries !== undefined) this.#stageEntries(batch, draft, update.entries);
      if (update.confState !== undefined) batch.put(this.region, RAFT_STORAGE_KEYS.confState, ConfState.encode(update.confState));
      if (update.hardState !== undefined) batch.put(this.region, RAFT_STORAGE_KEYS.hardState, HardState.encode(update.hardState));
      if (batch.isEmpty()) return;
      // New entries give the new last term; a snapshot alone drops every entry.
      await this.#write(batch, sync, draft.lastAppended ?? (update.snapshot !== undefined ? undefined : 'keep'));
    });
  }

  #stageSnapshot(batch: LogBatch, draft: Draft, init: SnapshotMetadataInit): void {
    const metadata = SnapshotMetadata.create(init);
    const current = draft.snapshot.index;
    // etcd: a bootstrap snapshot (index 0, only a conf state) is accepted on an empty storage.
    if (current !== 0 && current >= metadata.index) {
      throw new SnapshotOutOfDateError(`applySnapshot(${metadata.index}): the snapshot is already at ${current}`);
    }
    batch.compactTo(this.region, Math.max(draft.lastIndex, metadata.index) + 1);
    batch.put(this.region, RAFT_STORAGE_KEYS.truncated, Entry.encode({ index: metadata.index, term: metadata.term, data: EMPTY }));
    batch.put(this.region, RAFT_STORAGE_KEYS.snapshot, SnapshotMetadata.encode(metadata));
    batch.put(this.region, RAFT_STORAGE_KEYS.confState, ConfState.encode(metadata.confState));
    draft.dummy = { index: metadata.index, term: metadata.term };
    draft.lastIndex = metadata.index;
    draft.snapshot = metadata;
  }

  #stageEntries(batch: LogBatch, draft: Draft, entries: readonly Entry[]): void {
    if (!Array.isArray(entries)) throw new InvalidArgumentError('entries must be an array');
    if (entries.length === 0) return;
    const head: unknown = entries[0];
    if (typeof head !== 'object' || head === null) throw new InvalidArgumentError('entries[0] must be an entry');
    const firstGiven = toSafeInteger((head as Entry).index, 'entries[0].index');
    const first = draft.dummy.index + 1;
    if (firstGiven + entries.length - 1 < first) return;
    const kept = firstGiven < first ? entries.slice(first - firstGiven) : entries;
    const start = Math.max(firstGiven, first);
    if (start > draft.lastIndex + 1) {
      throw new InvalidArgumentError(`append: entries from ${start} leave a gap after the last entry ${draft.lastIndex}`);
    }
    batch.addEntries(this.region, kept);
    draft.lastIndex = start + kept.length - 1;
    draft.lastAppended = { index: draft.lastIndex, term: toSafeInteger(kept[kept.length - 1]!.term, 'entry.term') };
  }

  /** Writes a batch; `hint` is the term hint once it is applied ('keep': unchanged). */
  async #write(batch: LogBatch, sync: boolean, hint: Dummy | undefined | 'keep'): Promise<void> {
    const previous = this.#termHint;
    this.#termHint = undefined;
    this.#writesInFlight++;
    this.#generation++;
    try {
      await this.engine.write(batch, { sync });
      this.#termHint = hint === 'keep' ? previous : hint;
    } finally {
      this.#writesInFlight--;
      this.#generation++;
    }
  }

  #dummy(): Dummy {
    const entry = this.#read(RAFT_STORAGE_KEYS.truncated, Entry);
    return entry === undefined ? { index: 0, term: 0 } : { index: entry.index, term: entry.term };
  }

  #read<T>(key: string, codec: { decode(bytes: Uint8Array): T }): T | undefined {
    const value = this.engine.get(this.region, key);
    return value === undefined ? undefined : codec.decode(value);
  }

  #exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(run);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

const EMPTY = new Uint8Array(0);

function syncOption(value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`sync must be a boolean, got ${typeof value}`);
  return value;
}
