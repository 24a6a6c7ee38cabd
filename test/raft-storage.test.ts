/**
 * RaftStorage against the behaviours etcd-raft's MemoryStorage tests check
 * (storage_test.go: TestStorageTerm, Entries, LastIndex, FirstIndex, Compact,
 * CreateSnapshot, Append, ApplySnapshot), ported as table cases, on every
 * backend. Each table runs twice: acting on the storage that set the log up,
 * and acting after a close and reopen; either way the result is checked again
 * after another reopen, since the state must survive a restart.
 *
 * etcd panics where these cases expect UNAVAILABLE or INVALID_ARGUMENT (an
 * index past the last entry, a gap): a typed error is what a caller can
 * handle, and the state is left unchanged.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import type { FileHandle, FileSystem } from '../src/filesystem.js';
import { Entry, type ConfStateInit } from '../src/raft/messages.js';
import { RAFT_STORAGE_KEYS, RaftStorage } from '../src/raft/storage.js';
import { ENGINE_TARGETS, memTarget, type EngineTarget } from './support/engines.js';
import { testSeed } from './support/seed.js';

const EMPTY = new Uint8Array(0);

/** etcd's `index(first).terms(...)`: entries with consecutive indexes and the given terms. */
function index(first: number) {
  return {
    terms: (...terms: number[]): Entry[] => terms.map((term, i) => ({ index: first + i, term, data: EMPTY })),
  };
}

/** The log as etcd's MemoryStorage holds it: the dummy entry, then every entry, as [index, term]. */
async function logOf(storage: RaftStorage): Promise<Array<[number, number]>> {
  const dummy = storage.firstIndex() - 1;
  // Where the state lives: the engine holds exactly the entries after the dummy.
  const engineFirst = storage.engine.firstIndex(storage.region);
  assert.ok(engineFirst === undefined || engineFirst === dummy + 1, `engine holds entries from ${engineFirst}, dummy at ${dummy}`);
  assert.equal(storage.engine.lastIndex(storage.region) ?? dummy, storage.lastIndex());
  const out: Array<[number, number]> = [[dummy, await storage.term(dummy)]];
  const last = storage.lastIndex();
  if (last > dummy) for (const e of await storage.entries(dummy + 1, last + 1)) out.push([e.index, e.term]);
  return out;
}

const pairs = (entries: Entry[]): Array<[number, number]> => entries.map((e) => [e.index, e.term]);

/** MemoryStorage{ents: log}: a snapshot at the first (dummy) entry, then the rest appended. */
async function arrangeLog(storage: RaftStorage, log: Entry[]): Promise<void> {
  const [dummy, ...rest] = log;
  await storage.applySnapshot({ index: dummy!.index, term: dummy!.term });
  if (rest.length > 0) await storage.append(rest);
}

interface Case {
  name: string;
  arrange?(storage: RaftStorage): Promise<void>;
  act(storage: RaftStorage): Promise<unknown>;
  /** The error code `act` fails with, or undefined when it succeeds. */
  error?: string;
  /** What `act` resolves to. */
  result?: unknown;
  /** The log (dummy first) after `act`, checked again after a reopen. */
  log?: Array<[number, number]>;
  /** Further checks after `act`, run again after a reopen. */
  verify?(storage: RaftStorage): Promise<void> | void;
}

class Harness {
  #engine: Engine | undefined;
  #storages = new Map<number, RaftStorage>();
  constructor(
    readonly fs: FileSystem,
    readonly reopenFs: () => FileSystem,
  ) {}

  async open(fs: FileSystem): Promise<void> {
    this.#engine = new Engine({ fs, seed: 16, preallocateBytes: 0 });
    await this.#engine.open();
    this.#storages.clear();
  }

  get engine(): Engine {
    return this.#engine!;
  }

  storage(region: number): RaftStorage {
    let storage = this.#storages.get(region);
    if (storage === undefined) {
      storage = new RaftStorage(this.#engine!, region);
      this.#storages.set(region, storage);
    }
    return storage;
  }

  async reopen(): Promise<void> {
    await this.#engine!.close();
    await this.open(this.reopenFs());
  }

  async close(): Promise<void> {
    await this.#engine?.close();
  }
}

async function withHarness(target: EngineTarget, run: (h: Harness) => Promise<void>): Promise<void> {
  const { fs, reopen, cleanup } = await target.make();
  const harness = new Harness(fs, reopen);
  try {
    await harness.open(fs);
    await run(harness);
  } finally {
    await harness.close();
    await cleanup();
  }
}

async function settle(promise: Promise<unknown>): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Runs a table, one region per case, all in one engine. */
async function runTable(target: EngineTarget, cases: Case[], reopenBeforeAct: boolean): Promise<void> {
  await withHarness(target, async (h) => {
    for (const [i, c] of cases.entries()) await c.arrange?.(h.storage(i + 1));
    if (reopenBeforeAct) await h.reopen();
    for (const [i, c] of cases.entries()) {
      const outcome = await settle(c.act(h.storage(i + 1)));
      if (c.error === undefined) {
        assert.ok(outcome.ok, `${c.name}: ${outcome.ok ? '' : String(outcome.error)}`);
        if ('result' in c) assert.deepEqual(outcome.value, c.result, c.name);
      } else {
        assert.ok(!outcome.ok, `${c.name}: expected ${c.error}`);
        assert.equal((outcome.error as { code?: string }).code, c.error, `${c.name}: ${String(outcome.error)}`);
      }
    }
    for (let round = 0; round < 2; round++) {
      for (const [i, c] of cases.entries()) {
        const storage = h.storage(i + 1);
        const when = round === 0 ? 'after act' : 'after reopen';
        if (c.log !== undefined) assert.deepEqual(await logOf(storage), c.log, `${c.name} (${when})`);
        await c.verify?.(storage);
      }
      if (round === 0) await h.reopen();
    }
  });
}

const ents345 = index(3).terms(3, 4, 5);
const ents3456 = index(3).terms(3, 4, 5, 6);
const size = (e: Entry): number => Entry.encode(e).length;
const cs: ConfStateInit = { voters: [1, 2, 3] };
const fullCs = { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

const TABLES: Record<string, Case[]> = {
  TestStorageTerm: [
    { i: 2, error: 'COMPACTED' },
    { i: 3, term: 3 },
    { i: 4, term: 4 },
    { i: 5, term: 5 },
    { i: 6, error: 'UNAVAILABLE' },
  ].map((t) => ({
    name: `term(${t.i})`,
    arrange: (s) => arrangeLog(s, ents345),
    act: (s) => s.term(t.i),
    error: t.error,
    ...(t.term === undefined ? {} : { result: t.term }),
  })),

  TestStorageEntries: [
    { lo: 2, hi: 6, max: undefined, error: 'COMPACTED' },
    { lo: 3, hi: 4, max: undefined, error: 'COMPACTED' },
    { lo: 4, hi: 5, max: undefined, want: index(4).terms(4) },
    { lo: 4, hi: 6, max: undefined, want: index(4).terms(4, 5) },
    { lo: 4, hi: 7, max: undefined, want: index(4).terms(4, 5, 6) },
    { lo: 4, hi: 7, max: Number.POSITIVE_INFINITY, want: index(4).terms(4, 5, 6) },
    // even if maxsize is zero, the first entry is returned
    { lo: 4, hi: 7, max: 0, want: index(4).terms(4) },
    { lo: 4, hi: 7, max: size(ents3456[1]!) + size(ents3456[2]!), want: index(4).terms(4, 5) },
    { lo: 4, hi: 7, max: size(ents3456[1]!) + size(ents3456[2]!) + Math.floor(size(ents3456[3]!) / 2), want: index(4).terms(4, 5) },
    { lo: 4, hi: 7, max: size(ents3456[1]!) + size(ents3456[2]!) + size(ents3456[3]!) - 1, want: index(4).terms(4, 5) },
    { lo: 4, hi: 7, max: size(ents3456[1]!) + size(ents3456[2]!) + size(ents3456[3]!), want: index(4).terms(4, 5, 6) },
    // etcd panics on these; here they are errors
    { lo: 4, hi: 8, max: undefined, error: 'UNAVAILABLE' },
    { lo: 5, hi: 4, max: undefined, error: 'INVALID_ARGUMENT' },
    { lo: 5, hi: 5, max: undefined, want: [] },
  ].map((t) => ({
    name: `entries(${t.lo}, ${t.hi}, ${t.max})`,
    arrange: (s) => arrangeLog(s, ents3456),
    act: async (s) => pairs(await s.entries(t.lo, t.hi, t.max)),
    error: t.error,
    ...(t.want === undefined ? {} : { result: pairs(t.want) }),
    log: pairs(ents3456),
  })),

  TestStorageLastIndex: [
    {
      name: 'lastIndex, then after an append',
      arrange: (s) => arrangeLog(s, ents345),
      act: async (s) => {
        assert.equal(s.lastIndex(), 5);
        await s.append(index(6).terms(5));
        return s.lastIndex();
      },
      result: 6,
      verify: (s) => assert.equal(s.lastIndex(), 6),
    },
  ],

  TestStorageFirstIndex: [
    {
      name: 'firstIndex, then after a compact',
      arrange: (s) => arrangeLog(s, ents345),
      act: async (s) => {
        assert.equal(s.firstIndex(), 4);
        await s.compact(4);
        return s.firstIndex();
      },
      result: 5,
      verify: (s) => assert.equal(s.firstIndex(), 5),
    },
  ],

  TestStorageCompact: [
    {
      i: 2,
      error: 'COMPACTED',
      log: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
    {
      i: 3,
      error: 'COMPACTED',
      log: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
    {
      i: 4,
      log: [
        [4, 4],
        [5, 5],
      ],
    },
    { i: 5, log: [[5, 5]] },
    // etcd panics: past the last entry
    {
      i: 6,
      error: 'UNAVAILABLE',
      log: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
  ].map((t) => ({
    name: `compact(${t.i})`,
    arrange: (s) => arrangeLog(s, ents345),
    act: (s) => s.compact(t.i),
    error: t.error,
    log: t.log as Array<[number, number]>,
  })),

  TestStorageCreateSnapshot: [
    { i: 4, want: { index: 4, term: 4, confState: fullCs } },
    { i: 5, want: { index: 5, term: 5, confState: fullCs } },
    { i: 3, error: 'SNAPSHOT_OUT_OF_DATE' },
    { i: 6, error: 'UNAVAILABLE' },
  ].map((t) => ({
    name: `createSnapshot(${t.i})`,
    arrange: (s) => arrangeLog(s, ents345),
    act: (s) => s.createSnapshot(t.i, cs),
    error: t.error,
    ...(t.want === undefined ? {} : { result: t.want }),
    // Creating a snapshot does not compact.
    log: pairs(ents345),
    verify: (s) => assert.deepEqual(s.snapshot(), t.want ?? { index: 3, term: 3, confState: { ...fullCs, voters: [] } }),
  })),

  TestStorageAppend: [
    { entries: index(1).terms(1, 2), want: index(3).terms(3, 4, 5) },
    { entries: index(3).terms(3, 4, 5), want: index(3).terms(3, 4, 5) },
    { entries: index(3).terms(3, 6, 6), want: index(3).terms(3, 6, 6) },
    { entries: index(3).terms(3, 4, 5, 5), want: index(3).terms(3, 4, 5, 5) },
    // Truncate incoming entries, truncate the existing entries and append.
    { entries: index(2).terms(3, 3, 5), want: index(3).terms(3, 5) },
    // Truncate the existing entries and append.
    { entries: index(4).terms(5), want: index(3).terms(3, 5) },
    // Direct append.
    { entries: index(6).terms(5), want: index(3).terms(3, 4, 5, 5) },
    // etcd panics on a gap ("missing log entry"): refused, nothing written.
    { entries: index(7).terms(5), error: 'INVALID_ARGUMENT', want: index(3).terms(3, 4, 5) },
    { entries: [], want: index(3).terms(3, 4, 5) },
  ].map((t) => ({
    name: `append(${JSON.stringify(pairs(t.entries))})`,
    arrange: (s) => arrangeLog(s, ents345),
    act: (s) => s.append(t.entries),
    error: t.error,
    log: pairs(t.want),
  })),

  TestStorageApplySnapshot: [
    {
      name: 'normal case',
      act: (s: RaftStorage) => s.applySnapshot({ index: 4, term: 4, confState: cs }),
      log: [[4, 4]] as Array<[number, number]>,
      verify: (s: RaftStorage) => {
        assert.deepEqual(s.snapshot(), { index: 4, term: 4, confState: fullCs });
        assert.deepEqual(s.initialState().confState, fullCs);
        assert.equal(s.firstIndex(), 5);
        assert.equal(s.lastIndex(), 4);
      },
    },
    {
      name: 'snapshot out of date',
      arrange: (s: RaftStorage) => s.applySnapshot({ index: 4, term: 4, confState: cs }),
      act: (s: RaftStorage) => s.applySnapshot({ index: 3, term: 3, confState: cs }),
      error: 'SNAPSHOT_OUT_OF_DATE',
      log: [[4, 4]] as Array<[number, number]>,
    },
    {
      name: 'bootstrap with confState',
      act: (s: RaftStorage) => s.applySnapshot({ confState: cs }),
      log: [[0, 0]] as Array<[number, number]>,
      verify: (s: RaftStorage) => assert.deepEqual(s.initialState().confState, fullCs),
    },
    {
      name: 'drops every entry, past the snapshot index too',
      arrange: (s: RaftStorage) => arrangeLog(s, index(3).terms(3, 4, 5, 6, 7)),
      act: (s: RaftStorage) => s.applySnapshot({ index: 5, term: 6 }),
      log: [[5, 6]] as Array<[number, number]>,
      verify: async (s: RaftStorage) => {
        await assert.rejects(s.entries(6, 7), { code: 'UNAVAILABLE' });
        await assert.rejects(s.term(4), { code: 'COMPACTED' });
      },
    },
  ],
};

for (const target of ENGINE_TARGETS) {
  describe(`RaftStorage (etcd-raft MemoryStorage cases) on ${target.name}`, () => {
    for (const [name, cases] of Object.entries(TABLES)) {
      for (const reopenBeforeAct of [false, true]) {
        it(`${name}${reopenBeforeAct ? ', acting after a reopen' : ''}`, () => runTable(target, cases, reopenBeforeAct));
      }
    }
  });
}

describe('RaftStorage', () => {
  it('starts empty: the dummy entry at 0, zero hard state, empty conf state, no entries', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      assert.equal(s.firstIndex(), 1);
      assert.equal(s.lastIndex(), 0);
      assert.equal(await s.term(0), 0);
      await assert.rejects(s.term(1), { code: 'UNAVAILABLE' });
      await assert.rejects(s.entries(1, 1), { code: 'UNAVAILABLE' });
      assert.deepEqual(s.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, confState: { ...fullCs, voters: [] } });
      assert.deepEqual(s.snapshot(), { index: 0, term: 0, confState: { ...fullCs, voters: [] } });
    });
  });

  it('save writes a whole Ready as one batch: snapshot, entries, conf state and hard state survive a reopen together', async () => {
    await withHarness(memTarget, async (h) => {
      await h.storage(1).append(index(1).terms(1, 1, 2));
      await h.storage(1).save({
        snapshot: { index: 10, term: 3, confState: { voters: [1] } },
        entries: index(11).terms(3, 4),
        confState: { voters: [1, 2], learners: [3] },
        hardState: { term: 4, vote: 2, commit: 11 },
      });
      const before = h.engine.stats().writes;
      await h.reopen();
      const s = h.storage(1);
      assert.deepEqual(await logOf(s), [
        [10, 3],
        [11, 3],
        [12, 4],
      ]);
      assert.deepEqual(s.initialState(), {
        hardState: { term: 4, vote: 2, commit: 11 },
        confState: { voters: [1, 2], learners: [3], votersOutgoing: [], learnersNext: [], autoLeave: false },
      });
      assert.equal(s.snapshot().index, 10);
      assert.equal(before, 2, 'two writes: the append and the save');
    });
  });

  it('a refused save writes nothing', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      await s.append(index(1).terms(1, 1));
      const writes = h.engine.stats().writes;
      await assert.rejects(s.save({ hardState: { term: 2 }, entries: index(5).terms(2) }), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(s.save({ hardState: { term: 2 ** 53 }, entries: index(3).terms(2) }), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(
        s.append([
          { index: 3, term: 1, data: EMPTY },
          { index: 5, term: 1, data: EMPTY },
        ]),
        { code: 'INVALID_ARGUMENT' },
      );
      assert.equal(h.engine.stats().writes, writes);
      assert.deepEqual(await logOf(s), [
        [0, 0],
        [1, 1],
        [2, 1],
      ]);
      assert.deepEqual(s.initialState().hardState, { term: 0, vote: 0, commit: 0 });
    });
  });

  it('keeps its state under the documented reserved keys, and refuses a region written without it', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      await s.save({ snapshot: { index: 2, term: 1 }, hardState: { term: 1 } });
      for (const key of Object.values(RAFT_STORAGE_KEYS)) assert.ok(h.engine.get(1, key) !== undefined, key);
      const batch = new LogBatch();
      batch.addEntries(2, index(5).terms(1));
      await h.engine.write(batch);
      assert.throws(() => new RaftStorage(h.engine, 2), { code: 'INVALID_ARGUMENT', message: /not written through RaftStorage/ });
      assert.throws(() => new RaftStorage(h.engine, 3, { sync: 1 as unknown as boolean }), { code: 'INVALID_ARGUMENT' });
      // Entries below the dummy, written around the adapter, contradict its state.
      const around = new LogBatch();
      around.addEntries(1, index(1).terms(1, 1));
      await h.engine.write(around);
      assert.throws(() => new RaftStorage(h.engine, 1), { code: 'CORRUPTION', message: /compacted it through 2/ });
    });
  });

  it('refuses bad arguments with INVALID_ARGUMENT and writes nothing', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      await s.append(index(1).terms(1, 1));
      const writes = h.engine.stats().writes;
      const bad = (value: unknown) => value as number;
      for (const value of [-1, 1.5, Number.NaN, 2 ** 53, '1', null]) {
        await assert.rejects(s.term(bad(value)), { code: 'INVALID_ARGUMENT' }, `term(${String(value)})`);
        await assert.rejects(s.entries(bad(value), 2), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.entries(1, bad(value)), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.compact(bad(value)), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.createSnapshot(bad(value)), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.applySnapshot({ index: bad(value) }), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.setHardState({ commit: bad(value) }), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(s.setConfState({ voters: [bad(value)] }), { code: 'INVALID_ARGUMENT' });
      }
      await assert.rejects(s.entries(1, 2, -1), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(s.append('x' as unknown as Entry[]), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(s.append([null as unknown as Entry]), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(s.save(null as unknown as object), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(s.save({}, { sync: 'yes' as unknown as boolean }), { code: 'INVALID_ARGUMENT' });
      assert.equal(h.engine.stats().writes, writes);
      assert.deepEqual(await logOf(s), [
        [0, 0],
        [1, 1],
        [2, 1],
      ]);
    });
  });

  it('term of the last entry stays right while appends overwrite it and reads are in flight', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      await s.append(index(1).terms(1, 1, 1, 1, 1));
      for (let round = 2; round < 12; round++) {
        const before = s.term(5);
        const write = s.append(index(5).terms(round));
        const during = s.term(5);
        await write;
        assert.ok([round - 1, round].includes(await before), `round ${round}: read before the write`);
        assert.ok([round - 1, round].includes(await during), `round ${round}: read during the write`);
        assert.equal(await s.term(5), round, `round ${round}`);
        assert.equal(await s.term(5), round, `round ${round}, again`);
      }
      await s.applySnapshot({ index: 5, term: 20 });
      assert.equal(await s.term(5), 20);
      await s.append(index(6).terms(21, 22));
      await s.compact(6);
      assert.equal(await s.term(6), 21);
      assert.equal(await s.term(7), 22);
      await h.reopen();
      assert.equal(await h.storage(1).term(7), 22);
    });
  });

  it('a term read that began before an overwriting append does not leave its old term behind', async () => {
    // MemFs whose reads wait while `gate` is set: the read of entry 5 is held
    // until an append has replaced entry 5.
    let gate: Promise<void> | undefined;
    const delegate = <T extends object>(target: T, wrap: (name: PropertyKey, method: (...args: never[]) => unknown) => unknown): T =>
      new Proxy(target, {
        get(t, name) {
          const value: unknown = Reflect.get(t, name);
          return typeof value === 'function' ? wrap(name, value.bind(t) as (...args: never[]) => unknown) : value;
        },
      });
    const gated = (handle: FileHandle): FileHandle =>
      delegate(handle, (name, method) =>
        name === 'read'
          ? async (...args: Parameters<FileHandle['read']>) => {
              const held = gate;
              if (held !== undefined) await held;
              return handle.read(...args);
            }
          : method,
      );
    const fs = delegate<FileSystem>(new MemFs(), (name, method) =>
      name === 'open' || name === 'reuse' ? async (...args: never[]) => gated((await method(...args)) as FileHandle) : method,
    );
    const engine = new Engine({ fs, preallocateBytes: 0 });
    await engine.open();
    try {
      await new RaftStorage(engine, 1).append(index(1).terms(1, 1, 1, 1, 1));
      // A fresh storage knows no term yet: term(5) reads the entry.
      const s = new RaftStorage(engine, 1);
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      const stale = s.term(5);
      gate = undefined;
      await s.append(index(5).terms(2));
      release();
      assert.equal(await stale, 1, 'the read located entry 5 before the append');
      assert.equal(await s.term(5), 2);
    } finally {
      await engine.close();
    }
  });

  it('mutations run in call order even when not awaited one by one', async () => {
    await withHarness(memTarget, async (h) => {
      const s = h.storage(1);
      await Promise.all([s.append(index(1).terms(1, 1, 1)), s.compact(2), s.append(index(4).terms(2)), s.setHardState({ commit: 4 })]);
      assert.deepEqual(await logOf(s), [
        [2, 1],
        [3, 1],
        [4, 2],
      ]);
      assert.equal(s.initialState().hardState.commit, 4);
    });
  });
});

/** A workload where every step is one RaftStorage call, each a single synced record. */
const CRASH_WORKLOAD: Array<(s: RaftStorage) => Promise<unknown>> = [
  (s) => s.append(index(1).terms(1, 1, 1, 1, 1)),
  (s) => s.setHardState({ term: 1, commit: 3 }),
  (s) => s.save({ entries: index(4).terms(2, 2, 2, 2), hardState: { term: 2, vote: 1, commit: 5 } }),
  (s) => s.compact(3),
  (s) => s.createSnapshot(5, { voters: [1, 2] }),
  (s) => s.applySnapshot({ index: 10, term: 3, confState: { voters: [1, 2, 3] } }),
  (s) => s.save({ entries: index(11).terms(3, 3), hardState: { term: 3, commit: 11 } }),
];

async function stateOf(storage: RaftStorage): Promise<string> {
  return JSON.stringify({ log: await logOf(storage), initial: storage.initialState(), snapshot: storage.snapshot() });
}

describe('RaftStorage across power loss', () => {
  it('a crash at any file-system operation leaves every acknowledged step, and each step whole or not at all', async () => {
    const seed = testSeed(1616);
    const options = { seed: 16, preallocateBytes: 0 };
    // The state after each prefix of the workload, and how many operations it takes.
    const reference = new FaultFs(new MemFs(), { seed });
    const states: string[] = [];
    {
      const engine = new Engine({ fs: reference, ...options });
      await engine.open();
      const storage = new RaftStorage(engine, 1);
      states.push(await stateOf(storage));
      for (const step of CRASH_WORKLOAD) {
        await step(storage);
        states.push(await stateOf(storage));
      }
      await engine.close();
    }
    const totalOps = reference.opIndex;
    for (let k = 0; k < totalOps; k++) {
      for (const policy of ['dropUnsynced', 'mixed'] as const) {
        const fault = new FaultFs(new MemFs(), { seed: seed + k });
        fault.freezeAt(k);
        let acked = 0;
        const engine = new Engine({ fs: fault, ...options });
        try {
          await engine.open();
          const storage = new RaftStorage(engine, 1);
          for (const step of CRASH_WORKLOAD) {
            await step(storage);
            acked++;
          }
          await engine.close();
        } catch {
          // The power cut: what was acknowledged before it must survive.
        }
        const restarted = new Engine({ fs: await fault.crash(policy), ...options });
        await restarted.open();
        try {
          const state = await stateOf(new RaftStorage(restarted, 1));
          const allowed = states.slice(acked, acked + 2);
          assert.ok(
            allowed.includes(state),
            `seed ${seed}, crash after op ${k} (${policy}), ${acked} steps acknowledged: ${state}\nallowed ${allowed.join('\n')}\n${fault.describe()}`,
          );
        } finally {
          await restarted.close();
        }
      }
    }
  });
});
