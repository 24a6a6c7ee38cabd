/**
 * Device probe behind `raftlog probe PATH`: what the storage under PATH and
 * this CPU offer the backends, found out by asking the kernel and trying
 * things (a MAP_SYNC mapping, an io_uring instance) rather than guessing from
 * names. Every field that could not be determined is undefined with the
 * reason in `notes`, never a made-up default.
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

import { loadNative } from './native.js';
import type { CpuFlushInfo, DioAlign, NativeBinding } from './native.js';

/** The two durability barriers PmemFs can use (backends/pmem.ts, docs/pmem.md). */
export type PmemFlushPath = 'cacheline' | 'msync';

/**
 * Which barrier PmemFs uses for a mapping. `auto` takes cache-line flushes
 * only where they make data durable: the kernel accepted MAP_SYNC (DAX, so no
 * page cache and no writeback after the flush) and the CPU has a flush
 * instruction. Everywhere else msync(MS_SYNC) is the barrier that works.
 */
export function choosePmemFlush(
  requested: 'auto' | PmemFlushPath,
  mapSync: boolean,
  instruction: CpuFlushInfo['instruction'],
): PmemFlushPath {
  if (requested !== 'auto') return requested;
  return mapSync && instruction !== 'none' ? 'cacheline' : 'msync';
}

/** Whether the kernel grants MAP_SHARED_VALIDATE|MAP_SYNC on `fd` (writable, at least one page long). */
export function mapSyncOn(native: NativeBinding, fd: number): boolean {
  const mapping = native.mmap(fd, 0, 4096, true, true);
  native.munmap(mapping.buffer);
  return mapping.mapSync;
}

/**
 * Whether MAP_SYNC is accepted for files in directory `dir`, by trying it on
 * a scratch file (removed again): per file system, and only trying tells.
 */
export function mapSyncAccepted(dir: string, native: NativeBinding): boolean {
  const scratch = path.join(dir, `.raftlog-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(scratch, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.ftruncateSync(fd, 4096);
    return mapSyncOn(native, fd);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(scratch, { force: true });
  }
}

export interface MountInfo {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: readonly string[];
}

export interface UringProbe {
  readonly available: boolean;
  /** Why not, when unavailable. */
  readonly reason?: string;
  readonly ops?: Readonly<Record<'read' | 'write' | 'writev' | 'fsync' | 'fallocate' | 'ftruncate', boolean>>;
}

export interface ProbeReport {
  readonly path: string;
  /** Major:minor of the device holding `path`. */
  readonly device: string;
  readonly mount: MountInfo | undefined;
  /** From /sys/dev/block/…/queue; undefined for file systems without a block device (tmpfs). */
  readonly logicalBlockSize: number | undefined;
  readonly physicalBlockSize: number | undefined;
  /** statx(STATX_DIOALIGN) on a scratch file: what O_DIRECT demands here (offsetAlign 0: no O_DIRECT). */
  readonly dioAlign: DioAlign | undefined;
  /** The mount asks for DAX (dax, dax=always, dax=inode). */
  readonly daxMount: boolean;
  /** The kernel accepted MAP_SHARED_VALIDATE|MAP_SYNC on a scratch file: flushed stores are durable without msync. */
  readonly mapSync: boolean | undefined;
  readonly cpuFlush: CpuFlushInfo | undefined;
  /** The barrier `new PmemFs(path)` (flush 'auto') would use here; undefined when MAP_SYNC or the CPU is unknown. */
  readonly pmemFlush: PmemFlushPath | undefined;
  readonly uring: UringProbe;
  readonly notes: readonly string[];
}

/** Decodes a Linux dev_t (glibc's gnu_dev_major/minor layout). */
function majorMinor(dev: bigint): [number, number] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major, minor];
}

/** Unescapes the octal escapes mountinfo uses for spaces and the like. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount `real` lives on: the longest mount point containing it, the topmost if stacked. */
export function findMount(mountinfo: string, real: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const right = line.slice(dash + 3).split(' ');
    const mountPoint = unescapeMount(left[4] ?? '');
    const inside = mountPoint === '/' || real === mountPoint || real.startsWith(`${mountPoint}/`);
    if (!inside) continue;
    if (best !== undefined && mountPoint.length < best.mountPoint.length) continue;
    const options = [...(left[5] ?? '').split(','), ...(right[2] ?? '').split(',')].filter((o) => o.length > 0);
    best = { mountPoint, fsType: right[0] ?? '', source: unescapeMount(right[1] ?? ''), options };
  }
  return best;
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    const n = Number((await fsp.readFile(file, 'utf8')).trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Block sizes of the device; a partition has no queue/ of its own, its parent disk does. */
async function blockSizes(major: number, minor: number): Promise<{ logical?: number; physical?: number }> {
  const base = `/sys/dev/block/${major}:${minor}`;
  for (const queue of [`${base}/queue`, `${base}/../queue`]) {
    const logical = await readNumber(`${queue}/logical_block_size`);
    if (logical !== undefined) return { logical, physical: await readNumber(`${queue}/physical_block_size`) };
  }
  return {};
}

export async function probe(target: string): Promise<ProbeReport> {
  const notes: string[] = [];
  const real = await fsp.realpath(target);
  const st = await fsp.stat(real, { bigint: true });
  const dir = st.isDirectory() ? real : path.dirname(real);
  const [major, minor] = majorMinor(st.dev);

  let mount: MountInfo | undefined;
  try {
    mount = findMount(await fsp.readFile('/proc/self/mountinfo', 'utf8'), real);
  } catch (error) {
    notes.push(`mountinfo unreadable: ${String(error)}`);
  }
  const daxMount = mount?.options.some((o) => o === 'dax' || o === 'dax=always' || o === 'dax=inode') ?? false;

  const sizes = await blockSizes(major, minor);
  if (sizes.logical === undefined) notes.push(`no block device behind ${major}:${minor} (${mount?.fsType ?? 'unknown'} file system)`);

  const loaded = loadNative();
  let dioAlign: DioAlign | undefined;
  let mapSync: boolean | undefined;
  let cpuFlush: CpuFlushInfo | undefined;
  let uring: UringProbe;
  if (!loaded.ok) {
    notes.push(loaded.reason);
    uring = { available: false, reason: loaded.reason };
  } else {
    const native = loaded.binding;
    cpuFlush = native.cpuFlush();
    // A scratch file, since alignment and MAP_SYNC are per file system and only trying tells.
    const scratch = path.join(dir, `.raftlog-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    let fd: number | undefined;
    try {
      fd = fs.openSync(scratch, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.ftruncateSync(fd, 4096);
      dioAlign = native.statxDioAlign(fd) ?? undefined;
      if (dioAlign === undefined) notes.push('no O_DIRECT alignment reported (the file system does not say, or the kernel predates 6.1)');
      mapSync = mapSyncOn(native, fd);
    } catch (error) {
      notes.push(`scratch-file checks failed in ${dir}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(scratch, { force: true });
    }
    uring = probeUring(native.Ring);
  }

  return {
    path: real,
    device: `${major}:${minor}`,
    mount,
    logicalBlockSize: sizes.logical,
    physicalBlockSize: sizes.physical,
    dioAlign,
    daxMount,
    mapSync,
    cpuFlush,
    pmemFlush: mapSync === undefined || cpuFlush === undefined ? undefined : choosePmemFlush('auto', mapSync, cpuFlush.instruction),
    uring,
    notes,
  };
}

function probeUring(Ring: import('./native.js').NativeRingConstructor): UringProbe {
  try {
    const ring = new Ring(4, () => undefined);
    try {
      const names = ['read', 'write', 'writev', 'fsync', 'fallocate', 'ftruncate'] as const;
      const ops = Object.fromEntries(names.map((n) => [n, ring.supports(n)])) as Record<(typeof names)[number], boolean>;
      return { available: true, ops };
    } finally {
      ring.close();
    }
  } catch (error) {
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
    return { available: false, reason: `io_uring_setup failed: ${typeof code === 'string' ? code : String(error)}` };
  }
}

/** Human-readable lines for the CLI. */
export function formatProbe(report: ProbeReport): string {
  const yesNo = (v: boolean | undefined): string => (v === undefined ? 'unknown' : v ? 'yes' : 'no');
  const lines = [
    `path               ${report.path}`,
    `device             ${report.device}${report.mount === undefined ? '' : ` (${report.mount.source} on ${report.mount.mountPoint}, ${report.mount.fsType})`}`,
    `block size         logical ${report.logicalBlockSize ?? 'n/a'}, physical ${report.physicalBlockSize ?? 'n/a'}`,
    `O_DIRECT alignment ${report.dioAlign === undefined ? 'unknown' : report.dioAlign.offsetAlign === 0 ? 'not supported' : `offset ${report.dioAlign.offsetAlign}, memory ${report.dioAlign.memAlign}`}`,
    `DAX mount          ${yesNo(report.daxMount)}`,
    `MAP_SYNC accepted  ${yesNo(report.mapSync)}`,
    `cache-line flush   ${report.cpuFlush === undefined ? 'unknown' : `${report.cpuFlush.instruction} (clwb ${yesNo(report.cpuFlush.clwb)}, clflushopt ${yesNo(report.cpuFlush.clflushopt)}, clflush ${yesNo(report.cpuFlush.clflush)}; line ${report.cpuFlush.lineSize} B)`}`,
    `PmemFs barrier     ${report.pmemFlush === undefined ? 'unknown' : report.pmemFlush === 'cacheline' ? `cacheline (${report.cpuFlush?.instruction ?? '?'} + sfence on a MAP_SYNC mapping)` : 'msync (MS_SYNC of the dirty pages; no MAP_SYNC here)'}`,
    `io_uring           ${
      report.uring.available
        ? `yes (${Object.entries(report.uring.ops ?? {})
            .map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`)
            .join(', ')})`
        : `no: ${report.uring.reason ?? ''}`
    }`,
  ];
  for (const note of report.notes) lines.push(`note               ${note}`);
  return lines.join('\n');
}
