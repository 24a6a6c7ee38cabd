/**
 * The addon's non-ring exports, for the PmemFs and PosixFs backends: aligned
 * buffers, fallocate/fadvise/flock, mappings with MAP_SYNC negotiation, msync
 * and the CPUID-selected cache-line flush. Files live on /dev/shm, which is
 * what stands in for a pmem mount in tests (tmpfs: no DAX, so MAP_SYNC must
 * be refused and reported as such).
 */

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';

import { loadNative, requireNative, type NativeBinding } from '../hardware/native.js';
import { findMount, formatProbe, probe } from '../hardware/probe.js';
import { ErrorCode, fromSystemError } from '../src/errors.js';

const FALLOC_FL_KEEP_SIZE = 1;
const loaded = loadNative();
const allowMissing = process.env['RAFTLOG_ALLOW_NO_URING'] === '1';
const skip = !loaded.ok && allowMissing ? loaded.reason : false;

describe('native addon', { skip }, () => {
  let native: NativeBinding;
  let dir = '';
  before(() => {
    native = requireNative('native tests');
    dir = mkdtempSync(join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'raftlog-native-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (name: string, size = 0): number => {
    const fd = fs.openSync(join(dir, name), 'w+');
    if (size > 0) fs.ftruncateSync(fd, size);
    return fd;
  };

  it('loads from build/Release', () => {
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
    assert.match(loaded.path, /build\/Release\/raftlog_native\.node$/);
  });

  it('alignedAlloc returns zeroed memory at the requested alignment', () => {
    for (const alignment of [512, 4096, 65536]) {
      for (const size of [1, 4096, 100_000]) {
        const ab = native.alignedAlloc(size, alignment);
        assert.equal(ab.byteLength, size);
        assert.equal(native.addressOf(ab) % alignment, 0, `${size} bytes at ${alignment}`);
        assert.ok(new Uint8Array(ab).every((b) => b === 0));
      }
    }
    assert.throws(() => native.alignedAlloc(0, 4096), TypeError);
    assert.throws(() => native.alignedAlloc(10, 3000), TypeError);
    const view = new Uint8Array(native.alignedAlloc(8192, 4096)).subarray(100);
    assert.equal(native.addressOf(view) % 4096, 100, "addressOf honours a view's byteOffset");
  });

  it('fallocate reserves space, with or without growing the size, and reports errno names', () => {
    const fd = file('falloc');
    try {
      native.fallocate(fd, 0, 0, 1 << 20);
      assert.equal(fs.fstatSync(fd).size, 1 << 20);
      native.fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20);
      const st = fs.fstatSync(fd);
      assert.equal(st.size, 1 << 20, 'KEEP_SIZE leaves the size alone');
      assert.ok(st.blocks * 512 >= 2 << 20, `blocks reserved past the end (${st.blocks})`);
      assert.throws(() => native.fallocate(fd, 0, 0, 0), { code: 'EINVAL', syscall: 'fallocate' });
    } finally {
      fs.closeSync(fd);
    }
    const ro = fs.openSync(join(dir, 'falloc'), 'r');
    try {
      assert.throws(
        () => native.fallocate(ro, 0, 0, 4096),
        (error: unknown) => fromSystemError(error, 'fallocate').code === ErrorCode.IO && (error as { code: string }).code === 'EBADF',
      );
    } finally {
      fs.closeSync(ro);
    }
  });

  it('fadviseDontNeed accepts a whole file or a range, and fails on a bad descriptor', () => {
    const fd = file('fadvise', 65536);
    try {
      native.fadviseDontNeed(fd);
      native.fadviseDontNeed(fd, 4096, 8192);
    } finally {
      fs.closeSync(fd);
    }
    assert.throws(() => native.fadviseDontNeed(fd), { code: 'EBADF' });
  });

  it('flock excludes other open file descriptions, in this process too, and maps to LOCKED', () => {
    const path = join(dir, 'lock');
    const a = fs.openSync(path, 'w+');
    const b = fs.openSync(path, 'r+');
    try {
      native.flock(a, true, true);
      let caught: unknown;
      try {
        native.flock(b, true, true);
      } catch (error) {
        caught = error;
      }
      assert.equal((caught as { code?: string }).code, 'EAGAIN');
      assert.equal(fromSystemError(caught, 'lock').code, ErrorCode.LOCKED);
      assert.throws(() => native.flock(b, false, true), { code: 'EAGAIN' }, 'not even shared');
      native.funlock(a);
      native.flock(b, false, true);
      native.flock(a, false, true); // two shared holders are fine
      const c = fs.openSync(path, 'r');
      try {
        assert.throws(() => native.flock(c, true, true), { code: 'EAGAIN' }, 'exclusive while shared holders exist');
      } finally {
        fs.closeSync(c);
      }
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  it('statxDioAlign reports the O_DIRECT alignment of a file (or null on old kernels)', () => {
    const dioDir = mkdtempSync('/tmp/raftlog-native-dio-');
    const fd = fs.openSync(join(dioDir, 'f'), 'w+');
    try {
      const align = native.statxDioAlign(fd);
      if (align !== null) {
        assert.ok(align.offsetAlign > 0 && (align.offsetAlign & (align.offsetAlign - 1)) === 0, JSON.stringify(align));
        assert.ok(align.memAlign > 0 && (align.memAlign & (align.memAlign - 1)) === 0, JSON.stringify(align));
      }
    } finally {
      fs.closeSync(fd);
      rmSync(dioDir, { recursive: true, force: true });
    }
  });

  it('mmap shares writes with the file; MAP_SYNC is refused on tmpfs and reported', () => {
    const size = 64 * 1024;
    const fd = file('map', size);
    try {
      const mapping = native.mmap(fd, 0, size, true, true);
      assert.equal(mapping.buffer.byteLength, size);
      const onTmpfs = dir.startsWith('/dev/shm');
      if (onTmpfs) assert.equal(mapping.mapSync, false, 'tmpfs has no DAX, so MAP_SYNC cannot be accepted');
      const view = new Uint8Array(mapping.buffer);
      view.set([1, 2, 3, 4], 4000);
      native.msync(mapping.buffer, 4000, 4);
      native.msync(mapping.buffer);
      const disk = readFileSync(join(dir, 'map'));
      assert.deepEqual([...disk.subarray(4000, 4004)], [1, 2, 3, 4]);
      // Writes through the file show up in the mapping (same page cache).
      fs.writeSync(fd, Buffer.from([9, 9]), 0, 2, 100);
      assert.deepEqual([...view.subarray(100, 102)], [9, 9]);
      assert.throws(() => native.msync(mapping.buffer, size - 1, 2), TypeError, 'range past the mapping');
      native.munmap(mapping.buffer);
      assert.equal(mapping.buffer.byteLength, 0, 'detached, so no view can touch unmapped memory');
      assert.equal(view.byteLength, 0);
      assert.throws(() => native.munmap(mapping.buffer), TypeError, 'a second munmap is refused');
      assert.throws(() => native.msync(mapping.buffer), TypeError);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('mmap maps at a page offset, read-only when asked, and refuses bad arguments', () => {
    const fd = file('map2', 3 * 4096);
    try {
      fs.writeSync(fd, Buffer.from('page two'), 0, 8, 4096);
      const mapping = native.mmap(fd, 4096, 4096, false, false);
      assert.equal(mapping.mapSync, false);
      assert.equal(Buffer.from(mapping.buffer, 0, 8).toString(), 'page two');
      native.munmap(mapping.buffer);
      assert.throws(() => native.mmap(fd, 100, 4096, true, false), TypeError, 'unaligned offset');
      assert.throws(() => native.mmap(fd, 0, 0, true, false), TypeError, 'empty mapping');
      assert.throws(() => native.munmap(new ArrayBuffer(8)), TypeError, 'not a mapping');
    } finally {
      fs.closeSync(fd);
    }
    const ro = fs.openSync(join(dir, 'map2'), 'r');
    try {
      assert.throws(() => native.mmap(ro, 0, 4096, true, false), { code: 'EACCES' });
    } finally {
      fs.closeSync(ro);
    }
  });

  it('the flush instruction is the best the CPU advertises (clwb > clflushopt > clflush)', () => {
    const info = native.cpuFlush();
    assert.ok(info.lineSize >= 32 && (info.lineSize & (info.lineSize - 1)) === 0);
    if (process.arch !== 'x64') return;
    const flags = new Set((readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
    assert.equal(info.clwb, flags.has('clwb'));
    assert.equal(info.clflushopt, flags.has('clflushopt'));
    assert.equal(info.clflush, flags.has('clflush'));
    const expected = flags.has('clwb') ? 'clwb' : flags.has('clflushopt') ? 'clflushopt' : flags.has('clflush') ? 'clflush' : 'none';
    assert.equal(info.instruction, expected);
  });

  it('flushRange flushes every cache line a range touches, on a mapping or plain memory', () => {
    const info = native.cpuFlush();
    if (info.instruction === 'none') {
      assert.throws(() => native.flushRange(new Uint8Array(64)), { code: 'ENOTSUP' });
      return;
    }
    const line = info.lineSize;
    const ab = native.alignedAlloc(16 * line, line);
    assert.equal(native.flushRange(ab, 0, line), 1);
    assert.equal(native.flushRange(ab, 1, line), 2, 'an unaligned range spans two lines');
    assert.equal(native.flushRange(ab, line - 1, 2), 2);
    assert.equal(native.flushRange(ab, 0, 0), 0);
    assert.equal(native.flushRange(new Uint8Array(ab).subarray(line), 0, 3 * line), 3, 'views flush from their own start');
    assert.throws(() => native.flushRange(ab, 0, 17 * line), TypeError);

    const fd = file('flush', 8192);
    try {
      const mapping = native.mmap(fd, 0, 8192, true, true);
      new Uint8Array(mapping.buffer).fill(7, 0, 300);
      assert.equal(native.flushRange(mapping.buffer, 0, 300), Math.ceil(300 / line));
      native.munmap(mapping.buffer);
      assert.ok(
        readFileSync(join(dir, 'flush'))
          .subarray(0, 300)
          .every((b) => b === 7),
      );
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a closed ring refuses new work with a clear error', () => {
    const ring = new native.Ring(4, () => undefined);
    ring.close();
    ring.close();
    assert.equal(ring.stats().closed, true);
    assert.throws(() => ring.prepFsync(1, 0, true, false), /closed/);
    assert.throws(() => ring.submit(), /closed/);
  });
});

describe('device probe', { skip }, () => {
  it('finds the topmost, longest mount for a path, with escaped names', () => {
    const mountinfo = [
      '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard',
      '25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=10k',
      '30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs2 rw,size=20k',
      '31 27 259:1 / /mnt/pmem\\040zero rw - ext4 /dev/pmem0 rw,dax=always',
    ].join('\n');
    assert.equal(findMount(mountinfo, '/dev/shm/x')?.source, 'tmpfs2', 'the later of two stacked mounts');
    assert.equal(findMount(mountinfo, '/dev/shmx')?.mountPoint, '/', 'a name prefix is not a path prefix');
    const pmem = findMount(mountinfo, '/mnt/pmem zero/raft');
    assert.equal(pmem?.mountPoint, '/mnt/pmem zero');
    assert.ok(pmem?.options.includes('dax=always'));
  });

  it('reports an ext4 directory: block sizes from sysfs, O_DIRECT alignment, no DAX, io_uring ops', async () => {
    const dir = mkdtempSync('/tmp/raftlog-probe-');
    try {
      const report = await probe(dir);
      assert.equal(report.mount?.fsType, 'ext4');
      assert.ok(report.logicalBlockSize !== undefined && report.logicalBlockSize >= 512, formatProbe(report));
      assert.ok(report.physicalBlockSize !== undefined && report.physicalBlockSize >= report.logicalBlockSize);
      if (report.dioAlign !== undefined)
        assert.equal(report.dioAlign.offsetAlign, report.logicalBlockSize, 'O_DIRECT offsets align to the logical block');
      assert.equal(report.daxMount, false);
      assert.equal(report.mapSync, false, 'ext4 without dax refuses MAP_SYNC');
      assert.equal(report.uring.available, true, report.uring.reason);
      assert.equal(report.uring.ops?.fsync, true);
      assert.deepEqual(fs.readdirSync(dir), [], 'the scratch file is gone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports /dev/shm as tmpfs: no block device, no MAP_SYNC, and the CPU flush instruction', async (t) => {
    if (!fs.existsSync('/dev/shm')) return t.skip('no /dev/shm');
    const report = await probe('/dev/shm');
    assert.equal(report.mount?.fsType, 'tmpfs');
    assert.equal(report.logicalBlockSize, undefined);
    assert.equal(report.mapSync, false);
    assert.equal(report.cpuFlush?.instruction, requireNative('probe test').cpuFlush().instruction);
    assert.match(formatProbe(report), /MAP_SYNC accepted +no/);
  });
});
