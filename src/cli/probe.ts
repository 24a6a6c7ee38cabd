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
 * The probe writes only its own temporary file under PATH and removes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadNative } from '../../hardware/native.js';
import { uringUnavailableReason } from './backends.js';
import { errnoOf, pathError } from './errors.js';
import { formatBytes, table } from './output.js';

export interface ProbeOptions {
  /** Synced 4 KiB writes per measurement. */
  samples: number;
}

export interface SyncLatency {
  samples: number;
  medianMicros: number;
  p90Micros: number;
}

export interface ProbeResult {
  path: string;
  fileSystem: string;
  mountPoint: string | undefined;
  mountOptions: string[];
  blockDevice: string | undefined;
  /** From /sys/dev/block; undefined when PATH is not on a block device (tmpfs, overlay, NFS). */
  logicalBlockSize: number | undefined;
  physicalBlockSize: number | undefined;
  /** statfs block size. */
  fsBlockSize: number;
  daxMount: boolean;
  /** undefined when it could not be tested (no native addon). */
  mapSync: boolean | undefined;
  ioUring: { available: boolean; reason: string | undefined };
  oDirect: { available: boolean; memAlign: number | undefined; offsetAlign: number | undefined; reason: string | undefined };
  fdatasyncAfterAppend: SyncLatency;
  fdatasyncAfterOverwrite: SyncLatency;
  nativeAddon: { loaded: boolean; reason: string | undefined };
  /** `options`: settings by their API names (EngineOptions.preallocateBytes, UringFs's direct). */
  recommendation: { backend: 'pmem' | 'uring' | 'posix'; options: Record<string, boolean | number>; reasons: string[] };
}

/** statfs f_type values of the file systems worth naming. */
const FS_TYPES = new Map<number, string>([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
  [0x65735546, 'fuse'],
  [0x858458f6, 'ramfs'],
]);

const BLOCK = 4096;

export async function runProbe(target: string, options: ProbeOptions): Promise<ProbeResult> {
  let dir: string;
  try {
    const stat = fs.statSync(target);
    dir = path.resolve(stat.isDirectory() ? target : path.dirname(target));
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (error) {
    throw pathError(error, target, 'probing (the probe writes a temporary file there)');
  }
  const statfs = fs.statfsSync(dir);
  const mount = findMount(fs.realpathSync(dir));
  const device = blockDevice(fs.statSync(dir).dev);
  const native = loadNative();
  const uringReason = await uringUnavailableReason();

  const scratch = path.join(dir, `.raftlog-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const mapSync = native.ok ? probeMapSync(scratch, native.binding) : undefined;
    const oDirect = probeDirect(scratch, native.ok ? native.binding : undefined);
    const append = measure(scratch, options.samples, 'append');
    const overwrite = measure(scratch, options.samples, 'overwrite');
    const fileSystem = FS_TYPES.get(statfs.type) ?? `unknown (0x${statfs.type.toString(16)})`;
    const result: Omit<ProbeResult, 'recommendation'> = {
      path: dir,
      fileSystem,
      mountPoint: mount?.point,
      mountOptions: mount?.options ?? [],
      blockDevice: device?.name,
      logicalBlockSize: device?.logical,
      physicalBlockSize: device?.physical,
      fsBlockSize: statfs.bsize,
      daxMount: mount?.options.some((o) => o === 'dax' || o === 'dax=always') ?? false,
      mapSync,
      ioUring: { available: uringReason === undefined, reason: uringReason },
      oDirect,
      fdatasyncAfterAppend: append,
      fdatasyncAfterOverwrite: overwrite,
      nativeAddon: { loaded: native.ok, reason: native.ok ? undefined : native.reason },
    };
    return { ...result, recommendation: recommend(result) };
  } finally {
    fs.rmSync(scratch, { force: true });
  }
}

function recommend(r: Omit<ProbeResult, 'recommendation'>): ProbeResult['recommendation'] {
  const reasons: string[] = [];
  const options: Record<string, boolean | number> = {};
  let backend: 'pmem' | 'uring' | 'posix';
  if (r.fileSystem === 'tmpfs' || r.fileSystem === 'ramfs') {
    reasons.push(`${r.fileSystem} is memory: fdatasync does nothing and nothing survives a reboot; use it for tests, never for a real log`);
  }
  if (r.mapSync === true) {
    backend = 'pmem';
    reasons.push('MAP_SYNC works (a DAX mount on persistent memory): a barrier is a cache-line flush and a fence, no system call');
  } else if (r.ioUring.available) {
    backend = 'uring';
    reasons.push("io_uring works: a group commit's writes and its fdatasync go to the kernel linked, in one io_uring_enter");
    if (r.oDirect.available) {
      reasons.push(
        `O_DIRECT works (alignment ${r.oDirect.offsetAlign ?? BLOCK}): with direct: true the log bypasses the page cache, which helps when it shares memory with the state machine's store; measure both`,
      );
    }
  } else {
    backend = 'posix';
    reasons.push(`io_uring is not available (${r.ioUring.reason ?? 'unknown'}): PosixFs, node:fs with one writev and one fdatasync per group`);
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

function probeMapSync(file: string, native: Native): boolean | undefined {
  const fd = fs.openSync(file, 'w+');
  try {
    fs.ftruncateSync(fd, BLOCK);
    const mapping = native.mmap(fd, 0, BLOCK, true, true);
    native.munmap(mapping.buffer);
    return mapping.mapSync;
  } catch {
    return undefined; // mmap itself refused: the answer is unknown, not "no"
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
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

/** The mount holding `real`: the longest mount point that prefixes it (from /proc/self/mountinfo). */
function findMount(real: string): { point: string; type: string; options: string[] } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let best: { point: string; type: string; options: string[] } | undefined;
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const point = unescapeMount(fields[4] ?? '');
    const inside = point === '/' || real === point || real.startsWith(point + '/');
    if (!inside || (best !== undefined && point.length < best.point.length)) continue;
    const [type = '', , superOptions = ''] = right.split(' ');
    best = { point, type, options: [...(fields[5] ?? '').split(','), ...superOptions.split(',')].filter((o) => o.length > 0) };
  }
  return best;
}

function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Block sizes of the device behind `dev` (st_dev), from sysfs; partitions take their disk's queue. */
function blockDevice(dev: number): { name: string; logical: number; physical: number } | undefined {
  // glibc's gnu_dev_major/gnu_dev_minor encoding of dev_t.
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  const base = `/sys/dev/block/${major}:${minor}`;
  for (const queue of [`${base}/queue`, `${base}/../queue`]) {
    try {
      const logical = Number(fs.readFileSync(`${queue}/logical_block_size`, 'utf8'));
      const physical = Number(fs.readFileSync(`${queue}/physical_block_size`, 'utf8'));
      return { name: path.basename(fs.realpathSync(base)), logical, physical };
    } catch {
      continue;
    }
  }
  return undefined;
}

export function formatProbe(r: ProbeResult): string {
  const yesNo = (value: boolean | undefined, why?: string): string => (value === undefined ? `unknown${why ? ` (${why})` : ''}` : value ? 'yes' : `no${why ? ` (${why})` : ''}`);
  const rows: string[][] = [
    ['property', 'value'],
    ['path', r.path],
    ['file system', `${r.fileSystem}${r.mountPoint ? ` on ${r.mountPoint}` : ''}`],
    ['block device', r.blockDevice ?? 'none (not a block device)'],
    ['logical block size', r.logicalBlockSize === undefined ? 'n/a' : `${r.logicalBlockSize} B`],
    ['physical block size', r.physicalBlockSize === undefined ? 'n/a' : `${r.physicalBlockSize} B`],
    ['fs block size', formatBytes(r.fsBlockSize)],
    ['DAX mount', yesNo(r.daxMount)],
    ['MAP_SYNC', yesNo(r.mapSync, r.nativeAddon.loaded ? undefined : 'native addon not loaded')],
    ['io_uring', yesNo(r.ioUring.available, r.ioUring.reason)],
    ['O_DIRECT', r.oDirect.available ? `yes${r.oDirect.offsetAlign ? ` (offset align ${r.oDirect.offsetAlign} B, memory ${r.oDirect.memAlign} B)` : ''}` : `no (${r.oDirect.reason})`],
    ['fdatasync after append', `${r.fdatasyncAfterAppend.medianMicros} µs median, ${r.fdatasyncAfterAppend.p90Micros} µs p90 (${r.fdatasyncAfterAppend.samples} x 4 KiB)`],
    ['fdatasync after overwrite', `${r.fdatasyncAfterOverwrite.medianMicros} µs median, ${r.fdatasyncAfterOverwrite.p90Micros} µs p90 (${r.fdatasyncAfterOverwrite.samples} x 4 KiB)`],
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

