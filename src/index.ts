/**
 * raftlog: a persistent embedded storage engine for Multi-Raft logs.
 * Everything public is exported from here.
 */
import { loadNativeBatchChecksum } from '../hardware/native.js';
import { installBatchChecksum } from './format/checksum.js';

export * from './errors.js';
export type {
  FileSystem,
  FileHandle,
  OpenOptions,
  WriteOptions as FileWriteOptions,
  FsCapabilities,
  DirectoryLock,
} from './filesystem.js';
export { Engine } from './engine.js';
export type { EngineOptions, EngineStats, WriteOptions, ScanOptions, KeyValuePair } from './engine.js';
export type { FileSpan, LogFileRef } from './engine-reads.js';
export type { ReadCacheStats } from './read-cache.js';
export { LogBatch, MAX_BATCH_PAYLOAD_BYTES } from './log-batch.js';
export type { Key } from './log-batch.js';
export { RecoveryMode } from './recovery/recovery.js';
export { consistencyCheck } from './consistency-check.js';
export type { ConsistencyReport, RegionConsistency, IndexRange } from './consistency-check.js';
export type { RecoveryReport, RecoveryProblem } from './recovery/recovery.js';
export { eraftpb } from './protos.js';
export type { StoredEntry, ProtobufMessage, MessageType } from './protos.js';
// Typed Raft state: each name is both the TypeScript type and its codec.
export { Entry, EntryType, HardState, ConfState, SnapshotMetadata } from './raft/messages.js';
export type { MessageCodec, ConfStateInit, SnapshotMetadataInit } from './raft/messages.js';
export { RaftStorage, RAFT_STORAGE_KEYS } from './raft/storage.js';
export type { RaftStorageOptions, RaftStorageWriteOptions, RaftState, RaftUpdate } from './raft/storage.js';
export { CompactedError, UnavailableError, SnapshotOutOfDateError } from './raft/errors.js';

// Backends. The package root is the composition root: the engine itself
// (everything else under src/) never imports a backend.
export { PosixFs } from '../backends/posix.js';
export { MemFs } from '../backends/memfs.js';
export { FaultFs } from '../backends/fault.js';
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
} from '../backends/fault.js';
export { EncryptedFs } from '../backends/encrypted.js';
export type { EncryptedFsOptions, MasterKeyProvider, EncryptionStats } from '../backends/encrypted.js';
export { UringFs } from '../backends/uring.js';
export type { UringFsOptions, UringStats } from '../backends/uring.js';
export { PmemFs } from '../backends/pmem.js';
export type { PmemFsOptions, PmemStats, PmemFileHandle, PmemFlushOption, PmemFlushPath } from '../backends/pmem.js';

export type { EngineMetrics, HistogramSnapshot } from './metrics.js';

// The write path's checksums: with the addon built, a sealed batch's entry
// and payload CRCs take one native call instead of one per entry (about 2.7
// against 1 us per W2 write here). Without it the same bytes come from
// @node-rs/crc32, call by call; loading never throws.
installBatchChecksum(loadNativeBatchChecksum());
