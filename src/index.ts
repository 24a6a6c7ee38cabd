/**
 * raftlog: a persistent embedded storage engine for Multi-Raft logs.
 * Everything public is exported from here.
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
export { LogBatch, MAX_BATCH_PAYLOAD_BYTES } from './log-batch.js';
export type { Key } from './log-batch.js';
export { RecoveryMode } from './recovery/recovery.js';
export type { RecoveryReport, RecoveryProblem } from './recovery/recovery.js';
export { eraftpb } from './protos.js';
export type { Entry, StoredEntry, ProtobufMessage, MessageType } from './protos.js';
