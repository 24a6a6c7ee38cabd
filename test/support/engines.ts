/**
 * Backends the engine tests run on. Each target makes a fresh FileSystem and
 * can make another one over the same storage, as a restarted process would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemFs } from '../../backends/memfs.js';
import { PosixFs } from '../../backends/posix.js';
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

export const ENGINE_TARGETS: EngineTarget[] = [memTarget, posixTarget];
