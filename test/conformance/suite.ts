/**
 * The FileSystem conformance suite: one contract, run unchanged against every
 * backend (RELIABILITY.md, "Backend conformance"), so the in-memory backends
 * the engine is tested on cannot drift from the real ones.
 *
 * It may only use the FileSystem interface. Each test gets a fresh file
 * system from `target.make()` and calls `init()` itself, because init is part
 * of the contract too.
 *
 * Where the contract in src/filesystem.ts leaves a choice, the suite pins the
 * behaviour the shipped backends agree on, so callers can rely on it:
 * - `exclusive` without `create` is INVALID_ARGUMENT;
 * - writing through a read-only handle is INVALID_ARGUMENT;
 * - closing a handle or releasing a lock twice is harmless;
 * - `remove`/`rename`/`reuse` of a missing file is NOT_FOUND.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCode, RaftlogError, isRaftlogError } from '../../src/errors.js';
import type { FileHandle, FileSystem } from '../../src/filesystem.js';
import { Random } from '../support/random.js';

export interface ConformanceInstance<F extends FileSystem = FileSystem> {
  /** A fresh, empty file system, not yet `init()`ed. */
  readonly fs: F;
  /** Closes and deletes everything `make()` created. Must work whatever state a failed test left. */
  cleanup(): Promise<void>;
  /**
   * Optional: another FileSystem over the same storage (same directory, or a
   * copy of the same volume), used to check that what was written and synced
   * is visible to a fresh instance. Called only once every handle is closed.
   */
  reopen?(): Promise<FileSystem>;
  /**
   * Optional, for targets over a real directory: fresh FileSystems over the
   * same directory through every directory backend available here (this
   * one's included, and EncryptedFs over one), not yet `init()`ed. The suite
   * closes them.
   */
  siblings?(): Promise<readonly { name: string; fs: FileSystem }[]>;
}

export interface ConformanceTarget<F extends FileSystem = FileSystem> {
  /** Shown in test names, e.g. 'posix'. */
  readonly name: string;
  make(): Promise<ConformanceInstance<F>>;
  /**
   * Present when the target can simulate a power loss (FaultFs): returns a
   * new, independent FileSystem holding what survived a crash of `fs`. Any
   * crash policy is allowed, so the suite only checks what every policy must
   * keep: data behind a successful barrier, entries behind `syncDir()`.
   * After the crash the suite uses only the returned FileSystem, and closes
   * it; `cleanup()` still runs for the original instance.
   */
  crash?(fs: F): Promise<FileSystem>;
}

type Body<F extends FileSystem> = (fs: F, instance: ConformanceInstance<F>) => Promise<void>;

/** Registers the whole suite for one backend as node:test describe/it blocks. */
export function runConformance<F extends FileSystem>(target: ConformanceTarget<F>): void {
  const test = (title: string, body: Body<F>): void => {
    it(title, () => withFs(target, body));
  };

  describe(`FileSystem conformance: ${target.name}`, () => {
    describe('identity', () => registerIdentity(test));
    describe('open', () => registerOpen(test));
    describe('read and write', () => registerReadWrite(test));
    describe('barriers', () => registerBarriers(test));
    describe('truncate, preallocate, size', () => registerSizing(test));
    describe('directory operations', () => registerDirectory(test));
    describe('locks', () => {
      registerLocks(test);
      registerSiblingLocks(target);
    });
    describe('closed handles', () => registerClosed(test));
    describe('invalid names and arguments', () => registerInvalid(test));
    describe('reopen', () => registerReopen(target));
    describe('crash semantics', () => registerCrash(target));
  });
}

type Register<F extends FileSystem> = (title: string, body: Body<F>) => void;

async function withFs<F extends FileSystem>(target: ConformanceTarget<F>, body: Body<F>): Promise<void> {
  const instance = await target.make();
  try {
    await instance.fs.init();
    await body(instance.fs, instance);
  } finally {
    await instance.cleanup();
  }
}

// ---------------------------------------------------------------------------

function registerIdentity<F extends FileSystem>(test: Register<F>): void {
  test('declares capabilities and a description', async (fs) => {
    const caps = fs.capabilities;
    assert.equal(typeof caps.backend, 'string');
    assert.ok(caps.backend.length > 0);
    assert.ok(Number.isSafeInteger(caps.writeAlignment) && caps.writeAlignment >= 1);
    assert.equal(typeof caps.fixedCapacity, 'boolean');
    assert.equal(typeof caps.overwriteIsCheaper, 'boolean');
    assert.equal(typeof fs.description, 'string');
    assert.ok(fs.description.length > 0);
  });

  test('init is idempotent and a fresh file system is empty', async (fs) => {
    await fs.init();
    await fs.init();
    assert.deepEqual(await fs.list(), []);
  });
}

function registerOpen<F extends FileSystem>(test: Register<F>): void {
  test('opening a missing file without create is NOT_FOUND', async (fs) => {
    await expectCode(() => fs.open('missing'), ErrorCode.NOT_FOUND);
    await expectCode(() => fs.open('missing', { readOnly: true }), ErrorCode.NOT_FOUND);
    assert.equal(await fs.exists('missing'), false);
  });

  test('create makes an empty file', async (fs) => {
    const file = await fs.open('a', { create: true });
    assert.equal(file.name, 'a');
    assert.equal(await file.size(), 0);
    await file.close();
    assert.equal(await fs.exists('a'), true);
    assert.deepEqual(await fs.list(), ['a']);
  });

  test('create on an existing file opens it without truncating', async (fs) => {
    await writeFile(fs, 'a', bytes(100, 1));
    const file = await fs.open('a', { create: true });
    assert.equal(await file.size(), 100);
    assert.deepEqual(await readAll(file), bytes(100, 1));
    await file.close();
  });

  test('create + exclusive fails with EXISTS on an existing file and succeeds on a new one', async (fs) => {
    await writeFile(fs, 'a', bytes(10, 1));
    await expectCode(() => fs.open('a', { create: true, exclusive: true }), ErrorCode.EXISTS);
    const file = await fs.open('b', { create: true, exclusive: true });
    await file.close();
    assert.deepEqual((await fs.list()).sort(), ['a', 'b']);
    assert.deepEqual(await readFile(fs, 'a'), bytes(10, 1), 'the failed exclusive open left the file alone');
  });

  test('exclusive without create is INVALID_ARGUMENT', async (fs) => {
    await writeFile(fs, 'a', bytes(10, 1));
    await expectCode(() => fs.open('a', { exclusive: true }), ErrorCode.INVALID_ARGUMENT);
  });

  test('a read-only handle reads, and refuses writes with INVALID_ARGUMENT', async (fs) => {
    await writeFile(fs, 'a', bytes(64, 2));
    const file = await fs.open('a', { readOnly: true });
    assert.deepEqual(await readAll(file), bytes(64, 2));
    await expectCode(() => file.write([bytes(4, 3)], 0), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.truncate(0), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.preallocate(0, 4096), ErrorCode.INVALID_ARGUMENT);
    await file.close();
    assert.deepEqual(await readFile(fs, 'a'), bytes(64, 2), 'nothing was written');
  });

  test('capacityBytes is accepted as a hint', async (fs) => {
    const file = await fs.open('a', { create: true, capacityBytes: 1 << 20 });
    await file.write([bytes(10, 1)], 0);
    assert.deepEqual(await readRange(file, 0, 10), bytes(10, 1));
    await file.close();
  });

  test("two handles on one file see each other's writes", async (fs) => {
    const writer = await fs.open('a', { create: true });
    const reader = await fs.open('a', { readOnly: true });
    await writer.write([bytes(32, 4)], 0);
    assert.deepEqual(await readAll(reader), bytes(32, 4));
    await writer.close();
    await reader.close();
  });
}

function registerReadWrite<F extends FileSystem>(test: Register<F>): void {
  test('a vectored write lays its buffers back to back', async (fs) => {
    const file = await fs.open('a', { create: true });
    const parts = [bytes(3, 1), bytes(0, 2), bytes(1000, 3), bytes(1, 4), bytes(4096, 5)];
    await file.write(parts, 0);
    assert.equal(await file.size(), 5100);
    assert.deepEqual(await readAll(file), concat(parts));
    await file.close();
  });

  test('a write at a position leaves other bytes alone (overwrite in the middle)', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(100, 1)], 0);
    await file.write([bytes(10, 2), bytes(5, 3)], 40);
    const expected = bytes(100, 1);
    expected.set(concat([bytes(10, 2), bytes(5, 3)]), 40);
    assert.equal(await file.size(), 100);
    assert.deepEqual(await readAll(file), expected);
    await file.close();
  });

  test('a write past the end leaves a zero-filled gap', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    await file.write([bytes(10, 2)], 5000);
    assert.equal(await file.size(), 5010);
    const expected = new Uint8Array(5010);
    expected.set(bytes(10, 1), 0);
    expected.set(bytes(10, 2), 5000);
    assert.deepEqual(await readAll(file), expected);
    await file.close();
  });

  test('an empty write changes nothing, even past the end', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    await file.write([], 1000);
    await file.write([new Uint8Array(0)], 2000);
    assert.equal(await file.size(), 10);
    await file.close();
  });

  test('writes from and reads into views with a byteOffset', async (fs) => {
    const file = await fs.open('a', { create: true });
    const backing = bytes(64, 7);
    await file.write([backing.subarray(10, 20), backing.subarray(30, 35)], 3);
    const target = new Uint8Array(40).fill(0xee);
    const view = target.subarray(8, 32);
    assert.equal(await file.read(view, 2, 15, 3), 15);
    const expected = new Uint8Array(40).fill(0xee);
    expected.set(concat([backing.subarray(10, 20), backing.subarray(30, 35)]), 10);
    assert.deepEqual(target, expected, 'only target[8 + 2 .. 8 + 17) was written');
    await file.close();
  });

  test('a read is short only at the end of file and past it returns 0', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    const target = new Uint8Array(32).fill(0xaa);
    assert.equal(await file.read(target, 0, 32, 0), 10);
    assert.deepEqual(target.subarray(0, 10), bytes(10, 1));
    assert.ok(
      target.subarray(10).every((b) => b === 0xaa),
      'bytes past what was read are untouched',
    );
    assert.equal(await file.read(target, 0, 32, 5), 5);
    assert.equal(await file.read(target, 0, 32, 10), 0);
    assert.equal(await file.read(target, 0, 32, 1_000_000), 0);
    assert.equal(await file.read(target, 0, 0, 0), 0);
    await file.close();
  });

  test('a large write (8 MiB in 100 buffers) round-trips', async (fs) => {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < 100; i++) {
      const length = i === 99 ? 8 * 1024 * 1024 - total : 40_000 + ((i * 7919) % 80_000);
      parts.push(bytes(length, 1000 + i));
      total += length;
    }
    assert.equal(total, 8 * 1024 * 1024);
    const file = await fs.open('big', { create: true });
    await file.write(parts, 123);
    assert.equal(await file.size(), 123 + total);
    const back = await readRange(file, 123, total);
    assert.ok(equalBytes(back, concat(parts)), 'content differs');
    await file.close();
  });

  test('many concurrent writes to disjoint ranges all land', async (fs) => {
    const file = await fs.open('a', { create: true });
    const count = 64;
    const stride = 5000;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        file.write([bytes(1000, i), bytes(stride - 1000, i + 500)], i * stride, { sync: i % 8 === 0 }),
      ),
    );
    assert.equal(await file.size(), count * stride);
    for (let i = 0; i < count; i++) {
      assert.deepEqual(await readRange(file, i * stride, stride), concat([bytes(1000, i), bytes(stride - 1000, i + 500)]));
    }
    await file.close();
  });

  test('concurrent reads of one range agree', async (fs) => {
    await writeFile(fs, 'a', bytes(100_000, 9));
    const file = await fs.open('a', { readOnly: true });
    const reads = await Promise.all(Array.from({ length: 16 }, (_, i) => readRange(file, i * 1000, 50_000)));
    reads.forEach((got, i) => assert.deepEqual(got, bytes(100_000, 9).subarray(i * 1000, i * 1000 + 50_000)));
    await file.close();
  });
}

function registerBarriers<F extends FileSystem>(test: Register<F>): void {
  test('write with { sync: true } resolves and the data reads back', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(4096, 1), bytes(10, 2)], 0, { sync: true });
    await file.write([bytes(7, 3)], 8000, { sync: true });
    assert.equal(await file.size(), 8007);
    assert.deepEqual(await readRange(file, 0, 4106), concat([bytes(4096, 1), bytes(10, 2)]));
    assert.deepEqual(await readRange(file, 8000, 7), bytes(7, 3));
    await file.close();
  });

  test('sync resolves, on an empty file, after writes, and repeatedly', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.sync();
    await file.write([bytes(100, 1)], 0);
    await file.sync();
    await file.sync();
    assert.deepEqual(await readAll(file), bytes(100, 1));
    await file.close();
  });

  test('sync on a read-only handle resolves', async (fs) => {
    await writeFile(fs, 'a', bytes(10, 1));
    const file = await fs.open('a', { readOnly: true });
    await file.sync();
    await file.close();
  });
}

function registerSizing<F extends FileSystem>(test: Register<F>): void {
  test('truncate shrinks, and extending again reads zeros, not the old bytes', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(1000, 1)], 0);
    await file.truncate(100);
    assert.equal(await file.size(), 100);
    assert.deepEqual(await readAll(file), bytes(1000, 1).subarray(0, 100));
    await file.truncate(1000);
    const expected = new Uint8Array(1000);
    expected.set(bytes(1000, 1).subarray(0, 100));
    assert.deepEqual(await readAll(file), expected);
    await file.truncate(0);
    assert.equal(await file.size(), 0);
    await file.close();
  });

  test('truncate extends with zeros', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    await file.truncate(70_000);
    assert.equal(await file.size(), 70_000);
    const expected = new Uint8Array(70_000);
    expected.set(bytes(10, 1));
    assert.deepEqual(await readAll(file), expected);
    await file.close();
  });

  test('preallocate grows an empty file, reading as zeros', async (fs) => {
    const file = await fs.open('a', { create: true });
    const length = 3 * 1024 * 1024 + 17; // crosses any chunking a backend does
    await file.preallocate(0, length);
    assert.equal(await file.size(), length);
    assert.ok((await readAll(file)).every((b) => b === 0));
    await file.close();
  });

  test('preallocate leaves existing data untouched and zero-fills the rest', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(5000, 1)], 0);
    await file.preallocate(1000, 20_000);
    assert.equal(await file.size(), 21_000);
    const expected = new Uint8Array(21_000);
    expected.set(bytes(5000, 1));
    assert.deepEqual(await readAll(file), expected);
    await file.close();
  });

  test('preallocate inside the current size changes nothing', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(5000, 1)], 0);
    await file.preallocate(100, 1000);
    await file.preallocate(0, 0);
    assert.equal(await file.size(), 5000);
    assert.deepEqual(await readAll(file), bytes(5000, 1));
    await file.close();
  });

  test('preallocate starting past the end grows the file to offset + length, all zeros', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    await file.preallocate(4096, 4096);
    assert.equal(await file.size(), 8192);
    const expected = new Uint8Array(8192);
    expected.set(bytes(10, 1));
    assert.deepEqual(await readAll(file), expected);
    await file.close();
  });

  test('writes inside a preallocated range do not change the size', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.preallocate(0, 64 * 1024);
    await file.write([bytes(100, 1)], 0, { sync: true });
    await file.write([bytes(100, 2)], 60_000);
    assert.equal(await file.size(), 64 * 1024);
    assert.deepEqual(await readRange(file, 0, 100), bytes(100, 1));
    assert.deepEqual(await readRange(file, 60_000, 100), bytes(100, 2));
    await file.close();
  });

  test('writes issued concurrently with preallocate are never overwritten by its zeros', async (fs) => {
    const file = await fs.open('a', { create: true });
    const writes = Array.from({ length: 16 }, (_, i) => file.write([bytes(512, i)], i * 100_000));
    const prealloc = file.preallocate(0, 2 * 1024 * 1024);
    const more = Array.from({ length: 16 }, (_, i) => file.write([bytes(512, 100 + i)], i * 100_000 + 50_000));
    await Promise.all([...writes, prealloc, ...more]);
    assert.equal(await file.size(), 2 * 1024 * 1024);
    for (let i = 0; i < 16; i++) {
      assert.deepEqual(await readRange(file, i * 100_000, 512), bytes(512, i));
      assert.deepEqual(await readRange(file, i * 100_000 + 50_000, 512), bytes(512, 100 + i));
    }
    await file.close();
  });

  test('size follows writes and is shared by handles', async (fs) => {
    const file = await fs.open('a', { create: true });
    assert.equal(await file.size(), 0);
    await file.write([bytes(1, 1)], 0);
    assert.equal(await file.size(), 1);
    await file.write([bytes(1, 1)], 99);
    assert.equal(await file.size(), 100);
    const other = await fs.open('a');
    assert.equal(await other.size(), 100);
    await other.close();
    await file.close();
  });
}

function registerDirectory<F extends FileSystem>(test: Register<F>): void {
  test('list returns exactly the files, and exists agrees', async (fs) => {
    for (const name of ['x', 'y.log', '0000000000000001.raftlog']) await writeFile(fs, name, bytes(1, 1));
    assert.deepEqual((await fs.list()).sort(), ['0000000000000001.raftlog', 'x', 'y.log']);
    assert.equal(await fs.exists('x'), true);
    assert.equal(await fs.exists('z'), false);
  });

  test('remove deletes a file; removing a missing file is NOT_FOUND', async (fs) => {
    await writeFile(fs, 'a', bytes(10, 1));
    await writeFile(fs, 'b', bytes(10, 2));
    await fs.remove('a');
    assert.equal(await fs.exists('a'), false);
    assert.deepEqual(await fs.list(), ['b']);
    await expectCode(() => fs.remove('a'), ErrorCode.NOT_FOUND);
    await expectCode(() => fs.open('a'), ErrorCode.NOT_FOUND);
  });

  test('rename moves a file and replaces an existing target', async (fs) => {
    await writeFile(fs, 'a', bytes(10, 1));
    await writeFile(fs, 'b', bytes(99, 2));
    await fs.rename('a', 'b');
    assert.deepEqual(await fs.list(), ['b']);
    assert.deepEqual(await readFile(fs, 'b'), bytes(10, 1));
    await fs.rename('b', 'c');
    assert.deepEqual(await fs.list(), ['c']);
    assert.deepEqual(await readFile(fs, 'c'), bytes(10, 1));
  });

  test('rename of a missing file is NOT_FOUND and leaves the target alone', async (fs) => {
    await writeFile(fs, 'b', bytes(10, 2));
    await expectCode(() => fs.rename('a', 'b'), ErrorCode.NOT_FOUND);
    assert.deepEqual(await readFile(fs, 'b'), bytes(10, 2));
  });

  test('reuse renames and returns a writable handle on the new name', async (fs) => {
    await writeFile(fs, 'old', bytes(1000, 1));
    await writeFile(fs, 'taken', bytes(10, 2));
    const file = await fs.reuse('old', 'taken');
    assert.equal(file.name, 'taken');
    await file.write([bytes(100, 3)], 0, { sync: true });
    assert.deepEqual(await readRange(file, 0, 100), bytes(100, 3));
    assert.ok((await file.size()) >= 100);
    await file.close();
    assert.deepEqual(await fs.list(), ['taken']);
    await expectCode(() => fs.reuse('old', 'other'), ErrorCode.NOT_FOUND);
  });

  test('syncDir resolves after creates, renames and removes', async (fs) => {
    await fs.syncDir();
    await writeFile(fs, 'a', bytes(10, 1));
    await fs.syncDir();
    await fs.rename('a', 'b');
    await fs.syncDir();
    await fs.remove('b');
    await fs.syncDir();
    assert.deepEqual(await fs.list(), []);
  });
}

function registerLocks<F extends FileSystem>(test: Register<F>): void {
  test('a second lock on the same name is LOCKED until released', async (fs) => {
    const lock = await fs.lock('LOCK');
    const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    assert.ok(error.message.length > 0);
    await lock.release();
    const again = await fs.lock('LOCK');
    await again.release();
  });

  test('releasing twice is harmless and does not release a later holder', async (fs) => {
    const first = await fs.lock('LOCK');
    await first.release();
    await first.release();
    const second = await fs.lock('LOCK');
    await first.release();
    await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    await second.release();
  });

  test('locks with different names are independent', async (fs) => {
    const a = await fs.lock('LOCK');
    const b = await fs.lock('OTHER.LOCK');
    await a.release();
    await b.release();
  });

  test('of many concurrent lock calls exactly one wins', async (fs) => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => fs.lock('LOCK')));
    const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<FileSystem['lock']>>> => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(isRaftlogError(r.reason, ErrorCode.LOCKED), `got ${String(r.reason)}`);
    }
    await won[0]!.value.release();
  });
}

function registerSiblingLocks<F extends FileSystem>(target: ConformanceTarget<F>): void {
  it('the lock excludes every other backend on the same directory', async (t) => {
    await withFs(target, async (fs, instance) => {
      if (instance.siblings === undefined) {
        t.skip('the target keeps no real directory');
        return;
      }
      const siblings = await instance.siblings();
      assert.ok(siblings.length > 0);
      for (const { name, fs: other } of siblings) {
        try {
          await other.init();
          const ours = await fs.lock('LOCK');
          await expectCode(() => other.lock('LOCK'), ErrorCode.LOCKED, `${name} while ${target.name} holds it:`);
          await ours.release();
          const theirs = await other.lock('LOCK');
          await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED, `${target.name} while ${name} holds it:`);
          await theirs.release();
        } finally {
          await other.close();
        }
      }
    });
  });
}

function registerClosed<F extends FileSystem>(test: Register<F>): void {
  test('every operation on a closed handle is CLOSED; closing twice is harmless', async (fs) => {
    const file = await fs.open('a', { create: true });
    await file.write([bytes(10, 1)], 0);
    await file.close();
    await file.close();
    await expectCode(() => file.read(new Uint8Array(10), 0, 10, 0), ErrorCode.CLOSED);
    await expectCode(() => file.write([bytes(1, 1)], 0), ErrorCode.CLOSED);
    await expectCode(() => file.write([bytes(1, 1)], 0, { sync: true }), ErrorCode.CLOSED);
    await expectCode(() => file.sync(), ErrorCode.CLOSED);
    await expectCode(() => file.truncate(0), ErrorCode.CLOSED);
    await expectCode(() => file.preallocate(0, 10), ErrorCode.CLOSED);
    await expectCode(() => file.size(), ErrorCode.CLOSED);
    assert.deepEqual(await readFile(fs, 'a'), bytes(10, 1), 'the file is intact');
  });
}

const BAD_NAMES = ['', '.', '..', '/a', 'a/b', 'a/', '../a', 'a\0b', 'a\\b', 'x'.repeat(256)];

function registerInvalid<F extends FileSystem>(test: Register<F>): void {
  test('invalid names are INVALID_ARGUMENT everywhere, without touching storage', async (fs) => {
    await writeFile(fs, 'ok', bytes(1, 1));
    for (const bad of BAD_NAMES) {
      const label = JSON.stringify(bad);
      await expectCode(() => fs.open(bad, { create: true }), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.exists(bad), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.remove(bad), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.rename('ok', bad), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.rename(bad, 'ok'), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.reuse('ok', bad), ErrorCode.INVALID_ARGUMENT, label);
      await expectCode(() => fs.lock(bad), ErrorCode.INVALID_ARGUMENT, label);
    }
    assert.deepEqual(await fs.list(), ['ok']);
  });

  test('a 255-byte name is fine, for files and for locks', async (fs) => {
    const name = 'n'.repeat(255);
    await writeFile(fs, name, bytes(1, 1));
    assert.deepEqual(await fs.list(), [name]);
    const lock = await fs.lock('l'.repeat(255));
    await lock.release();
    assert.deepEqual(await fs.list(), [name]);
  });

  test('bad offsets, lengths and buffers are INVALID_ARGUMENT', async (fs) => {
    const file = await fs.open('a', { create: true });
    const target = new Uint8Array(10);
    await expectCode(() => file.read(target, 0, 10, -1), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.read(target, 0, 11, 0), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.read(target, 5, 6, 0), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.read(target, 0, 1.5, 0), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.write([bytes(1, 1)], -1), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.write([bytes(1, 1)], Number.NaN), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.write([bytes(1, 1)], 2 ** 53), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.truncate(-1), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.preallocate(-1, 10), ErrorCode.INVALID_ARGUMENT);
    await expectCode(() => file.preallocate(0, -10), ErrorCode.INVALID_ARGUMENT);
    assert.equal(await file.size(), 0, 'nothing was written');
    await file.close();
  });
}

function registerReopen<F extends FileSystem>(target: ConformanceTarget<F>): void {
  it('a fresh instance over the same storage sees synced files and data', async (t) => {
    await withFs(target, async (fs, instance) => {
      if (instance.reopen === undefined) {
        t.skip('the target offers no second view of its storage');
        return;
      }
      await writeFile(fs, 'a', bytes(70_000, 1));
      await writeFile(fs, 'b', bytes(10, 2));
      await fs.rename('b', 'c');
      await fs.syncDir();
      const again = await instance.reopen();
      try {
        await again.init();
        assert.deepEqual((await again.list()).sort(), ['a', 'c']);
        assert.deepEqual(await readFile(again, 'a'), bytes(70_000, 1));
        assert.deepEqual(await readFile(again, 'c'), bytes(10, 2));
      } finally {
        await again.close();
      }
    });
  });
}

function registerCrash<F extends FileSystem>(target: ConformanceTarget<F>): void {
  const skip = target.crash === undefined ? 'the target cannot simulate a crash' : false;
  const crashTest = (title: string, body: (fs: F, crash: (fs: F) => Promise<FileSystem>) => Promise<void>): void => {
    it(title, { skip }, () => withFs(target, (fs) => body(fs, (f) => target.crash!(f))));
  };

  crashTest('data written with { sync: true } into a file whose creation was synced survives a crash', async (fs, crash) => {
    const file = await fs.open('log', { create: true });
    await fs.syncDir();
    await file.write([bytes(5000, 1), bytes(3000, 2)], 0, { sync: true });
    await file.write([bytes(2000, 3)], 8000, { sync: true });
    const after = await crash(fs);
    try {
      assert.ok(await after.exists('log'), 'a file whose creation was followed by syncDir survives');
      const survived = await readFile(after, 'log');
      assert.ok(survived.byteLength >= 10_000, `synced bytes are all there (got ${survived.byteLength})`);
      assert.deepEqual(survived.subarray(0, 10_000), concat([bytes(5000, 1), bytes(3000, 2), bytes(2000, 3)]));
    } finally {
      await after.close();
    }
  });

  crashTest('data behind a successful sync() survives a crash, and a synced rename stays renamed', async (fs, crash) => {
    await writeFile(fs, 'tmp', bytes(4096, 7)); // writeFile syncs the data
    await fs.rename('tmp', 'final');
    await fs.syncDir();
    const after = await crash(fs);
    try {
      assert.equal(await after.exists('tmp'), false);
      assert.deepEqual(await readFile(after, 'final'), bytes(4096, 7));
    } finally {
      await after.close();
    }
  });
}

// ---------------------------------------------------------------------------
// Helpers. They use only the FileSystem interface.

/**
 * Asserts that calling `call` returns a promise (backends never throw
 * synchronously) which rejects with a RaftlogError of `code`.
 */
export async function expectCode(call: () => Promise<unknown>, code: ErrorCode, label = ''): Promise<RaftlogError> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    assert.fail(`${label} threw synchronously instead of rejecting: ${String(error)}`);
  }
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (caught === undefined) assert.fail(`${label} resolved, expected ${code}`);
  assert.ok(caught instanceof RaftlogError, `${label} rejected with a non-RaftlogError: ${String(caught)}`);
  assert.equal(caught.code, code, `${label} ${caught.message}`);
  return caught;
}

/** Deterministic pseudo-random bytes, distinct per seed. */
export function bytes(length: number, seed: number): Uint8Array {
  return new Random(seed).bytes(length);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Faster than deepEqual on megabytes, which formats a diff of every byte. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

async function readRange(file: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const n = await file.read(out, 0, length, position);
  assert.equal(n, length, `read ${length} bytes at ${position} of ${file.name}`);
  return out;
}

async function readAll(file: FileHandle): Promise<Uint8Array> {
  return readRange(file, 0, await file.size());
}

/** The whole of `name`, read through `fs`. */
export async function readFile(fs: FileSystem, name: string): Promise<Uint8Array> {
  const file = await fs.open(name, { readOnly: true });
  try {
    return await readAll(file);
  } finally {
    await file.close();
  }
}

/** Creates or replaces `name` with `data`, synced. */
export async function writeFile(fs: FileSystem, name: string, data: Uint8Array): Promise<void> {
  const file = await fs.open(name, { create: true });
  try {
    await file.truncate(0);
    await file.write([data], 0, { sync: true });
  } finally {
    await file.close();
  }
}
