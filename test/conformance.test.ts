/**
 * Runs the one conformance suite against every backend. A new backend is one
 * more entry in TARGETS.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MemFs } from '../backends/memfs.js';
import { PosixFs } from '../backends/posix.js';
import { runConformance, type ConformanceTarget } from './conformance/suite.js';

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

const TARGETS: readonly ConformanceTarget[] = [posix, memfs, memfsProcessCrash];

for (const target of TARGETS) runConformance(target);
