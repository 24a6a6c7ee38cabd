/**
 * The one directory lock (backends/directory-lock.ts) across backends and
 * across processes: what the conformance suite's same-process test cannot
 * reach. Issue 15, case 1: a PosixFs engine and a UringFs engine both opened
 * one directory, because PosixFs locked with a pid file and UringFs with
 * flock, and neither saw the other.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { EncryptedFs } from '../backends/encrypted.js';
import { PmemFs } from '../backends/pmem.js';
import { PosixFs } from '../backends/posix.js';
import { UringFs } from '../backends/uring.js';
import { Engine } from '../src/engine.js';
import { ErrorCode } from '../src/errors.js';
import type { FileSystem } from '../src/filesystem.js';
import { lockHolder } from '../cli/directory.js';
import { expectCode } from './conformance/suite.js';

const MASTER_KEY = new Uint8Array(32).fill(3);
const uringReason = UringFs.unavailableReason();
const pmemReason = PmemFs.unavailableReason();

type BackendName = 'posix' | 'uring' | 'uring-direct' | 'pmem' | 'encrypted-posix';

/** Every directory backend available here, by name. */
function backends(): BackendName[] {
  const names: BackendName[] = ['posix', 'encrypted-posix'];
  if (uringReason === undefined) names.push('uring', 'uring-direct');
  if (pmemReason === undefined) names.push('pmem');
  return names;
}

function make(name: BackendName, root: string): FileSystem {
  switch (name) {
    case 'posix':
      return new PosixFs(root);
    case 'uring':
      return new UringFs(root);
    case 'uring-direct':
      return new UringFs(root, { direct: true });
    case 'pmem':
      return new PmemFs(root, { flush: 'msync' });
    case 'encrypted-posix':
      return new EncryptedFs(new PosixFs(root), { masterKey: MASTER_KEY });
  }
}

const MODULES = {
  posix: new URL('../backends/posix.js', import.meta.url).href,
  uring: new URL('../backends/uring.js', import.meta.url).href,
  engine: new URL('../src/engine.js', import.meta.url).href,
};

/**
 * A child that takes `root`'s lock through `backend` ('posix' or 'uring'),
 * or opens an engine there with `engine`, prints READY, and holds on until
 * killed.
 */
const CHILD = `
const [posixUrl, uringUrl, engineUrl, backend, root, mode] = process.argv.slice(1);
const fs = backend === 'uring' ? new (await import(uringUrl)).UringFs(root) : new (await import(posixUrl)).PosixFs(root);
try {
  if (mode === 'engine') {
    const engine = new (await import(engineUrl)).Engine({ fs });
    await engine.open();
  } else {
    await fs.init();
    await fs.lock('LOCK');
  }
  console.log('READY');
  setInterval(() => {}, 1 << 30);
} catch (error) {
  console.log('FAILED ' + error.code + ' ' + error.message);
  process.exit(0);
}
`;

async function holdInChild(
  backend: 'posix' | 'uring',
  root: string,
  mode: 'lock' | 'engine',
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', CHILD, MODULES.posix, MODULES.uring, MODULES.engine, backend, root, mode],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('READY')) resolve();
      else if (out.includes('\n')) reject(new Error(`child could not take the lock: ${out}`));
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${out}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

let base: string;
let counter = 0;
const freshRoot = (): string => join(base, `dir-${counter++}`);

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'raftlog-directory-lock-'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('issue 15 case 1: a PosixFs engine and a UringFs engine on one directory', { skip: uringReason }, () => {
  it('in one process, the second engine to open gets LOCKED, whichever backend opened first', async () => {
    for (const [first, second] of [
      ['posix', 'uring'],
      ['uring', 'posix'],
    ] as const) {
      const root = freshRoot();
      const one = new Engine({ fs: make(first, root) });
      await one.open();
      try {
        const two = new Engine({ fs: make(second, root) });
        await expectCode(() => two.open(), ErrorCode.LOCKED, `${second} after ${first}:`);
        await two.close().catch(() => undefined);
      } finally {
        await one.close();
      }
      // Released: the other backend can now open it.
      const three = new Engine({ fs: make(second, root) });
      await three.open();
      await three.close();
    }
  });

  it('across processes: a UringFs engine in a child makes a PosixFs engine here LOCKED, naming its pid', async () => {
    const root = freshRoot();
    const child = await holdInChild('uring', root, 'engine');
    try {
      const engine = new Engine({ fs: new PosixFs(root) });
      const error = await expectCode(() => engine.open(), ErrorCode.LOCKED);
      assert.match(error.message, new RegExp(`pid ${child.pid}\\b`));
      await engine.close().catch(() => undefined);
      assert.match((await lockHolder(root)) ?? '', new RegExp(`pid ${child.pid}\\b`), 'the CLI names the holder');
    } finally {
      await kill(child);
    }
    const engine = new Engine({ fs: new PosixFs(root) });
    await engine.open();
    await engine.close();
  });
});

describe('the directory lock held in another process', () => {
  const holders: ('posix' | 'uring')[] = uringReason === undefined ? ['posix', 'uring'] : ['posix'];
  for (const holder of holders) {
    it(`held through ${holder} in a child: every backend here is LOCKED; once the child is killed, each takes it over`, async () => {
      const root = freshRoot();
      const child = await holdInChild(holder, root, 'lock');
      try {
        for (const name of backends()) {
          const fs = make(name, root);
          try {
            await fs.init();
            const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED, `${name}:`);
            assert.match(error.message, new RegExp(`pid ${child.pid}\\b`), `${name} names the holder`);
          } finally {
            await fs.close();
          }
        }
      } finally {
        await kill(child);
      }
      for (const name of backends()) {
        const fs = make(name, root);
        try {
          const lock = await fs.lock('LOCK');
          await lock.release();
        } finally {
          await fs.close();
        }
      }
      assert.equal(await lockHolder(root), undefined);
    });
  }
});

describe('the directory lock without the native addon', () => {
  it('a PosixFs engine in a process without the addon makes every backend here LOCKED', async () => {
    const root = freshRoot();
    // The loader honours RAFTLOG_NATIVE_PATH; pointing it nowhere is a machine without the addon.
    const child = await holdInChild('posix', root, 'engine', { RAFTLOG_NATIVE_PATH: '/nonexistent/raftlog_native.node' });
    try {
      for (const name of backends()) {
        const engine = new Engine({ fs: make(name, root) });
        const error = await expectCode(() => engine.open(), ErrorCode.LOCKED, `${name}:`);
        assert.match(error.message, new RegExp(`pid ${child.pid}\\b`));
        await engine.close().catch(() => undefined);
      }
    } finally {
      await kill(child);
    }
  });
});

describe('the directory lock held by a worker thread of this process', () => {
  it('another thread is LOCKED through every backend, naming the worker; free once the worker releases it', async () => {
    const root = freshRoot();
    // The worker has its own module instances, so its own in-process registry: only the symlink can exclude.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.posix).then(async ({ PosixFs }) => {
        const fs = new PosixFs(workerData.root);
        await fs.init();
        const lock = await fs.lock('LOCK');
        parentPort.postMessage('held');
        parentPort.once('message', async () => { await lock.release(); parentPort.postMessage('released'); });
      }, (error) => parentPort.postMessage(String(error)));`,
      { eval: true, workerData: { posix: MODULES.posix, root } },
    );
    try {
      const next = (): Promise<unknown> => new Promise((resolve) => worker.once('message', resolve));
      assert.equal(await next(), 'held');
      for (const name of backends()) {
        const fs = make(name, root);
        try {
          const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED, `${name}:`);
          assert.match(error.message, new RegExp(`worker thread ${worker.threadId}\\b`));
        } finally {
          await fs.close();
        }
      }
      worker.postMessage('release');
      assert.equal(await next(), 'released');
      const fs = new PosixFs(root);
      const lock = await fs.lock('LOCK');
      await lock.release();
    } finally {
      await worker.terminate();
    }
  });
});

describe('leftovers of the earlier lock schemes', () => {
  it('an empty LOCK flocked by a running older engine is LOCKED through every backend; once it is gone, the file is taken over', {
    skip: pmemReason,
  }, async () => {
    const root = freshRoot();
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'LOCK'), '');
    // What UringFs and PmemFs did before: flock(2) on an empty LOCK, held by the open descriptor.
    const script = `
      const { loadNative } = await import(process.argv[1]);
      const { openSync } = await import('node:fs');
      const native = loadNative();
      if (!native.ok) { console.log('FAILED ' + native.reason); process.exit(0); }
      native.binding.flock(openSync(process.argv[2], 'r+'), true, true);
      console.log('READY');
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, new URL('../hardware/native.js', import.meta.url).href, join(root, 'LOCK')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('READY')) resolve();
          else if (out.includes('\n')) reject(new Error(out));
        });
      });
      for (const name of backends()) {
        const fs = make(name, root);
        try {
          const error = await expectCode(() => fs.lock('LOCK'), ErrorCode.LOCKED, `${name}:`);
          assert.match(error.message, /older raftlog/);
        } finally {
          await fs.close();
        }
      }
      assert.match((await lockHolder(root)) ?? '', /older raftlog/, 'the CLI sees the old holder too');
    } finally {
      await kill(child);
    }
    const fs = new PosixFs(root);
    const lock = await fs.lock('LOCK');
    assert.ok((await lstat(join(root, 'LOCK'))).isSymbolicLink(), 'the old file was replaced by the new lock');
    await lock.release();
  });
});
