/**
 * EncryptedFs: confidentiality (no plaintext underneath), correctness at odd
 * offsets, key handling (wrong key, damaged or missing dictionary, rotation),
 * crash safety of the dictionary, and the central promise: no (key, IV,
 * counter) ever encrypts two different plaintexts, checked on the actual
 * keystream that reached the inner file system, across create, preallocate,
 * overwrite, truncate-and-rewrite, reuse, data-key and master-key rotation,
 * and reopen.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { DICTIONARY_NAME, DICTIONARY_TMP_NAME, EncryptedFs, HEADER_BYTES, spliceExtents, type IssuedKeyIv } from '../backends/encrypted.js';
import { CtrStream, counterAt, ctrIntoNative, ctrIntoNodeCrypto, ctrIntoOffThread } from '../backends/encryption/cipher.js';
import { MARK_BYTES, endMark, findEnd } from '../backends/encryption/end-mark.js';
import { SLOT_BYTES, SLOT_OFFSETS, decodeSlot } from '../backends/encryption/header.js';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import { Engine } from '../src/engine.js';
import { ErrorCode, RaftlogError } from '../src/errors.js';
import type { DirectoryLock, FileHandle, FileSystem, OpenOptions, WriteOptions } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { readFile as readFsFile, writeFile } from './conformance/suite.js';
import { Random } from './support/random.js';

const KEY_A = new Uint8Array(32).fill(0xa1);
const KEY_B = new Uint8Array(32).fill(0xb2);
const MARKER = new TextEncoder().encode('RAFTLOG-SECRET-PLAINTEXT-MARKER!');

// ---------------------------------------------------------------------------
// Helpers

/** Deterministic pseudo-random bytes, distinct per seed. */
function bytes(length: number, seed: number): Uint8Array {
  return new Random(seed).bytes(length);
}

/** A seeded draw in [0, n) for workloads. */
function prng(seed: number): (n: number) => number {
  const random = new Random(seed);
  return (n) => random.below(n);
}

/** `count` copies of MARKER, each followed by its number, so every copy is distinctive. */
function markerText(count: number, tag: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) parts.push(MARKER, new TextEncoder().encode(`${tag}#${i};`));
  return Buffer.concat(parts);
}

/** Concatenation as a plain Uint8Array (deepEqual tells Buffer from Uint8Array). */
function cat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle)) >= 0;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode, label = ''): Promise<RaftlogError> {
  const error = await promise.then(
    () => assert.fail(`${label}: resolved, expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof RaftlogError, `${label}: not a RaftlogError: ${String(error)}`);
  assert.equal(error.code, code, `${label}: ${error.message}`);
  return error;
}

async function rawDictionary(mem: MemFs): Promise<Buffer> {
  return Buffer.from(await readFsFile(mem, DICTIONARY_NAME));
}

async function putRaw(mem: FileSystem, name: string, data: Uint8Array): Promise<void> {
  await writeFile(mem, name, data);
}

async function withPosixDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-encrypted-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface InnerWrite {
  readonly name: string;
  readonly position: number;
  readonly data: Uint8Array;
}

/**
 * Forwards to an inner FileSystem and records every write that reaches it,
 * so the test sees exactly the ciphertext EncryptedFs handed down. `close`
 * does not close the inner one: several EncryptedFs instances in turn can
 * run over the same storage, as after a restart.
 */
class RecordingFs implements FileSystem {
  readonly writes: InnerWrite[] = [];
  readonly inner: FileSystem;
  readonly capabilities;
  readonly description: string;

  constructor(inner: FileSystem) {
    this.inner = inner;
    this.capabilities = inner.capabilities;
    this.description = `recording:${inner.description}`;
  }

  init(): Promise<void> {
    return this.inner.init();
  }
  list(): Promise<string[]> {
    return this.inner.list();
  }
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  async open(name: string, options?: OpenOptions): Promise<FileHandle> {
    return this.#wrap(await this.inner.open(name, options));
  }
  remove(name: string): Promise<void> {
    return this.inner.remove(name);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  async reuse(from: string, to: string): Promise<FileHandle> {
    return this.#wrap(await this.inner.reuse(from, to));
  }
  syncDir(): Promise<void> {
    return this.inner.syncDir();
  }
  lock(name: string): Promise<DirectoryLock> {
    return this.inner.lock(name);
  }
  async close(): Promise<void> {}

  #wrap(handle: FileHandle): FileHandle {
    const writes = this.writes;
    return {
      name: handle.name,
      read: (t, o, l, p) => handle.read(t, o, l, p),
      write: async (buffers: readonly Uint8Array[], position: number, options?: WriteOptions) => {
        writes.push({ name: handle.name, position, data: Uint8Array.from(Buffer.concat(buffers.map((b) => Buffer.from(b)))) });
        await handle.write(buffers, position, options);
      },
      sync: () => handle.sync(),
      truncate: (s) => handle.truncate(s),
      preallocate: (o, l) => handle.preallocate(o, l),
      size: () => handle.size(),
      close: () => handle.close(),
    };
  }
}

/** The keystream one inner write used: ciphertext XOR the plaintext it encrypted, at plaintext positions. */
interface KeystreamUse {
  readonly label: string;
  readonly position: number;
  readonly keystream: Uint8Array;
  readonly plaintext: Uint8Array;
}

/**
 * Pairs of keystream uses that overlap by at least 8 bytes and agree on the
 * whole overlap, over different plaintext: a reused (key, IV, counter) that
 * leaks the XOR of two plaintexts. Distinct keystreams agree on 8 bytes with
 * probability 2^-64, so any hit is real. The same plaintext under the same
 * keystream is the same ciphertext written again, which leaks nothing.
 */
function keystreamReuse(uses: readonly KeystreamUse[]): string[] {
  const hits: string[] = [];
  for (let i = 0; i < uses.length; i++) {
    for (let j = i + 1; j < uses.length; j++) {
      const a = uses[i]!;
      const b = uses[j]!;
      const from = Math.max(a.position, b.position);
      const to = Math.min(a.position + a.keystream.byteLength, b.position + b.keystream.byteLength);
      if (to - from < 8) continue;
      const sa = a.keystream.subarray(from - a.position, to - a.position);
      const sb = b.keystream.subarray(from - b.position, to - b.position);
      const pa = a.plaintext.subarray(from - a.position, to - a.position);
      const pb = b.plaintext.subarray(from - b.position, to - b.position);
      if (Buffer.compare(sa, sb) === 0 && Buffer.compare(pa, pb) !== 0)
        hits.push(`${a.label} and ${b.label} share keystream over [${from}, ${to})`);
    }
  }
  return hits;
}

/** A plaintext model of files, kept in step with what the test writes through EncryptedFs. */
class Model {
  readonly files = new Map<string, Uint8Array>();

  write(name: string, buffers: readonly Uint8Array[], position: number): void {
    const data = Buffer.concat(buffers.map((b) => Buffer.from(b)));
    const old = this.files.get(name) ?? new Uint8Array(0);
    const next = new Uint8Array(Math.max(old.byteLength, position + data.byteLength));
    next.set(old);
    next.set(data, position);
    this.files.set(name, next);
  }

  truncate(name: string, size: number): void {
    const old = this.files.get(name) ?? new Uint8Array(0);
    const next = new Uint8Array(size);
    next.set(old.subarray(0, size));
    this.files.set(name, next);
  }
}

// ---------------------------------------------------------------------------

describe('EncryptedFs: cipher arithmetic', () => {
  it('advances the 128-bit big-endian counter by offset / 16, with carries and wrap-around', () => {
    const iv = Buffer.alloc(16, 0);
    iv[15] = 0xff;
    iv[14] = 0xff;
    assert.equal(counterAt(iv, 16).toString('hex'), '00000000000000000000000000010000');
    assert.equal(counterAt(iv, 15).toString('hex'), iv.toString('hex'), 'same block, same counter');
    assert.equal(counterAt(Buffer.alloc(16, 0xff), 32).toString('hex'), '00000000000000000000000000000001', 'wraps modulo 2^128');
    const big = 2 ** 40 * 16 + 5;
    assert.equal(counterAt(Buffer.alloc(16, 0), big).toString('hex'), '00000000000000000000010000000000');
  });

  it('a stream started at any offset equals the same slice of a stream started at 0', () => {
    const key = bytes(32, 1);
    const iv = bytes(16, 2);
    const plain = bytes(5000, 3);
    const whole = new CtrStream(key, iv, 0).update(plain);
    for (const offset of [0, 1, 15, 16, 17, 31, 33, 1000, 4093]) {
      for (const length of [0, 1, 7, 16, 100, 907]) {
        if (offset + length > plain.byteLength) continue;
        const part = new CtrStream(key, iv, offset).update(plain.subarray(offset, offset + length));
        assert.deepEqual(part, whole.subarray(offset, offset + length), `offset ${offset} length ${length}`);
      }
    }
    // And the stream is really AES-CTR: a fresh IV gives a different keystream.
    assert.notDeepEqual(new CtrStream(key, bytes(16, 9), 0).update(plain.subarray(0, 64)), whole.subarray(0, 64));
  });

  it("the native data cipher (the OpenSSL Node links) gives node:crypto's keystream at any offset, split and in place, on and off the JS thread", async () => {
    // The addon is part of every build here; a machine without it runs the node:crypto path alone.
    assert.ok(ctrIntoNative !== undefined, 'the native addon exposes aesCtr');
    const native = ctrIntoNative;
    const key = bytes(32, 11);
    const iv = Buffer.alloc(16, 0xff); // counter wrap-around inside the range
    iv[0] = 7;
    const plain = bytes(70_000, 12);
    for (const offset of [0, 1, 15, 16, 17, 4095, 65_535]) {
      for (const splits of [[], [1], [15, 16], [5000], [4096, 4096, 3]]) {
        const length = plain.byteLength - offset;
        const inputs: Uint8Array[] = [];
        let at = offset;
        for (const size of splits) {
          inputs.push(plain.subarray(at, at + size));
          at += size;
        }
        inputs.push(plain.subarray(at));
        const expected = new Uint8Array(length);
        ctrIntoNodeCrypto(key, iv, offset, inputs, expected);
        const actual = new Uint8Array(length);
        native(key, iv, offset, inputs, actual);
        assert.ok(Buffer.compare(actual, expected) === 0, `offset ${offset} splits ${splits.join('+')}`);
        const inPlace = plain.slice(offset);
        native(key, iv, offset, [inPlace], inPlace);
        assert.ok(Buffer.compare(inPlace, expected) === 0, `in place, offset ${offset}`);
      }
    }
    // The addon keeps the last key's schedule: switching keys back and forth must never reuse a stale one.
    const other = bytes(32, 13);
    for (const k of [key, other, other, key, other]) {
      const expected = new Uint8Array(1000);
      ctrIntoNodeCrypto(k, iv, 33, [plain.subarray(0, 1000)], expected);
      const actual = new Uint8Array(1000);
      native(k, iv, 33, [plain.subarray(0, 1000)], actual);
      assert.ok(Buffer.compare(actual, expected) === 0, 'after a key switch');
    }
    // Off the JS thread: the same keystream, split inputs included.
    assert.ok(ctrIntoOffThread !== undefined, 'the native addon exposes aesCtrAsync');
    for (const offset of [0, 17, 65_535]) {
      const inputs = [plain.subarray(0, 24), plain.subarray(24, 4120), plain.subarray(4120)];
      const expected = new Uint8Array(plain.byteLength);
      ctrIntoNodeCrypto(key, iv, offset, inputs, expected);
      const actual = new Uint8Array(plain.byteLength);
      await ctrIntoOffThread(key, iv, offset, inputs, actual);
      assert.ok(Buffer.compare(actual, expected) === 0, `off the JS thread, offset ${offset}`);
    }
    await assert.rejects(ctrIntoOffThread(key, iv, 0, [new Uint8Array(11)], new Uint8Array(10)), TypeError);
    // Misuse is a TypeError before any byte changes.
    const output = new Uint8Array(10);
    assert.throws(() => native(key, iv, 0, [new Uint8Array(11)], output), TypeError);
    assert.throws(() => native(key.subarray(0, 16), iv, 0, [new Uint8Array(10)], output), TypeError);
    assert.deepEqual(output, new Uint8Array(10));
    // Inputs are encrypted straight into their places: one may be exactly its own place, but lie nowhere else in the output.
    const shared = new Uint8Array(20);
    native(key, iv, 0, [new Uint8Array(10), shared.subarray(10)], shared);
    assert.throws(() => native(key, iv, 0, [shared.subarray(10), new Uint8Array(10)], shared), TypeError);
    assert.throws(() => native(key, iv, 0, [shared.subarray(5, 15), new Uint8Array(10)], shared), TypeError);
  });

  it('spliceExtents gives a rewritten range its own IV and keeps the rest', () => {
    const iv = (n: number): Buffer => Buffer.alloc(16, n);
    const base = [{ start: 0, keyId: 1, iv: iv(1) }];
    const fresh = { keyId: 2, iv: iv(2) };
    assert.deepEqual(spliceExtents(base, 100, 150, 1000, fresh), [
      { start: 0, keyId: 1, iv: iv(1) },
      { start: 100, keyId: 2, iv: iv(2) },
      { start: 150, keyId: 1, iv: iv(1) },
    ]);
    assert.deepEqual(spliceExtents(base, 100, 2000, 1000, fresh), [
      { start: 0, keyId: 1, iv: iv(1) },
      { start: 100, keyId: 2, iv: iv(2) },
    ]);
    assert.deepEqual(spliceExtents(base, 0, 10, 0, fresh), [{ start: 0, keyId: 2, iv: iv(2) }]);
    const three = spliceExtents(base, 100, 150, 1000, fresh);
    assert.deepEqual(spliceExtents(three, 120, 150, 1000, { keyId: 3, iv: iv(3) }), [
      { start: 0, keyId: 1, iv: iv(1) },
      { start: 100, keyId: 2, iv: iv(2) },
      { start: 120, keyId: 3, iv: iv(3) },
      { start: 150, keyId: 1, iv: iv(1) },
    ]);
  });
});

describe('EncryptedFs: round trips', () => {
  async function randomWorkload(fs: FileSystem, oracle: FileSystem, seed: number): Promise<void> {
    const rand = prng(seed);
    const names = ['a', 'b'];
    const handles = new Map<string, [FileHandle, FileHandle]>();
    for (const name of names) handles.set(name, [await fs.open(name, { create: true }), await oracle.open(name, { create: true })]);
    for (let step = 0; step < 400; step++) {
      const name = names[rand(names.length)]!;
      const [h, o] = handles.get(name)!;
      const size = await o.size();
      assert.equal(await h.size(), size, `step ${step}: size of ${name}`);
      const op = rand(100);
      if (op < 45) {
        const count = 1 + rand(3);
        const buffers = Array.from({ length: count }, (_, i) => bytes(rand(300), seed * 1000 + step * 4 + i));
        // Mostly appends, some overwrites in the middle, some past the end.
        const position = op < 30 ? size : op < 40 ? rand(size + 1) : size + rand(50);
        const sync = rand(4) === 0;
        await h.write(buffers, position, { sync });
        await o.write(buffers, position, { sync });
      } else if (op < 52) {
        const target = rand(size + 100);
        await h.truncate(target);
        await o.truncate(target);
      } else if (op < 58) {
        const offset = rand(size + 200);
        const length = rand(2000);
        await h.preallocate(offset, length);
        await o.preallocate(offset, length);
      } else if (op < 62) {
        await h.sync();
      } else {
        const position = rand(size + 20);
        const length = rand(size + 40);
        const got = new Uint8Array(length + 3);
        const want = new Uint8Array(length + 3);
        const n = await h.read(got, 3, length, position);
        const m = await o.read(want, 3, length, position);
        assert.equal(n, m, `step ${step}: read length at ${position}+${length}`);
        assert.deepEqual(got, want, `step ${step}: read ${name} at ${position}+${length}`);
      }
    }
    for (const [h] of handles.values()) {
      await h.sync();
      await h.close();
    }
    await fs.syncDir();
  }

  it('matches a plaintext MemFs oracle at odd offsets and lengths, and after reopen (MemFs underneath)', async () => {
    for (const seed of [1, 2, 3]) {
      const inner = new MemFs();
      const fs = new EncryptedFs(inner, { masterKey: KEY_A });
      await fs.init();
      const oracle = new MemFs();
      await randomWorkload(fs, oracle, seed);
      const again = new EncryptedFs(MemFs.fromSnapshot(inner.snapshot()), { masterKey: KEY_A });
      for (const name of ['a', 'b'])
        assert.deepEqual(await readFsFile(again, name), await readFsFile(oracle, name), `seed ${seed}, ${name} after reopen`);
      assert.deepEqual((await again.list()).sort(), ['a', 'b']);
    }
  });

  it('matches a plaintext oracle over PosixFs, and after reopen', async () => {
    await withPosixDir(async (dir) => {
      const fs = new EncryptedFs(new PosixFs(dir), { masterKey: KEY_A });
      await fs.init();
      const oracle = new MemFs();
      await randomWorkload(fs, oracle, 7);
      await fs.close();
      const again = new EncryptedFs(new PosixFs(dir), { masterKey: KEY_A });
      for (const name of ['a', 'b']) assert.deepEqual(await readFsFile(again, name), await readFsFile(oracle, name), name);
      await again.close();
    });
  });

  it('preallocated space is never encrypted: it stays zeros underneath and reads as zeros', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    const h = await fs.open('log', { create: true });
    await h.preallocate(0, 10_000);
    const mine = bytes(100, 1);
    await h.write([mine], 0, { sync: true });
    assert.deepEqual(mine, bytes(100, 1), "the caller's buffer is never encrypted in place");
    await h.write([bytes(33, 2)], 100, { sync: true });
    assert.equal(await h.size(), 10_000);
    const raw = inner.snapshot().get('log')!;
    assert.equal(raw.byteLength, HEADER_BYTES + 10_000);
    const { fileId } = await fs.inspectFile('log');
    assert.deepEqual(
      Buffer.from(raw.subarray(HEADER_BYTES + 133, HEADER_BYTES + 133 + MARK_BYTES)),
      endMark(Buffer.from(fileId!, 'hex'), 133),
      'an end mark follows the data',
    );
    assert.ok(
      raw.subarray(HEADER_BYTES + 133 + MARK_BYTES).every((b) => b === 0),
      'the unwritten preallocated tail is plain zeros',
    );
    const out = new Uint8Array(10_000);
    await h.read(out, 0, 10_000, 0);
    assert.deepEqual(out.subarray(0, 133), cat([bytes(100, 1), bytes(33, 2)]));
    assert.ok(out.subarray(133).every((b) => b === 0));
    assert.equal((await fs.inspectFile('log')).hwm, 133);
    assert.equal(fs.issuedKeyIvs().length, 1, 'appends over preallocated space need no new IV');
    await h.close();
    // The HWM survives a reopen through the header, so zeros stay zeros (not decrypted zeros).
    const again = new EncryptedFs(MemFs.fromSnapshot(inner.snapshot()), { masterKey: KEY_A });
    const back = await readFsFile(again, 'log');
    assert.deepEqual(back.subarray(0, 133), out.subarray(0, 133));
    assert.ok(
      back.subarray(133).every((b) => b === 0),
      'after reopen the tail still reads as zeros',
    );
  });
});

describe('EncryptedFs: header leases and end marks', () => {
  const headerWrites = (fs: RecordingFs, name: string): number =>
    fs.writes.filter((w) => w.name === name && w.position < HEADER_BYTES).length;

  it('synced appends into preallocated space rewrite the header once per lease, not once per barrier; a reopen finds the exact HWM', async () => {
    const mem = new MemFs();
    const recording = new RecordingFs(mem);
    const fs = new EncryptedFs(recording, { masterKey: KEY_A });
    const leased = await fs.open('leased', { create: true });
    const exact = await fs.open('exact', { create: true });
    await leased.preallocate(0, 4 << 20);
    const before = { leased: headerWrites(recording, 'leased'), exact: headerWrites(recording, 'exact') };
    const appends = 600;
    for (let i = 0; i < appends; i++) {
      // 1,003 bytes: marks land at every alignment.
      await leased.write([bytes(1003, i)], i * 1003, { sync: true });
      await exact.write([bytes(1003, i)], i * 1003, { sync: true });
    }
    const leasedHeaders = headerWrites(recording, 'leased') - before.leased;
    assert.ok(leasedHeaders >= 1 && leasedHeaders <= 2, `${leasedHeaders} header writes for ${appends} barriers under a lease`);
    // No preallocated room for a mark: the header is exact at every barrier.
    assert.equal(headerWrites(recording, 'exact') - before.exact, appends);

    const end = appends * 1003;
    const again = new EncryptedFs(MemFs.fromSnapshot(mem.snapshot()), { masterKey: KEY_A });
    assert.equal((await again.inspectFile('leased')).hwm, end, 'the end mark gives the exact HWM');
    const back = await readFsFile(again, 'leased');
    assert.equal(back.byteLength, 4 << 20);
    assert.deepEqual(back.subarray(end - 1003, end), bytes(1003, appends - 1));
    assert.ok(
      back.subarray(end).every((b) => b === 0),
      'past the HWM: zeros, not the decrypted mark',
    );
    await leased.close();
    await exact.close();
  });

  it('a large write (encrypted off the JS thread) reads back, and so does a small one after it under the same IV', async () => {
    const mem = new MemFs();
    const fs = new EncryptedFs(mem, { masterKey: KEY_A });
    const h = await fs.open('big', { create: true });
    await h.preallocate(0, 2 << 20);
    const big = [bytes(24, 1), bytes(1_100_000, 2), bytes(8, 3)];
    await h.write(big, 0, { sync: true });
    await h.write([bytes(1000, 4)], 1_100_032, { sync: true });
    const back = await readFsFile(fs, 'big');
    assert.deepEqual(back.subarray(0, 1_101_032), cat([...big, bytes(1000, 4)]));
    assert.ok(!contains(mem.snapshot().get('big')!, bytes(1_100_000, 2).subarray(0, 64)), 'no plaintext underneath');
    assert.equal(fs.issuedKeyIvs().length, 1, 'one IV for both');
    await h.close();
  });

  it('findEnd: an end mark gives the exact end even after ciphertext ending in zero bytes; without one, the last nonzero byte; nothing past the floor, the floor', async () => {
    const mem = new MemFs();
    const fileId = '00112233445566778899aabbccddeeff';
    const h = await mem.open('f', { create: true });
    await h.preallocate(0, 8192);
    // "Ciphertext" whose last 5 bytes happen to be zero, then the mark.
    const data = cat([bytes(995, 7), new Uint8Array(5)]);
    await h.write([data, endMark(Buffer.from(fileId, 'hex'), 1100)], 100);
    assert.deepEqual(await findEnd(h, 0, fileId, 100, 1100 + 4096), { hwm: 1100, marked: true });
    // A mark of another generation or another end is not this one: the tail is torn, the HWM just past the last nonzero byte.
    assert.deepEqual(await findEnd(h, 0, 'ffeeddccbbaa99887766554433221100', 100, 8192), { hwm: 1116, marked: false });
    await h.write([new Uint8Array(MARK_BYTES)], 1100);
    assert.deepEqual(await findEnd(h, 0, fileId, 100, 8192), { hwm: 1095, marked: false });
    assert.deepEqual(await findEnd(h, 0, fileId, 2000, 8192), { hwm: 2000, marked: false });
    // A scan chunk boundary through the mark changes nothing (the scan reads 1 MiB at a time, backwards from the limit).
    await h.preallocate(0, 3 << 20);
    await h.write([bytes(100_000, 8), endMark(Buffer.from(fileId, 'hex'), 100_100)], 100);
    assert.deepEqual(await findEnd(h, 0, fileId, 100, 100_108 + (1 << 20)), { hwm: 100_100, marked: true });
    await h.close();
  });

  it('bytes an unsynced write left past the HWM before a restart are never taken for data, and never leased over', async () => {
    // The shape of torture seed 16: an exact header, a kill that keeps an
    // unsynced write's pages, then a shorter synced append.
    const mem = new MemFs();
    const first = new EncryptedFs(mem, { masterKey: KEY_A });
    const h = await first.open('log', { create: true });
    await h.write([bytes(500, 1)], 0, { sync: true });
    await h.write([bytes(700, 2)], 500); // unsynced; MemFs keeps it, as a kill keeps the page cache
    const afterKill = MemFs.fromSnapshot(mem.snapshot());
    const second = new EncryptedFs(afterKill, { masterKey: KEY_A });
    assert.equal((await second.inspectFile('log')).hwm, 500, 'the header said 500: the unsynced bytes read as zeros');
    const h2 = await second.open('log');
    await h2.write([bytes(30, 3)], 500, { sync: true });
    await h2.close();
    const third = new EncryptedFs(MemFs.fromSnapshot(afterKill.snapshot()), { masterKey: KEY_A });
    assert.equal((await third.inspectFile('log')).hwm, 530, 'no lease over the stale bytes: the HWM is exact');
    const back = await readFsFile(third, 'log');
    assert.deepEqual(back.subarray(0, 530), cat([bytes(500, 1), bytes(30, 3)]));
    assert.ok(back.subarray(530).every((b) => b === 0));
  });
});

describe('EncryptedFs: confidentiality', () => {
  async function lifecycle(fs: EncryptedFs): Promise<void> {
    await writeFile(fs, 'plain', markerText(200, 'plain'));
    const h = await fs.open('log', { create: true });
    await h.preallocate(0, 64 << 10);
    await h.write([markerText(50, 'log1'), markerText(3, 'log2')], 0, { sync: true });
    await h.write([markerText(10, 'over')], 17, { sync: true }); // overwrite in the middle
    await h.truncate(500);
    await h.write([markerText(20, 'tail')], 500, { sync: true }); // truncate, rewrite
    await h.close();
    await writeFile(fs, 'old', markerText(40, 'old'));
    const r = await fs.reuse('old', 'recycled');
    await r.write([markerText(5, 'recycled')], 0, { sync: true });
    await r.close();
    await fs.rotateDataKey();
    await writeFile(fs, 'rotated', markerText(30, 'rotated'));
    await fs.syncDir();
    // Sanity: the marker is there in plaintext, so the scan below can fail.
    assert.ok(contains(await readFsFile(fs, 'log'), MARKER));
    assert.ok(contains(await readFsFile(fs, 'rotated'), MARKER));
  }

  it('distinctive plaintext is nowhere in the raw bytes of an inner MemFs', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await lifecycle(fs);
    const raw = inner.snapshot();
    assert.ok(raw.size >= 5);
    for (const [name, data] of raw) {
      for (let cut = 0; cut + 12 <= MARKER.byteLength; cut += 4) {
        assert.equal(contains(data, MARKER.subarray(cut, cut + 12)), false, `${name} holds plaintext (marker bytes ${cut}..${cut + 12})`);
      }
    }
  });

  it('distinctive plaintext is nowhere in the files PosixFs wrote to disk', async () => {
    await withPosixDir(async (dir) => {
      const fs = new EncryptedFs(new PosixFs(dir), { masterKey: KEY_A });
      await lifecycle(fs);
      await fs.close();
      const names = await readdir(dir);
      assert.ok(names.includes(DICTIONARY_NAME) && names.includes('log'));
      for (const name of names) {
        const data = await readFile(join(dir, name));
        assert.equal(contains(data, MARKER.subarray(0, 12)), false, `${name} holds plaintext`);
        assert.equal(contains(data, MARKER.subarray(12, 24)), false, `${name} holds plaintext`);
      }
    });
  });
});

describe('EncryptedFs: bad keys and damage', () => {
  async function populated(): Promise<MemFs> {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(5000, 1));
    await fs.syncDir();
    return inner;
  }

  it('a wrong master key fails at init with BAD_KEY, and so does every later call, never garbage', async () => {
    const inner = await populated();
    const wrong = new EncryptedFs(inner, { masterKey: KEY_B });
    await expectCode(wrong.init(), ErrorCode.BAD_KEY, 'init');
    await expectCode(wrong.open('a', { readOnly: true }), ErrorCode.BAD_KEY, 'open');
    await expectCode(wrong.list(), ErrorCode.BAD_KEY, 'list');
    // Nothing was reset: the right key still reads the data.
    assert.deepEqual(await readFsFile(new EncryptedFs(inner, { masterKey: KEY_A }), 'a'), bytes(5000, 1));
  });

  it('a key provider supplies the master key; a wrong one is BAD_KEY', async () => {
    const inner = await populated();
    const bad = new EncryptedFs(inner, { keyProvider: { getMasterKey: async () => KEY_B } });
    await expectCode(bad.init(), ErrorCode.BAD_KEY);
    const good = new EncryptedFs(inner, { keyProvider: { getMasterKey: () => KEY_A } });
    assert.deepEqual(await readFsFile(good, 'a'), bytes(5000, 1));
    const short = new EncryptedFs(inner, { keyProvider: { getMasterKey: () => new Uint8Array(16) } });
    await expectCode(short.init(), ErrorCode.INVALID_ARGUMENT);
  });

  it('rejects malformed options up front', () => {
    const inner = new MemFs();
    assert.throws(() => new EncryptedFs(inner, { masterKey: new Uint8Array(31) }), { code: ErrorCode.INVALID_ARGUMENT });
    assert.throws(() => new EncryptedFs(inner, {}), { code: ErrorCode.INVALID_ARGUMENT });
    assert.throws(() => new EncryptedFs(inner, { masterKey: KEY_A, keyProvider: { getMasterKey: () => KEY_A } }), {
      code: ErrorCode.INVALID_ARGUMENT,
    });
  });

  it('a damaged key dictionary is CORRUPTION naming the file, and is left as it was, never reset', async () => {
    const inner = await populated();
    const original = await rawDictionary(inner);
    const damages: [string, (d: Buffer) => Buffer][] = [
      ['magic', (d) => flip(d, 0)],
      ['salt', (d) => flip(d, 20)],
      ['key check', (d) => flip(d, 30)],
      ['payload', (d) => flip(d, 80)],
      ['tag', (d) => flip(d, d.byteLength - 40)],
      ['checksum', (d) => flip(d, d.byteLength - 1)],
      ['truncated', (d) => d.subarray(0, d.byteLength - 100)],
      ['emptied', () => Buffer.alloc(0)],
      // Damage hidden from the checksum (recomputed): GCM still refuses it.
      ['tampered', (d) => reseal(flip(d, 90))],
    ];
    for (const [what, damage] of damages) {
      const damaged = damage(Buffer.from(original));
      await putRaw(inner, DICTIONARY_NAME, damaged);
      const error = await expectCode(new EncryptedFs(inner, { masterKey: KEY_A }).init(), ErrorCode.CORRUPTION, what);
      assert.equal(error.file, DICTIONARY_NAME, what);
      assert.deepEqual(await rawDictionary(inner), damaged, `${what}: the damaged dictionary is not overwritten`);
    }
    await putRaw(inner, DICTIONARY_NAME, original);
    assert.deepEqual(await readFsFile(new EncryptedFs(inner, { masterKey: KEY_A }), 'a'), bytes(5000, 1));
  });

  it('a missing dictionary next to encrypted files is CORRUPTION, not a fresh start', async () => {
    const inner = await populated();
    await inner.remove(DICTIONARY_NAME);
    const error = await expectCode(new EncryptedFs(inner, { masterKey: KEY_A }).init(), ErrorCode.CORRUPTION);
    assert.match(error.message, /missing/);
    assert.equal(await inner.exists(DICTIONARY_NAME), false, 'no new dictionary was written');
  });

  it('a file whose generation the dictionary does not know is CORRUPTION on open', async () => {
    const inner = await populated();
    const other = new MemFs();
    await new EncryptedFs(other, { masterKey: KEY_A }).init();
    await putRaw(inner, DICTIONARY_NAME, await rawDictionary(other)); // a dictionary from another directory, same key
    const error = await expectCode(new EncryptedFs(inner, { masterKey: KEY_A }).open('a'), ErrorCode.CORRUPTION);
    assert.equal(error.file, 'a');
  });

  it('a damaged header slot falls back to the other one; both damaged is CORRUPTION', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    const h = await fs.open('a', { create: true });
    await h.write([bytes(100, 1)], 0, { sync: true });
    await h.write([bytes(100, 2)], 100, { sync: true }); // headers in both slots now
    await h.close();
    const image = inner.snapshot();
    const raw = Buffer.from(image.get('a')!);
    const slot1 = flip(Buffer.from(raw), 4096 + 20);
    image.set('a', slot1);
    let data = await readFsFile(new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }), 'a');
    assert.equal(data.byteLength, 200);
    // The older slot's HWM (100) may be all that is left: never more than was durable, never garbage.
    assert.deepEqual(data.subarray(0, 100), bytes(100, 1));
    const slot0 = flip(Buffer.from(raw), 20);
    image.set('a', slot0);
    data = await readFsFile(new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }), 'a');
    assert.deepEqual(data, cat([bytes(100, 1), bytes(100, 2)]));
    image.set('a', flip(flip(Buffer.from(raw), 20), 4096 + 20));
    const error = await expectCode(new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }).open('a'), ErrorCode.CORRUPTION);
    assert.equal(error.file, 'a');
  });

  it('a file cut short while being created reads as empty and can be written; a foreign file is CORRUPTION', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await fs.init();
    await putRaw(inner, 'torn', bytes(30, 1)); // a torn first header write, nothing else
    assert.equal((await readFsFile(fs, 'torn')).byteLength, 0);
    const h = await fs.open('torn');
    await h.write([bytes(500, 2)], 0, { sync: true });
    await h.close();
    assert.deepEqual(await readFsFile(new EncryptedFs(MemFs.fromSnapshot(inner.snapshot()), { masterKey: KEY_A }), 'torn'), bytes(500, 2));
    await putRaw(inner, 'foreign', bytes(HEADER_BYTES + 100, 3)); // data, but no header EncryptedFs wrote
    const error = await expectCode(fs.open('foreign', { readOnly: true }), ErrorCode.CORRUPTION);
    assert.equal(error.file, 'foreign');
  });

  it('flipped ciphertext flips the plaintext read back (CTR has no integrity; the engine CRC is the check)', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(1000, 1));
    const image = inner.snapshot();
    const raw = Buffer.from(image.get('a')!);
    raw[HEADER_BYTES + 321]! ^= 0x10;
    image.set('a', raw);
    const read = await readFsFile(new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }), 'a');
    const want = bytes(1000, 1);
    assert.notDeepEqual(read, want);
    assert.equal(read[321], want[321]! ^ 0x10);
    read[321] = want[321]!;
    assert.deepEqual(read, want, 'only the flipped byte differs');
  });

  it('the engine over EncryptedFs recovers under AbsoluteConsistency, and reports flipped ciphertext as CORRUPTION', async () => {
    const inner = new MemFs();
    const text = new TextEncoder();
    let engine = new Engine({ fs: new EncryptedFs(inner, { masterKey: KEY_A }), seed: 1, recoveryMode: RecoveryMode.AbsoluteConsistency });
    await engine.open();
    for (let i = 0; i < 5; i++) {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: i + 1, term: 1, data: text.encode(`secret entry ${i} `.repeat(20)) }]);
      await engine.write(batch, { sync: true });
    }
    await engine.close();
    // Preallocated space must read as zeros after reopen, or strict recovery would see garbage.
    engine = new Engine({ fs: new EncryptedFs(inner, { masterKey: KEY_A }), seed: 1, recoveryMode: RecoveryMode.AbsoluteConsistency });
    await engine.open();
    assert.equal(engine.lastIndex(1), 5);
    assert.equal(new TextDecoder().decode((await engine.getEntry(1, 3))!.data), 'secret entry 2 '.repeat(20));
    await engine.close();
    const image = inner.snapshot();
    for (const [, data] of image) assert.equal(contains(data, text.encode('secret entry')), false);
    const [logName, logBytes] = [...image].find(([n]) => n.endsWith('.raftlog'))!;
    const hwm = (await new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }).inspectFile(logName)).hwm;
    const damaged = Buffer.from(logBytes);
    damaged[HEADER_BYTES + Math.floor(hwm / 2)]! ^= 0x01; // inside a record, not the torn-tail zone
    image.set(logName, damaged);
    // A full replay: an open from the index checkpoint the clean close wrote would not re-read the damaged record.
    const broken = new Engine({
      fs: new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }),
      seed: 1,
      recoveryMode: RecoveryMode.AbsoluteConsistency,
      indexCheckpoint: false,
    });
    await expectCode(broken.open(), ErrorCode.CORRUPTION, 'engine open over flipped ciphertext');
  });
});

describe('EncryptedFs: under the engine', () => {
  it('rotating log files survive reopen under AbsoluteConsistency, and synced entries survive a power loss', async () => {
    const text = new TextEncoder();
    const entry = (i: number): Uint8Array => text.encode(`entry ${i} `.repeat(20 + (i % 7) * 10));
    for (const policy of ['dropUnsynced', 'tornGarbage', 'mixed'] as const) {
      const fault = new FaultFs(new MemFs(), { seed: 77 });
      let engine = new Engine({ fs: new EncryptedFs(fault, { masterKey: KEY_A }), seed: 1, targetFileSize: 4096, preallocateBytes: 8192 });
      await engine.open();
      for (let i = 1; i <= 60; i++) {
        const batch = new LogBatch();
        batch.addEntries(1 + (i % 3), [{ index: Math.ceil(i / 3), term: 1, data: entry(i) }]);
        await engine.write(batch, { sync: i % 4 === 0 });
      }
      await engine.sync();
      const image = await fault.crashImage(policy);
      const logFiles = [...image.keys()].filter((n) => n !== DICTIONARY_NAME);
      assert.ok(logFiles.length >= 3, `files rotated (${logFiles.join(', ')})`);
      engine = new Engine({
        fs: new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A }),
        seed: 1,
        targetFileSize: 4096,
        recoveryMode: RecoveryMode.AbsoluteConsistency,
      });
      await engine.open();
      for (let i = 1; i <= 60; i++) {
        const got = await engine.getEntry(1 + (i % 3), Math.ceil(i / 3));
        assert.deepEqual(got?.data, entry(i), `${policy}: entry ${i}`);
      }
      // And it keeps going: more writes after recovery, then a clean reopen.
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: 21, term: 2, data: entry(61) }]);
      await engine.write(batch, { sync: true });
      await engine.close();
    }
  });
});

describe('EncryptedFs: (key, IV) uniqueness over the file lifecycle', () => {
  it('no keystream is ever reused: create, preallocate, overwrite, truncate+rewrite, reuse, rotations, reopen', async () => {
    const rec = new RecordingFs(new MemFs());
    const model = new Model();
    const uses: KeystreamUse[] = [];
    const issued: IssuedKeyIv[] = [];
    let step = 0;

    /** Writes through EncryptedFs and derives the keystream each resulting inner data write used. */
    async function put(h: FileHandle, buffers: Uint8Array[], position: number, sync = true): Promise<void> {
      const before = rec.writes.length;
      await h.write(buffers, position, { sync });
      model.write(h.name, buffers, position);
      const plain = model.files.get(h.name)!;
      for (const w of rec.writes.slice(before)) {
        if (w.name !== h.name || w.position < HEADER_BYTES) continue; // headers and the dictionary carry no data
        const at = w.position - HEADER_BYTES;
        const keystream = Buffer.from(w.data);
        for (let i = 0; i < keystream.byteLength; i++) keystream[i]! ^= plain[at + i]!;
        uses.push({
          label: `step ${step} (${h.name}@${position})`,
          position: at,
          keystream,
          plaintext: plain.slice(at, at + keystream.byteLength),
        });
      }
      step++;
    }

    let fs = new EncryptedFs(rec, { masterKey: KEY_A });
    // create + preallocate + appends: one IV.
    const a = await fs.open('a', { create: true });
    await a.preallocate(0, 1 << 16);
    await put(a, [bytes(1000, 1)], 0);
    await put(a, [bytes(333, 2), bytes(17, 3)], 1000, false);
    await put(a, [bytes(500, 4)], 1350);
    assert.equal(fs.issuedKeyIvs().length, 1, 'appends into preallocated space reuse nothing and need no new IV');
    // Overwrite in the middle: a new IV for that range only.
    await put(a, [bytes(50, 5)], 100);
    assert.equal(fs.issuedKeyIvs().at(-1)!.reason, 'rewrite');
    // Truncate and rewrite the tail (what recovery does): a new IV again.
    await a.truncate(777);
    model.truncate('a', 777);
    await put(a, [bytes(900, 6)], 777);
    // The same bytes rewritten with the same content: the same ciphertext goes
    // down again (it re-dirties the pages, as the engine means it to), which
    // leaks nothing and so needs no new IV: on a full disk it must work.
    const beforeSame = fs.issuedKeyIvs().length;
    await put(a, [bytes(900, 6)], 777);
    assert.equal(fs.issuedKeyIvs().length, beforeSame, 'an unchanged rewrite issues no IV');
    // One byte different, and it is a rewrite under a fresh IV.
    const changed = bytes(900, 6);
    changed[899] ^= 1;
    await put(a, [changed], 777);
    assert.equal(fs.issuedKeyIvs().at(-1)!.reason, 'rewrite');
    // A second handle on the same file shares the frontier: its write is not a reuse either.
    const a2 = await fs.open('a');
    await put(a2, [bytes(64, 7)], 777 + 900);
    await put(a2, [bytes(64, 8)], 777 + 900);
    await a2.close();
    // Recycling.
    const b = await fs.open('b', { create: true });
    await put(b, [bytes(2000, 9)], 0);
    await b.close();
    const c = await fs.reuse('b', 'c');
    model.files.set('c', new Uint8Array(2000)); // recycled bytes read as zeros
    model.files.delete('b');
    await put(c, [bytes(1500, 10)], 0);
    // Data-key rotation: new files use the new key, old files keep going.
    const newKey = await fs.rotateDataKey();
    assert.equal(newKey, 2);
    const d = await fs.open('d', { create: true });
    await put(d, [bytes(700, 11)], 0);
    await put(a, [bytes(80, 12)], model.files.get('a')!.byteLength);
    // Master-key rotation rewraps; data keeps flowing under the same data keys.
    await fs.rotateMasterKey(KEY_B);
    await put(d, [bytes(10, 13)], 700);
    await put(d, [bytes(10, 14)], 750); // a gap, encrypted as zeros
    await put(c, [bytes(100, 15)], 1500);
    for (const h of [a, c, d]) await h.close();
    await fs.syncDir();
    issued.push(...fs.issuedKeyIvs());
    assert.equal((await fs.inspectFile('d')).extents[0]!.keyId, 2);
    assert.equal((await fs.inspectFile('c')).extents[0]!.keyId, 1);

    // Reopen (as after a crash: the old instance is simply abandoned) and append: the frontier is unknown, so a new IV.
    fs = new EncryptedFs(rec, { masterKey: KEY_B });
    const a3 = await fs.open('a');
    await put(a3, [bytes(120, 16)], model.files.get('a')!.byteLength);
    await put(a3, [bytes(120, 17)], model.files.get('a')!.byteLength);
    assert.deepEqual(
      fs.issuedKeyIvs().map((i) => i.reason),
      ['reopen'],
    );
    await a3.truncate(10);
    model.truncate('a', 10);
    await put(a3, [bytes(10, 18)], 10);
    await a3.close();
    issued.push(...fs.issuedKeyIvs());

    // Every file reads back as modelled.
    for (const [name, data] of model.files) assert.deepEqual(await readFsFile(fs, name), data, name);

    // The bookkeeping: every issued (key, IV) pair is distinct.
    const pairs = issued.map((i) => `${i.keyId}:${i.iv}`);
    assert.equal(new Set(pairs).size, pairs.length, `duplicate (key, IV) among ${pairs.join(', ')}`);
    assert.deepEqual(new Set(issued.map((i) => i.reason)), new Set(['create', 'rewrite', 'reuse', 'reopen']));

    // The cryptography: no two inner writes share keystream at any position.
    assert.ok(uses.length >= 15);
    assert.deepEqual(keystreamReuse(uses), []);
    // The detector itself can fail: the same keystream over different plaintext is flagged.
    const other = uses[0]!.plaintext.map((b) => b ^ 0x5a);
    assert.equal(keystreamReuse([uses[0]!, { ...uses[0]!, label: 'copy', plaintext: other }]).length, 1);
  });
});

describe('EncryptedFs: key rotation', () => {
  it('rotateDataKey: new files get the new key, old files stay readable, also after reopen', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'old', bytes(3000, 1));
    assert.equal(await fs.rotateDataKey(), 2);
    await writeFile(fs, 'new', bytes(3000, 2));
    assert.equal(await fs.rotateDataKey(), 3);
    await fs.syncDir();
    assert.equal((await fs.inspectFile('old')).extents[0]!.keyId, 1);
    assert.equal((await fs.inspectFile('new')).extents[0]!.keyId, 2);
    const stats = await fs.stats();
    assert.equal(stats.currentKeyId, 3);
    assert.deepEqual(
      stats.dataKeys.map((k) => k.id),
      [1, 2, 3],
    );
    const again = new EncryptedFs(MemFs.fromSnapshot(inner.snapshot()), { masterKey: KEY_A });
    assert.deepEqual(await readFsFile(again, 'old'), bytes(3000, 1));
    assert.deepEqual(await readFsFile(again, 'new'), bytes(3000, 2));
    assert.equal((await again.stats()).currentKeyId, 3);
    await writeFile(again, 'newer', bytes(10, 3));
    assert.equal((await again.inspectFile('newer')).extents[0]!.keyId, 3);
  });

  it('rotateMasterKey rewraps the data keys without rewriting data', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(4000, 1));
    await fs.syncDir();
    const before = inner.snapshot();
    await fs.rotateMasterKey(KEY_B);
    const after = inner.snapshot();
    assert.deepEqual(after.get('a'), before.get('a'), 'data files are untouched');
    assert.notDeepEqual(after.get(DICTIONARY_NAME), before.get(DICTIONARY_NAME));
    assert.deepEqual(await readFsFile(fs, 'a'), bytes(4000, 1));
    await expectCode(new EncryptedFs(MemFs.fromSnapshot(after), { masterKey: KEY_A }).init(), ErrorCode.BAD_KEY);
    assert.deepEqual(await readFsFile(new EncryptedFs(MemFs.fromSnapshot(after), { masterKey: KEY_B }), 'a'), bytes(4000, 1));
  });

  it('an interrupted master-key rotation is finished by init() given the previous key', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(100, 1));
    await fs.syncDir();
    const old = inner.snapshot(); // a crash before the rotated dictionary's rename was durable leaves this
    await expectCode(new EncryptedFs(MemFs.fromSnapshot(old), { masterKey: KEY_B }).init(), ErrorCode.BAD_KEY);
    const disk = MemFs.fromSnapshot(old);
    const resumed = new EncryptedFs(disk, { masterKey: KEY_B, previousMasterKeys: [KEY_A] });
    assert.deepEqual(await readFsFile(resumed, 'a'), bytes(100, 1));
    // Resealed under the new key: the previous key is no longer needed, nor accepted.
    assert.deepEqual(await readFsFile(new EncryptedFs(disk, { masterKey: KEY_B }), 'a'), bytes(100, 1));
    await expectCode(new EncryptedFs(disk, { masterKey: KEY_A }).init(), ErrorCode.BAD_KEY);
  });
});

describe('EncryptedFs: directory operations and the dictionary', () => {
  it('hides the dictionary from list and exists, and refuses its names', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await fs.init();
    assert.deepEqual(await fs.list(), []);
    assert.deepEqual(await inner.list(), [DICTIONARY_NAME]);
    assert.equal(await fs.exists(DICTIONARY_NAME), false);
    for (const name of [DICTIONARY_NAME, DICTIONARY_TMP_NAME]) {
      await expectCode(fs.open(name, { create: true }), ErrorCode.INVALID_ARGUMENT, name);
      await expectCode(fs.remove(name), ErrorCode.INVALID_ARGUMENT, name);
      await expectCode(fs.rename(name, 'x'), ErrorCode.INVALID_ARGUMENT, name);
      await expectCode(fs.lock(name), ErrorCode.INVALID_ARGUMENT, name);
    }
    assert.equal(fs.capabilities.backend, 'encrypted');
    assert.equal(fs.capabilities.writeAlignment, inner.capabilities.writeAlignment);
    assert.equal(fs.unwrap(), inner);
  });

  it('reuse starts a new generation: nothing old is readable, the old bytes are not rewritten, the old entry goes after syncDir', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'old', bytes(5000, 1));
    await fs.syncDir();
    const oldInfo = await fs.inspectFile('old');
    const rawBefore = inner.snapshot().get('old')!;
    const h = await fs.reuse('old', 'new');
    assert.equal(await h.size(), 5000);
    const out = new Uint8Array(5000);
    await h.read(out, 0, 5000, 0);
    assert.ok(
      out.every((b) => b === 0),
      'recycled bytes read as zeros',
    );
    const rawAfter = inner.snapshot().get('new')!;
    assert.deepEqual(rawAfter.subarray(HEADER_BYTES), rawBefore.subarray(HEADER_BYTES), 'no data rewritten by reuse');
    const newInfo = await fs.inspectFile('new');
    assert.notEqual(newInfo.fileId, oldInfo.fileId);
    assert.notDeepEqual(newInfo.extents[0]!.iv, oldInfo.extents[0]!.iv);
    await h.write([bytes(10, 2)], 0, { sync: true });
    await h.close();
    assert.equal((await fs.stats()).files.length, 2, 'old entry kept until the rename is durable');
    await fs.syncDir();
    assert.deepEqual(
      (await fs.stats()).files.map((f) => f.fileId),
      [newInfo.fileId],
    );
    const again = new EncryptedFs(MemFs.fromSnapshot(inner.snapshot()), { masterKey: KEY_A });
    const back = await readFsFile(again, 'new');
    assert.deepEqual(back.subarray(0, 10), bytes(10, 2));
    assert.ok(back.subarray(10).every((b) => b === 0));
  });

  it("rename needs no dictionary change and a replaced file's entry is dropped after syncDir", async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(100, 1));
    await writeFile(fs, 'b', bytes(100, 2));
    await fs.syncDir();
    const dict = await rawDictionary(inner);
    await fs.rename('a', 'b');
    assert.deepEqual(await rawDictionary(inner), dict, 'rename alone does not touch the dictionary');
    assert.deepEqual(await readFsFile(fs, 'b'), bytes(100, 1));
    await fs.syncDir();
    assert.equal((await fs.stats()).files.length, 1);
    await fs.remove('b');
    await fs.syncDir();
    assert.equal((await fs.stats()).files.length, 0);
  });

  it('a stale tmp dictionary from a crash before the rename is ignored and removed', async () => {
    const inner = new MemFs();
    const fs = new EncryptedFs(inner, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(100, 1));
    await fs.syncDir();
    const committed = await rawDictionary(inner);
    await fs.rotateDataKey(); // the update the crash interrupts
    const interrupted = await rawDictionary(inner);
    // Crash after the tmp file was written and synced, before the rename: old dictionary in place, new one as tmp.
    await putRaw(inner, DICTIONARY_NAME, committed);
    await putRaw(inner, DICTIONARY_TMP_NAME, interrupted);
    const again = new EncryptedFs(inner, { masterKey: KEY_A });
    assert.deepEqual(await readFsFile(again, 'a'), bytes(100, 1));
    assert.equal((await again.stats()).currentKeyId, 1, 'the committed dictionary is the truth');
    assert.equal(await inner.exists(DICTIONARY_TMP_NAME), false);
    // A torn (garbage) tmp file is just as harmless.
    await putRaw(inner, DICTIONARY_TMP_NAME, bytes(77, 3));
    assert.deepEqual(await readFsFile(new EncryptedFs(inner, { masterKey: KEY_A }), 'a'), bytes(100, 1));
  });
});

describe('EncryptedFs: crash at every operation', () => {
  /**
   * A workload touching every dictionary update (create, rewrite, reuse,
   * both rotations) and every header path (sync writes, truncate). `acked`
   * holds, per file, the bytes a crash must not lose.
   */
  async function workload(fs: EncryptedFs, acked: Map<string, Uint8Array>): Promise<void> {
    const a = await fs.open('a', { create: true });
    await fs.syncDir();
    await a.preallocate(0, 16_384);
    await a.write([bytes(1000, 1)], 0, { sync: true });
    acked.set('a', bytes(1000, 1));
    await a.write([bytes(700, 2)], 1000, { sync: true });
    acked.set('a', cat([bytes(1000, 1), bytes(700, 2)]));
    await fs.rotateDataKey();
    // Once a truncate is issued a crash may apply it, so only the prefix stays promised.
    acked.set('a', bytes(1000, 1));
    await a.truncate(1000);
    await a.write([bytes(300, 3)], 1000, { sync: true });
    acked.set('a', cat([bytes(1000, 1), bytes(300, 3)]));
    await a.close();
    const b = await fs.open('b', { create: true });
    await fs.syncDir();
    await b.write([bytes(2000, 4)], 0, { sync: true });
    acked.set('b', bytes(2000, 4));
    await b.close();
    acked.delete('b');
    const c = await fs.reuse('b', 'c');
    await fs.syncDir();
    await c.write([bytes(400, 5)], 0, { sync: true });
    acked.set('c', bytes(400, 5));
    await c.close();
    await fs.rotateMasterKey(KEY_B);
    const a2 = await fs.open('a');
    await a2.write([bytes(50, 6)], 1300, { sync: true });
    acked.set('a', cat([bytes(1000, 1), bytes(300, 3), bytes(50, 6)]));
    await a2.close();
    // Appends under a header lease: each synced one is found by its end mark
    // alone, and the unsynced last one may land torn.
    const d = await fs.open('d', { create: true });
    await fs.syncDir();
    await d.preallocate(0, 8192);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      const part = bytes(101 + 40 * i, 10 + i);
      await d.write(
        [part],
        parts.reduce((n, p) => n + p.byteLength, 0),
        { sync: true },
      );
      parts.push(part);
      acked.set('d', cat(parts));
    }
    await d.write(
      [bytes(333, 20)],
      parts.reduce((n, p) => n + p.byteLength, 0),
    );
    await d.close();
  }

  it('the dictionary always loads and every synced byte reads back, whatever survived', async () => {
    const reference = new FaultFs(new MemFs(), { seed: 1 });
    await workload(new EncryptedFs(reference, { masterKey: KEY_A }), new Map());
    const totalOps = reference.opIndex;
    assert.ok(totalOps > 40, `the workload spans many inner operations (${totalOps})`);
    let checked = 0;
    for (let k = 0; k < totalOps; k++) {
      const fault = new FaultFs(new MemFs(), { seed: 1000 + k });
      fault.freezeAt(k);
      const acked = new Map<string, Uint8Array>();
      await workload(new EncryptedFs(fault, { masterKey: KEY_A }), acked).catch(() => undefined);
      for (const policy of ['dropUnsynced', 'keepPrefix', 'keepPages', 'tornGarbage', 'mixed'] as const) {
        const image = await fault.crashImage(policy);
        if (!image.has(DICTIONARY_NAME)) {
          // Only possible before the very first dictionary save completed, when no data exists yet.
          assert.equal(acked.size, 0, `k=${k} ${policy}: dictionary lost after data was acknowledged`);
          continue;
        }
        const after = new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_B, previousMasterKeys: [KEY_A] });
        const label = `k=${k} ${policy} (seed ${1000 + k})`;
        await after.init().catch((e: unknown) => assert.fail(`${label}: init failed: ${String(e)}`));
        for (const [name, want] of acked) {
          const got = await readFsFile(after, name).catch((e: unknown) => assert.fail(`${label}: reading ${name} failed: ${String(e)}`));
          assert.ok(got.byteLength >= want.byteLength, `${label}: ${name} has ${got.byteLength} bytes, ${want.byteLength} were synced`);
          assert.deepEqual(got.subarray(0, want.byteLength), want, `${label}: synced bytes of ${name}`);
        }
        // And the survivor keeps working: it can write and read a new file.
        await writeFile(after, 'probe', bytes(64, 99));
        assert.deepEqual(await readFsFile(after, 'probe'), bytes(64, 99));
        checked++;
      }
    }
    assert.ok(checked > 100);
  });
});

// ---------------------------------------------------------------------------

function flip(data: Buffer, at: number): Buffer {
  const out = Buffer.from(data);
  out[at]! ^= 0x04;
  return out;
}

/** Recomputes the dictionary's trailing SHA-256, to model damage that slipped past it. */
function reseal(data: Buffer): Buffer {
  const body = data.subarray(0, data.byteLength - 32);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('EncryptedFs: a full disk and a failed barrier (found by the torture suite on EncryptedFs)', () => {
  it('a blank file left by a crash opens for writing and is removed with no free space; its first write gets a generation', async () => {
    const disk = new MemFs();
    const blank = await disk.open('0000000000000001.raftlog', { create: true });
    await blank.close();
    const fault = new FaultFs(disk, { seed: 1 });
    const fs = new EncryptedFs(fault, { masterKey: KEY_A });
    await fs.init();
    const full = fault.inject({ ops: 'any', when: { afterBytes: 0 }, error: 'ENOSPC' });
    // Recovery opens a file that died during creation for writing and removes it: no dictionary save.
    const handle = await fs.open('0000000000000001.raftlog');
    assert.equal(await handle.size(), 0);
    await handle.close();
    full.remove();
    const again = await fs.open('0000000000000001.raftlog');
    await again.write([MARKER], 0, { sync: true });
    assert.deepEqual(await readFsFile(fs, '0000000000000001.raftlog'), MARKER);
    await again.close();
    const reopened = new EncryptedFs(disk, { masterKey: KEY_A });
    assert.deepEqual(await readFsFile(reopened, '0000000000000001.raftlog'), MARKER, 'the generation was saved with its headers');
    await fs.remove('0000000000000001.raftlog');
    await fs.syncDir();
  });

  it('an unchanged rewrite that runs past the HWM with zeros needs no new IV, so it works on a full disk (torture seeds 6603, 8864)', async () => {
    // A crash can leave the HWM just short of a record's alignment padding;
    // the engine's resume re-dirties the record with that padding.
    const disk = new MemFs();
    const before = new EncryptedFs(disk, { masterKey: KEY_A });
    const h = await before.open('log', { create: true });
    await h.preallocate(0, 4096);
    const data = bytes(124, 3);
    await h.write([data], 0, { sync: true });
    await h.close();
    const fault = new FaultFs(MemFs.fromSnapshot(disk.snapshot()), { seed: 3 });
    const fs = new EncryptedFs(fault, { masterKey: KEY_A });
    const again = await fs.open('log'); // a restart: the IV's frontier is unknown, so new bytes need a fresh IV
    const full = fault.inject({ ops: 'any', when: { afterBytes: 0 }, error: 'ENOSPC' });
    await again.write([data.subarray(80), new Uint8Array(4)], 80, { sync: true });
    await expectCode(again.write([data.subarray(80), bytes(4, 9)], 80, { sync: true }), ErrorCode.NO_SPACE, 'new bytes past the HWM');
    full.remove();
    assert.equal(fs.issuedKeyIvs().length, 0, 'no IV was issued');
    assert.equal((await fs.inspectFile('log')).hwm, 124);
    const back = await readFsFile(fs, 'log');
    assert.deepEqual(back.subarray(0, 124), data);
    assert.ok(back.subarray(124).every((b) => b === 0));
    await again.close();
  });

  it("init keeps a generation that a recycled file's older header slot still names (torture seed 9910)", async () => {
    // reuse puts the new generation's header in the other slot. Until that
    // header is durable, a power loss brings back the old one, so init must
    // not drop the old generation just because the page cache shows the new.
    const disk = new MemFs();
    const fs = new EncryptedFs(disk, { masterKey: KEY_A });
    await writeFile(fs, 'old', bytes(100, 1));
    const oldId = (await fs.inspectFile('old')).fileId!;
    const recycled = await fs.reuse('old', 'new');
    await recycled.close(); // and a crash before syncDir saved the drop of the old generation
    const image = disk.snapshot();
    const restarted = new EncryptedFs(MemFs.fromSnapshot(image), { masterKey: KEY_A });
    await restarted.init();
    assert.ok(
      (await restarted.stats()).files.some((f) => f.fileId === oldId),
      'the old generation is kept',
    );
    // The new header's slot is lost to the power loss: the file names the old generation again.
    const raw = Uint8Array.from(image.get('new')!);
    for (const offset of SLOT_OFFSETS) {
      const slot = decodeSlot(raw.subarray(offset, offset + SLOT_BYTES));
      if (typeof slot === 'object' && slot.fileId !== oldId) raw.fill(0, offset, offset + SLOT_BYTES);
    }
    const afterLoss = MemFs.fromSnapshot(image);
    await putRaw(afterLoss, 'new', raw);
    const reopened = new EncryptedFs(afterLoss, { masterKey: KEY_A });
    assert.deepEqual(
      (await readFsFile(reopened, 'new')).subarray(0, 100),
      bytes(100, 1),
      'readable under the old generation, not CORRUPTION',
    );
  });

  it('removing files on a full disk succeeds; the dictionary drop waits for space', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 2 });
    const fs = new EncryptedFs(fault, { masterKey: KEY_A });
    await writeFile(fs, 'a', bytes(100, 1));
    await fs.syncDir();
    const full = fault.inject({ ops: 'any', when: { afterBytes: 0 }, error: 'ENOSPC' });
    await fs.remove('a');
    await fs.syncDir();
    assert.equal(await fs.exists('a'), false);
    full.remove();
    await fs.syncDir();
  });

  it('a failed create leaves no blank file behind', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 3 });
    const fs = new EncryptedFs(fault, { masterKey: KEY_A });
    await fs.init();
    const failing = fault.inject({ ops: ['sync'], path: 'x', when: { script: 'fail' }, error: 'EIO' });
    await assert.rejects(fs.open('x', { create: true, exclusive: true }), { code: 'IO' });
    failing.remove();
    assert.equal(await fs.exists('x'), false);
  });

  it('a restart after a failed barrier writes the header it read again, so the next barrier makes it durable', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 4 });
    let fs = new EncryptedFs(fault, { masterKey: KEY_A });
    const handle = await fs.open('log', { create: true });
    await fs.syncDir();
    await handle.write([bytes(64, 1)], 0, { sync: true });
    await handle.write([bytes(64, 2)], 64);
    const failing = fault.inject({ ops: ['sync'], path: 'log', when: { script: 'fail' }, error: 'EIO' });
    await assert.rejects(handle.sync());
    failing.remove();
    // No reboot: the header with the new HWM and the data are served from clean pages.
    fs = new EncryptedFs(fault, { masterKey: KEY_A });
    const resumed = await fs.open('log');
    await resumed.write([bytes(64, 2)], 64); // the engine re-dirties what it resumes
    await resumed.sync();
    const after = new EncryptedFs(await fault.crash('dropUnsynced'), { masterKey: KEY_A });
    assert.deepEqual(await readFsFile(after, 'log'), new Uint8Array(Buffer.concat([bytes(64, 1), bytes(64, 2)])));
  });
});
