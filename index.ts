/**
 * raftlog: a persistent embedded storage engine for Multi-Raft logs.
 * The package's entry point and the one module that joins the engine
 * (src/, which imports no backend) with the FileSystem backends (backends/).
 * Everything public is exported from here.
 */
import { loadNativeBatchChecksum, loadNativeLz4 } from './hardware/native.js';
import { installBatchChecksum } from './src/format/checksum.js';
import { installCompression } from './src/format/compression.js';

export * from './src/index.js';

export { PosixFs } from './backends/posix.js';
export { MemFs } from './backends/memfs.js';
export { FaultFs } from './backends/fault.js';
export type {
  CrashPolicy,
  CrashPolicyName,
  CrashPolicySpec,
  FaultEvent,
  FaultFsOptions,
  FaultRule,
  FaultRuleHandle,
  FaultTrigger,
  FlipBitsOptions,
  OpKind,
} from './backends/fault.js';
export { EncryptedFs } from './backends/encrypted.js';
export type { EncryptedFsOptions, MasterKeyProvider, EncryptionStats } from './backends/encrypted.js';
export { UringFs } from './backends/uring.js';
export type { UringFsOptions, UringStats } from './backends/uring.js';
export { PmemFs } from './backends/pmem.js';
export type { PmemFsOptions, PmemStats, PmemFileHandle, PmemFlushOption, PmemFlushPath } from './backends/pmem.js';

// The write path's checksums: with the addon built, a sealed batch's entry
// and payload CRCs take one native call instead of one per entry (about 2.7
// against 1 us per W2 write here). Without it the same bytes come from
// @node-rs/crc32, call by call; loading never throws.
installBatchChecksum(loadNativeBatchChecksum());
// Payload lz4: the addon's codec compresses into the batch's own memory and
// gives up early on incompressible input (a 4 KiB batch: about 1-3 against
// 7-11 us through lz4-napi, bench/lz4.ts). Both write the same format.
installCompression(loadNativeLz4());
