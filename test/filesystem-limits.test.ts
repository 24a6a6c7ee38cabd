/**
 * Every directory backend on real file systems at their limits (issue 15):
 * - case 5: a 100%-full disk (a loop-mounted ext4 image, which also takes
 *   O_DIRECT) must still open, recover and serve every acknowledged entry;
 *   the first write that needs space fails typed, and nothing is lost;
 * - case 7: a file system that refuses fallocate (ramfs, EOPNOTSUPP, as a
 *   FUSE file system without fallocate does) must still take writes, and
 *   `raftlog probe` must see it and recommend only a backend that wrote there.
 * Mounting needs root; without it (or where mount is refused) the tests skip
 * and say why. Every mount is undone in a finally.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';

import { Engine } from '../src/engine.js';
import { ErrorCode, RaftlogError } from '../src/errors.js';
import { LogBatch } from '../src/log-batch.js';
import { BACKENDS, type Backend, pmemReason, uringReason } from './support/limit-backends.js';
import { Random } from './support/random.js';

const CLI = new URL('../cli/main.js', import.meta.url).pathname;
const ENGINE_OPTIONS = { targetFileSize: 1 << 20, seed: 15 };

/** Mounts in a fresh directory; undefined (and the test skipped) where that is not allowed. */
function mountOrSkip(t: TestContext, args: readonly string[], what: string): string | undefined {
  if (process.getuid?.() !== 0) {
    t.skip(`${what} needs root to mount`);
    return undefined;
  }
  sweepStaleMounts();
  const point = mkdtempSync(join(tmpdir(), `raftlog-limits-${process.pid}-`));
  try {
    execFileSync('mount', [...args, point], { stdio: 'pipe' });
  } catch (error) {
    rmSync(point, { recursive: true, force: true });
    t.skip(`cannot mount ${what} here: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
    return undefined;
  }
  return point;
}

/**
 * A run killed mid-test never reaches its finally, and its mounts would stay
 * forever. Mount points carry the pid that made them; those of dead processes
 * are undone (those of live ones, a parallel run, are left alone).
 */
function sweepStaleMounts(): void {
  const prefix = join(tmpdir(), 'raftlog-limits-');
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const point = line.split(' ')[1] ?? '';
    const pid = Number(/^(\d+)-/.exec(point.slice(prefix.length))?.[1]);
    if (!point.startsWith(prefix) || !Number.isInteger(pid) || pid <= 0 || alive(pid)) continue;
    try {
      unmount(point);
    } catch {
      // Another run may have swept it first.
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** Lazily where a failed test left a file open: the mount must not outlive the test either way. */
function unmount(point: string): void {
  try {
    execFileSync('umount', [point], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', point], { stdio: 'pipe' });
  }
  rmSync(point, { recursive: true, force: true });
}

/** Makes a 1 KiB-block ext4 image of `size`, loop-mounts it for `body`, then unmounts and deletes it; skips where it cannot. */
async function withExt4Image(
  t: TestContext,
  size: string,
  mkfsOptions: readonly string[],
  body: (point: string) => Promise<void>,
): Promise<void> {
  const image = join(mkdtempSync(join(tmpdir(), 'raftlog-limits-img-')), 'ext4.img');
  try {
    execFileSync('truncate', ['-s', size, image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '1024', ...mkfsOptions, image], { stdio: 'pipe' });
  } catch (error) {
    rmSync(join(image, '..'), { recursive: true, force: true });
    t.skip(`cannot make an ext4 image: ${String(error)}`);
    return;
  }
  const point = mountOrSkip(t, ['-o', 'loop', image], 'a loop ext4 image');
  if (point === undefined) {
    rmSync(join(image, '..'), { recursive: true, force: true });
    return;
  }
  try {
    await body(point);
  } finally {
    unmount(point);
    rmSync(join(image, '..'), { recursive: true, force: true });
  }
}

/** Incompressible (random, seeded by the index), so a big batch really needs its size on disk. */
function entryData(index: number, size: number): Uint8Array {
  return new Random(index).bytes(size);
}

async function appendEntries(engine: Engine, first: number, count: number, size: number): Promise<void> {
  const batch = new LogBatch();
  batch.addEntries(
    1,
    Array.from({ length: count }, (_, i) => ({ index: first + i, term: 2, data: entryData(first + i, size) })),
  );
  await engine.write(batch, { sync: true });
}

async function assertEntries(engine: Engine, last: number, size: number, label: string): Promise<void> {
  const got = await engine.fetchEntriesTo(1, 1, last + 1);
  assert.equal(got.length, last, `${label}: every acknowledged entry is there`);
  for (const entry of got) {
    assert.ok(Buffer.from(entry.data).equals(entryData(entry.index, size)), `${label}: entry ${entry.index} intact`);
  }
}

/** Writes until the file system has no byte left (root may use the reserved blocks too). */
function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const chunk of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const bytes = new Uint8Array(chunk);
      for (;;) {
        try {
          if (writeSync(fd, bytes) < chunk) break;
        } catch (error) {
          if ((error as { code?: string }).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

function available(point: string): number {
  return Number(execFileSync('df', ['--output=avail', '-B1', point], { encoding: 'utf8' }).trim().split('\n')[1]);
}

describe('issue 15 case 5: open on a 100%-full disk works on every backend, O_DIRECT included', () => {
  it('a loop-mounted ext4 image filled to 100%: reopen, read every acknowledged entry, a typed NO_SPACE on write, nothing lost', async (t) => {
    // 1 KiB blocks (mke2fs's choice for small images anyway): smaller than
    // UringFs's old fixed 4 KiB direct block, whose padding then needed
    // blocks the file did not have.
    await withExt4Image(t, '48M', [], async (point) => {
      for (const backend of BACKENDS) {
        // Without preallocation the last block is partial at reopen, and resume rewrites it.
        for (const preallocateBytes of [0, 256 << 10]) {
          const title = `${backend.name}, preallocateBytes ${preallocateBytes}`;
          await t.test(title, { skip: backend.unavailable ?? false }, () => fullDisk(backend, point, preallocateBytes));
        }
      }
    });
  });
});

async function fullDisk(backend: Backend, point: string, preallocateBytes: number): Promise<void> {
  const root = join(point, backend.name.replace(/\W+/g, '-'));
  const size = 700;
  let last = 0;
  const options = { ...ENGINE_OPTIONS, preallocateBytes };
  let engine = new Engine({ fs: backend.make(root), ...options });
  await engine.open();
  for (let round = 0; round < 30; round++, last += 20) await appendEntries(engine, last + 1, 20, size);
  await engine.close();

  const filler = join(point, 'filler');
  fillDisk(filler);
  try {
    assert.equal(available(point), 0, 'the disk is full');
    engine = new Engine({ fs: backend.make(root), ...options });
    await engine.open().catch((error: unknown) => assert.fail(`${backend.name}: open on a full disk: ${String(error)}`));
    try {
      await assertEntries(engine, last, size, `${backend.name} on a full disk`);
      // Larger than anything preallocated: it needs new space.
      const failed = await appendEntries(engine, last + 1, 2000, size).then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.ok(failed instanceof RaftlogError, `${backend.name}: a write on a full disk fails (got ${String(failed)})`);
      assert.ok(
        failed.code === ErrorCode.NO_SPACE || failed.code === ErrorCode.FAILED,
        `${backend.name}: NO_SPACE or FAILED, got ${failed.code}: ${failed.message}`,
      );
    } finally {
      await engine.close().catch(() => undefined);
    }
  } finally {
    rmSync(filler, { force: true });
  }

  engine = new Engine({ fs: backend.make(root), ...options });
  await engine.open();
  try {
    await assertEntries(engine, last, size, `${backend.name} after space came back`);
    await appendEntries(engine, last + 1, 5, size);
    await assertEntries(engine, last + 5, size, `${backend.name} writing again`);
  } finally {
    await engine.close();
  }
  rmSync(root, { recursive: true, force: true });
}

describe('a disk that fills up under the writer: a typed NO_SPACE, never a signal', () => {
  it('each backend writes into a 1 KiB-block ext4 until it is full, in a child process, then every acknowledged entry reopens', async (t) => {
    // Blocks smaller than a page: a store through a mapping dirties a whole
    // page, and PmemFs once allocated only the header's first block, so the
    // size-word store that followed a full disk died with SIGBUS.
    await withExt4Image(t, '16M', ['-O', '^has_journal'], async (point) => {
      for (const backend of BACKENDS) {
        // A few MiB left, so the writer fills them (rotating into new files on the way) in a few dozen synced writes.
        const filler = join(point, 'filler');
        fillDisk(filler);
        truncateSync(filler, statSync(filler).size - (2 << 20));
        try {
          await t.test(backend.name, { skip: backend.unavailable ?? false }, () => fillUnderWriter(backend, point));
        } finally {
          rmSync(filler, { force: true });
        }
      }
    });
  });
});

/** The child writes batches of eight 4 KiB entries with sync until a write fails, and prints the last acknowledged index and the error. */
async function fillUnderWriter(backend: Backend, point: string): Promise<void> {
  const root = join(point, backend.name.replace(/\W+/g, '-'));
  const modules = {
    engine: new URL('../src/index.js', import.meta.url).href,
    backends: new URL('./support/limit-backends.js', import.meta.url).href,
  };
  const script = `
    const { Engine, LogBatch } = await import(${JSON.stringify(modules.engine)});
    const { BACKENDS } = await import(${JSON.stringify(modules.backends)});
    const backend = BACKENDS.find((b) => b.name === ${JSON.stringify(backend.name)});
    const engine = new Engine({ fs: backend.make(${JSON.stringify(root)}), ...${JSON.stringify(ENGINE_OPTIONS)} });
    await engine.open();
    let last = 0;
    let code = 'none';
    for (;;) {
      const batch = new LogBatch();
      const entries = [];
      for (let i = last + 1; i <= last + 8; i++) entries.push({ index: i, term: 2, data: new Uint8Array(4096).fill(i & 0xff) });
      batch.addEntries(1, entries);
      try {
        await engine.write(batch, { sync: true });
        last += 8;
      } catch (error) {
        code = error.code ?? String(error);
        break;
      }
    }
    await engine.close().catch(() => undefined);
    console.log(JSON.stringify({ last, code }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(child.signal, null, `${backend.name}: the writer was killed by ${child.signal}; stderr: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  const { last, code } = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as { last: number; code: string };
  assert.ok(
    code === ErrorCode.NO_SPACE || code === ErrorCode.FAILED,
    `${backend.name}: the write that found the disk full failed with ${code}`,
  );
  assert.ok(last > 0, `${backend.name}: ${last} entries were acknowledged before the disk filled`);
  const engine = new Engine({ fs: backend.make(root), ...ENGINE_OPTIONS });
  await engine.open();
  try {
    const got = await engine.fetchEntriesTo(1, 1, last + 1);
    assert.equal(got.length, last, `${backend.name}: every acknowledged entry reopens`);
    for (const entry of got) assert.equal(entry.data[0], entry.index & 0xff, `${backend.name}: entry ${entry.index} intact`);
  } finally {
    await engine.close();
  }
  rmSync(root, { recursive: true, force: true });
}

describe('issue 15 case 7: preallocation on a file system without fallocate', () => {
  it('ramfs refuses fallocate; every backend still preallocates (zeros, size grown) and an engine writes and reopens', async (t) => {
    const point = mountOrSkip(t, ['-t', 'ramfs', 'ramfs'], 'ramfs');
    if (point === undefined) return;
    try {
      // The premise: this file system really refuses fallocate(2).
      const refused = (() => {
        try {
          execFileSync('fallocate', ['-l', '4096', join(point, 'probe')], { stdio: 'pipe' });
          return undefined;
        } catch (error) {
          return String((error as { stderr?: Buffer }).stderr ?? '');
        }
      })();
      assert.match(refused ?? 'fallocate succeeded', /not supported/i, 'ramfs refuses fallocate');
      rmSync(join(point, 'probe'), { force: true });

      // O_DIRECT is refused on ramfs altogether; that is UNSUPPORTED at open, not this case.
      for (const backend of BACKENDS.filter((b) => b.name !== 'UringFs direct')) {
        await t.test(backend.name, { skip: backend.unavailable ?? false }, () => withoutFallocate(backend, point));
      }
      await t.test('raftlog probe tests the file system: fallocate refused, and a backend recommended only after it wrote there', () => {
        const dir = join(point, 'probe');
        mkdirSync(dir);
        const run = spawnSync(process.execPath, [CLI, 'probe', dir, '--samples', '3', '--json'], { encoding: 'utf8' });
        assert.equal(run.status, 0, run.stderr);
        const result = JSON.parse(run.stdout) as {
          fallocate: { supported: boolean | undefined; reason: string | undefined };
          writeTest: { uring: string | undefined; pmem: string | undefined };
          recommendation: { backend: string; reasons: string[] };
        };
        // The fallocate test needs the addon, which is loaded exactly when PmemFs can run.
        if (pmemReason === undefined) assert.equal(result.fallocate.supported, false, 'ramfs refuses fallocate');
        if (uringReason === undefined) assert.equal(result.writeTest.uring, 'ok', 'UringFs writes on ramfs');
        assert.ok(result.recommendation.reasons.some((r) => /refuses fallocate/.test(r)) || pmemReason !== undefined);
        const recommended = result.recommendation.backend;
        if (recommended !== 'posix') assert.equal(result.writeTest[recommended as 'uring' | 'pmem'], 'ok');
        assert.deepEqual(readdirSync(dir), [], 'the probe leaves nothing behind');
      });
    } finally {
      unmount(point);
    }
  });
});

async function withoutFallocate(backend: Backend, point: string): Promise<void> {
  const root = join(point, backend.name.replace(/\W+/g, '-'));
  const fs = backend.make(root);
  await fs.init();
  const file = await fs.open('f', { create: true });
  // Queued together: in UringFs's ring the write is linked behind the
  // fallocate the file system refuses, and must not fail with it.
  await Promise.all([file.preallocate(0, 10_000), file.write([new Uint8Array([1, 2, 3])], 0)]);
  await file.preallocate(10_000, 5_000);
  assert.equal(await file.size(), 15_000, `${backend.name}: preallocate grows the file`);
  const back = new Uint8Array(15_000).fill(7);
  assert.equal(await file.read(back, 0, 15_000, 0), 15_000);
  assert.deepEqual([...back.subarray(0, 3)], [1, 2, 3], `${backend.name}: data kept`);
  assert.ok(
    back.subarray(3).every((b) => b === 0),
    `${backend.name}: the preallocated range reads as zeros`,
  );
  await file.write([new Uint8Array(100).fill(5)], 14_950, { sync: true });
  assert.equal(await file.size(), 15_050);
  await file.close();
  await fs.remove('f');
  await fs.close();

  let engine = new Engine({ fs: backend.make(root), ...ENGINE_OPTIONS, preallocateBytes: 256 << 10 });
  await engine.open();
  for (let i = 0; i < 10; i++) await appendEntries(engine, i * 50 + 1, 50, 500);
  await engine.close();
  engine = new Engine({ fs: backend.make(root), ...ENGINE_OPTIONS, preallocateBytes: 256 << 10 });
  await engine.open();
  try {
    await assertEntries(engine, 500, 500, `${backend.name} on ramfs`);
    await appendEntries(engine, 501, 10, 500);
  } finally {
    await engine.close();
  }
}
