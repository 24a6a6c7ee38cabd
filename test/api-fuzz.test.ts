/**
 * Arbitrary values at every public method of Engine and LogBatch (issue 16,
 * "What to build" 2). Whatever comes in, only a RaftlogError with a
 * documented code comes out (INVALID_ARGUMENT, or NOT_FOUND for a fetch of
 * entries the region does not hold), never a TypeError or RangeError; a
 * refused call changes neither the stored state nor the batch; the engine
 * stays usable; and what it holds survives a reopen unchanged.
 * fast-check prints the seed and the shrunk call list on failure; SEED=n replays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../backends/memfs.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { isRaftlogError } from '../src/errors.js';
import { LogBatch } from '../src/log-batch.js';
import { eraftpb } from '../src/protos.js';
import { testSeed } from './support/seed.js';

const enc = new TextEncoder();

/** Stands for the run's LogBatch, so writes and merges sometimes get a real one. */
const BATCH = Symbol('the run batch');
/** Stands for a protobufjs type or message, so getMessage and putMessage sometimes succeed. */
const HARD_STATE_TYPE = Symbol('eraftpb.HardState');
const HARD_STATE_MESSAGE = Symbol('a HardState message');

/** Values that are valid somewhere, values that are almost valid, and anything at all. */
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, withMap: true, withSet: true }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 8 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<unknown>(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -1,
      0.5,
      2 ** 53,
      -0,
      1n,
      null,
      undefined,
      '1',
      'true',
      true,
      false,
      {},
      { sync: true },
      { sync: 1 },
      { sync: 'true' },
      { limit: -1 },
      { limit: Number.NaN },
      { reverse: true, limit: 2 },
      { start: 'a', end: 'c' },
      BATCH,
      HARD_STATE_TYPE,
      HARD_STATE_MESSAGE,
      Symbol('s'),
      () => 1,
    ),
  },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom('a', 'b', 'hard_state'), fc.uint8Array({ maxLength: 6 })) },
  {
    weight: 2,
    arbitrary: fc.array(
      fc.record({
        index: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.anything({ withBigInt: true })),
        term: fc.oneof(fc.nat(3), fc.anything()),
        data: fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.anything()),
      }),
      { maxLength: 3 },
    ),
  },
);

const ENGINE_METHODS = [
  'write',
  'sync',
  'compactTo',
  'clean',
  'firstIndex',
  'lastIndex',
  'getEntry',
  'fetchEntriesTo',
  'get',
  'getMessage',
  'scan',
  'raftGroups',
  'stats',
  'metrics',
  'isEmpty',
  'getUsedSize',
  'fileSpan',
  'purgeExpiredFiles',
  'open',
] as const;
// markCheckpoint and seal are internal (the engine's GC and writer call them), so they are left out.
const BATCH_METHODS = [
  'addEntries',
  'put',
  'putMessage',
  'delete',
  'compactTo',
  'clean',
  'merge',
  'clear',
  'isEmpty',
  'approximateSize',
] as const;

type Call = { target: 'engine' | 'batch' | 'constructor'; method: string; args: unknown[] };

const call: fc.Arbitrary<Call> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      target: fc.constant('engine' as const),
      method: fc.constantFrom(...ENGINE_METHODS),
      args: fc.array(value, { maxLength: 4 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      target: fc.constant('batch' as const),
      method: fc.constantFrom(...BATCH_METHODS),
      args: fc.array(value, { maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      target: fc.constant('constructor' as const),
      method: fc.constant('Engine'),
      args: fc.array(value, { maxLength: 1 }),
    }),
  },
);

function resolveArg(arg: unknown, batch: LogBatch): unknown {
  if (arg === BATCH) return batch;
  if (arg === HARD_STATE_TYPE) return eraftpb.HardState;
  if (arg === HARD_STATE_MESSAGE) return eraftpb.HardState.create({ term: 2, vote: 1, commit: 3 });
  return arg;
}

/** Everything a reader can see: regions, entry ranges and contents, keys and values. */
async function snapshot(engine: Engine): Promise<unknown> {
  const regions: unknown[] = [];
  for (const region of engine.raftGroups()) {
    const first = engine.firstIndex(region);
    const last = engine.lastIndex(region);
    const entries = first === undefined || last === undefined ? [] : await engine.fetchEntriesTo(region, first, last + 1);
    regions.push({
      region,
      entries: entries.map((e) => `${e.index}@${e.term}:${Buffer.from(e.data).toString('hex')}`),
      keys: engine.scan(region).map((p) => `${Buffer.from(p.key).toString('hex')}=${Buffer.from(p.value).toString('hex')}`),
    });
  }
  return regions;
}

function batchShape(batch: LogBatch): [number, number, number] {
  return [batch.itemCount, batch.entryCount, batch.approximateSize()];
}

function checkError(error: unknown, what: string): void {
  if (isRaftlogError(error, 'INVALID_ARGUMENT')) return;
  if (isRaftlogError(error, 'NOT_FOUND') && what.startsWith('engine.fetchEntriesTo')) return;
  assert.fail(`${what} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
}

async function runCall(engine: Engine, batch: LogBatch, { target, method, args }: Call): Promise<void> {
  const resolved = args.map((arg) => resolveArg(arg, batch));
  const what = `${target}.${method}(${fc.stringify(args)})`;
  if (target === 'constructor') {
    try {
      new Engine(resolved[0] as EngineOptions);
    } catch (error) {
      checkError(error, what);
    }
    return;
  }
  const before = await snapshot(engine);
  const shape = batchShape(batch);
  try {
    const receiver = (target === 'engine' ? engine : batch) as unknown as Record<string, (...a: unknown[]) => unknown>;
    await receiver[method]!(...resolved);
  } catch (error) {
    checkError(error, what);
    assert.deepEqual(await snapshot(engine), before, `${what} was refused but changed the stored state`);
    if (target === 'batch' || method === 'write') assert.deepEqual(batchShape(batch), shape, `${what} was refused but changed the batch`);
  }
}

describe('arbitrary values at every public method', () => {
  it('only documented RaftlogErrors come out; a refusal changes nothing; the engine stays usable and reopens to the same state', async () => {
    const seed = testSeed(16016);
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 25 }), async (calls) => {
        const fs = new MemFs();
        const options = { fs, seed: 1, targetFileSize: 4096, preallocateBytes: 0, compressionThreshold: 64 };
        const engine = new Engine(options);
        await engine.open();
        const setup = new LogBatch();
        setup.addEntries(
          1,
          [1, 2, 3, 4, 5].map((index) => ({ index, term: 1, data: enc.encode(`entry ${index} `.repeat(8)) })),
        );
        setup.put(1, 'a', enc.encode('A'));
        await engine.write(setup, { sync: true });
        const batch = new LogBatch();
        for (const c of calls) await runCall(engine, batch, c);
        // Still usable: a write and a read of a region no call touched.
        const probe = new LogBatch();
        probe.addEntries(1000, [{ index: 1, term: 1, data: enc.encode('probe') }]);
        await engine.write(probe, { sync: true });
        assert.equal((await engine.getEntry(1000, 1))?.data.length, 5);
        const live = await snapshot(engine);
        await engine.close();
        const reopened = new Engine(options);
        await reopened.open();
        try {
          assert.deepEqual(await snapshot(reopened), live, 'the state read back after reopen differs from the live one');
        } finally {
          await reopened.close();
        }
      }),
      { seed, numRuns: 150, verbose: 1 },
    );
  });
});
