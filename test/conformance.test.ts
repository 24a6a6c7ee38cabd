/**
 * Runs the one conformance suite against every backend. A new backend is one
 * more entry in TARGETS.
 */

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EncryptedFs } from '../backends/encrypted.js';
import { FaultFs } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { PmemFs, type PmemFlushOption } from '../backends/pmem.js';
import { PosixFs } from '../backends/posix.js';
import { UringFs } from '../backends/uring.js';
import type { FileSystem } from '../src/filesystem.js';
import { runConformance, type ConformanceTarget } from './conformance/suite.js';

/** Every directory backend over `root` (MASTER_KEY is defined below; this runs only inside tests). */
function directorySiblings(root: string): () => Promise<readonly { name: string; fs: FileSystem }[]> {
  return async () => {
    const siblings: { name: string; fs: FileSystem }[] = [
      { name: 'posix', fs: new PosixFs(root) },
      { name: 'encrypted(posix)', fs: new EncryptedFs(new PosixFs(root), { masterKey: MASTER_KEY }) },
    ];
    if (UringFs.unavailableReason() === undefined) {
      siblings.push({ name: 'uring', fs: new UringFs(root) }, { name: 'uring, O_DIRECT', fs: new UringFs(root, { direct: true }) });
    }
    if (PmemFs.unavailableReason() === undefined) siblings.push({ name: 'pmem', fs: new PmemFs(root, { flush: 'msync' }) });
    return siblings;
  };
}

const posix: ConformanceTarget<PosixFs> = {
  name: 'posix',
  async make() {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-conformance-'));
    // A root that does not exist yet, so init() has to create it (and its parent).
    const root = join(dir, 'nested', 'root');
    const fs = new PosixFs(root);
    return {
      fs,
      reopen: async () => new PosixFs(root),
      siblings: directorySiblings(root),
      cleanup: async () => {
        await fs.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
};

const memfs: ConformanceTarget<MemFs> = {
  name: 'memfs',
  async make() {
    const fs = new MemFs();
    return {
      fs,
      reopen: async () => MemFs.fromSnapshot(fs.snapshot()),
      cleanup: () => fs.close(),
    };
  },
};

/**
 * The mildest crash there is, a process kill with the OS still up: nothing
 * written is lost. It keeps the suite's crash hook exercised until FaultFs
 * supplies the harsher policies.
 */
const memfsProcessCrash: ConformanceTarget<MemFs> = {
  ...memfs,
  name: 'memfs, process crash',
  crash: async (fs) => MemFs.fromSnapshot(fs.snapshot()),
};

/** A fixed master key: conformance is about behaviour, not key handling (test/encrypted.test.ts covers that). */
const MASTER_KEY = new Uint8Array(32).fill(7);

/** EncryptedFs over another target: same contract, ciphertext underneath. */
function encrypted<F extends FileSystem>(base: ConformanceTarget<F>): ConformanceTarget<EncryptedFs> {
  return {
    name: `encrypted(${base.name})`,
    async make() {
      const inner = await base.make();
      const reopenInner = inner.reopen;
      return {
        fs: new EncryptedFs(inner.fs, { masterKey: MASTER_KEY }),
        reopen: reopenInner === undefined ? undefined : async () => new EncryptedFs(await reopenInner(), { masterKey: MASTER_KEY }),
        siblings: inner.siblings,
        cleanup: () => inner.cleanup(),
      };
    },
  };
}

/** EncryptedFs over FaultFs(MemFs): a real power-loss model (seeded mix of crash policies) under the encryption layer. */
const encryptedFaultCrash: ConformanceTarget<EncryptedFs> = {
  name: 'encrypted(fault(memfs)), power loss',
  async make() {
    const fault = new FaultFs(new MemFs(), { seed: 20_261_121 });
    return { fs: new EncryptedFs(fault, { masterKey: MASTER_KEY }), cleanup: () => fault.close().catch(() => undefined) };
  },
  crash: async (fs) => new EncryptedFs(await (fs.unwrap() as FaultFs).crash(), { masterKey: MASTER_KEY }),
};

/**
 * UringFs over a real directory. Direct mode runs under tmpdir(), which here
 * is ext4: tmpfs accepts misaligned O_DIRECT, so only a block file system
 * proves the staging never issues one. Registered only where io_uring works
 * (test/uring.test.ts fails loudly when it does not).
 */
function uring(direct: boolean): ConformanceTarget<UringFs> {
  return {
    name: direct ? 'uring, O_DIRECT' : 'uring',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'raftlog-conformance-uring-'));
      const root = join(dir, 'nested', 'root');
      const fs = new UringFs(root, { direct, queueDepth: 16 });
      return {
        fs,
        reopen: async () => new UringFs(root, { direct }),
        siblings: directorySiblings(root),
        cleanup: async () => {
          await fs.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

const uringTargets = UringFs.unavailableReason() === undefined ? [uring(false), uring(true)] : [];

/**
 * PmemFs over /dev/shm (standing in for a DAX mount), once per barrier: the
 * flush instructions run on ordinary memory there, only their durability
 * needs DAX. test/pmem.test.ts fails loudly when the addon is missing.
 */
function pmem(flush: PmemFlushOption): ConformanceTarget<PmemFs> {
  return {
    name: `pmem, ${flush}`,
    async make() {
      const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'raftlog-conformance-pmem-'));
      const root = join(dir, 'nested', 'root');
      const made: PmemFs[] = [];
      const make = (): PmemFs => {
        const fs = new PmemFs(root, { flush });
        made.push(fs);
        return fs;
      };
      return {
        fs: make(),
        reopen: async () => make(),
        siblings: directorySiblings(root),
        cleanup: async () => {
          for (const fs of made) await fs.close().catch(() => undefined);
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

const pmemTargets = PmemFs.unavailableReason() === undefined ? [pmem('cacheline'), pmem('msync')] : [];

const TARGETS: readonly ConformanceTarget[] = [
  posix,
  memfs,
  memfsProcessCrash,
  encrypted(posix),
  encrypted(memfs),
  encryptedFaultCrash,
  ...uringTargets,
  ...pmemTargets,
];

for (const target of TARGETS) runConformance(target);
