/**
 * PmemFs beyond the shared contract (test/conformance.test.ts runs that for
 * both barrier paths): which barrier is chosen and what it flushes, the
 * on-disk layout, the zero high-water mark, growth and remapping, unmapping
 * safety, damaged files, process kill, and a full device turning into
 * NO_SPACE instead of SIGBUS. Files live under /dev/shm, which stands in for
 * a DAX mount (/mnt/pmem0): MAP_SYNC is refused there, so `auto` must pick
 * msync, while `cacheline` runs the real flush instructions on page-cache
 * memory.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { PmemFs, type PmemFileHandle, type PmemFlushOption } from '../backends/pmem.js';
import { loadNative } from '../hardware/native.js';
import { choosePmemFlush, mapSyncAccepted, probe } from '../hardware/probe.js';
import { ErrorCode } from '../src/errors.js';
import { expectCode, bytes } from './conformance/suite.js';

const DATA = 4096;
const LINE = 64;
const SHM = fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const PMEM_MODULE = fileURLToPath(new URL('../backends/pmem.js', import.meta.url));

/** Cache lines a flush of data bytes [start, end) touches (the data region starts page-aligned). */
function lines(start: number, end: number): number {
  return Math.ceil((DATA + end) / LINE) - Math.floor((DATA + start) / LINE);
}

function readAllRaw(file: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(file));
}

async function readAll(handle: PmemFileHandle): Promise<Uint8Array> {
  const out = new Uint8Array(await handle.size());
  assert.equal(await handle.read(out, 0, out.length, 0), out.length);
  return out;
}

function runChild(script: string, args: readonly string[] = []): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('PmemFs', () => {
  let dir = '';
  const made: PmemFs[] = [];
  const make = (sub: string, flush: PmemFlushOption = 'auto', defaultCapacityBytes?: number): PmemFs => {
    const fs = new PmemFs(join(dir, sub), { flush, defaultCapacityBytes });
    made.push(fs);
    return fs;
  };

  before(() => {
    // Not skipped without the addon: PmemFs is a shipped backend, and a build
    // that cannot run it must fail here, loudly, not pass with fewer targets.
    assert.equal(PmemFs.unavailableReason(), undefined);
    dir = mkdtempSync(join(SHM, 'raftlog-pmem-'));
  });
  after(async () => {
    for (const fs of made) await fs.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('barrier selection', () => {
    it('auto picks msync where MAP_SYNC is refused (/dev/shm), and says so in stats and on the handle', async () => {
      const pfs = make('auto');
      assert.equal(pfs.stats().flush, undefined, 'auto is resolved by init');
      await pfs.init();
      const stats = pfs.stats();
      assert.equal(stats.requested, 'auto');
      assert.equal(stats.mapSync, false, 'tmpfs has no DAX');
      assert.equal(stats.flush, 'msync');
      const file = await pfs.open('a', { create: true });
      assert.equal(file.flush, 'msync');
      assert.equal(file.mapSync, false);
      assert.deepEqual(pfs.stats().mappedFiles, { cacheline: 0, msync: 1 });
      const reader = await pfs.open('a', { readOnly: true });
      assert.equal(reader.flush, 'none', 'a read-only handle never flushes');
      await reader.close();
      await file.close();
      assert.deepEqual(pfs.stats().mappedFiles, { cacheline: 0, msync: 0 }, 'the mapping goes with the last handle');
    });

    it('the choice table: cache-line flushes only with MAP_SYNC and an instruction, unless forced', () => {
      assert.equal(choosePmemFlush('auto', true, 'clwb'), 'cacheline');
      assert.equal(choosePmemFlush('auto', true, 'clflush'), 'cacheline');
      assert.equal(choosePmemFlush('auto', true, 'none'), 'msync');
      assert.equal(choosePmemFlush('auto', false, 'clwb'), 'msync');
      assert.equal(choosePmemFlush('cacheline', false, 'clwb'), 'cacheline');
      assert.equal(choosePmemFlush('msync', true, 'clwb'), 'msync');
    });

    it('the probe reports DAX, MAP_SYNC, the CPU flush and the barrier PmemFs picks', async () => {
      const native = loadNative();
      assert.ok(native.ok);
      assert.equal(mapSyncAccepted(dir, native.binding), false);
      const report = await probe(dir);
      assert.equal(report.daxMount, false);
      assert.equal(report.mapSync, false);
      assert.equal(report.pmemFlush, 'msync');
      assert.ok(report.cpuFlush !== undefined && ['clwb', 'clflushopt', 'clflush', 'none'].includes(report.cpuFlush.instruction));
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.startsWith('.raftlog-probe')),
        [],
        'scratch files are removed',
      );
    });

    it('rejects a bad flush option', () => {
      assert.throws(() => new PmemFs(dir, { flush: 'fast' as PmemFlushOption }), { code: 'INVALID_ARGUMENT' });
      assert.throws(() => new PmemFs(''), { code: 'INVALID_ARGUMENT' });
    });
  });

  describe('the barrier persists exactly the written range', () => {
    it('cacheline: flushes the dirty lines, then the header line only when the size changed', async () => {
      const pfs = make('exact-cacheline', 'cacheline');
      await pfs.init();
      const file = await pfs.open('a', { create: true, capacityBytes: 1 << 20 });
      assert.equal(file.flush, 'cacheline');
      const flushed = (): number => pfs.stats().linesFlushed;

      // A fresh preallocation exposes bytes that are zero already: nothing to
      // flush but the header line holding the new size.
      let before = flushed();
      await file.preallocate(0, 600_000);
      await file.sync();
      assert.equal(flushed() - before, 1, 'only the header line');

      // The first store raises the high-water mark (one header flush, before the data).
      before = flushed();
      await file.write([bytes(8, 1)], 0);
      assert.equal(flushed() - before, 1, 'the high-water mark is persisted before any store past it');

      await file.write([bytes(8, 2)], 500_000);
      before = flushed();
      await file.sync();
      assert.equal(flushed() - before, lines(0, 8) + lines(500_000, 500_008), 'two disjoint ranges, no header (size unchanged)');

      before = flushed();
      await file.write([bytes(8, 3)], 60, { sync: true }); // straddles a line boundary
      assert.equal(flushed() - before, 2);

      before = flushed();
      await file.write([bytes(1000, 4)], 600_000, { sync: true }); // an append: data then header
      assert.equal(flushed() - before, lines(600_000, 601_000) + 1);

      before = flushed();
      await file.sync();
      assert.equal(flushed() - before, 0, 'a barrier with nothing dirty flushes nothing');
      await file.close();
    });

    it('msync: one msync per dirty range, then one for the header when the size changed', async () => {
      const pfs = make('exact-msync', 'msync');
      await pfs.init();
      const file = await pfs.open('a', { create: true, capacityBytes: 1 << 20 });
      assert.equal(file.flush, 'msync');
      await file.preallocate(0, 600_000);
      await file.write([bytes(8, 1)], 0);
      await file.write([bytes(8, 2)], 500_000);
      let before = pfs.stats().msyncCalls;
      await file.sync();
      assert.equal(pfs.stats().msyncCalls - before, 3, 'two ranges and the header (preallocate changed the size)');
      before = pfs.stats().msyncCalls;
      await file.write([bytes(8, 3)], 100, { sync: true });
      assert.equal(pfs.stats().msyncCalls - before, 1);
      assert.equal(pfs.stats().linesFlushed, 0);
      await file.close();
    });
  });

  describe('layout and the logical size', () => {
    it('a header page with magic, size and high-water mark, then the data at offset 4096, sparse up to the capacity', async () => {
      const pfs = make('layout');
      await pfs.init();
      const file = await pfs.open('log', { create: true, capacityBytes: 100_000 });
      assert.equal(file.capacity, 102_400, 'capacity rounds up to pages');
      await file.write([bytes(300, 5)], 0, { sync: true });
      const raw = readAllRaw(join(pfs.root, 'log'));
      assert.equal(raw.length, DATA + 102_400, 'the real length is header + capacity');
      const view = new DataView(raw.buffer, raw.byteOffset);
      assert.equal(new TextDecoder().decode(raw.subarray(0, 8)), 'RLPMEM01');
      assert.equal(view.getBigUint64(8, true), 300n, 'the logical size');
      assert.equal(view.getBigUint64(16, true), 102_400n, 'the high-water mark (a 1 MiB step, capped at the capacity)');
      assert.deepEqual(raw.subarray(DATA, DATA + 300), bytes(300, 5));
      const blocks = fs.statSync(join(pfs.root, 'log')).blocks;
      assert.ok(blocks * 512 <= DATA + 102_400);
      await file.close();
    });

    it('size, truncation and the bytes past a shrink survive a new instance (no stale bytes come back)', async () => {
      const first = make('size');
      await first.init();
      const file = await first.open('a', { create: true });
      await file.write([new Uint8Array(1000).fill(0xff)], 0, { sync: true });
      await file.truncate(10);
      await file.sync();
      await file.close();
      const second = make('size');
      await second.init();
      const again = await second.open('a');
      assert.equal(await again.size(), 10);
      await again.truncate(1000);
      const expected = new Uint8Array(1000);
      expected.fill(0xff, 0, 10);
      assert.deepEqual(await readAll(again), expected, 'growth after a shrink reads zeros');
      await again.write([Uint8Array.of(7)], 2000);
      expected.fill(0xff, 0, 10);
      const grown = await readAll(again);
      assert.equal(grown.length, 2001);
      assert.ok(
        grown.subarray(10, 2000).every((b) => b === 0),
        'a gap after a shrink reads zeros',
      );
      await again.close();
    });

    it('grows past its capacity by remapping, and another instance remaps to follow', async () => {
      const writerFs = make('grow', 'cacheline');
      const readerFs = make('grow', 'cacheline');
      await writerFs.init();
      await readerFs.init();
      const writer = await writerFs.open('a', { create: true, capacityBytes: 4096 });
      await writer.write([bytes(100, 1)], 0, { sync: true });
      const reader = await readerFs.open('a', { readOnly: true });
      assert.equal(reader.capacity, 4096);
      const big = bytes(3 << 20, 2);
      await writer.write([big], 100, { sync: true });
      assert.ok(writer.capacity >= 100 + big.length);
      assert.equal(writerFs.stats().growths, 1);
      assert.equal(await reader.size(), 100 + big.length, 'the size is shared through the header');
      const back = new Uint8Array(big.length);
      assert.equal(await reader.read(back, 0, big.length, 100), big.length);
      assert.ok(Buffer.compare(back, big) === 0);
      assert.ok(readerFs.stats().remaps >= 1, 'the reader remapped to the grown file');
      await reader.close();
      await writer.close();
    });

    it('two handles share one mapping; remove and rename while open keep the handle working', async () => {
      const pfs = make('shared');
      await pfs.init();
      const a = await pfs.open('a', { create: true });
      const b = await pfs.open('a');
      await a.write([bytes(50, 1)], 0);
      assert.deepEqual(await readAll(b), bytes(50, 1));
      assert.deepEqual(pfs.stats().mappedFiles.msync, 1);
      await pfs.rename('a', 'b');
      await b.write([bytes(10, 2)], 50, { sync: true });
      await pfs.remove('b');
      assert.equal(await a.size(), 60);
      await a.close();
      await b.close();
      assert.deepEqual(await pfs.list(), []);
    });
  });

  describe('unmapping safety', () => {
    it('closing the file system unmaps every file; open handles then fail with CLOSED, never touch freed memory', async () => {
      const pfs = new PmemFs(join(dir, 'unmap'));
      await pfs.init();
      const file = await pfs.open('a', { create: true });
      await file.write([bytes(100, 1)], 0);
      // Reads started before the close complete (each op runs to its end synchronously).
      const reads = Array.from({ length: 8 }, () => file.read(new Uint8Array(100), 0, 100, 0));
      await pfs.close();
      assert.deepEqual(await Promise.all(reads), Array(8).fill(100));
      await expectCode(() => file.read(new Uint8Array(10), 0, 10, 0), ErrorCode.CLOSED);
      await expectCode(() => file.write([bytes(1, 1)], 0), ErrorCode.CLOSED);
      await expectCode(() => file.sync(), ErrorCode.CLOSED);
      await expectCode(() => file.size(), ErrorCode.CLOSED);
      assert.throws(() => file.flush, { code: 'CLOSED' });
      await file.close();
      await expectCode(() => pfs.open('a'), ErrorCode.CLOSED);
    });
  });

  describe('damaged and foreign files', () => {
    it('a file without the magic is CORRUPTION; an empty one (a create that died) opens empty', async () => {
      const pfs = make('foreign');
      await pfs.init();
      fs.writeFileSync(join(pfs.root, 'plain'), 'not a pmem file');
      fs.writeFileSync(join(pfs.root, 'big-plain'), Buffer.alloc(10_000, 1));
      fs.writeFileSync(join(pfs.root, 'empty'), '');
      fs.writeFileSync(join(pfs.root, 'zero-page'), Buffer.alloc(DATA + 4096));
      await expectCode(() => pfs.open('plain'), ErrorCode.CORRUPTION);
      await expectCode(() => pfs.open('plain', { readOnly: true }), ErrorCode.CORRUPTION);
      await expectCode(() => pfs.open('big-plain', { readOnly: true }), ErrorCode.CORRUPTION);
      assert.deepEqual(readAllRaw(join(pfs.root, 'plain')), new TextEncoder().encode('not a pmem file'), 'left alone');
      const ro = await pfs.open('empty', { readOnly: true });
      assert.equal(await ro.size(), 0);
      assert.equal(await ro.read(new Uint8Array(4), 0, 4, 0), 0);
      const rw = await pfs.open('empty');
      assert.equal(await rw.size(), 0);
      await rw.write([bytes(5, 1)], 0, { sync: true });
      assert.equal(await ro.size(), 5, 'the read-only handle maps the file once a writer gave it a header');
      await ro.close();
      await rw.close();
      const zero = await pfs.open('zero-page');
      assert.equal(await zero.size(), 0);
      await zero.close();
    });

    it('a size word beyond the capacity is CORRUPTION', async () => {
      const pfs = make('bad-size');
      await pfs.init();
      const file = await pfs.open('a', { create: true, capacityBytes: 4096 });
      await file.write([bytes(10, 1)], 0, { sync: true });
      await file.close();
      const fd = fs.openSync(join(pfs.root, 'a'), 'r+');
      const word = Buffer.alloc(8);
      word.writeBigUInt64LE(1n << 40n);
      fs.writeSync(fd, word, 0, 8, 8);
      fs.closeSync(fd);
      const error = await expectCode(() => pfs.open('a'), ErrorCode.CORRUPTION);
      assert.equal(error.file, 'a');
    });
  });

  describe('other processes', () => {
    it('the directory lock excludes another process (the shared symlink lock) and is free again after release', async () => {
      const pfs = make('lock');
      await pfs.init();
      const lock = await pfs.lock('LOCK');
      const script = `
        const { PmemFs } = await import(${JSON.stringify(PMEM_MODULE)});
        const fs = new PmemFs(process.argv[1]);
        try { const l = await fs.lock('LOCK'); await l.release(); console.log('ACQUIRED'); }
        catch (e) { console.log(e.code); }`;
      assert.equal(String(runChild(script, [pfs.root]).stdout).trim(), 'LOCKED');
      await lock.release();
      assert.equal(String(runChild(script, [pfs.root]).stdout).trim(), 'ACQUIRED');
    });

    it('a killed writer leaves its writes and size for the next process (the page cache keeps them)', async () => {
      const root = join(dir, 'kill');
      const script = `
        const { PmemFs } = await import(${JSON.stringify(PMEM_MODULE)});
        const fs = new PmemFs(process.argv[1], { flush: 'cacheline' });
        await fs.init();
        const f = await fs.open('log', { create: true, capacityBytes: 1 << 20 });
        await f.write([new Uint8Array(5000).fill(9)], 0, { sync: true });
        await f.write([new Uint8Array(100).fill(8)], 5000);
        process.kill(process.pid, 'SIGKILL');`;
      const child = runChild(script, [root]);
      assert.equal(child.signal, 'SIGKILL', String(child.stderr));
      const pfs = make('kill');
      await pfs.init();
      const file = await pfs.open('log', { readOnly: true });
      const all = await readAll(file);
      assert.equal(all.length, 5100);
      assert.ok(all.subarray(0, 5000).every((b) => b === 9) && all.subarray(5000).every((b) => b === 8));
      await file.close();
    });

    it('a full device is NO_SPACE before any store, never a SIGBUS (1 MiB tmpfs in a private mount namespace)', (t) => {
      const mountPoint = mkdtempSync(join(tmpdir(), 'raftlog-pmem-full-'));
      try {
        const script = `
          const { PmemFs } = await import(${JSON.stringify(PMEM_MODULE)});
          const pfs = new PmemFs(process.argv[1], { flush: 'cacheline' });
          await pfs.init();
          const f = await pfs.open('log', { create: true, capacityBytes: 8 << 20 });
          let written = 0;
          try {
            for (;;) { await f.write([new Uint8Array(64 << 10).fill(1)], written, { sync: true }); written += 64 << 10; }
          } catch (e) {
            const back = new Uint8Array(written);
            await f.read(back, 0, written, 0);
            console.log(JSON.stringify({ code: e.code, written, size: await f.size(), intact: back.every((b) => b === 1) }));
          }
          try { await f.preallocate(0, 8 << 20); } catch (e) { console.log(JSON.stringify({ prealloc: e.code })); }`;
        const inner = `mount -t tmpfs -o size=1m tmpfs "$1" && exec "$0" --input-type=module -e "$2" "$1"`;
        const child = spawnSync(
          'unshare',
          ['--mount', '--propagation', 'private', 'sh', '-c', inner, process.execPath, mountPoint, script],
          {
            encoding: 'utf8',
            timeout: 60_000,
          },
        );
        if (
          child.error !== undefined ||
          (child.status !== 0 && /mount|unshare|Operation not permitted/i.test(child.stderr) && child.signal === null)
        ) {
          t.skip(`cannot mount a private tmpfs here: ${child.error?.message ?? child.stderr.trim()}`);
          return;
        }
        assert.equal(child.signal, null, `the writer died of ${child.signal}: ${child.stderr}`);
        assert.equal(child.status, 0, child.stderr);
        const [full, prealloc] = child.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        assert.equal(full!['code'], 'NO_SPACE');
        assert.ok((full!['written'] as number) > 0 && (full!['written'] as number) < 1 << 20);
        assert.equal(full!['size'], full!['written'], 'the failed write changed nothing');
        assert.equal(full!['intact'], true);
        assert.equal(prealloc!['prealloc'], 'NO_SPACE');
      } finally {
        rmSync(mountPoint, { recursive: true, force: true });
      }
    });
  });
});
