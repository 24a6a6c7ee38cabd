/**
 * The index checkpoint (src/recovery/index-checkpoint.ts): a clean close
 * writes it, the next open loads it instead of replaying the log, and the
 * state it gives is exactly the one a full replay of the same directory gives
 * (each case opens the same image twice, once with `indexCheckpoint: false`).
 * Writes after it only extend the tail an open replays after loading it.
 * Damaged, stale (a purge since) and foreign checkpoints fall back to a full
 * replay. Periodic checkpoints: test/index-checkpoint-periodic.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../backends/memfs.js';
import { FaultFs } from '../backends/fault.js';
import type { CrashPolicyName } from '../backends/fault.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { INDEX_CHECKPOINT_NAME } from '../src/file-names.js';
import { crc32c } from '../src/format/checksum.js';
import { INDEX_CHECKPOINT_VERSION, decodeIndexCheckpoint } from '../src/format/index-checkpoint.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';
import { assertBothOpens, closedHistory, data, enc, holdsLog, open, opArb, run, snapshot, use } from './support/checkpoint-history.js';

describe('index checkpoint', () => {
  it('property: for random histories, the state loaded from the checkpoint equals the state of a full replay', async () => {
    const seed = testSeed(1808);
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 150 }), async (ops) => {
        const fs = new MemFs();
        const engine = await run(fs, ops);
        const expected = await snapshot(engine);
        await engine.close();
        const hasLog = await holdsLog(fs);
        assert.equal(fs.snapshot().has(INDEX_CHECKPOINT_NAME), hasLog, 'a clean close of a log with a file wrote the checkpoint');
        const report = await assertBothOpens(fs.snapshot(), expected, `seed ${seed}`);
        assert.deepEqual(use(report), { used: hasLog, detail: hasLog ? 'loaded' : 'absent' });
        assert.equal(report?.records, 0, 'no record replayed');
        assert.equal(report?.indexCheckpoint?.tailRecords, hasLog ? 0 : undefined);
      }),
      { seed, numRuns: 50 },
    );
  });

  it('the open that loads a checkpoint keeps it, and a crash after new writes loads it and replays only those writes', async () => {
    const seed = testSeed(21);
    const { image, expected } = await closedHistory(seed);
    const fault = new FaultFs(MemFs.fromSnapshot(image), { seed });
    // No periodic checkpoint: the tail is everything written after this open.
    const engine = await open(fault, { indexCheckpointInterval: 0 });
    assert.deepEqual(use(engine.recoveryReport), { used: true, detail: 'loaded' });
    assert.equal(await snapshot(engine), expected);
    const kept = (await fault.crashImage('dropUnsynced')).get(INDEX_CHECKPOINT_NAME)!;
    assert.equal(typeof decodeIndexCheckpoint(kept), 'object', 'still a checkpoint after the open that used it');
    // More writes, all synced, some in the file the checkpoint ended in, some after a rotation; then a power loss.
    for (let i = 0; i < 40; i++) {
      const region = 1 + (i % 6);
      const batch = new LogBatch();
      const last = engine.lastIndex(region) ?? 0;
      batch.addEntries(region, [{ index: last + 1, term: 9, data: data(region, last + 1, 9, 150) }]);
      batch.put(region, 'after', enc.encode(String(i)));
      await engine.write(batch, { sync: true });
    }
    const after = await snapshot(engine);
    assert.notEqual(after, expected);
    for (const policy of ['dropUnsynced', 'keepPrefix', 'mixed'] as CrashPolicyName[]) {
      const report = await assertBothOpens(
        await fault.crashImage(policy),
        after,
        `seed ${seed}, ${policy}: the writes after the checkpoint are there`,
      );
      assert.deepEqual(use(report), { used: true, detail: 'loaded' }, `seed ${seed}, ${policy}`);
      assert.equal(report?.indexCheckpoint?.tailRecords, 40, 'exactly the writes after the checkpoint were replayed');
      assert.equal(report?.records, 40);
    }
    await engine.close().catch(() => undefined);
  });

  it('a bit flip anywhere in the checkpoint: full replay, the same state, reported as damaged', async () => {
    // 34: a history that runs a GC rewrite under test/support/random.ts (33 did under the old mulberry32 stream).
    const seed = testSeed(34);
    const { image, expected } = await closedHistory(seed, 150);
    assert.ok(
      [...image.keys()].some((name) => name.endsWith('.rewrite')),
      'the history ran a GC rewrite',
    );
    assert.ok([...image.keys()].filter((name) => name.endsWith('.raftlog')).length > 1, 'the history rotated');
    const checkpoint = image.get(INDEX_CHECKPOINT_NAME)!;
    const length = new DataView(checkpoint.buffer, checkpoint.byteOffset).getUint32(60, true);
    const rng = new Random(seed);
    // Every header byte, then random bytes of the body and the checksum.
    const positions = [...Array.from({ length: 64 }, (_, i) => i), ...Array.from({ length: 40 }, () => rng.below(length)), length - 1];
    for (const at of positions) {
      const flipped = new Map(image);
      const bytes = checkpoint.slice();
      bytes[at]! ^= 1 << rng.below(8);
      flipped.set(INDEX_CHECKPOINT_NAME, bytes);
      assert.equal(typeof decodeIndexCheckpoint(bytes), 'string', `seed ${seed}: flip at ${at} still decodes`);
      const report = await assertBothOpens(flipped, expected, `seed ${seed}, flip at byte ${at}`);
      assert.equal(report?.indexCheckpoint?.used, false);
      assert.match(report?.indexCheckpoint?.detail ?? '', /^damaged: /, `flip at ${at}`);
    }
  });

  it('a checkpoint of version 1 (columns stored region by region) is not loaded: full replay, the same state, reported, set aside', async () => {
    const seed = testSeed(18);
    const { image, expected } = await closedHistory(seed, 120);
    const current = image.get(INDEX_CHECKPOINT_NAME)!;
    // A version 1 file verifies (length, checksum, magic): only its version tells it apart.
    const old = current.slice();
    const length = new DataView(old.buffer).getUint32(60, true);
    new DataView(old.buffer).setUint16(8, 1, true);
    new DataView(old.buffer).setUint32(length - 4, crc32c(old.subarray(0, length - 4)), true);
    assert.equal(decodeIndexCheckpoint(old), `version 1 (this build reads version ${INDEX_CHECKPOINT_VERSION})`);
    const withOld = new Map(image);
    withOld.set(INDEX_CHECKPOINT_NAME, old);
    const report = await assertBothOpens(withOld, expected, `seed ${seed}`);
    assert.deepEqual(use(report), { used: false, detail: `damaged: version 1 (this build reads version ${INDEX_CHECKPOINT_VERSION})` });
    assert.ok((report?.records ?? 0) > 0, 'the log was replayed');
    // The open that did not use it set it aside; its clean close wrote a current one, which the next open loads.
    const fs = MemFs.fromSnapshot(withOld);
    const engine = await open(fs);
    assert.equal(await snapshot(engine), expected);
    await engine.close();
    const next = await open(MemFs.fromSnapshot(fs.snapshot()));
    assert.deepEqual(use(next.recoveryReport), { used: true, detail: 'loaded' });
    assert.equal(await snapshot(next), expected);
    await next.close();
  });

  it('thousands of regions: the loaded state equals a full replay, also after writes that grow, overwrite, compact and clean loaded regions', async () => {
    const seed = testSeed(1800);
    const rng = new Random(seed);
    const regions = 3000;
    const fs = new MemFs();
    let engine = await open(fs, { targetFileSize: 1 << 20 });
    const write = async (region: number, from: number, count: number, term: number): Promise<void> => {
      const batch = new LogBatch();
      batch.addEntries(
        region,
        Array.from({ length: count }, (_, i) => ({ index: from + i, term, data: data(region, from + i, term, rng.below(300)) })),
      );
      if (region % 4 === 0) batch.put(region, `state ${region}`, enc.encode(`${term}:${from}`));
      await engine.write(batch);
    };
    for (let region = 1; region <= regions; region++) if (region % 10 !== 0) await write(region, 1, 1 + rng.below(6), 1);
    for (let region = 10; region <= regions; region += 10) {
      const batch = new LogBatch();
      batch.put(region, 'only a key', enc.encode(String(region)));
      await engine.write(batch);
    }
    let expected = await snapshot(engine);
    await engine.close();
    let report = await assertBothOpens(fs.snapshot(), expected, `seed ${seed}`);
    assert.deepEqual(use(report), { used: true, detail: 'loaded' });
    // Changes after the load: appends (a slot outgrown), overwrites and compactions (inside a slot), cleans.
    engine = await open(fs, { targetFileSize: 1 << 20 });
    for (let step = 0; step < 2000; step++) {
      const region = 1 + rng.below(regions);
      const last = engine.lastIndex(region);
      const roll = rng.below(10);
      if (last === undefined || roll < 5) await write(region, (last ?? 0) + 1, 1 + rng.below(20), 2);
      else if (roll < 7) await write(region, Math.max(engine.firstIndex(region)!, last - rng.below(3)), 1 + rng.below(3), 3);
      else if (roll < 9) {
        const batch = new LogBatch();
        batch.compactTo(region, Math.max(0, last - rng.below(3)));
        await engine.write(batch);
      } else {
        const batch = new LogBatch();
        batch.clean(region);
        await engine.write(batch);
      }
    }
    expected = await snapshot(engine);
    await engine.close();
    report = await assertBothOpens(fs.snapshot(), expected, `seed ${seed}, after changes`);
    assert.deepEqual(use(report), { used: true, detail: 'loaded' });
  });

  it('an older checkpoint covers a prefix of the log: loaded, and the records written after it replayed', async () => {
    const seed = testSeed(44);
    const { image, expected } = await closedHistory(seed, 120);
    const old = image.get(INDEX_CHECKPOINT_NAME)!;
    // Written into the same file and after a rotation, then closed without a checkpoint (which invalidates the old one).
    const fs = MemFs.fromSnapshot(image);
    const engine = await open(fs, { indexCheckpoint: false });
    for (let i = 0; i < 12; i++) {
      const batch = new LogBatch();
      batch.put(1 + (i % 3), 'late', new Uint8Array(300).fill(i));
      await engine.write(batch, { sync: true });
    }
    const changed = await snapshot(engine);
    assert.notEqual(changed, expected);
    await engine.close();
    const withOld = fs.snapshot();
    withOld.set(INDEX_CHECKPOINT_NAME, old);
    const report = await assertBothOpens(withOld, changed, `seed ${seed}`);
    assert.deepEqual(use(report), { used: true, detail: 'loaded' });
    assert.equal(report?.indexCheckpoint?.tailRecords, 13, 'the 12 writes and the seal of the close after them');
  });

  it('a checkpoint older than a purge that retired files is stale: never loaded, full replay, reported', async () => {
    const seed = testSeed(45);
    const { image } = await closedHistory(seed, 120);
    const old = image.get(INDEX_CHECKPOINT_NAME)!;
    const fs = MemFs.fromSnapshot(image);
    const engine = await open(fs, { indexCheckpoint: false });
    for (let i = 0; i < 30; i++) {
      const batch = new LogBatch();
      const region = 1 + (i % 5);
      const last = engine.lastIndex(region) ?? 0;
      batch.addEntries(region, [{ index: last + 1, term: 9, data: data(region, last + 1, 9, 300) }]);
      await engine.write(batch, { sync: true });
    }
    for (const region of engine.raftGroups()) await engine.compactTo(region, (engine.lastIndex(region) ?? 0) - 1);
    const before = engine.stats().gc.purges;
    await engine.purgeExpiredFiles();
    assert.ok(engine.stats().gc.purges > before);
    const changed = await snapshot(engine);
    await engine.close();
    const withOld = fs.snapshot();
    withOld.set(INDEX_CHECKPOINT_NAME, old);
    const report = await assertBothOpens(withOld, changed, `seed ${seed}`);
    assert.equal(report?.indexCheckpoint?.used, false);
    assert.match(report?.indexCheckpoint?.detail ?? '', /^stale: a purge/);
  });

  it('a foreign checkpoint (from another log of the same shape) is never loaded', async () => {
    const a = await closedHistory(testSeed(55), 100);
    const b = await closedHistory(testSeed(55) + 1, 100);
    const mixed = new Map(a.image);
    mixed.set(INDEX_CHECKPOINT_NAME, b.image.get(INDEX_CHECKPOINT_NAME)!);
    const report = await assertBothOpens(mixed, a.expected, 'foreign');
    assert.equal(report?.indexCheckpoint?.used, false);
    assert.match(report?.indexCheckpoint?.detail ?? '', /^stale: /);
  });

  it('a crash at every operation of a close that writes the checkpoint recovers the closed state', async () => {
    const seed = testSeed(66);
    const policies: CrashPolicyName[] = ['dropUnsynced', 'keepPrefix', 'keepPages', 'tornGarbage', 'loseDirEntries', 'mixed'];
    const { image } = await closedHistory(seed, 120);
    const build = async (): Promise<{ fault: FaultFs; engine: Engine }> => {
      const fault = new FaultFs(MemFs.fromSnapshot(image), { seed });
      const engine = await open(fault);
      for (let i = 0; i < 12; i++) {
        const batch = new LogBatch();
        const region = 1 + (i % 4);
        const last = engine.lastIndex(region) ?? 0;
        batch.addEntries(region, [{ index: last + 1, term: 7, data: data(region, last + 1, 7, 90) }]);
        await engine.write(batch, { sync: true });
      }
      return { fault, engine };
    };
    const reference = await build();
    const expected = await snapshot(reference.engine);
    const start = reference.fault.opIndex;
    await reference.engine.close();
    const closeOps = reference.fault.opIndex - start;
    assert.ok(closeOps > 5, `the close took ${closeOps} operations`);
    let loaded = 0;
    for (let k = 0; k <= closeOps; k++) {
      const policy = policies[k % policies.length]!;
      const { fault, engine } = await build();
      fault.freezeAt(fault.opIndex + k);
      await engine.close().catch(() => undefined);
      const crashed = await fault.crashImage(policy);
      const report = await assertBothOpens(
        crashed,
        expected,
        `seed ${seed}, crash at close op ${k}, policy ${policy}\n${fault.describe()}`,
      );
      if (report?.indexCheckpoint?.used === true) loaded++;
    }
    // The last few cut points come after the rename reached the directory.
    assert.ok(loaded > 0, 'some crash images hold a complete checkpoint');
  });

  it('damage inside a covered record is not seen at open, but by the read that reaches it and by consistencyCheck()', async () => {
    const fs = new MemFs();
    const engine = await open(fs, { compressionThreshold: 1 << 20 });
    const batch = new LogBatch();
    const payload = new Uint8Array(64).fill(0x5a);
    batch.addEntries(1, [{ index: 1, term: 1, data: payload }]);
    await engine.write(batch, { sync: true });
    await engine.close();
    const image = fs.snapshot();
    const name = [...image.keys()].find((n) => n.endsWith('.raftlog'))!;
    const bytes = image.get(name)!.slice();
    const at = Buffer.from(bytes).indexOf(Buffer.from(payload));
    assert.ok(at > 0);
    bytes[at + 10]! ^= 0x01;
    image.set(name, bytes);
    const loaded = await open(MemFs.fromSnapshot(image));
    assert.deepEqual(use(loaded.recoveryReport), { used: true, detail: 'loaded' });
    await assert.rejects(loaded.getEntry(1, 1), { code: 'CORRUPTION' });
    const check = await loaded.consistencyCheck();
    assert.ok(check.problems.length > 0, 'consistencyCheck finds the damage');
    await loaded.close();
  });

  it('indexCheckpoint must be a boolean', () => {
    assert.throws(() => new Engine({ fs: new MemFs(), indexCheckpoint: 1 as unknown as boolean }), {
      code: 'INVALID_ARGUMENT',
      message: /indexCheckpoint/,
    });
  });

  it('indexCheckpoint: false writes none at close', async () => {
    const fs = new MemFs();
    const engine = await open(fs, { indexCheckpoint: false });
    const batch = new LogBatch();
    batch.addEntries(1, [{ index: 1, term: 1, data: new Uint8Array(10) }]);
    await engine.write(batch);
    await engine.close();
    assert.equal(await fs.exists(INDEX_CHECKPOINT_NAME), false);
  });
});
