/**
 * raftlog: a persistent embedded storage engine for Multi-Raft logs.
 * The package's entry point and the one module that joins the engine
 * (src/, which imports no backend) with the FileSystem backends (backends/).
 * Everything public is exported from here.
 */
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
