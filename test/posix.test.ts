/**
 * PosixFs behaviour the backend-agnostic conformance suite cannot reach:
 * locking across processes, stale-lock takeover after a crash, the lock
 * file's edge cases, real block allocation, and the short-write split.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ErrorCode } from '../src/errors.js';
import { formatTarget, parseTarget, type LockOwner } from '../backends/directory-lock.js';
import { PosixFs } from '../backends/posix.js';
import { remainingBuffers } from '../backends/io-buffers.js';
import { loadNative, loadNativeWriteSync } from '../hardware/native.js';
import { expectCode } from './conformance/suite.js';
import { kibDirtiedPerSyncedAppend } from './support/folio.js';

const POSIX_MODULE = new URL('../backends/posix.js', import.meta.url).href;

/** Child: lock `root`/LOCK, print ACQUIRED or the error code and message; with 'hold', keep the lock and stay alive. */
const CHILD = `
const { PosixFs } = await import(process.argv[1]);
const fs = new PosixFs(process.argv[2]);
try {
  const lock = await fs.lock('LOCK');
  console.log('ACQUIRED');
  if (process.argv[3] === 'hold') setInterval(() => {}, 1 << 30);
  else await lock.release();
} catch (error) {
  console.log(error.code);
  console.log(error.message);
}
`;

function startChild(root: string, mode: 'try' | 'hold'): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', CHILD, POSIX_MODULE, root, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Runs a 'try' child to completion and returns its output lines. */
async function tryLockInChild(root: string): Promise<string[]> {
  const child = startChild(root, 'try');
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `child exited with ${code}: ${out}`);
  return out.trim().split('\n');
}

/** Starts a 'hold' child and resolves once it holds the lock. */
async function holdLockInChild(root: string): Promise<ChildProcess> {
  const child = startChild(root, 'hold');
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ACQUIRED')) resolve();
      else if (out.includes('\n')) reject(new Error(`child could not lock: ${out}`));
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${out}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** The pid of a process that has exited (and was reaped). */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

const HOST = hostname().replace(/\s+/g, '_');

let base: string;
let counter = 0;

/** A fresh, initialised PosixFs in its own directory. */
async function freshFs(): Promise<PosixFs> {
  const fs = new PosixFs(join(base, `fs-${counter++}`));
  await fs.init();
  return fs;
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'raftlog-posix-'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('PosixFs lock across processes', () => {
  it('a lock held here is LOCKED in another process, naming our pid', async () => {
    const fs = await freshFs();
    const lock = await fs.lock('LOCK');
    const [code, message] = await tryLockInChild(fs.root);
    assert.equal(code, ErrorCode.LOCKED);
    assert.match(message!, new RegExp(`pid ${process.pid}\\b`));
    await lock.release();
    assert.deepEqual(await tryLockInChild(fs.root), ['ACQUIRED'], 'released: another process can take it');
  });

  it('a lock held by a live child is LOCKED here; once the child is killed its stale lock is taken over', async () => {
    const fs = await freshFs();
    const child = await holdLockInChild(fs.root);
    try {
      const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
      assert.match(error.message, new RegExp(`pid ${child.pid}\\b`));
    } finally {
      await kill(child);
    }
    assert.equal(await fs.exists('LOCK'), true, 'the killed child left its lock behind');
    const lock = await fs.lock('LOCK');
    assert.match(await readlink(join(fs.root, 'LOCK')), new RegExp(`^raftlog-lock/${process.pid}/`));
    assert.deepEqual(await readdir(fs.root), ['LOCK'], 'no scratch files are left behind');
    await lock.release();
    assert.deepEqual(await readdir(fs.root), []);
  });
});

/** This process's lock target, parsed (the host and boot tags the tests vary). */
async function ownOwner(fs: PosixFs): Promise<LockOwner> {
  const lock = await fs.lock('LOCK');
  const owner = parseTarget(await readlink(join(fs.root, 'LOCK')));
  await lock.release();
  assert.ok(owner !== undefined);
  return owner;
}

describe('PosixFs lock edge cases', () => {
  it('the lock is a symlink whose target names this process, short enough to live in the inode', async () => {
    const fs = await freshFs();
    const lock = await fs.lock('LOCK');
    const target = await readlink(join(fs.root, 'LOCK'));
    assert.equal(parseTarget(target)?.pid, process.pid);
    assert.ok(target.length < 60, `${target.length} bytes: an ext4 fast symlink holds at most 59`);
    assert.deepEqual(await fs.list(), [], 'the lock is not a file');
    await lock.release();
  });

  it('two PosixFs on one directory, one through a symlink, exclude each other in one process', async () => {
    const fs = await freshFs();
    const link = join(base, `link-${counter++}`);
    await symlink(fs.root, link);
    const other = new PosixFs(relative(process.cwd(), link));
    const lock = await fs.lock('LOCK');
    await expectCode(() => other.lock('LOCK'), ErrorCode.LOCKED);
    await lock.release();
    const second = await other.lock('LOCK');
    await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    await second.release();
  });

  it('a lock naming a dead pid is taken over', async () => {
    const fs = await freshFs();
    const owner = await ownOwner(fs);
    const deadPid = await exitedPid();
    await symlink(formatTarget({ ...owner, pid: deadPid, start: undefined }), join(fs.root, 'LOCK'));
    const lock = await fs.lock('LOCK');
    assert.equal(parseTarget(await readlink(join(fs.root, 'LOCK')))?.pid, process.pid);
    await lock.release();
  });

  it('a live pid from this boot holds the lock; the same pid from an earlier boot, or started at another time, does not', async () => {
    const fs = await freshFs();
    const owner = await ownOwner(fs);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    await new Promise((resolve) => child.on('spawn', resolve));
    try {
      const childStart = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
      await symlink(formatTarget({ ...owner, pid: child.pid!, start: childStart }), join(fs.root, 'LOCK'));
      const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
      assert.match(error.message, new RegExp(`pid ${child.pid}\\b`));
      await rm(join(fs.root, 'LOCK'));
      await symlink(formatTarget({ ...owner, pid: child.pid!, start: String(Number(childStart) + 1) }), join(fs.root, 'LOCK'));
      await (await fs.lock('LOCK')).release();
      if (owner.boot !== undefined) {
        await symlink(
          formatTarget({ ...owner, pid: child.pid!, start: childStart, boot: owner.boot === '00000000' ? '11111111' : '00000000' }),
          join(fs.root, 'LOCK'),
        );
        const lock = await fs.lock('LOCK');
        await lock.release();
      }
    } finally {
      await kill(child);
    }
  });

  it('a lock from another host is LOCKED (liveness cannot be checked) and left alone', async () => {
    const fs = await freshFs();
    const owner = await ownOwner(fs);
    const foreign = formatTarget({ ...owner, pid: 12345, host: owner.host === 'feedface' ? 'cafecafe' : 'feedface' });
    await symlink(foreign, join(fs.root, 'LOCK'));
    const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    assert.match(error.message, /pid 12345 on another host/);
    assert.equal(await readlink(join(fs.root, 'LOCK')), foreign);
  });

  it('a symlink raftlog did not write is LOCKED, never removed', async () => {
    const fs = await freshFs();
    await symlink('/somewhere/else', join(fs.root, 'LOCK'));
    const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    assert.match(error.message, /did not write/);
    assert.equal(await readlink(join(fs.root, 'LOCK')), '/somewhere/else');
  });

  it('release does not delete a lock that is no longer ours', async () => {
    const fs = await freshFs();
    const lock = await fs.lock('LOCK');
    await rm(join(fs.root, 'LOCK'));
    await symlink('raftlog-lock/12345/-/-/feedface/0', join(fs.root, 'LOCK'));
    await lock.release();
    assert.equal(await readlink(join(fs.root, 'LOCK')), 'raftlog-lock/12345/-/-/feedface/0');
  });
});

describe('PosixFs and leftovers of the earlier lock schemes', () => {
  it('an empty LOCK file (the old flock target, or a pid file a power loss emptied) is taken over', async () => {
    const fs = await freshFs();
    await writeFile(join(fs.root, 'LOCK'), '');
    const lock = await fs.lock('LOCK');
    assert.ok((await lstat(join(fs.root, 'LOCK'))).isSymbolicLink());
    await lock.release();
  });

  it('an old pid file naming a dead pid is taken over', async () => {
    const fs = await freshFs();
    await writeFile(join(fs.root, 'LOCK'), `${await exitedPid()} ${HOST} deadbeef ${bootId() ?? '-'}\n`);
    const lock = await fs.lock('LOCK');
    await lock.release();
  });

  it('an old pid file naming a live pid of this boot is LOCKED; from an earlier boot it is stale', async (t) => {
    const boot = bootId();
    if (boot === undefined) {
      t.skip('no boot id on this platform');
      return;
    }
    const fs = await freshFs();
    // pid 1 always exists; EPERM from kill(1, 0) must count as alive.
    await writeFile(join(fs.root, 'LOCK'), `1 ${HOST} cafe ${boot}\n`);
    const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    assert.match(error.message, /pid 1\b/);
    await writeFile(join(fs.root, 'LOCK'), `1 ${HOST} cafe 00000000-0000-0000-0000-000000000000\n`);
    const lock = await fs.lock('LOCK');
    await lock.release();
  });

  it('an old pid file from another host is LOCKED and left alone', async () => {
    const fs = await freshFs();
    await writeFile(join(fs.root, 'LOCK'), `12345 some-other-host.example feedface -\n`);
    const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED);
    assert.match(error.message, /some-other-host\.example/);
    assert.match(await readFile(join(fs.root, 'LOCK'), 'utf8'), /feedface/);
  });
});

describe('PosixFs lock before init', () => {
  it('lock before init is NOT_FOUND', async () => {
    const fs = new PosixFs(join(base, `never-created-${counter++}`));
    await expectCode(() => fs.lock('LOCK'), ErrorCode.NOT_FOUND);
  });
});

describe('PosixFs specifics', () => {
  it('describes itself by absolute root', () => {
    const fs = new PosixFs('relative/dir');
    assert.equal(fs.description, `posix:${join(process.cwd(), 'relative/dir')}`);
    assert.equal(fs.capabilities.backend, 'posix');
    assert.equal(fs.capabilities.overwriteIsCheaper, true);
  });

  it('list skips directories, and opening one is an IO error', async () => {
    const fs = await freshFs();
    await mkdir(join(fs.root, 'sub'));
    const file = await fs.open('f', { create: true });
    await file.close();
    assert.deepEqual(await fs.list(), ['f']);
    await expectCode(() => fs.open('sub', { readOnly: true }), ErrorCode.IO);
  });

  it('operations before init are NOT_FOUND, and after close are CLOSED', async () => {
    const fs = new PosixFs(join(base, `missing-${counter++}`));
    await expectCode(() => fs.list(), ErrorCode.NOT_FOUND);
    await expectCode(() => fs.syncDir(), ErrorCode.NOT_FOUND);
    await expectCode(() => fs.open('a', { create: true }), ErrorCode.NOT_FOUND);
    await fs.init();
    await fs.close();
    await fs.close();
    await expectCode(() => fs.list(), ErrorCode.CLOSED);
    await expectCode(() => fs.open('a', { create: true }), ErrorCode.CLOSED);
  });

  it('preallocate allocates real blocks, not a sparse hole', async () => {
    const fs = await freshFs();
    const file = await fs.open('a', { create: true });
    const length = 4 * 1024 * 1024;
    await file.preallocate(0, length);
    await file.sync();
    await file.close();
    const info = await stat(join(fs.root, 'a'));
    assert.equal(info.size, length);
    assert.ok(info.blocks * 512 >= length, `only ${info.blocks * 512} bytes allocated`);
  });

  it('preallocate leaves page-sized cache folios: a synced 4 KiB append into it writes back kilobytes, not the 2 MiB around it', async (t) => {
    const fs = await freshFs();
    const file = await fs.open('a', { create: true });
    const kib = await kibDirtiedPerSyncedAppend(file);
    await file.close();
    // Two pages per append; a folio left by a 1 MiB write of zeros would be 1,024 KiB or more.
    if (typeof kib === 'string') t.skip(kib);
    else if (loadNativeWriteSync() === undefined) t.skip('without the addon PosixFs writes zeros in 1 MiB writes');
    else assert.ok(kib <= 16, `${kib} KiB dirtied per synced 4 KiB append`);
  });
});

describe('PosixFs reuse (recycled files)', () => {
  it("drops the old life's cached pages: a synced 4 KiB append into a file last written in 1 MiB pieces writes back kilobytes, not the folio", async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'raftlog-posix-reuse-'));
    try {
      const fs = new PosixFs(root);
      await fs.init();
      const old = await fs.open('old', { create: true });
      // 1 MiB writes: the kernel may cache each as one large folio, written back whole once dirtied again.
      const piece = new Uint8Array(1 << 20).fill(1);
      for (let at = 0; at < 8 << 20; at += piece.length) await old.write([piece], at);
      await old.sync();
      await old.close();
      const reused = await fs.reuse('old', 'new');
      const writes = 16;
      const start = process.resourceUsage().fsWrite;
      for (let i = 0; i < writes; i++)
        await reused.write([new Uint8Array(4096).fill(2)], (1 << 20) + i * (256 << 10) + 100, { sync: true });
      const kib = (process.resourceUsage().fsWrite - start) / 2 / writes;
      await reused.close();
      await fs.close();
      if (start === 0) t.skip('this kernel does not account written pages per task');
      else if (!loadNative().ok) t.skip('without the addon nothing drops the pages');
      // Two pages per append (it spans a page boundary); the old folio would be up to 1,024 KiB.
      else assert.ok(kib <= 16, `${kib} KiB written back per synced 4 KiB append`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('remainingBuffers (the short-write continuation)', () => {
  const parts = [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(4, 5), Uint8Array.of(6)];
  const flat = (buffers: readonly Uint8Array[]): number[] => buffers.flatMap((b) => [...b]);

  it('continues from the first unwritten byte for every split point', () => {
    for (let written = 0; written <= 6; written++) {
      assert.deepEqual(flat(remainingBuffers(parts, written)), [1, 2, 3, 4, 5, 6].slice(written), `after ${written}`);
    }
  });

  it('re-views the partly written buffer without copying, and drops finished ones', () => {
    const rest = remainingBuffers(parts, 4);
    assert.equal(rest.length, 2);
    assert.equal(rest[0]!.buffer, parts[2]!.buffer);
    assert.deepEqual([...rest[0]!], [5]);
    assert.deepEqual(remainingBuffers(parts, 6), []);
  });
});

describe('PosixFs reads: cached pages on the loop thread, the rest through the threadpool', () => {
  const native = loadNative();

  it('returns the same bytes whether a range is cached, uncached, partly cached or past the end', {
    skip: native.ok ? false : 'needs the addon',
  }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'raftlog-posix-cached-read-'));
    try {
      const fs = new PosixFs(root);
      await fs.init();
      const size = (1 << 20) + 1234;
      const bytes = new Uint8Array(size).map((_, i) => (i * 131 + (i >> 12)) & 0xff);
      const handle = await fs.open('f', { create: true });
      await handle.write([bytes], 0, { sync: true });
      // Drop the file's pages (they are clean after the sync): the first reads find nothing cached.
      const fd = openSync(join(root, 'f'), 'r');
      try {
        assert.ok(native.ok);
        native.binding.fadviseDontNeed(fd);
        const probe = new Uint8Array(4096);
        const got = native.binding.preadCached(fd, probe, 0, 4096, 65536);
        // -1 where eviction works (a disk); a file system that keeps its pages (tmpfs) serves them.
        assert.ok(got === -1 || got === 4096, `preadCached after DONTNEED: ${got}`);
        if (got === 4096) assert.deepEqual(probe, bytes.subarray(65536, 65536 + 4096));
      } finally {
        closeSync(fd);
      }
      const ranges: [number, number][] = [
        [65536, 4096], // uncached: the threadpool
        [65536, 4096], // cached now
        [0, 100],
        [0, 128 << 10], // its first page cached, the rest maybe not
        [size - 1000, 4096], // straddles the end: a short read
        [500_000, 70_000],
        [300_000, 256 << 10], // larger than the cached-read limit
      ];
      for (const [position, length] of ranges) {
        const target = new Uint8Array(length + 16);
        const read = await handle.read(target, 16, length, position);
        const want = bytes.subarray(position, Math.min(size, position + length));
        assert.equal(read, want.length, `read ${length} at ${position}`);
        assert.deepEqual(target.subarray(16, 16 + read), want, `bytes of ${length} at ${position}`);
      }
      assert.equal(await handle.read(new Uint8Array(10), 0, 10, size), 0, 'at the end: nothing');
      assert.equal(await handle.read(new Uint8Array(10), 0, 10, size + 4096), 0, 'past the end: nothing');
      await handle.close();
      await fs.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
