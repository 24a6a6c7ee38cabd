/**
 * The engine's public surface. The package's entry point is ../index.ts,
 * which adds the backends: nothing under src/ imports a backend.
 */
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
export type { VerifyReport, VerifyProblem } from './verify.js';
export type { CorruptionEvent, EngineEventMap, EngineEventName, EngineListener } from './engine-events.js';
export type { ScrubOptions } from './scrub.js';
export type { RecoveryReport, RecoveryProblem } from './recovery/recovery.js';
export { eraftpb } from './protos.js';
export type { StoredEntry, ProtobufMessage, MessageType } from './protos.js';
// Typed Raft state: each name is both the TypeScript type and its codec.
export { Entry, EntryType, HardState, ConfState, SnapshotMetadata } from './raft/messages.js';
export type { MessageCodec, ConfStateInit, SnapshotMetadataInit } from './raft/messages.js';
export { RaftStorage, RAFT_STORAGE_KEYS } from './raft/storage.js';
export type { RaftStorageOptions, RaftStorageWriteOptions, RaftState, RaftUpdate } from './raft/storage.js';
export { CompactedError, UnavailableError, SnapshotOutOfDateError } from './raft/errors.js';

export type { EngineMetrics, HistogramSnapshot } from './metrics.js';
