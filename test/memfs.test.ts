/**
 * MemFs behaviour outside the shared contract: snapshots, which FaultFs
 * builds its post-crash file systems from, and instance independence.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCode, isRaftlogError } from '../src/errors.js';
import { MemFs } from '../backends/memfs.js';
import { bytes, expectCode } from './conformance/suite.js';

async function put(fs: MemFs, name: string, data: Uint8Array): Promise<void> {
  const file = await fs.open(name, { create: true });
  await file.truncate(0);
  await file.write([data], 0);
  await file.close();
}

async function get(fs: MemFs, name: string): Promise<Uint8Array> {
  const file = await fs.open(name, { readOnly: true });
  const out = new Uint8Array(await file.size());
  assert.equal(await file.read(out, 0, out.byteLength, 0), out.byteLength);
  await file.close();
  return out;
}

describe('MemFs snapshots', () => {
  it('snapshot then fromSnapshot round-trips every file, including empty ones', async () => {
    const fs = new MemFs();
    await put(fs, 'a', bytes(70_000, 1));
    await put(fs, 'empty', new Uint8Array(0));
    await put(fs, 'b.log', bytes(3, 2));
    const snap = fs.snapshot();
    assert.deepEqual([...snap.keys()].sort(), ['a', 'b.log', 'empty']);
    const copy = MemFs.fromSnapshot(snap);
    assert.deepEqual((await copy.list()).sort(), ['a', 'b.log', 'empty']);
    assert.deepEqual(await get(copy, 'a'), bytes(70_000, 1));
    assert.deepEqual(await get(copy, 'empty'), new Uint8Array(0));
    assert.deepEqual(copy.snapshot(), snap);
  });

  it('a snapshot is a copy: later writes do not show through, and editing it changes nothing', async () => {
    const fs = new MemFs();
    await put(fs, 'a', bytes(100, 1));
    const snap = fs.snapshot();
    await put(fs, 'a', bytes(100, 2));
    await put(fs, 'new', bytes(1, 3));
    assert.deepEqual(snap.get('a'), bytes(100, 1));
    assert.equal(snap.has('new'), false);
    snap.get('a')!.fill(0);
    snap.delete('a');
    assert.deepEqual(await get(fs, 'a'), bytes(100, 2));
  });

  it('fromSnapshot copies its input, and instances from one snapshot are independent', async () => {
    const source = new Map([['a', bytes(50, 1)]]);
    const one = MemFs.fromSnapshot(source);
    const two = MemFs.fromSnapshot(source);
    source.get('a')!.fill(9);
    source.set('b', bytes(1, 1));
    assert.deepEqual(await get(one, 'a'), bytes(50, 1));
    assert.deepEqual(await one.list(), ['a']);
    await put(one, 'a', bytes(50, 2));
    await one.remove('a');
    assert.deepEqual(await get(two, 'a'), bytes(50, 1));
  });

  it('fromSnapshot refuses invalid names', () => {
    for (const bad of ['', '..', 'a/b']) {
      assert.throws(
        () => MemFs.fromSnapshot(new Map([[bad, bytes(1, 1)]])),
        (error: unknown) => isRaftlogError(error, ErrorCode.INVALID_ARGUMENT),
      );
    }
  });

  it('a lock is not carried over: the file system after a crash can be locked again', async () => {
    const fs = new MemFs();
    await fs.lock('LOCK');
    const snap = fs.snapshot();
    assert.ok(snap.has('LOCK'), 'the lock file is an ordinary file in the snapshot, as on disk');
    await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    const restarted = MemFs.fromSnapshot(snap);
    const lock = await restarted.lock('LOCK');
    await lock.release();
    assert.deepEqual(await restarted.list(), []);
  });
});

describe('MemFs instances', () => {
  it('each instance is its own volume, with its own locks', async () => {
    const one = new MemFs();
    const two = new MemFs();
    await put(one, 'a', bytes(10, 1));
    assert.deepEqual(await two.list(), []);
    const held = await one.lock('LOCK');
    const other = await two.lock('LOCK');
    await held.release();
    await other.release();
  });

  it('after close, operations reject with CLOSED; snapshot still works', async () => {
    const fs = new MemFs();
    await put(fs, 'a', bytes(10, 1));
    await fs.close();
    await fs.close();
    await expectCode(() => fs.list(), ErrorCode.CLOSED);
    await expectCode(() => fs.open('a'), ErrorCode.CLOSED);
    assert.deepEqual(fs.snapshot().get('a'), bytes(10, 1));
  });

  it('declares itself', () => {
    const fs = new MemFs();
    assert.equal(fs.capabilities.backend, 'memfs');
    assert.equal(fs.capabilities.overwriteIsCheaper, false);
    assert.equal(fs.description, 'memfs:/');
  });
});
