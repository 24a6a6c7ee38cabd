/**
 * Backends the engine tests run on. Each target makes a fresh FileSystem and
 * can make another one over the same storage, as a restarted process would.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemFs } from '../../backends/memfs.js';
import { PmemFs, type PmemFlushOption } from '../../backends/pmem.js';
import { PosixFs } from '../../backends/posix.js';
import { UringFs } from '../../backends/uring.js';
import type { FileSystem } from '../../src/filesystem.js';

export interface EngineTarget {
  name: string;
  make(): Promise<{ fs: FileSystem; reopen(): FileSystem; cleanup(): Promise<void> }>;
}

export const memTarget: EngineTarget = {
  name: 'memfs',
  async make() {
    const fs = new MemFs();
    // The same MemFs instance is the same "disk"; a restarted engine opens it again.
    return { fs, reopen: () => fs, cleanup: async () => undefined };
  },
};

export const posixTarget: EngineTarget = {
  name: 'posix',
  async make() {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-engine-'));
    return {
      fs: new PosixFs(dir),
      reopen: () => new PosixFs(dir),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

/**
 * UringFs, buffered or O_DIRECT, under tmpdir() (ext4 here, where misaligned
 * O_DIRECT fails, unlike tmpfs). Every instance made is closed at cleanup,
 * which the engine does not do itself.
 */
export function uringTarget(direct: boolean): EngineTarget {
  return reopenableTarget(direct ? 'uring, O_DIRECT' : 'uring', tmpdir(), 'raftlog-engine-uring-', (dir) => new UringFs(dir, { direct }));
}

/**
 * A target over a fresh directory under `parent`, where every FileSystem made
 * for it (the first and each reopen) is closed at cleanup.
 */
function reopenableTarget(name: string, parent: string, prefix: string, open: (dir: string) => FileSystem): EngineTarget {
  return {
    name,
    async make() {
      const dir = await mkdtemp(join(parent, prefix));
      const made: FileSystem[] = [];
      const make = (): FileSystem => {
        const fs = open(dir);
        made.push(fs);
        return fs;
      };
      return {
        fs: make(),
        reopen: make,
        cleanup: async () => {
          for (const fs of made) await fs.close().catch(() => undefined);
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** Only where io_uring works; test/uring.test.ts fails loudly when it does not. */
const uringTargets = UringFs.unavailableReason() === undefined ? [uringTarget(false), uringTarget(true)] : [];

/** PmemFs over a fresh directory under /dev/shm (the stand-in for /mnt/pmem0), per barrier path. */
export function pmemTarget(flush: PmemFlushOption): EngineTarget {
  const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return reopenableTarget(`pmem, ${flush}`, parent, 'raftlog-engine-pmem-', (dir) => new PmemFs(dir, { flush }));
}

/** Only where the addon loads; test/pmem.test.ts fails loudly when it does not. */
const pmemTargets = PmemFs.unavailableReason() === undefined ? [pmemTarget('cacheline'), pmemTarget('msync')] : [];

export const ENGINE_TARGETS: EngineTarget[] = [memTarget, posixTarget, ...uringTargets, ...pmemTargets];
