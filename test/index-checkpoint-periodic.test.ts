/**
 * Periodic index checkpoints (src/file-set/index-checkpointer.ts): written
 * while the engine runs, every `indexCheckpointInterval` bytes; an open after
 * a crash loads the newest one and replays only the tail after its position.
 * Every case compares the open that loads it with a full replay of the same
 * image (`indexCheckpoint: false`): they must give exactly the same state.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../backends/memfs.js';
import { FaultFs, type CrashPolicyName } from '../backends/fault.js';
import type { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { INDEX_CHECKPOINT_NAME } from '../src/file-names.js';
import { decodeIndexCheckpoint } from '../src/format/index-checkpoint.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';
import { applyOp, data, open, opArb, snapshot, use, type Image, type Op } from './support/checkpoint-history.js';

/** A checkpoint every ~2 KiB written: several per 4 KiB file. */
const PERIODIC = { indexCheckpointInterval: 2048 };
const POLICIES: CrashPolicyName[] = ['dropUnsynced', 'keepPrefix', 'keepPages', 'tornGarbage', 'loseDirEntries', 'mixed'];

/** Opens `image` twice (loading the checkpoint, and with a full replay); the states must match. Returns the loading engine and its state. */
async function compareOpens(image: Image, context: string): Promise<{ engine: Engine; state: string; fs: MemFs }> {
  const replayed = await open(MemFs.fromSnapshot(image), { indexCheckpoint: false });
  const expected = await snapshot(replayed);
  await replayed.close();
  const fs = MemFs.fromSnapshot(image);
  const engine = await open(fs, PERIODIC);
  const state = await snapshot(engine);
  assert.equal(
    state,
    expected,
    `${context}: checkpoint + tail (${JSON.stringify(engine.recoveryReport?.indexCheckpoint)}) differs from a full replay`,
  );
  return { engine, state, fs };
}

/** `count` synced appends over a few regions, each with a key. */
async function writeSome(engine: Engine, count: number, term: number, size = 200): Promise<void> {
  for (let i = 0; i < count; i++) {
    const region = 1 + (i % 4);
    const last = engine.lastIndex(region) ?? 0;
    const batch = new LogBatch();
    batch.addEntries(region, [{ index: last + 1, term, data: data(region, last + 1, term, size) }]);
    batch.put(region, 'applied', new TextEncoder().encode(String(last + 1)));
    await engine.write(batch, { sync: true });
  }
}

/** Waits (event-loop turns, no clock) until the engine has written more than `count` periodic checkpoints. */
async function checkpointsWritten(engine: Engine, count: number): Promise<void> {
  for (let turn = 0; engine.stats().indexCheckpoints.written <= count; turn++) {
    assert.ok(turn < 10_000, `no periodic checkpoint after ${count}: ${JSON.stringify(engine.stats().indexCheckpoints)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('periodic index checkpoints', () => {
  it('are written while running; a power loss then loads the newest and replays only the tail, as a full replay would', async () => {
    const seed = testSeed(1818);
    const fault = new FaultFs(new MemFs(), { seed });
    const engine = await open(fault, PERIODIC);
    await writeSome(engine, 60, 3);
    await engine.compactTo(1, (engine.firstIndex(1) ?? 0) + 5);
    await engine.clean(2);
    await writeSome(engine, 7, 4);
    await engine.sync();
    const expected = await snapshot(engine);
    const stats = engine.stats().indexCheckpoints;
    assert.ok(stats.written >= 3, `periodic checkpoints written: ${JSON.stringify(stats)}`);
    assert.equal(stats.failed, 0);
    let tails = 0;
    for (const policy of POLICIES) {
      const { engine: loaded, state } = await compareOpens(await fault.crashImage(policy), `seed ${seed}, ${policy}`);
      assert.equal(state, expected, `seed ${seed}, ${policy}: every synced write is there`);
      const checkpoint = loaded.recoveryReport?.indexCheckpoint;
      if (checkpoint?.used === true && (checkpoint.tailRecords ?? 0) > 0) tails++;
      if (checkpoint?.used === true) assert.equal(loaded.recoveryReport?.records, checkpoint.tailRecords);
      await loaded.close();
    }
    assert.ok(tails > 0, 'some crash images loaded a periodic checkpoint and replayed a tail');
    await engine.close().catch(() => undefined);
  });

  it('a crash at every operation of a run that writes periodic checkpoints recovers what a full replay recovers', async () => {
    const seed = testSeed(1819);
    const build = async (): Promise<{ fault: FaultFs; engine: Engine }> => {
      const fault = new FaultFs(new MemFs(), { seed });
      const engine = await open(fault, PERIODIC);
      return { fault, engine };
    };
    const reference = await build();
    const start = reference.fault.opIndex;
    await writeSome(reference.engine, 48, 2, 300);
    const ops = reference.fault.opIndex - start;
    await reference.engine.close();
    assert.ok(reference.engine.stats().indexCheckpoints.written >= 2, JSON.stringify(reference.engine.stats().indexCheckpoints));
    let loaded = 0;
    let index = 0;
    for (let k = 0; k <= ops; k++) {
      const policy = POLICIES[k % POLICIES.length]!;
      const { fault, engine } = await build();
      fault.freezeAt(fault.opIndex + k);
      await writeSome(engine, 48, 2, 300).catch(() => undefined);
      const image = await fault.crashImage(policy);
      if (image.has(INDEX_CHECKPOINT_NAME)) index++;
      const { engine: reopened } = await compareOpens(image, `seed ${seed}, crash at op ${k}, policy ${policy}\n${fault.describe()}`);
      if (reopened.recoveryReport?.indexCheckpoint?.used === true) loaded++;
      await reopened.close();
    }
    assert.ok(index > 0 && loaded > 0, `crash images with a checkpoint: ${index}, loaded: ${loaded}`);
  });

  it('overwrites, compactions, cleans, GC and rotation after a checkpoint: checkpoint + tail equals a full replay', async () => {
    const seed = testSeed(1820);
    const rng = new Random(seed);
    // No periodic checkpoint after the first: every later change is in the tail.
    const fault = new FaultFs(new MemFs(), { seed });
    const engine = await open(fault, { indexCheckpointInterval: 2048 });
    await writeSome(engine, 30, 1);
    await engine.sync();
    const taken = engine.stats().indexCheckpoints.written;
    assert.ok(taken > 0);
    // Overwrite the last entries of region 1 with a new term, compact region 3, clean region 4, rotate: all after the checkpoint.
    const last = engine.lastIndex(1)!;
    const batch = new LogBatch();
    batch.addEntries(
      1,
      [last - 2, last - 1].map((index) => ({ index, term: 5, data: data(1, index, 5, 120) })),
    );
    await engine.write(batch, { sync: true });
    await engine.compactTo(3, engine.lastIndex(3)! - 1, { sync: true });
    await engine.clean(4, { sync: true });
    for (let i = 0; i < 8; i++) {
      const b = new LogBatch();
      b.put(5, `k${rng.below(4)}`, new Uint8Array(400).fill(i));
      await engine.write(b, { sync: true });
    }
    const expected = await snapshot(engine);
    for (const policy of POLICIES) {
      const { engine: loaded, state } = await compareOpens(await fault.crashImage(policy), `seed ${seed}, ${policy}`);
      assert.equal(state, expected, `seed ${seed}, ${policy}`);
      await loaded.close();
    }
    // A purge that retires files makes the checkpoints before it stale; the next one after it covers the purged log.
    for (const region of engine.raftGroups()) {
      const lastIndex = engine.lastIndex(region);
      if (lastIndex !== undefined) await engine.compactTo(region, lastIndex, { sync: true });
    }
    await engine.purgeExpiredFiles();
    const afterPurge = await snapshot(engine);
    const { engine: stale, state } = await compareOpens(await fault.crashImage('dropUnsynced'), `seed ${seed}, after purge`);
    assert.equal(state, afterPurge);
    assert.equal(stale.recoveryReport?.indexCheckpoint?.used, false);
    assert.match(stale.recoveryReport?.indexCheckpoint?.detail ?? '', /^stale: a purge/);
    await stale.close();
    const before = engine.stats().indexCheckpoints.written;
    const batch2 = new LogBatch();
    batch2.put(6, 'after-purge', new Uint8Array(10));
    await engine.write(batch2, { sync: true });
    await checkpointsWritten(engine, before);
    const { engine: fresh, state: freshState } = await compareOpens(
      await fault.crashImage('dropUnsynced'),
      `seed ${seed}, checkpoint after purge`,
    );
    assert.equal(freshState, await snapshot(engine));
    assert.deepEqual(use(fresh.recoveryReport), { used: true, detail: 'loaded' }, 'a checkpoint was due right after the purge');
    await fresh.close();
    await engine.close();
  });

  it('a bit flip in a periodic checkpoint: full replay, the same state, reported as damaged', async () => {
    const seed = testSeed(1821);
    const fault = new FaultFs(new MemFs(), { seed });
    const engine = await open(fault, PERIODIC);
    await writeSome(engine, 40, 2);
    const expected = await snapshot(engine);
    const image = await fault.crashImage('dropUnsynced');
    const checkpoint = image.get(INDEX_CHECKPOINT_NAME)!;
    assert.equal(typeof decodeIndexCheckpoint(checkpoint), 'object');
    const length = new DataView(checkpoint.buffer, checkpoint.byteOffset).getUint32(60, true);
    const rng = new Random(seed);
    for (let n = 0; n < 30; n++) {
      const at = rng.below(length);
      const bytes = checkpoint.slice();
      bytes[at]! ^= 1 << rng.below(8);
      const flipped = new Map(image);
      flipped.set(INDEX_CHECKPOINT_NAME, bytes);
      const { engine: loaded, state } = await compareOpens(flipped, `seed ${seed}, flip at ${at}`);
      assert.equal(state, expected);
      assert.match(loaded.recoveryReport?.indexCheckpoint?.detail ?? '', /^damaged: /, `flip at ${at}`);
      await loaded.close();
    }
    await engine.close();
  });

  it('property: for random histories with power losses, checkpoint + tail equals a full replay', async () => {
    const seed = testSeed(1822);
    type Step = Op | { kind: 'crash'; policy: number } | { kind: 'sync' };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      { weight: 12, arbitrary: opArb.filter((o) => o.kind !== 'restart') },
      // Periodic checkpoints are taken only at the end of a synced group.
      { weight: 3, arbitrary: fc.constant({ kind: 'sync' as const }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), policy: fc.nat(POLICIES.length - 1) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 120 }), async (steps) => {
        let fault = new FaultFs(new MemFs(), { seed });
        let engine = await open(fault, PERIODIC);
        for (const step of [...steps, { kind: 'crash' as const, policy: 0 }]) {
          if (step.kind === 'sync') {
            await engine.sync();
            continue;
          }
          if (step.kind !== 'crash') {
            await applyOp(engine, step as Exclude<Op, { kind: 'restart' }>);
            continue;
          }
          const image = await fault.crashImage(POLICIES[step.policy]!);
          const opened = await compareOpens(image, `seed ${seed}`);
          await engine.close().catch(() => undefined);
          await opened.engine.close();
          // The history goes on from what the crash left.
          fault = new FaultFs(MemFs.fromSnapshot(opened.fs.snapshot()), { seed });
          engine = await open(fault, PERIODIC);
        }
        await engine.close();
      }),
      { seed, numRuns: 40 },
    );
  });

  it('regression (torture seed 370): a periodic checkpoint issues no barrier of its own, so no barrier fails with no caller to tell', async () => {
    const seed = testSeed(1823);
    const fault = new FaultFs(new MemFs(), { seed });
    // One file: no rotation (which syncs, and would tell the writer).
    const engine = await open(fault, { ...PERIODIC, targetFileSize: 1 << 20 });
    await writeSome(engine, 10, 1);
    fault.inject({ ops: ['sync'], path: '*.raftlog', when: { script: 'fail' }, error: 'EIO' });
    // Unsynced writes, well past the interval: no checkpoint is due at an unsynced group.
    for (let i = 0; i < 40; i++) {
      const batch = new LogBatch();
      batch.put(1 + (i % 3), `k${i}`, new Uint8Array(200).fill(i));
      await engine.write(batch);
    }
    assert.equal(engine.stats().failed, false, "nothing failed behind the caller's back");
    for (let i = 0; i < 40; i++) assert.equal(engine.get(1 + (i % 3), `k${i}`)?.[0], i);
    await assert.rejects(engine.sync(), { code: 'FSYNC_FAILED' });
    await engine.close().catch(() => undefined);
  });

  it('regression (torture spill seed 19): a listed file missing after the checkpoint is CORRUPTION naming it, as in a full replay', async () => {
    const seed = testSeed(1824);
    const fault = new FaultFs(new MemFs(), { seed });
    const engine = await open(fault, PERIODIC);
    await writeSome(engine, 20, 2);
    // Unsynced from here: no periodic checkpoint (taken only at synced groups), several rotations.
    for (let i = 0; i < 60; i++) {
      const batch = new LogBatch();
      batch.put(1 + (i % 3), `u${i}`, new Uint8Array(300).fill(i));
      await engine.write(batch);
    }
    const image = await fault.crashImage('dropUnsynced');
    const checkpoint = decodeIndexCheckpoint(image.get(INDEX_CHECKPOINT_NAME)!);
    assert.ok(typeof checkpoint === 'object');
    const logs = [...image.keys()].filter((name) => name.endsWith('.raftlog')).sort();
    const newest = logs[logs.length - 1]!;
    assert.ok(Number(newest.slice(0, 16)) > checkpoint.covered.last, 'the newest file lies after the one the checkpoint covers');
    image.delete(newest);
    await assert.rejects(open(MemFs.fromSnapshot(image), { indexCheckpoint: false }), { code: 'CORRUPTION', message: new RegExp(newest) });
    await assert.rejects(open(MemFs.fromSnapshot(image)), { code: 'CORRUPTION', message: new RegExp(newest) });
    await engine.close();
  });

  it('indexCheckpointInterval must be a non-negative integer; 0 writes none while running', async () => {
    await assert.rejects(open(new MemFs(), { indexCheckpointInterval: -1 }), {
      code: 'INVALID_ARGUMENT',
      message: /indexCheckpointInterval/,
    });
    const fs = new MemFs();
    const engine = await open(fs, { indexCheckpointInterval: 0 });
    await writeSome(engine, 40, 1);
    assert.equal(engine.stats().indexCheckpoints.written, 0);
    assert.equal(await fs.exists(INDEX_CHECKPOINT_NAME), false);
    await engine.close();
    assert.equal(await fs.exists(INDEX_CHECKPOINT_NAME), true, 'the close still writes one');
  });
});
