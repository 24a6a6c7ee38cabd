/**
 * The addon's one-job write + fdatasync that PosixFs uses where it is built
 * (hardware/write-sync.cc): every byte lands where node:fs would put it,
 * errors carry node:fs's shape (so PosixFs maps them as before), and closing
 * a handle waits for such a write instead of releasing its descriptor under it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { PosixFs } from '../backends/posix.js';
import { loadNativeWriteSync } from '../hardware/native.js';
import { Random } from './support/random.js';
import { testSeed } from './support/seed.js';

const writeSync = loadNativeWriteSync();
const noNative = writeSync === undefined ? 'the addon is not built here' : false;

describe('native write + fdatasync', { skip: noNative }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-write-sync-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes more buffers than one pwritev takes (IOV_MAX), empty ones included, at the position', async () => {
    const seed = testSeed(30);
    const prng = new Random(seed);
    const buffers = Array.from({ length: 1500 }, (_, i) => prng.bytes(i % 7 === 0 ? 0 : 1 + prng.below(40)));
    const file = join(dir, 'many');
    writeFileSync(file, new Uint8Array(10).fill(0xee));
    const fd = openSync(file, 'r+');
    try {
      await writeSync!(fd, buffers, 5, true);
    } finally {
      closeSync(fd);
    }
    const expected = Buffer.concat([Buffer.alloc(5, 0xee), ...buffers.map((b) => Buffer.from(b))]);
    assert.deepEqual(readFileSync(file), expected, `seed ${seed}`);
  });

  it('fails like node:fs does: code, negative errno, syscall', async () => {
    const file = join(dir, 'read-only');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    try {
      await assert.rejects(writeSync!(fd, [new Uint8Array(4)], 0, true), { code: 'EBADF', errno: -9, syscall: 'write' });
    } finally {
      closeSync(fd);
    }
    await assert.rejects(writeSync!(0x7ffffff0, [new Uint8Array(1)], 0, false), { code: 'EBADF', syscall: 'write' });
    assert.throws(() => writeSync!(1, [new Uint8Array(1)], -1, false), /position/);
    assert.throws(() => writeSync!(1, ['x' as unknown as Uint8Array], 0, false), /Uint8Array/);
  });

  it('PosixFs: a synced write lands through it, and close waits for writes in flight', async () => {
    const fs = new PosixFs(dir);
    await fs.init();
    const handle = await fs.open('log', { create: true, exclusive: true });
    const chunk = new Uint8Array(1 << 16).fill(3);
    await handle.write([chunk, chunk], 0, { sync: true });
    const writes = Array.from({ length: 16 }, (_, i) => handle.write([chunk], (2 + i) << 16, { sync: i % 2 === 0 }));
    await handle.close();
    await Promise.all(writes);
    assert.deepEqual(readFileSync(join(dir, 'log')), Buffer.alloc(18 << 16, 3));
    await fs.close();
  });
});
