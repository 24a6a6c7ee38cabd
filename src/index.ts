export * from './errors.js';
export type {
  FileSystem,
  FileHandle,
  OpenOptions,
  WriteOptions,
  FsCapabilities,
  DirectoryLock,
} from './filesystem.js';
