/**
 * Checks EngineOptions at construction, field by field, so a bad option is
 * an INVALID_ARGUMENT naming it before the engine touches the FileSystem.
 * Absent fields take the engine's defaults; present ones must be exactly
 * what EngineOptions says (no BigInt sizes, no `'1024'`).
 */
import { InvalidArgumentError } from './errors.js';
import type { FileSystem } from './filesystem.js';
import { FILE_SIZE_LIMIT } from './format/layout.js';
import { RecoveryMode } from './recovery/recovery.js';
import { MAX_RECOVERY_THREADS } from './recovery/replay-pool.js';
import { describeValue, optionalBoolean, optionalInteger, optionsObject, requireMethods, requireOneOf } from './validate.js';

/** The methods the engine calls on a FileSystem; a value without them is refused up front. */
const FILE_SYSTEM_METHODS = ['init', 'list', 'exists', 'open', 'remove', 'rename', 'reuse', 'syncDir', 'lock'] as const;

/** Options whose value is a non-negative safe integer. */
const NON_NEGATIVE = [
  'compressionThreshold',
  'preallocateBytes',
  'purgeThreshold',
  'rewriteMaxEntries',
  'forceRewriteAfter',
  'recycleFiles',
  'prefillFiles',
  'readCacheBytes',
  'indexCheckpointInterval',
] as const;

/** Throws INVALID_ARGUMENT unless `options` is a valid EngineOptions (defaults aside). */
export function checkEngineOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`Engine needs an options object with { fs }, got ${describeValue(options)}`);
  }
  const given = options as Record<string, unknown>;
  if (typeof given.fs !== 'object' || given.fs === null) {
    throw new InvalidArgumentError('Engine needs { fs }: a FileSystem such as new PosixFs(dir) or new MemFs()');
  }
  requireMethods<FileSystem>(given.fs, 'fs', FILE_SYSTEM_METHODS);
  if (given.spillFs !== undefined) requireMethods<FileSystem>(given.spillFs, 'spillFs', FILE_SYSTEM_METHODS);
  optionalInteger(given.targetFileSize, 'targetFileSize', 4096, 4096);
  if (typeof given.targetFileSize === 'number' && given.targetFileSize > FILE_SIZE_LIMIT) {
    throw new InvalidArgumentError(`targetFileSize must be an integer from 4096 to ${FILE_SIZE_LIMIT}, got ${given.targetFileSize}`);
  }
  for (const name of NON_NEGATIVE) optionalInteger(given[name], name, 0);
  if (given.recoveryMode !== undefined) requireOneOf(given.recoveryMode, 'recoveryMode', Object.values(RecoveryMode));
  const bound = given.maxSpaceAmplification;
  if (bound !== undefined && (typeof bound !== 'number' || !Number.isFinite(bound) || (bound !== 0 && bound < 1))) {
    throw new InvalidArgumentError(`maxSpaceAmplification must be a number ≥ 1, or 0 to disable, got ${describeValue(bound)}`);
  }
  optionalBoolean(given.indexCheckpoint, 'indexCheckpoint');
  optionalInteger(given.recoveryThreads, 'recoveryThreads', 0);
  if (typeof given.recoveryThreads === 'number' && given.recoveryThreads > MAX_RECOVERY_THREADS) {
    throw new InvalidArgumentError(`recoveryThreads must be an integer from 0 to ${MAX_RECOVERY_THREADS}, got ${given.recoveryThreads}`);
  }
  if (given.seed !== undefined) optionalInteger(given.seed, 'seed', 0, Number.MIN_SAFE_INTEGER);
  if (given.scrub !== undefined) {
    const scrub = optionsObject(given.scrub, 'scrub');
    optionalInteger(scrub.intervalMs, 'scrub.intervalMs', 0);
    optionalInteger(scrub.bytesPerSecond, 'scrub.bytesPerSecond', 0, 1);
  }
}
