/**
 * Random writes, tail overwrites, compactions, cleans, key updates and
 * restarts against a plain in-memory model; every read is compared. fast-check
 * prints the seed and the shrunk command list on failure; SEED=n replays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { testSeed } from './support/seed.js';

interface ModelRegion {
  first: number;
  entries: { term: number; data: string }[];
  kv: Map<string, string>;
}

type Model = Map<number, ModelRegion>;

type Op =
  | { kind: 'append'; region: number; back: number; count: number; term: number; sync: boolean }
  | { kind: 'compact'; region: number; ahead: number }
  | { kind: 'clean'; region: number }
  | { kind: 'put'; region: number; key: string; value: string }
  | { kind: 'delete'; region: number; key: string }
  | { kind: 'restart' };

const region = fc.integer({ min: 1, max: 4 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      region,
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 6 }),
      term: fc.integer({ min: 1, max: 5 }),
      sync: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), region, ahead: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clean' as const), region }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      region,
      key: fc.constantFrom('a', 'b', 'hard_state'),
      value: fc.string({ maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), region, key: fc.constantFrom('a', 'b') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

const enc = new TextEncoder();
const dec = new TextDecoder();

function modelRegion(model: Model, id: number): ModelRegion {
  let r = model.get(id);
  if (r === undefined) {
    r = { first: 1, entries: [], kv: new Map() };
    model.set(id, r);
  }
  return r;
}

function lastOf(r: ModelRegion | undefined): number | undefined {
  return r === undefined || r.entries.length === 0 ? undefined : r.first + r.entries.length - 1;
}

async function applyOp(engine: Engine, model: Model, o: Exclude<Op, { kind: 'restart' }>): Promise<void> {
  const r = modelRegion(model, o.region);
  const batch = new LogBatch();
  switch (o.kind) {
    case 'append': {
      const last = lastOf(r);
      const start = last === undefined ? 10 : Math.max(r.first, last + 1 - o.back);
      const data = Array.from({ length: o.count }, (_, i) => `${o.region}/${start + i}/${o.term}`);
      batch.addEntries(
        o.region,
        data.map((d, i) => ({ index: start + i, term: o.term, data: enc.encode(d) })),
      );
      await engine.write(batch, { sync: o.sync });
      if (last === undefined) r.first = start;
      r.entries.length = start - r.first;
      for (const d of data) r.entries.push({ term: o.term, data: d });
      return;
    }
    case 'compact': {
      const to = r.first + o.ahead;
      await engine.compactTo(o.region, to);
      const drop = Math.min(o.ahead, r.entries.length);
      r.entries.splice(0, drop);
      r.first = r.entries.length === 0 ? 1 : r.first + drop;
      return;
    }
    case 'clean':
      await engine.clean(o.region);
      model.delete(o.region);
      return;
    case 'put':
      batch.put(o.region, o.key, enc.encode(o.value));
      await engine.write(batch);
      r.kv.set(o.key, o.value);
      return;
    case 'delete':
      batch.delete(o.region, o.key);
      await engine.write(batch);
      r.kv.delete(o.key);
      return;
  }
}

async function compare(engine: Engine, model: Model, context: string): Promise<void> {
  for (let id = 1; id <= 4; id++) {
    const r = model.get(id);
    const last = lastOf(r);
    assert.equal(engine.lastIndex(id), last, `${context}: lastIndex(${id})`);
    assert.equal(engine.firstIndex(id), last === undefined ? undefined : r!.first, `${context}: firstIndex(${id})`);
    if (last !== undefined) {
      const got = await engine.fetchEntriesTo(id, r!.first, last + 1);
      assert.deepEqual(
        got.map((e) => [e.index, e.term, dec.decode(e.data)]),
        r!.entries.map((e, i) => [r!.first + i, e.term, e.data]),
        `${context}: entries of ${id}`,
      );
    }
    for (const key of ['a', 'b', 'hard_state']) {
      const value = engine.get(id, key);
      assert.equal(value === undefined ? undefined : dec.decode(value), r?.kv.get(key), `${context}: ${id}/${key}`);
    }
  }
}

describe('engine against a model', () => {
  it('random operations and restarts read back exactly what the model holds', async () => {
    const seed = testSeed(20261121);
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const fs = new MemFs();
        const options = { fs, seed: 1, targetFileSize: 4096, preallocateBytes: 1024, compressionThreshold: 256 };
        let engine = new Engine(options);
        await engine.open();
        const model: Model = new Map();
        try {
          for (const [step, o] of ops.entries()) {
            if (o.kind === 'restart') {
              await engine.close();
              engine = new Engine(options);
              await engine.open();
            } else {
              await applyOp(engine, model, o);
            }
            for (const [id, r] of model) if (r.entries.length === 0 && r.kv.size === 0) model.delete(id);
            await compare(engine, model, `step ${step} (${o.kind})`);
          }
          await engine.close();
          engine = new Engine(options);
          await engine.open();
          await compare(engine, model, 'final reopen');
        } finally {
          await engine.close();
        }
      }),
      { seed, numRuns: 150, verbose: 1 },
    );
  });
});
