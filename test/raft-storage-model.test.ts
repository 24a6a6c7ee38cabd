/**
 * RaftStorage against a plain in-memory model of etcd-raft's MemoryStorage
 * (an array whose first element is the dummy entry, storage.go's logic):
 * random appends, compactions, snapshots and restarts; every call's result or
 * error code and the whole state afterwards must agree. fast-check prints the
 * seed and the shrunk operation list on failure; SEED=n replays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { Entry, type ConfState } from '../src/raft/messages.js';
import { RaftStorage } from '../src/raft/storage.js';
import { testSeed } from './support/seed.js';

interface ModelEntry {
  index: number;
  term: number;
  data: Uint8Array;
}

type Outcome = { value: unknown } | { code: string };

const emptyConf = (): ConfState => ({ voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });

/** etcd-raft's MemoryStorage, with its panics as the error codes RaftStorage uses. */
class Model {
  ents: ModelEntry[] = [{ index: 0, term: 0, data: new Uint8Array(0) }];
  snapshot = { index: 0, term: 0, confState: emptyConf() };
  confState = emptyConf();

  get offset(): number {
    return this.ents[0]!.index;
  }
  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }
  term(i: number): Outcome {
    if (i < this.offset) return { code: 'COMPACTED' };
    if (i - this.offset >= this.ents.length) return { code: 'UNAVAILABLE' };
    return { value: this.ents[i - this.offset]!.term };
  }
  entries(lo: number, hi: number, maxSize: number | undefined): Outcome {
    if (lo <= this.offset) return { code: 'COMPACTED' };
    if (hi > this.lastIndex() + 1) return { code: 'UNAVAILABLE' };
    if (this.ents.length === 1) return { code: 'UNAVAILABLE' };
    if (lo > hi) return { code: 'INVALID_ARGUMENT' };
    const range = this.ents.slice(lo - this.offset, hi - this.offset);
    let limit = Math.min(1, range.length);
    let size = range.length === 0 ? 0 : Entry.encode(range[0]!).length;
    for (; limit < range.length; limit++) {
      size += Entry.encode(range[limit]!).length;
      if (maxSize !== undefined && size > maxSize) break;
    }
    return { value: range.slice(0, limit).map(view) };
  }
  append(entries: ModelEntry[]): Outcome {
    if (entries.length === 0) return { value: undefined };
    const first = this.offset + 1;
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return { value: undefined };
    if (first > entries[0]!.index) entries = entries.slice(first - entries[0]!.index);
    const at = entries[0]!.index - this.offset;
    if (at > this.ents.length) return { code: 'INVALID_ARGUMENT' };
    this.ents = [...this.ents.slice(0, at), ...entries];
    return { value: undefined };
  }
  compact(i: number): Outcome {
    if (i <= this.offset) return { code: 'COMPACTED' };
    if (i > this.lastIndex()) return { code: 'UNAVAILABLE' };
    const kept = this.ents[i - this.offset]!;
    this.ents = [{ index: kept.index, term: kept.term, data: new Uint8Array(0) }, ...this.ents.slice(i - this.offset + 1)];
    return { value: undefined };
  }
  applySnapshot(index: number, term: number, confState: ConfState): Outcome {
    if (this.snapshot.index !== 0 && this.snapshot.index >= index) return { code: 'SNAPSHOT_OUT_OF_DATE' };
    this.snapshot = { index, term, confState };
    this.confState = confState;
    this.ents = [{ index, term, data: new Uint8Array(0) }];
    return { value: undefined };
  }
  createSnapshot(i: number, confState: ConfState): Outcome {
    if (i <= this.snapshot.index) return { code: 'SNAPSHOT_OUT_OF_DATE' };
    if (i > this.lastIndex()) return { code: 'UNAVAILABLE' };
    const term = this.term(i);
    if ('code' in term) return term;
    this.snapshot = { index: i, term: term.value as number, confState };
    return { value: this.snapshot };
  }
}

const view = (e: { index: number; term: number; data: Uint8Array }): [number, number, number] => [e.index, e.term, e.data.length];

async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await promise };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string') throw error;
    return { code };
  }
}

// Indexes are offsets from the model's state when the operation runs (its
// dummy, last index or snapshot), so most calls land near the edges that matter.
const near = fc.integer({ min: -2, max: 6 });
const term = fc.integer({ min: 1, max: 4 });
const conf = fc.record({ voters: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }) }, { noNullPrototype: true });
const op = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      back: fc.integer({ min: -1, max: 4 }),
      terms: fc.array(term, { maxLength: 5 }),
      size: fc.nat(40),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), at: near }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('applySnapshot' as const), ahead: near, term, conf }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('createSnapshot' as const), at: near, conf }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('term' as const), at: near }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('entries' as const),
      at: near,
      span: fc.integer({ min: -1, max: 6 }),
      maxSize: fc.option(fc.oneof(fc.constant(0), fc.nat(120)), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function entriesOf(first: number, terms: number[], size: number): ModelEntry[] {
  return terms.map((t, i) => ({ index: first + i, term: t, data: new Uint8Array(size + i).fill(first + i) }));
}

async function step(storage: RaftStorage, model: Model, o: Exclude<Op, { kind: 'restart' }>): Promise<[Outcome, Outcome]> {
  const at = (d: number): number => Math.max(0, model.offset + d);
  switch (o.kind) {
    case 'append': {
      // back -1 leaves a gap; 0 appends; more overwrites the tail (or reaches below the dummy).
      const entries = entriesOf(Math.max(0, model.lastIndex() + 1 - o.back), o.terms, o.size);
      return [await outcome(storage.append(entries)), model.append(entries)];
    }
    case 'compact':
      return [await outcome(storage.compact(at(o.at))), model.compact(at(o.at))];
    case 'applySnapshot': {
      const index = Math.max(0, model.snapshot.index + o.ahead);
      const confState = { ...emptyConf(), voters: o.conf.voters };
      return [await outcome(storage.applySnapshot({ index, term: o.term, confState })), model.applySnapshot(index, o.term, confState)];
    }
    case 'createSnapshot': {
      const confState = { ...emptyConf(), voters: o.conf.voters };
      return [await outcome(storage.createSnapshot(at(o.at), confState)), model.createSnapshot(at(o.at), confState)];
    }
    case 'term':
      return [await outcome(storage.term(at(o.at))), model.term(at(o.at))];
    case 'entries': {
      const lo = at(o.at);
      const hi = Math.max(0, lo + o.span);
      const got = await outcome(storage.entries(lo, hi, o.maxSize));
      return ['value' in got ? { value: (got.value as ModelEntry[]).map(view) } : got, model.entries(lo, hi, o.maxSize)];
    }
  }
}

async function compareState(storage: RaftStorage, model: Model, context: string): Promise<void> {
  assert.equal(storage.firstIndex(), model.offset + 1, `${context}: firstIndex`);
  assert.equal(storage.lastIndex(), model.lastIndex(), `${context}: lastIndex`);
  const engineFirst = storage.engine.firstIndex(storage.region);
  assert.ok(engineFirst === undefined || engineFirst === model.offset + 1, `${context}: the engine holds entries from ${engineFirst}`);
  assert.equal(await storage.term(model.offset), model.ents[0]!.term, `${context}: dummy term`);
  const all = model.ents.length === 1 ? [] : (await storage.entries(model.offset + 1, model.lastIndex() + 1)).map(view);
  assert.deepEqual(all, model.ents.slice(1).map(view), `${context}: entries`);
  assert.deepEqual(storage.snapshot(), model.snapshot, `${context}: snapshot`);
  assert.deepEqual(storage.initialState().confState, model.confState, `${context}: conf state`);
}

describe('RaftStorage against a model of etcd-raft MemoryStorage', () => {
  it('random operations and restarts agree call by call and state by state', async () => {
    const seed = testSeed(20261616);
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 50 }), async (ops) => {
        const fs = new MemFs();
        const options = { fs, seed: 1, targetFileSize: 4096, preallocateBytes: 0, compressionThreshold: 64 };
        let engine = new Engine(options);
        await engine.open();
        let storage = new RaftStorage(engine, 7, { sync: false });
        const model = new Model();
        try {
          for (const [i, o] of ops.entries()) {
            const context = `step ${i} (${JSON.stringify(o)})`;
            if (o.kind === 'restart') {
              await engine.close();
              engine = new Engine(options);
              await engine.open();
              storage = new RaftStorage(engine, 7, { sync: false });
            } else {
              const [got, want] = await step(storage, model, o);
              assert.deepEqual(got, want, context);
            }
            await compareState(storage, model, context);
          }
        } finally {
          await engine.close();
        }
      }),
      { seed, numRuns: 120, verbose: 1 },
    );
  });
});
