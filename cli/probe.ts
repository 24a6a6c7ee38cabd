/**
 * `raftlog probe PATH`: what the device and file system under PATH can do for
 * a log, measured rather than assumed, and which backend to use there.
 *
 * Facts come from the kernel (statfs, /sys/dev/block, /proc/self/mountinfo),
 * from the native addon where it is built (MAP_SYNC, statx DIO alignment,
 * io_uring), and from timing: fdatasync after a 4 KiB append (the file grows:
 * on ext4/xfs the barrier must also commit the size/extent change to the
 * journal) versus after a 4 KiB overwrite of already-written blocks (data
 * only). That ratio decides whether preallocation and file recycling pay.
 *
 * The file system itself is tested, not only the kernel: fallocate(2) on a
 * scratch file (FUSE file systems and ramfs refuse it), and a real write
 * through each backend the probe could recommend (create, preallocate, a
 * synced write, a read back), so it never recommends one that cannot write
 * there.
 *
 * The probe writes only its own temporary files under PATH and removes them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PmemFs } from '../backends/pmem.js';
import { UringFs } from '../backends/uring.js';
import { loadNative } from '../hardware/native.js';
import { probe as probeDevice, type PmemFlushPath } from '../hardware/probe.js';
import { uringUnavailableReason } from './backends.js';
import type { FileSystem } from '../src/filesystem.js';
import { describeError, errnoOf, pathError } from './errors.js';
import { table } from './output.js';

export interface ProbeOptions {
  /** Synced 4 KiB writes per latency measurement. */
  samples: number;
}

export interface SyncLatency {
  samples: number;
  medianMicros: number;
  p90Micros: number;
}

export interface ProbeResult {
  path: string;
  /** Major:minor of the device holding the path. */
  device: string;
  fileSystem: string | undefined;
  mountPoint: string | undefined;
  mountOptions: readonly string[];
  /** From /sys/dev/block; undefined when the path is not on a block device (tmpfs, overlay, NFS). */
  logicalBlockSize: number | undefined;
  physicalBlockSize: number | undefined;
  daxMount: boolean;
  /** undefined when it could not be tested (no native addon). */
  mapSync: boolean | undefined;
  /** The cache-line flush instruction this CPU offers, and the barrier PmemFs would use here. */
  cpuFlush: string | undefined;
  pmemBarrier: PmemFlushPath | undefined;
  /** Whether UringFs can run here (kernel, seccomp, addon), and which ring operations the kernel has. */
  ioUring: { available: boolean; reason: string | undefined; ops: Readonly<Record<string, boolean>> | undefined };
  oDirect: { available: boolean; memAlign: number | undefined; offsetAlign: number | undefined; reason: string | undefined };
  /** Whether this file system has fallocate(2); undefined when it could not be tested (no native addon). */
  fallocate: { supported: boolean | undefined; reason: string | undefined };
  /**
   * A real write through each backend the probe could recommend: 'ok', why it
   * failed, or undefined when not tried (the backend cannot run here at all).
   */
  writeTest: { uring: string | undefined; pmem: string | undefined };
  fdatasyncAfterAppend: SyncLatency;
  fdatasyncAfterOverwrite: SyncLatency;
  notes: readonly string[];
  /** `options`: settings by their API names (EngineOptions.preallocateBytes, UringFs's direct, PmemFs's flush). */
  recommendation: { backend: 'pmem' | 'uring' | 'posix'; options: Record<string, boolean | number | string>; reasons: string[] };
}

const BLOCK = 4096;

/**
 * Device facts come from hardware/probe.ts (shared with the backends, so the
 * CLI and PmemFs agree on what MAP_SYNC and the CPU allow); the fdatasync
 * timings, the O_DIRECT write test and the recommendation are the CLI's.
 */
export async function runProbe(target: string, options: ProbeOptions): Promise<ProbeResult> {
  let dir: string;
  try {
    const stat = fs.statSync(target);
    dir = path.resolve(stat.isDirectory() ? target : path.dirname(target));
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (error) {
    throw pathError(error, target, 'the probe writes a temporary file there');
  }
  const report = await probeDevice(dir);
  const uringReason = await uringUnavailableReason();
  const scratch = path.join(dir, `.raftlog-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const native = loadNative();
    const oDirect = probeDirect(scratch, native.ok ? native.binding : undefined);
    const fallocate = probeFallocate(scratch, native.ok ? native.binding : undefined);
    const writeTest = {
      uring: uringReason === undefined ? await writeThrough(dir, (root) => new UringFs(root)) : undefined,
      pmem: report.mapSync === true ? await writeThrough(dir, (root) => new PmemFs(root)) : undefined,
    };
    const append = measure(scratch, options.samples, 'append');
    const overwrite = measure(scratch, options.samples, 'overwrite');
    const result: Omit<ProbeResult, 'recommendation'> = {
      path: report.path,
      device: report.device,
      fileSystem: report.mount?.fsType,
      mountPoint: report.mount?.mountPoint,
      mountOptions: report.mount?.options ?? [],
      logicalBlockSize: report.logicalBlockSize,
      physicalBlockSize: report.physicalBlockSize,
      daxMount: report.daxMount,
      mapSync: report.mapSync,
      cpuFlush: report.cpuFlush?.instruction,
      pmemBarrier: report.pmemFlush,
      ioUring: { available: uringReason === undefined, reason: uringReason, ops: report.uring.ops },
      oDirect: {
        ...oDirect,
        memAlign: report.dioAlign?.memAlign ?? oDirect.memAlign,
        offsetAlign: report.dioAlign?.offsetAlign || oDirect.offsetAlign,
      },
      fallocate,
      writeTest,
      fdatasyncAfterAppend: append,
      fdatasyncAfterOverwrite: overwrite,
      notes: report.notes,
    };
    return { ...result, recommendation: recommend(result) };
  } finally {
    fs.rmSync(scratch, { force: true });
  }
}

function recommend(r: Omit<ProbeResult, 'recommendation'>): ProbeResult['recommendation'] {
  const reasons: string[] = [];
  const options: Record<string, boolean | number | string> = {};
  let backend: 'pmem' | 'uring' | 'posix';
  if (r.fileSystem === 'tmpfs' || r.fileSystem === 'ramfs') {
    reasons.push(`${r.fileSystem} is memory: fdatasync does nothing and nothing survives a reboot; use it for tests, never for a real log`);
  }
  if (r.mapSync === true && r.writeTest.pmem !== 'ok') {
    reasons.push(`MAP_SYNC works, but PmemFs could not write here (${r.writeTest.pmem ?? 'not tried'}): not recommended`);
  }
  if (r.ioUring.available && r.writeTest.uring !== 'ok') {
    reasons.push(`io_uring works, but UringFs could not write here (${r.writeTest.uring ?? 'not tried'}): not recommended`);
  }
  if (r.mapSync === true && r.writeTest.pmem === 'ok') {
    backend = 'pmem';
    options['flush'] = r.pmemBarrier ?? 'auto';
    reasons.push(`MAP_SYNC works (a DAX mount on persistent memory): a barrier is a cache-line flush (${r.cpuFlush ?? 'unknown'}) and a fence, no system call`);
  } else if (r.ioUring.available && r.writeTest.uring === 'ok') {
    backend = 'uring';
    reasons.push("io_uring works: a group commit's writes and its fdatasync go to the kernel linked, in one io_uring_enter");
    if (r.oDirect.available) {
      reasons.push(
        `O_DIRECT works (alignment ${r.oDirect.offsetAlign ?? BLOCK}): with direct: true the log bypasses the page cache, which helps when it shares memory with the state machine's store; measure both`,
      );
    }
  } else {
    backend = 'posix';
    const why = r.ioUring.available ? 'UringFs cannot write here' : `io_uring is not available (${r.ioUring.reason ?? 'unknown'})`;
    reasons.push(`${why}: PosixFs, node:fs with one writev and one fdatasync per group`);
  }
  if (r.fallocate.supported === false) {
    reasons.push(
      `this file system refuses fallocate (${r.fallocate.reason ?? 'unknown'}): preallocation falls back to writing zeros (PosixFs, PmemFs) or to extending the file (UringFs), and UringFs reserves nothing ahead`,
    );
  }
  if (r.daxMount && r.mapSync !== true) reasons.push('the mount has the dax option but MAP_SYNC was not accepted here (or could not be tested without the native addon)');
  const append = r.fdatasyncAfterAppend.medianMicros;
  const overwrite = r.fdatasyncAfterOverwrite.medianMicros;
  if (overwrite > 0 && append / overwrite >= 1.5) {
    options['preallocateBytes'] = 8 << 20;
    reasons.push(
      `fdatasync after an overwrite (${overwrite} µs) is ${(append / overwrite).toFixed(1)}x cheaper than after an append (${append} µs): ` +
        'keep preallocateBytes on (appends then land in written blocks), and recycling old log files would pay here too',
    );
  } else {
    reasons.push(
      `fdatasync costs about the same after an append (${append} µs) and an overwrite (${overwrite} µs): preallocation and file recycling buy little latency here`,
    );
  }
  if (r.physicalBlockSize !== undefined && r.logicalBlockSize !== undefined && r.physicalBlockSize > r.logicalBlockSize) {
    reasons.push(
      `physical blocks are ${r.physicalBlockSize} B behind ${r.logicalBlockSize} B logical ones: a synced write smaller than ${r.physicalBlockSize} B costs the device a read-modify-write`,
    );
  }
  if (backend === 'uring') options['direct'] = false; // the default; the O_DIRECT reason above says when to try true
  return { backend, options, reasons };
}

/** Times `samples` fdatasyncs, each after one 4 KiB write that appends (grows the file) or overwrites written blocks. */
function measure(file: string, samples: number, kind: 'append' | 'overwrite'): SyncLatency {
  const data = randomBytes(BLOCK);
  const fd = fs.openSync(file, 'w+');
  try {
    if (kind === 'overwrite') {
      // Written and synced first, so the measured writes touch allocated, initialised blocks only.
      for (let i = 0; i < samples; i++) fs.writeSync(fd, data, 0, BLOCK, i * BLOCK);
      fs.fsyncSync(fd);
    }
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      fs.writeSync(fd, data, 0, BLOCK, i * BLOCK);
      const start = process.hrtime.bigint();
      fs.fdatasyncSync(fd);
      times.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    times.sort((a, b) => a - b);
    const at = (q: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]!);
    return { samples, medianMicros: at(0.5), p90Micros: at(0.9) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

type Native = Extract<ReturnType<typeof loadNative>, { ok: true }>['binding'];


/** fallocate(2) of a small range of a scratch file: FUSE file systems without it and ramfs refuse with EOPNOTSUPP. */
function probeFallocate(file: string, native: Native | undefined): ProbeResult['fallocate'] {
  if (native === undefined) return { supported: undefined, reason: 'not tested: the native addon is not loaded' };
  const fd = fs.openSync(file, 'w+', 0o600);
  try {
    native.fallocate(fd, 0, 0, 64 << 10);
    return { supported: true, reason: undefined };
  } catch (error) {
    return { supported: false, reason: errnoOf(error) ?? 'error' };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

/**
 * Creates, preallocates, writes with a barrier and reads back one file
 * through a backend, in a scratch directory under `dir`: 'ok', or why not.
 */
async function writeThrough(dir: string, make: (root: string) => FileSystem): Promise<string> {
  const root = path.join(dir, `.raftlog-probe-${process.pid}-${randomBytes(4).toString('hex')}.d`);
  let backend: FileSystem | undefined;
  try {
    backend = make(root);
    await backend.init();
    const file = await backend.open('probe', { create: true });
    try {
      const data = randomBytes(BLOCK);
      await file.preallocate(0, 16 * BLOCK);
      await file.write([data], 0, { sync: true });
      const back = new Uint8Array(BLOCK);
      await file.read(back, 0, BLOCK, 0);
      return Buffer.from(back).equals(data) ? 'ok' : 'what it wrote did not read back';
    } finally {
      await file.close();
    }
  } catch (error) {
    return describeError(error);
  } finally {
    await backend?.close().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function probeDirect(file: string, native: Native | undefined): ProbeResult['oDirect'] {
  const O_DIRECT = fs.constants.O_DIRECT;
  if (O_DIRECT === undefined) return { available: false, memAlign: undefined, offsetAlign: undefined, reason: 'this platform has no O_DIRECT' };
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | O_DIRECT, 0o600);
  } catch (error) {
    const reason = errnoOf(error) === 'EINVAL' ? 'the file system refuses O_DIRECT (EINVAL)' : `open with O_DIRECT failed (${errnoOf(error) ?? 'error'})`;
    fs.rmSync(file, { force: true });
    return { available: false, memAlign: undefined, offsetAlign: undefined, reason };
  }
  try {
    const align = native?.statxDioAlign(fd) ?? null;
    if (native !== undefined) {
      // An aligned write from aligned memory is the real test: some file systems accept the flag and fail the I/O.
      const alignment = Math.max(BLOCK, align?.offsetAlign ?? 0, align?.memAlign ?? 0);
      const buffer = new Uint8Array(native.alignedAlloc(alignment, alignment));
      fs.writeSync(fd, buffer, 0, alignment, 0);
    }
    return { available: true, memAlign: align?.memAlign, offsetAlign: align?.offsetAlign, reason: undefined };
  } catch (error) {
    return { available: false, memAlign: undefined, offsetAlign: undefined, reason: `an aligned O_DIRECT write failed (${errnoOf(error) ?? 'error'})` };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}




export function formatProbe(r: ProbeResult): string {
  const yesNo = (value: boolean | undefined): string => (value === undefined ? 'unknown' : value ? 'yes' : 'no');
  const ops = r.ioUring.ops === undefined ? '' : ` (ops: ${Object.entries(r.ioUring.ops).filter(([, v]) => v).map(([k]) => k).join(', ')})`;
  const rows: string[][] = [
    ['property', 'value'],
    ['path', r.path],
    ['file system', `${r.fileSystem ?? 'unknown'}${r.mountPoint ? ` on ${r.mountPoint}` : ''} (device ${r.device})`],
    ['logical block size', r.logicalBlockSize === undefined ? 'n/a (no block device)' : `${r.logicalBlockSize} B`],
    ['physical block size', r.physicalBlockSize === undefined ? 'n/a (no block device)' : `${r.physicalBlockSize} B`],
    ['DAX mount', yesNo(r.daxMount)],
    ['MAP_SYNC', yesNo(r.mapSync)],
    ['cache-line flush', r.cpuFlush ?? 'unknown'],
    ['PmemFs barrier here', r.pmemBarrier ?? 'unknown'],
    ['io_uring', r.ioUring.available ? `yes${ops}` : `no (${r.ioUring.reason})`],
    ['fallocate', r.fallocate.supported === undefined ? `unknown (${r.fallocate.reason})` : r.fallocate.supported ? 'yes' : `no (${r.fallocate.reason})`],
    ['write test', `UringFs ${r.writeTest.uring ?? 'not tried'}, PmemFs ${r.writeTest.pmem ?? 'not tried'}`],
    ['O_DIRECT', r.oDirect.available ? `yes${r.oDirect.offsetAlign ? ` (offset align ${r.oDirect.offsetAlign} B, memory ${r.oDirect.memAlign ?? '?'} B)` : ''}` : `no (${r.oDirect.reason})`],
    ['fdatasync after append', `${r.fdatasyncAfterAppend.medianMicros} µs median, ${r.fdatasyncAfterAppend.p90Micros} µs p90 (${r.fdatasyncAfterAppend.samples} x 4 KiB)`],
    ['fdatasync after overwrite', `${r.fdatasyncAfterOverwrite.medianMicros} µs median, ${r.fdatasyncAfterOverwrite.p90Micros} µs p90 (${r.fdatasyncAfterOverwrite.samples} x 4 KiB)`],
    ...r.notes.map((n) => ['note', n]),
  ];
  const options = Object.entries(r.recommendation.options)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return (
    table(rows, 'left') +
    `\nrecommended: --backend ${r.recommendation.backend}${options ? ` (${options})` : ''}\n` +
    r.recommendation.reasons.map((reason) => `  - ${reason}\n`).join('')
  );
}

