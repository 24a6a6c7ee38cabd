/**
 * The directory backends test/filesystem-limits.test.ts runs at the limits of
 * real file systems, in its own process and in the child processes it
 * starts (which import this module by URL), so both build them alike.
 */
import { EncryptedFs } from '../../backends/encrypted.js';
import { PmemFs } from '../../backends/pmem.js';
import { PosixFs } from '../../backends/posix.js';
import { UringFs } from '../../backends/uring.js';
import type { FileSystem } from '../../src/filesystem.js';

const MASTER_KEY = new Uint8Array(32).fill(9);
export const uringReason = UringFs.unavailableReason();
export const pmemReason = PmemFs.unavailableReason();

export interface Backend {
  readonly name: string;
  /** Why it cannot run here, or undefined. */
  readonly unavailable: string | undefined;
  make(root: string): FileSystem;
}

export const BACKENDS: readonly Backend[] = [
  { name: 'PosixFs', unavailable: undefined, make: (root) => new PosixFs(root) },
  { name: 'UringFs', unavailable: uringReason, make: (root) => new UringFs(root) },
  { name: 'UringFs direct', unavailable: uringReason, make: (root) => new UringFs(root, { direct: true }) },
  { name: 'PmemFs', unavailable: pmemReason, make: (root) => new PmemFs(root, { defaultCapacityBytes: 4 << 20 }) },
  {
    name: 'EncryptedFs over PosixFs',
    unavailable: undefined,
    make: (root) => new EncryptedFs(new PosixFs(root), { masterKey: MASTER_KEY }),
  },
];
