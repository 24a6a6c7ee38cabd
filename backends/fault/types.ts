/**
 * Public vocabulary of FaultFs: operation kinds, injection rules, crash
 * policies and fault-log events. Kept in one module so users can import the
 * types without pulling the implementation apart.
 */

/**
 * Every FileSystem / FileHandle call FaultFs counts and can fail. The names
 * follow the methods; `syncDir` is the directory barrier and `closeFs` is
 * `FileSystem.close()` (`close` is `FileHandle.close()`).
 *
 * Some calls present more than one kind to rules, because they do more than
 * one thing: `reuse` is seen as `reuse`, `rename` and `open`; a
 * `write(…, { sync: true })` is first a `write` and then a `sync` (the
 * barrier half can fail on its own, with the Linux fsync-failure semantics).
 */
export type OpKind =
  | 'init'
  | 'list'
  | 'exists'
  | 'open'
  | 'read'
  | 'write'
  | 'sync'
  | 'syncDir'
  | 'rename'
  | 'reuse'
  | 'remove'
  | 'truncate'
  | 'preallocate'
  | 'size'
  | 'close'
  | 'lock'
  | 'closeFs';

/** All operation kinds, for validation and for `ops: 'any'`. */
export const OP_KINDS: readonly OpKind[] = [
  'init',
  'list',
  'exists',
  'open',
  'read',
  'write',
  'sync',
  'syncDir',
  'rename',
  'reuse',
  'remove',
  'truncate',
  'preallocate',
  'size',
  'close',
  'lock',
  'closeFs',
];

/**
 * What a rule does when it fires.
 * - `EIO`: reject with `IoError` (code IO, errno EIO).
 * - `ENOSPC`: reject with `NoSpaceError` (code NO_SPACE, errno ENOSPC).
 * - `short`: reads are served by several smaller inner reads and writes are
 *   issued as several smaller inner writes. The seam requires backends to
 *   loop over short transfers, so the caller still sees every byte; what
 *   changes is that a write is no longer one unit, and a crash taken while it
 *   is in flight can keep some pieces and not others.
 * - `flip`: on read, one bit of the returned buffer is flipped (transient: the
 *   stored bytes are intact); on write, one bit of the data is flipped before
 *   it is stored (corruption at rest, durable once synced).
 * - `misdirect`: the write lands at another page-aligned offset of the same
 *   file; the intended range keeps its old bytes.
 */
export type FaultErrorKind = 'EIO' | 'ENOSPC' | 'short' | 'flip' | 'misdirect';

/**
 * When a rule fires, among the operations it matches (kind and path).
 * - `{ index: n }`: the operation whose `fault.opIndex` is `n`.
 * - `{ probability: p }`: each matching operation with probability `p`,
 *   drawn from a PRNG keyed by (seed, rule id, path).
 * - `{ script: 'pass,fail,pass*' }`: one step per matching operation. Steps
 *   are `pass`, `fail`, `N*pass`, `N*fail` (N times), and a final `pass*` or
 *   `fail*` (forever). When a script without `*` runs out, later operations pass.
 * - `{ afterBytes: n, partial? }`: a byte budget for growth. Only operations
 *   that grow a file count (a write past the end of file, a preallocate past
 *   it), by how much the file size grows. Once a growth would exceed the
 *   budget the rule fires; with `partial: true` a write first stores the
 *   prefix that still fits, then fails (as a real disk does when it fills up
 *   mid-write). The disk then stays full: every later growth fails too,
 *   until the rule is removed. Operations that do not grow a file (overwrites,
 *   syncs) always pass. Growth is measured at the intended offset, before a
 *   misdirect rule moves the write.
 */
export type FaultTrigger =
  | { readonly index: number }
  | { readonly probability: number }
  | { readonly script: string }
  | { readonly afterBytes: number; readonly partial?: boolean };

export interface FaultRule {
  /** Operation kinds the rule applies to, or every kind. */
  readonly ops: readonly OpKind[] | 'any';
  /**
   * Restricts the rule to some files. A RegExp is tested against the file
   * name; a string is a glob over the name (`*` any run, `?` one character),
   * so a plain name matches only itself. `rename` and `reuse` match on either
   * name. Operations without a file (list, syncDir, init) have the path ''.
   */
  readonly path?: RegExp | string;
  readonly when: FaultTrigger;
  readonly error: FaultErrorKind;
}

/** Returned by `fault.inject(rule)`. */
export interface FaultRuleHandle {
  /** Rule number, as printed in the fault log. */
  readonly id: number;
  /** How many times the rule has fired so far. */
  readonly fired: number;
  /** Stops the rule; already-fired faults stay in the log. */
  remove(): void;
}

/**
 * What a crash does to file data that is not yet durable (written since the
 * last successful barrier of that file).
 * - `drop`: only synced data survives.
 * - `keepAll`: every pending write survives (as if the cache was written back
 *   just before the power cut); isolates directory effects.
 * - `prefix`: a random prefix of the file's pending operations survives, and
 *   the last kept write is cut at a random byte (RocksDB
 *   `DropRandomUnsyncedFileData`, LazyFS `torn-op`).
 * - `pages`: each page touched since the last barrier independently comes
 *   back new or old (Pebble `CrashClone`, CrashMonkey reordering); holes
 *   beyond the synced size read as zeros.
 * - `torn-zeros` / `torn-old` / `torn-garbage`: like `prefix`, but the rest
 *   of the page where the cut falls is filled with zeros, the old bytes, or
 *   random bytes, and the file keeps that page (a torn sector write). The
 *   fill never touches bytes below the synced size: synced data is never lost.
 * - `pmem`: persistent memory written with plain stores (PmemFs; see
 *   fault/pmem.ts): each cache line (`lineSize`, default 64) stored to since
 *   the last barrier independently comes back in its durable version or in
 *   one of its newer versions; a line that came back may be torn, each
 *   aligned 8-byte word old or new on its own; the size (one word) comes back
 *   in its durable or one of its newer values. Not part of `mixed`.
 */
export type DataCrashMode = 'drop' | 'keepAll' | 'prefix' | 'pages' | 'torn-zeros' | 'torn-old' | 'torn-garbage' | 'pmem';

/**
 * What a crash does to directory operations (create, rename, remove) not yet
 * followed by `syncDir()`.
 * - `drop`: all are lost: an unsynced create vanishes, an unsynced rename
 *   reverts, an unsynced remove comes back with its durable content.
 * - `keepAll`: all survive.
 * - `prefix`: a random prefix survives, in order (a journaling file system).
 * - `subset`: each survives independently; each kept one is applied whole (a
 *   rename is atomic) and skipped when what it acted on is not there.
 */
export type DirCrashMode = 'drop' | 'keepAll' | 'prefix' | 'subset';

export interface CrashPolicySpec {
  readonly data: DataCrashMode;
  readonly dir: DirCrashMode;
  /** For `pages` and `pmem` (and `subset` directory entries): chance of keeping each one. Default 0.5. */
  readonly keepProbability?: number;
  /** For `pmem`: cache-line size, a power of two from 8 to 4096. Default 64. */
  readonly lineSize?: number;
  /** For `pmem`: chance that a line that reached the media is torn into old and new words. Default 0.25. */
  readonly tornProbability?: number;
}

/**
 * Named policies (shorthands for specs):
 * - `dropUnsynced`: { data: 'drop', dir: 'drop' }
 * - `keepPrefix`: { data: 'prefix', dir: 'prefix' }
 * - `keepPages`: { data: 'pages', dir: 'subset' }
 * - `tornZeros` / `tornOld` / `tornGarbage`: { data: 'torn-…', dir: 'prefix' }
 * - `loseDirEntries`: { data: 'keepAll', dir: 'drop' }
 * - `pmem`: { data: 'pmem', dir: 'prefix' } (a DAX file system journals its
 *   directory like any other)
 * - `mixed` (the default): for each file a seeded choice among the data
 *   modes except `pmem` (which models a different medium, and whose
 *   addition must not change what existing seeds replay), and a seeded
 *   directory mode.
 */
export type CrashPolicyName =
  | 'dropUnsynced'
  | 'keepPrefix'
  | 'keepPages'
  | 'tornZeros'
  | 'tornOld'
  | 'tornGarbage'
  | 'loseDirEntries'
  | 'pmem'
  | 'mixed';

export type CrashPolicy = CrashPolicyName | CrashPolicySpec;

/** Kinds of log events: injected faults plus crash, freeze and at-rest flips. */
export type FaultEventKind = FaultErrorKind | 'flipAtRest' | 'barrierLost' | 'crash' | 'freeze';

/** One entry of `fault.log`. */
export interface FaultEvent {
  /** Position in the log, from 0. */
  readonly seq: number;
  /** The operation that was running (for crash/flipBits: `fault.opIndex` at the time). */
  readonly opIndex: number;
  /** The operation kind, or the FaultFs method for crash/freeze/flipBits. */
  readonly op: OpKind | 'crash' | 'freeze' | 'flipBits';
  readonly kind: FaultEventKind;
  /** File name concerned, '' for none. */
  readonly path: string;
  /** Rule id that fired, when a rule did. */
  readonly rule: number | undefined;
  /** Human-readable specifics: offsets, lengths, what a crash kept. */
  readonly detail: string;
}

export interface FaultFsOptions {
  /** Seeds every random choice; the same seed and workload replay exactly. */
  readonly seed: number;
  /** Page size for `pages` crashes, torn pages and misdirected writes. Default 4096. */
  readonly pageSize?: number;
}

export interface FlipBitsOptions {
  /** Only this file (else: files chosen at random among non-empty ones). */
  readonly file?: string;
  /** How many bits to flip. Default 1. */
  readonly count?: number;
}
