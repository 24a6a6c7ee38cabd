/**
 * UringFs beyond the shared conformance suite: that io_uring is really used
 * (one io_uring_enter per group commit), that links, short completions and
 * errors behave as the backend claims, that O_DIRECT staging holds on a
 * block file system, and that a missing addon fails softly.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { UringFs, errorFromCqe } from '../backends/uring.js';
import { explainUringRefusal, loadNative } from '../hardware/native.js';
import { ErrorCode, isRaftlogError } from '../src/errors.js';
import { kibDirtiedPerSyncedAppend } from './support/folio.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const EXT4_MAGIC = 0xef53;
const TMPFS_MAGIC = 0x01021994;

const reason = UringFs.unavailableReason();
/** Set only on machines known to lack io_uring, so that absence is not silently "passing". */
const allowMissing = process.env['RAFTLOG_ALLOW_NO_URING'] === '1';

function pattern(length: number, seed: number): Uint8Array {
  return new Random(seed).bytes(length);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-uring-test-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isRaftlogError(error, code), `expected ${code}, got ${String(error)}`);
    return error as Error;
  }
  assert.fail(`resolved, expected ${code}`);
}

describe('UringFs availability', () => {
  it('io_uring works on this machine (set RAFTLOG_ALLOW_NO_URING=1 where it cannot)', () => {
    if (allowMissing) return;
    assert.equal(reason, undefined, `UringFs is unavailable: ${reason}`);
    const native = loadNative();
    assert.ok(native.ok, native.ok ? '' : native.reason);
  });

  it('a missing addon makes new UringFs() throw UNSUPPORTED with the reason, and the rest of raftlog still loads', () => {
    const uring = new URL('../backends/uring.js', import.meta.url).href;
    const index = new URL('../index.js', import.meta.url).href;
    const memfs = new URL('../backends/memfs.js', import.meta.url).href;
    const script = `
      const { UringFs } = await import(${JSON.stringify(uring)});
      const { MemFs } = await import(${JSON.stringify(memfs)});
      const root = await import(${JSON.stringify(index)});
      let out = {};
      try { new UringFs('/tmp/never-created'); out.constructed = true; }
      catch (e) { out = { code: e.code, message: e.message, family: root.isRaftlogError(e) }; }
      const mem = new MemFs(); await mem.init();
      const f = await mem.open('x', { create: true }); await f.write([new Uint8Array([1, 2, 3])], 0); out.memSize = await f.size();
      console.log(JSON.stringify(out));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, RAFTLOG_NATIVE_PATH: '/nonexistent/raftlog_native.node' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout.trim()) as { code?: string; message?: string; family?: boolean; memSize?: number };
    assert.equal(out.code, 'UNSUPPORTED');
    assert.equal(out.family, true);
    assert.match(out.message ?? '', /not built.*\/nonexistent\/raftlog_native\.node/);
    assert.equal(out.memSize, 3);
  });

  it('explains a refused io_uring_setup in operator terms', () => {
    assert.match(explainUringRefusal('ENOSYS'), /does not implement io_uring/);
    const eperm = explainUringRefusal('EPERM');
    assert.match(eperm, /io_uring_disabled|seccomp/);
    assert.match(explainUringRefusal('ENOMEM'), /RLIMIT_MEMLOCK/);
  });

  it('rejects a nonsensical queueDepth before touching the kernel', () => {
    assert.throws(() => new UringFs('/tmp/x', { queueDepth: 2 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => new UringFs('/tmp/x', { queueDepth: 1.5 }), { code: 'INVALID_ARGUMENT' });
  });
});

describe('UringFs on io_uring', { skip: reason !== undefined && allowMissing ? reason : false }, () => {
  it('a group commit of N appends plus its barrier is one io_uring_enter (writev + fdatasync)', async () => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir);
      await ufs.init();
      const file = await ufs.open('log', { create: true });
      const N = 32;
      const parts = Array.from({ length: N }, (_, i) => pattern(100 + i * 13, i + 1));
      // One turn: N appends, the last carrying the barrier, as the engine's group commit does.
      const before = ufs.stats();
      let at = 0;
      const writes = parts.map((part, i) => {
        const p = file.write([part], at, { sync: i === N - 1 });
        at += part.byteLength;
        return p;
      });
      await Promise.all(writes);
      const afterStats = ufs.stats();
      assert.equal(afterStats.submissions - before.submissions, 1, 'one io_uring_enter for the whole group');
      assert.equal(afterStats.sqes - before.sqes, 2, 'contiguous appends merge into one writev, plus one fdatasync');
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 'log'))), concat(parts));
      await file.close();
      await ufs.close();
    });
  });

  it('scattered writes and a separate sync() in one turn are still one submission of N+1 linked SQEs', async () => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir, { queueDepth: 64 });
      await ufs.init();
      const file = await ufs.open('log', { create: true });
      const N = 20;
      const before = ufs.stats();
      const ops = Array.from({ length: N }, (_, i) => file.write([pattern(50, i)], i * 1000));
      ops.push(file.sync());
      await Promise.all(ops);
      const afterStats = ufs.stats();
      assert.equal(afterStats.submissions - before.submissions, 1);
      assert.equal(afterStats.sqes - before.sqes, N + 1);
      const disk = await readFile(join(dir, 'log'));
      for (let i = 0; i < N; i++) assert.deepEqual(new Uint8Array(disk.subarray(i * 1000, i * 1000 + 50)), pattern(50, i));
      await file.close();
      await ufs.close();
    });
  });

  it('the native ring links: a failed write cancels its linked fdatasync (-ECANCELED)', async () => {
    const native = loadNative();
    assert.ok(native.ok);
    await withDir(async (dir) => {
      const path = join(dir, 'ro');
      await writeFile(path, 'x');
      const fd = fs.openSync(path, 'r');
      try {
        const results = await new Promise<Int32Array>((resolve) => {
          const ring = new native.binding.Ring(4, (cqes) => {
            ring.close();
            resolve(cqes);
          });
          assert.equal(ring.prepWrite(1, fd, [new Uint8Array(4)], 0, true), true);
          assert.equal(ring.prepFsync(2, fd, true, false), true);
          assert.equal(ring.submit(), 2);
        });
        const byId = new Map<number, number>();
        for (let i = 0; i < results.length; i += 3) byId.set(results[i]!, results[i + 1]!);
        assert.equal(byId.get(1), -osConstants.errno.EBADF, 'the write fails on a read-only descriptor');
        assert.equal(byId.get(2), -osConstants.errno.ECANCELED, 'so the linked fdatasync never runs');
      } finally {
        fs.closeSync(fd);
      }
    });
  });

  it('completion errors map to the family: ENOSPC from a real CQE (/dev/full) is NO_SPACE, EIO is IO', async () => {
    const native = loadNative();
    assert.ok(native.ok);
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const cqes = await new Promise<Int32Array>((resolve) => {
        const ring = new native.binding.Ring(4, (c) => {
          ring.close();
          resolve(c);
        });
        ring.prepWrite(7, fd, [new Uint8Array(10)], 0, false);
        ring.submit();
      });
      assert.equal(cqes[0], 7);
      assert.equal(cqes[1], -osConstants.errno.ENOSPC);
      const full = errorFromCqe(cqes[1]!, 'write', 'log');
      assert.equal(full.code, ErrorCode.NO_SPACE);
      assert.equal(full.errno, 'ENOSPC');
      assert.equal(full.file, 'log');
    } finally {
      fs.closeSync(fd);
    }
    const eio = errorFromCqe(-osConstants.errno.EIO, 'sync', 'log');
    assert.equal(eio.code, ErrorCode.IO);
    assert.equal(eio.errno, 'EIO');
  });

  for (const direct of [false, true]) {
    it(`a short write is continued, not reported as success (RLIMIT_FSIZE cuts it; the rest gets EFBIG)${direct ? ', O_DIRECT' : ''}`, async () => {
      await withDir(async (dir) => {
        const uring = new URL('../backends/uring.js', import.meta.url).href;
        // File size limit 8 KiB (ulimit -f counts 1 KiB blocks in bash); SIGXFSZ
        // ignored so the kernel returns a short count, then EFBIG.
        const script = `
        const { UringFs } = await import(${JSON.stringify(uring)});
        const ufs = new UringFs(${JSON.stringify(dir)}, { direct: ${direct} });
        await ufs.init();
        const f = await ufs.open('big', { create: true });
        const out = {};
        try { await f.write([new Uint8Array(6000).fill(1), new Uint8Array(6000).fill(2)], 0, { sync: true }); out.ok = true; }
        catch (e) { out.code = e.code; out.errno = e.errno; }
        out.size = await f.size();
        out.stats = ufs.stats();
        await f.close(); await ufs.close();
        console.log(JSON.stringify(out));`;
        const child = spawnSync(
          '/bin/bash',
          ['-c', `trap '' XFSZ; ulimit -f 8; exec "$0" --input-type=module -e "$1"`, process.execPath, script],
          { encoding: 'utf8', timeout: 30_000 },
        );
        assert.equal(child.status, 0, child.stderr);
        const out = JSON.parse(child.stdout.trim()) as {
          ok?: boolean;
          code?: string;
          errno?: string;
          size: number;
          stats: { sqes: number };
        };
        assert.equal(out.ok, undefined, 'a write that could not finish must not resolve');
        assert.equal(out.code, 'IO');
        assert.equal(out.errno, 'EFBIG');
        assert.equal(out.size, 8192, 'the first, short completion wrote up to the limit');
        // Direct mode puts an ftruncate to the logical size before each fdatasync.
        assert.equal(out.stats.sqes, direct ? 6 : 4, 'the chain, then the continuation chain after the short write cut it');
      });
    });
  }

  it('keeps at most the CQ size in flight, queues the rest, and completes everything (queueDepth 4)', async () => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir, { queueDepth: 4 });
      await ufs.init();
      const files = await Promise.all(Array.from({ length: 6 }, (_, i) => ufs.open(`f${i}`, { create: true })));
      let maxInflight = 0;
      const timer = setInterval(() => (maxInflight = Math.max(maxInflight, ufs.stats().inflight)), 0);
      const writes: Promise<void>[] = [];
      for (let round = 0; round < 30; round++) {
        for (const [i, f] of files.entries()) writes.push(f.write([pattern(300, round * 10 + i)], round * 300, { sync: round % 7 === 0 }));
      }
      await Promise.all(writes);
      clearInterval(timer);
      const stats = ufs.stats();
      assert.ok(maxInflight <= stats.cqEntries, `in flight ${maxInflight} > CQ ${stats.cqEntries}`);
      assert.ok(stats.submissions > 1);
      for (const [i, f] of files.entries()) {
        const back = new Uint8Array(9000);
        assert.equal(await f.read(back, 0, 9000, 0), 9000);
        for (let round = 0; round < 30; round++) {
          assert.deepEqual(back.subarray(round * 300, round * 300 + 300), pattern(300, round * 10 + i));
        }
        await f.close();
      }
      await ufs.close();
    });
  });

  it('reads larger than one SQE chunk are continued until the end', async () => {
    await withDir(async (dir) => {
      const data = pattern(20 * 1024 * 1024 + 123, 5);
      await writeFile(join(dir, 'big'), data);
      const ufs = new UringFs(dir);
      const f = await ufs.open('big', { readOnly: true });
      const back = new Uint8Array(data.byteLength + 100);
      assert.equal(await f.read(back, 0, back.byteLength, 0), data.byteLength);
      assert.equal(Buffer.compare(back.subarray(0, data.byteLength), data), 0);
      await f.close();
      await ufs.close();
    });
  });

  it('an idle ring neither busy-polls nor keeps the process alive', () => {
    const uring = new URL('../backends/uring.js', import.meta.url).href;
    const script = `
      const { UringFs } = await import(${JSON.stringify(uring)});
      const ufs = new UringFs(${JSON.stringify(tmpdir())});
      const f = await ufs.open('raftlog-idle-' + process.pid, { create: true });
      await f.write([new Uint8Array(10)], 0, { sync: true });
      const before = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 300));
      const used = process.cpuUsage(before);
      await f.close();
      await ufs.remove('raftlog-idle-' + process.pid);
      console.log(JSON.stringify({ cpuMicros: used.user + used.system }));
      // No ufs.close(): the unref'd poll handle must not hold the process open.`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.signal, null, 'the process exited by itself');
    assert.equal(child.status, 0, child.stderr);
    const { cpuMicros } = JSON.parse(child.stdout.trim()) as { cpuMicros: number };
    assert.ok(cpuMicros < 100_000, `idle for 300 ms cost ${cpuMicros} us of CPU`);
  });

  it('worker threads that exit with a ring open, idle or busy, tear down without crashing', async () => {
    await withDir(async (dir) => {
      const uring = new URL('../backends/uring.js', import.meta.url).href;
      // The poll handle's close completes after the worker's environment is
      // gone; the addon must not be unloaded under it (this once segfaulted).
      const script = `
        import { Worker, isMainThread, workerData } from 'node:worker_threads';
        if (isMainThread) {
          for (let i = 0; i < 6; i++) {
            await new Promise((resolve, reject) => {
              const w = new Worker(new URL(import.meta.url), { workerData: i });
              w.on('exit', resolve);
              w.on('error', reject);
            });
          }
          console.log('ok');
        } else {
          const { UringFs } = await import(${JSON.stringify(uring)});
          const ufs = new UringFs(${JSON.stringify(dir)});
          const f = await ufs.open('w' + workerData, { create: true });
          await f.write([new Uint8Array(100)], 0, { sync: true });
          if (workerData % 3 === 1) f.write([new Uint8Array(1 << 20)], 0, { sync: true });
          if (workerData % 3 === 2) {
            // A completion already posted when the worker exits is seen by
            // the loop turn Node runs during teardown, where JS can no
            // longer run (this crashed in CI: the addon wrote through the
            // null buffer V8 refused to allocate there).
            f.write([new Uint8Array(4096)], 0);
            await new Promise((r) => setImmediate(r));
            const until = Date.now() + 20;
            while (Date.now() < until);
            process.exit(0);
          }
          setImmediate(() => process.exit(0));
        }`;
      const path = join(dir, 'workers.mjs');
      await writeFile(path, script);
      const child = spawnSync(process.execPath, [path], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(child.signal, null, `killed by ${child.signal}`);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), 'ok');
    });
  });

  it('close() waits for requests in flight; afterwards operations are CLOSED', async () => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir);
      await ufs.init();
      const f = await ufs.open('a', { create: true });
      const pending = f.write([pattern(1 << 20, 1)], 0, { sync: true });
      await ufs.close();
      await pending;
      assert.equal(ufs.stats().inflight, 0);
      await expectCode(f.size(), ErrorCode.CLOSED);
      await expectCode(ufs.list(), ErrorCode.CLOSED);
      await f.close();
      assert.equal((await stat(join(dir, 'a'))).size, 1 << 20);
    });
  });

  it('the directory lock excludes another process, and is free once it exits', async () => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir);
      await ufs.init();
      const lock = await ufs.lock('LOCK');
      const uring = new URL('../backends/uring.js', import.meta.url).href;
      const script = `
        const { UringFs } = await import(${JSON.stringify(uring)});
        const ufs = new UringFs(${JSON.stringify(dir)});
        try { const l = await ufs.lock('LOCK'); console.log('got'); } catch (e) { console.log(e.code); }`;
      const run = (): string =>
        spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 }).stdout.trim();
      assert.equal(run(), 'LOCKED');
      await lock.release();
      assert.equal(run(), 'got', 'the child takes it, and its exit drops it');
      const again = await ufs.lock('LOCK');
      await again.release();
      await ufs.close();
    });
  });

  it('buffered preallocate writes zeros: no unwritten extents, so a synced append into it needs no extent conversion', async (t) => {
    await withDir(async (dir) => {
      const type = (await statfs(dir)).type;
      if (type !== EXT4_MAGIC) {
        t.skip(`unwritten extents are checked on ext4; ${dir} is file system type 0x${type.toString(16)}`);
        return;
      }
      const ufs = new UringFs(dir);
      const f = await ufs.open('pre', { create: true });
      await f.write([pattern(5000, 1)], 0);
      await f.preallocate(4096, 256 * 1024);
      await f.sync();
      assert.equal(await f.size(), 4096 + 256 * 1024);
      const back = new Uint8Array(5000);
      assert.equal(await f.read(back, 0, 5000, 0), 5000);
      assert.deepEqual(back, pattern(5000, 1), 'the data below the old end is left alone');
      // filefrag (e2fsprogs) lists each extent with its flags; fallocate(2) leaves them "unwritten".
      const frag = spawnSync('filefrag', ['-v', join(dir, 'pre')], { encoding: 'utf8' });
      if (frag.error !== undefined) {
        t.skip(`filefrag is not available: ${frag.error.message}`);
      } else {
        assert.equal(frag.status, 0, frag.stderr);
        assert.doesNotMatch(frag.stdout, /unwritten/, frag.stdout);
      }
      await f.close();
      await ufs.close();
    });
  });

  it('buffered preallocate leaves page-sized cache folios: a synced 4 KiB append into it writes back kilobytes, not the 2 MiB around it', async (t) => {
    await withDir(async (dir) => {
      const ufs = new UringFs(dir);
      const f = await ufs.open('pre', { create: true });
      const kib = await kibDirtiedPerSyncedAppend(f);
      // Two pages per append; a folio left by a 1 MiB write of zeros would be 1,024 KiB or more.
      if (typeof kib === 'string') t.skip(kib);
      else assert.ok(kib <= 16, `${kib} KiB dirtied per synced 4 KiB append`);
      await f.close();
      await ufs.close();
    });
  });
});

describe('UringFs O_DIRECT on a block file system', { skip: reason !== undefined && allowMissing ? reason : false }, () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftlog-uring-direct-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs where misaligned O_DIRECT would fail (ext4, not tmpfs)', async () => {
    const type = (await statfs(dir)).type;
    assert.notEqual(type, TMPFS_MAGIC, 'tmpfs accepts misaligned O_DIRECT and would prove nothing');
    assert.equal(type, EXT4_MAGIC, `expected ext4 under ${tmpdir()}`);
    // And the kernel really refuses misalignment here, so the tests below mean something.
    const fd = fs.openSync(join(dir, 'probe'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT);
    try {
      assert.throws(() => fs.writeSync(fd, Buffer.alloc(100), 0, 100, 0), { code: 'EINVAL' });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('unaligned appends with barriers: exact content, exact on-disk size at every barrier, one submission each', async () => {
    const ufs = new UringFs(dir, { direct: true });
    const f = await ufs.open('log', { create: true });
    const sizes = [1, 7, 4095, 1, 4097, 100, 8192, 3, 12_000, 511, 513, 4096];
    const model: Uint8Array[] = [];
    let at = 0;
    for (const [i, size] of sizes.entries()) {
      const part = pattern(size, i + 1);
      const before = ufs.stats();
      await f.write([part], at, { sync: true });
      const afterStats = ufs.stats();
      model.push(part);
      at += size;
      // The tail block comes from the cache, never from a read: one enter of write (+ ftruncate) + fdatasync.
      assert.equal(afterStats.submissions - before.submissions, 1, `append ${i}`);
      assert.equal(await f.size(), at);
      if (afterStats.ftruncateInChain) assert.equal((await stat(join(dir, 'log'))).size, at, `on-disk size after barrier ${i}`);
    }
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'log'))), concat(model));
    await f.close();
    await ufs.close();
  });

  it('appends into a preallocated file never read first: one submission of write + fdatasync each', async () => {
    const ufs = new UringFs(dir, { direct: true });
    const f = await ufs.open('prealloc', { create: true });
    await f.preallocate(0, 64 * 1024);
    const parts: Uint8Array[] = [];
    let at = 0;
    const before = ufs.stats();
    for (let i = 0; i < 100; i++) {
      const part = pattern(100 + (i % 7) * 50, i);
      await f.write([part], at, { sync: true });
      parts.push(part);
      at += part.byteLength;
    }
    const afterStats = ufs.stats();
    assert.equal(afterStats.submissions - before.submissions, 100, 'no reads of blocks the appends cross into');
    assert.equal(afterStats.sqes - before.sqes, 200, 'no ftruncate either: the size did not move');
    const back = new Uint8Array(at);
    assert.equal(await f.read(back, 0, at, 0), at);
    assert.deepEqual(back, concat(parts));
    assert.equal(await f.size(), 64 * 1024);
    await f.close();
    await ufs.close();
  });

  it('appends without barriers pad on disk, read back exactly, and close() fixes the size', async () => {
    const ufs = new UringFs(dir, { direct: true });
    const f = await ufs.open('nobarrier', { create: true });
    const parts = [pattern(10, 1), pattern(5000, 2), pattern(3, 3)];
    let at = 0;
    for (const part of parts) {
      await f.write([part], at);
      at += part.byteLength;
    }
    const onDisk = (await stat(join(dir, 'nobarrier'))).size;
    assert.equal(onDisk % 4096, 0, 'padded to whole blocks');
    assert.ok(onDisk > at);
    assert.equal(await f.size(), at);
    const back = new Uint8Array(at + 50);
    assert.equal(await f.read(back, 0, back.byteLength, 0), at, 'reads stop at the logical size');
    assert.deepEqual(back.subarray(0, at), concat(parts));
    const raw = await readFile(join(dir, 'nobarrier'));
    assert.ok(
      raw.subarray(at).every((b) => b === 0),
      'the padding is zeros',
    );
    await f.close();
    assert.equal((await stat(join(dir, 'nobarrier'))).size, at);
    await ufs.close();
  });

  it('an existing file with an unaligned size is read once, then appended to in place', async () => {
    const initial = pattern(5000, 9);
    await writeFile(join(dir, 'existing'), initial);
    const ufs = new UringFs(dir, { direct: true });
    const f = await ufs.open('existing');
    const before = ufs.stats();
    await f.write([pattern(10, 10)], 5000, { sync: true });
    const mid = ufs.stats();
    assert.equal(mid.submissions - before.submissions, 2, 'one read of the partial block, then the chain');
    await f.write([pattern(10, 11)], 5010, { sync: true });
    assert.equal(ufs.stats().submissions - mid.submissions, 1, 'the next append needs no read');
    await f.close();
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'existing'))), concat([initial, pattern(10, 10), pattern(10, 11)]));
    await ufs.close();
  });

  it('random overlapping writes, truncates and preallocations match a byte model', async () => {
    const ufs = new UringFs(dir, { direct: true, queueDepth: 8 });
    const f = await ufs.open('random', { create: true });
    let model = new Uint8Array(0);
    const grow = (to: number): void => {
      if (to <= model.byteLength) return;
      const next = new Uint8Array(to);
      next.set(model);
      model = next;
    };
    const seed = testSeed(12345);
    const random = new Random(seed);
    const rand = (n: number): number => random.below(n);
    for (let step = 0; step < 300; step++) {
      const choice = rand(10);
      if (choice < 7) {
        // A few writes in the same turn, some overlapping, some sharing blocks.
        const batch: Promise<void>[] = [];
        for (let k = 0; k <= rand(4); k++) {
          const position = rand(Math.max(1, model.byteLength + 3000));
          const data = pattern(1 + rand(6000), step * 10 + k);
          grow(position + data.byteLength);
          model.set(data, position);
          batch.push(f.write([data.subarray(0, 3), data.subarray(3)], position, { sync: rand(3) === 0 }));
        }
        await Promise.all(batch);
      } else if (choice < 8) {
        const size = rand(model.byteLength + 5000);
        await f.truncate(size);
        if (size < model.byteLength) model = model.slice(0, size);
        else grow(size);
      } else if (choice < 9) {
        const offset = rand(model.byteLength + 5000);
        const length = 1 + rand(9000);
        await f.preallocate(offset, length);
        grow(offset + length);
      } else {
        await f.sync();
      }
      assert.equal(await f.size(), model.byteLength, `seed=${seed}: size after step ${step}`);
      if (step % 25 === 0) {
        const back = new Uint8Array(model.byteLength);
        assert.equal(await f.read(back, 0, back.byteLength, 0), model.byteLength);
        assert.equal(Buffer.compare(back, model), 0, `seed=${seed}: content after step ${step}`);
      }
    }
    await f.close();
    assert.equal(Buffer.compare(await readFile(join(dir, 'random')), model), 0, `seed=${seed}: on disk after close`);
    await ufs.close();
  });
});
