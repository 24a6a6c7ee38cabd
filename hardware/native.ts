/**
 * Typed loader for raftlog's N-API addon: `hardware/build/Release/raftlog_native.node`
 * when built from source (the repository's `npm ci`, or `npm run build:native`
 * in an installed package), else the prebuild the tarball carries under
 * `hardware/prebuilds/<platform>-<arch>/`, found by node-gyp-build (which matches
 * platform, architecture, libc and N-API version, so a glibc prebuild is never
 * loaded on musl).
 *
 * Loading never throws: a missing compiler, a platform without a prebuild or
 * a kernel that refuses io_uring must leave the rest of raftlog usable. Callers
 * that need the addon ask `requireNative()`, which throws UnsupportedError with
 * the reason recorded here. The addon's Linux-only parts (io_uring, mappings,
 * statx) are compiled only on Linux; elsewhere it carries just the AES-CTR,
 * which EncryptedFs takes through `loadNativeCipher()`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { UnsupportedError } from '../src/errors.js';

export interface RingStats {
  /** io_uring_enter calls that submitted at least one SQE. */
  readonly enters: number;
  /** SQEs the kernel consumed, over all enters. */
  readonly sqes: number;
  /** CQEs delivered to JS. */
  readonly completions: number;
  /** Submitted requests whose completion has not been delivered yet. */
  readonly inflight: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** IORING_FEAT_* bits the kernel reported. */
  readonly features: number;
  /** IORING_SETUP_* flags the ring was created with. */
  readonly setupFlags: number;
  readonly closed: boolean;
}

/**
 * One io_uring instance. `prep*` fill one SQE each and return false when the
 * submission queue is full (nothing was queued); `submit()` hands every
 * prepared SQE to the kernel in a single io_uring_enter. `link` sets
 * IOSQE_IO_LINK: the next SQE starts only after this one completes in full.
 * Buffers given to prepWrite/prepRead must stay referenced until their
 * completion arrives; the ring does not retain them.
 */
export interface NativeRing {
  prepWrite(id: number, fd: number, buffers: readonly Uint8Array[], position: number, link: boolean): boolean;
  prepRead(id: number, fd: number, target: Uint8Array, targetOffset: number, length: number, position: number, link: boolean): boolean;
  prepFsync(id: number, fd: number, datasync: boolean, link: boolean): boolean;
  prepFallocate(id: number, fd: number, mode: number, offset: number, length: number, link: boolean): boolean;
  /** Sets the file size in the chain (IORING_OP_FTRUNCATE, Linux 6.9+); throws EOPNOTSUPP where missing. */
  prepFtruncate(id: number, fd: number, length: number, link: boolean): boolean;
  /** Whether the kernel implements an operation (IORING_REGISTER_PROBE). */
  supports(op: 'read' | 'write' | 'writev' | 'fsync' | 'fallocate' | 'ftruncate'): boolean;
  submit(): number;
  sqSpace(): number;
  stats(): RingStats;
  close(): void;
}

/**
 * `onComplete` receives completions in batches as triples
 * `[id, res, flags, id, res, flags, …]`, on the event loop thread; `res` is
 * bytes transferred or a negative errno.
 */
export interface NativeRingConstructor {
  new (entries: number, onComplete: (cqes: Int32Array) => void): NativeRing;
}

export interface CpuFlushInfo {
  readonly clwb: boolean;
  readonly clflushopt: boolean;
  readonly clflush: boolean;
  /** Cache-line size from CPUID, the stride of flushRange. */
  readonly lineSize: number;
  /** The instruction flushRange uses: the best the CPU has. */
  readonly instruction: 'clwb' | 'clflushopt' | 'clflush' | 'none';
}

export interface NativeMapping {
  /** External ArrayBuffer over the mapping; detached by munmap. */
  readonly buffer: ArrayBuffer;
  /** True when the kernel accepted MAP_SHARED_VALIDATE|MAP_SYNC (a DAX mount). */
  readonly mapSync: boolean;
}

export interface DioAlign {
  readonly memAlign: number;
  readonly offsetAlign: number;
}

export interface NativeBinding {
  readonly Ring: NativeRingConstructor;
  /** Zero-filled ArrayBuffer whose start is `alignment`-aligned (posix_memalign). */
  alignedAlloc(size: number, alignment: number): ArrayBuffer;
  /** Address of the first byte of a buffer or view (to check alignment). */
  addressOf(bytes: ArrayBuffer | ArrayBufferView): number;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  fadviseDontNeed(fd: number, offset?: number, length?: number): void;
  /**
   * preadv2(RWF_NOWAIT) on the calling thread: bytes copied from the page
   * cache (0 at end of file), or -1 when the first byte is not cached or the
   * flag is not supported (read through the threadpool then).
   */
  preadCached(fd: number, target: Uint8Array, targetOffset: number, length: number, position: number): number;
  /** Whole-file flock; throws code EAGAIN (EWOULDBLOCK) when held elsewhere and nonblocking. */
  flock(fd: number, exclusive: boolean, nonblocking: boolean): void;
  funlock(fd: number): void;
  /** statx STATX_DIOALIGN; null when the kernel cannot report it. */
  statxDioAlign(fd: number): DioAlign | null;
  mmap(fd: number, offset: number, length: number, writable: boolean, sync: boolean): NativeMapping;
  munmap(buffer: ArrayBuffer): void;
  msync(buffer: ArrayBuffer, offset?: number, length?: number): void;
  cpuFlush(): CpuFlushInfo;
  /** Flushes the cache lines covering the range, then sfence. Returns the line count. */
  flushRange(bytes: ArrayBuffer | ArrayBufferView, offset?: number, length?: number): number;
  /**
   * `output` = `inputs` (concatenated) XOR the AES-256-CTR keystream starting
   * `skip` (0..15) bytes into the block with counter `counter`, through the
   * OpenSSL Node links. An input may be exactly its own part of `output`
   * (in place), but overlap it nowhere else.
   */
  aesCtr(key: Uint8Array, counter: Uint8Array, skip: number, inputs: readonly Uint8Array[], output: Uint8Array): void;
  /** `aesCtr` on a libuv threadpool thread; inputs and output must not change until it settles. */
  aesCtrAsync(key: Uint8Array, counter: Uint8Array, skip: number, inputs: readonly Uint8Array[], output: Uint8Array): Promise<void>;
  /**
   * Every entry's CRC32C written before it, then the payload's returned, in
   * one call (src/format/checksum.ts's BatchChecksum). Throws where
   * `crc32cBatchAccelerated` is false.
   */
  crc32cBatch(
    bytes: Uint8Array,
    payloadStart: number,
    payloadEnd: number,
    entryOffsets: Uint32Array,
    entryLengths: Uint32Array,
    count: number,
  ): number;
  /**
   * pwritev until every byte is down, then fdatasync when `datasync`, in one
   * threadpool job (Linux). With `perBuffer`, one pwrite per buffer instead
   * (the size of a write decides its page-cache folio). Rejects with a
   * node:fs-shaped error (code, negative errno, syscall 'write' or
   * 'fdatasync'). The buffers must not change until it settles.
   */
  writeSync(fd: number, buffers: readonly Uint8Array[], position: number, datasync: boolean, perBuffer?: boolean): Promise<void>;
  /**
   * Writes a 4-byte little-endian size prefix and one LZ4 block for
   * `src[srcStart, srcEnd)` at `dst[dstStart, dstLimit)` (lz4-napi's
   * framing); returns the bytes written, or 0 when they would not fit.
   * Allocates nothing. The two ranges must not overlap.
   */
  lz4Compress(src: Uint8Array, srcStart: number, srcEnd: number, dst: Uint8Array, dstStart: number, dstLimit: number): number;
  /**
   * Decodes the prefixed block `src[srcStart, srcEnd)` into
   * `dst[dstStart, dstLimit)`; returns its length, or below zero for
   * malformed input (src/format/compression.ts, Lz4DecodeFailure). Every
   * access is bounds-checked.
   */
  lz4Decompress(src: Uint8Array, srcStart: number, srcEnd: number, dst: Uint8Array, dstStart: number, dstLimit: number): number;
  /** The CPU has the CRC32C instructions crc32cBatch needs (SSE4.2, ARMv8 CRC). */
  readonly crc32cBatchAccelerated: boolean;
}

export type NativeLoadResult =
  | { readonly ok: true; readonly binding: NativeBinding; readonly path: string }
  | { readonly ok: false; readonly reason: string; readonly cause?: unknown };

/** How to get the addon where it is missing, for the UNSUPPORTED messages. */
const HOW_TO_BUILD =
  'prebuilt binaries ship for linux-x64 and linux-arm64 (glibc); elsewhere on Linux build it with ' +
  '`npm explore raftlog -- npm run build:native` (needs a C++17 compiler, make and Python)';

/**
 * The package root: this file runs from `hardware/` (sources via a TS loader)
 * or from `dist/hardware/` (compiled), so the root is one or two levels up.
 */
function packageRoot(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [resolve(here, '..'), resolve(here, '..', '..')].find((root) => existsSync(join(root, 'package.json')));
}

/**
 * The addon file to load, or why there is none. `RAFTLOG_NATIVE_PATH`
 * overrides the search (tests point it nowhere to simulate a machine without
 * the addon).
 */
function locate(): { readonly path: string } | { readonly reason: string } {
  const override = process.env['RAFTLOG_NATIVE_PATH'];
  if (override !== undefined && override !== '') {
    const path = resolve(override);
    return existsSync(path)
      ? { path }
      : { reason: `the raftlog native addon was not built (looked for ${path}, from RAFTLOG_NATIVE_PATH)` };
  }
  const root = packageRoot();
  if (root === undefined) return { reason: 'the raftlog native addon is missing (no package root found)' };
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    // hardware/ holds binding.gyp, so its build/Release and its prebuilds/.
    return { path: nodeGypBuild.path(join(root, 'hardware')) };
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    return {
      reason: `the raftlog native addon was not built, and no prebuilt one matches ${process.platform}-${process.arch} (${detail})`,
    };
  }
}

type RawLoad =
  | { readonly ok: true; readonly binding: Partial<NativeBinding>; readonly path: string }
  | { readonly ok: false; readonly reason: string; readonly cause?: unknown };

let raw: RawLoad | undefined;

/** The addon as compiled for this platform: on Linux all of NativeBinding, elsewhere only the cipher. */
function loadRaw(): RawLoad {
  if (raw !== undefined) return raw;
  const found = locate();
  if ('reason' in found) {
    raw = { ok: false, reason: found.reason };
    return raw;
  }
  try {
    const require = createRequire(import.meta.url);
    raw = { ok: true, binding: require(found.path) as Partial<NativeBinding>, path: found.path };
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    raw = { ok: false, reason: `the raftlog native addon at ${found.path} failed to load: ${detail}`, cause };
  }
  return raw;
}

let cached: NativeLoadResult | undefined;

/** The whole binding (Linux), or why it is unavailable. */
export function loadNative(): NativeLoadResult {
  if (cached !== undefined) return cached;
  cached = loadFull();
  return cached;
}

function loadFull(): NativeLoadResult {
  if (process.platform !== 'linux') {
    return {
      ok: false,
      reason: `io_uring, MAP_SYNC and statx are Linux-only (this platform is ${process.platform}); PosixFs works everywhere`,
    };
  }
  const loaded = loadRaw();
  if (!loaded.ok) return { ...loaded, reason: `${loaded.reason}; ${HOW_TO_BUILD}` };
  if (typeof loaded.binding.Ring !== 'function') {
    return { ok: false, reason: `the raftlog native addon at ${loaded.path} was built without its Linux part; rebuild it on Linux` };
  }
  return { ok: true, binding: loaded.binding as NativeBinding, path: loaded.path };
}

/** The addon's AES-256-CTR, on any platform it was built for; undefined where the addon is missing. */
export function loadNativeCipher(): Pick<NativeBinding, 'aesCtr' | 'aesCtrAsync'> | undefined {
  const loaded = loadRaw();
  if (!loaded.ok) return undefined;
  const { aesCtr, aesCtrAsync } = loaded.binding;
  if (typeof aesCtr !== 'function' || typeof aesCtrAsync !== 'function') return undefined;
  return { aesCtr, aesCtrAsync };
}

/** The addon's one-call batch CRC32C, on any platform it was built for with CRC instructions; undefined elsewhere. */
export function loadNativeBatchChecksum(): NativeBinding['crc32cBatch'] | undefined {
  const loaded = loadRaw();
  if (!loaded.ok) return undefined;
  const { crc32cBatch, crc32cBatchAccelerated } = loaded.binding;
  if (typeof crc32cBatch !== 'function' || crc32cBatchAccelerated !== true) return undefined;
  return crc32cBatch;
}

/** The addon's LZ4 codec, in the shape src/format/compression.ts's Lz4Codec installs (hardware/ sees only the seam). */
export interface NativeLz4 {
  readonly compress: NativeBinding['lz4Compress'];
  readonly decompress: NativeBinding['lz4Decompress'];
}

/** The addon's allocation-free LZ4 block codec, on any platform it was built for; undefined where the addon is missing. */
export function loadNativeLz4(): NativeLz4 | undefined {
  const loaded = loadRaw();
  if (!loaded.ok) return undefined;
  const { lz4Compress, lz4Decompress } = loaded.binding;
  if (typeof lz4Compress !== 'function' || typeof lz4Decompress !== 'function') return undefined;
  return { compress: lz4Compress, decompress: lz4Decompress };
}

/** The addon's one-job write and fdatasync (Linux); undefined where the addon is missing. */
export function loadNativeWriteSync(): NativeBinding['writeSync'] | undefined {
  const loaded = loadRaw();
  if (!loaded.ok) return undefined;
  const { writeSync } = loaded.binding;
  return typeof writeSync === 'function' ? writeSync : undefined;
}

/** The addon's page-cache-only read (Linux); undefined where the addon is missing. */
export function loadNativeCachedRead(): NativeBinding['preadCached'] | undefined {
  const loaded = loadRaw();
  if (!loaded.ok) return undefined;
  const { preadCached } = loaded.binding;
  return typeof preadCached === 'function' ? preadCached : undefined;
}

/** The binding, or UnsupportedError naming `feature` and why the addon is unavailable. */
export function requireNative(feature: string): NativeBinding {
  const result = loadNative();
  if (result.ok) return result.binding;
  throw new UnsupportedError(`${feature} needs the native addon: ${result.reason}`, { cause: result.cause });
}

/**
 * Why the kernel refused io_uring, in words an operator can act on. Reads
 * /proc/sys/kernel/io_uring_disabled because EPERM alone does not say whether
 * a sysctl or a seccomp filter is to blame.
 */
export function explainUringRefusal(errno: string | undefined): string {
  let disabled: string | undefined;
  try {
    disabled = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
  } catch {
    disabled = undefined;
  }
  switch (errno) {
    case 'ENOSYS':
      return 'the kernel does not implement io_uring (ENOSYS: too old, or compiled without CONFIG_IO_URING)';
    case 'EPERM':
    case 'EACCES':
      if (disabled === '2') return `io_uring is disabled system-wide (kernel.io_uring_disabled=2, ${errno})`;
      if (disabled === '1') return `io_uring is restricted to the io_uring_group (kernel.io_uring_disabled=1, ${errno})`;
      return `the kernel refused io_uring_setup with ${errno} (a seccomp filter, e.g. a container runtime's default profile, is the usual cause)`;
    case 'ENOMEM':
      return 'io_uring_setup failed with ENOMEM (locked-memory limit too low for the ring; raise RLIMIT_MEMLOCK or lower queueDepth)';
    default:
      return `io_uring_setup failed (${errno ?? 'unknown error'})`;
  }
}
