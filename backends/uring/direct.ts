/**
 * Direct-mode (O_DIRECT) block staging. The kernel must only ever see whole
 * blocks from aligned memory at aligned offsets, so every planned write is
 * rebuilt here as an aligned, padded block range whose partial first and last
 * blocks come from the file's block images (FileState.cache), from blocks
 * read for the purpose, or are known zeros; every barrier first fixes the
 * on-disk size to the logical one when the ring can (IORING_OP_FTRUNCATE).
 * Also here: the block size a file gets, and the reload of what JS knows
 * about a file after a failed chain. The ring and the queue are not.
 */

import * as fs from 'node:fs';

import { UnsupportedError } from '../../src/errors.js';
import type { NativeBinding } from '../../hardware/native.js';
import { fstatFd } from './fd.js';
import type { FileState } from './file-state.js';
import { op, readThrough, type ChainOp, type Core } from './ops.js';

/** The direct-mode block where the kernel cannot tell (no STATX_DIOALIGN), and the most a file system's block size raises it to. */
const DIRECT_BLOCK = 4096;

/** Allocates `size` bytes aligned to `block` (native alignedAlloc). */
export type AlignedAlloc = (size: number, block: number) => Uint8Array;

/**
 * The block size for a direct-mode file: what statx(STATX_DIOALIGN) demands,
 * raised to the file system's block size up to 4096 (4096 where the kernel
 * cannot say). See the header of uring.ts for why it is not always 4096.
 */
export function directBlockSize(native: NativeBinding, fd: number, name: string): number {
  const align = native.statxDioAlign(fd);
  if (align === null) return DIRECT_BLOCK;
  if (align.offsetAlign === 0) {
    throw new UnsupportedError(`open ${name}: O_DIRECT is not supported for this file`, { file: name });
  }
  // Capped: some file systems report a large preferred I/O size (NFS, ZFS), and every write pads to this.
  const fsBlock = Math.min(fs.fstatSync(fd).blksize, DIRECT_BLOCK);
  const block = Math.max(align.offsetAlign, align.memAlign, fsBlock);
  return block % align.offsetAlign === 0 ? block : DIRECT_BLOCK;
}

/** A staged write: the aligned range [start, end) and the buffer that holds it. */
interface Staged {
  start: number;
  end: number;
  buffer: Uint8Array;
}

/**
 * Rewrites a plan so every write is whole aligned blocks from an aligned
 * buffer, and every barrier first fixes the file size. With `missing`,
 * blocks that would have to come from disk are collected instead and nothing
 * is committed; without, the plan's state changes are applied to `file`
 * (logical/physical size, block images).
 */
export function alignPlan(
  file: FileState,
  plan: ChainOp[],
  missing: Set<number>,
  alloc: AlignedAlloc,
  ftruncateInChain: boolean,
): ChainOp[] {
  const B = file.block;
  let logical = file.logical;
  let physical = file.physical;
  const written: Staged[] = [];
  const out: ChainOp[] = [];
  const zeros = new Uint8Array(B);

  const image = (index: number): Uint8Array => {
    const at = index * B;
    for (let i = written.length - 1; i >= 0; i--) {
      const run = written[i]!;
      if (at >= run.start && at < run.end) return run.buffer.subarray(at - run.start, at - run.start + B);
    }
    const cached = file.prefetched.get(index) ?? file.cache.get(index);
    if (cached !== undefined) return cached;
    // Past the logical size the disk holds only padding zeros; past zeroFrom, only zeros.
    if (at >= file.logical || at >= file.zeroFrom) return zeros;
    missing.add(index);
    return zeros;
  };

  for (const o of plan) {
    if (o.kind === 'write') {
      const start = o.position;
      const end = start + o.length;
      const alignedStart = Math.floor(start / B) * B;
      const alignedEnd = Math.ceil(end / B) * B;
      const buffer = alloc(alignedEnd - alignedStart, B);
      if (start > alignedStart) buffer.set(image(alignedStart / B), 0);
      if (end < alignedEnd && !(start > alignedStart && alignedEnd - B === alignedStart)) {
        buffer.set(image(alignedEnd / B - 1), alignedEnd - B - alignedStart);
      }
      let at = start - alignedStart;
      for (const b of o.buffers) {
        buffer.set(b, at);
        at += b.byteLength;
      }
      written.push({ start: alignedStart, end: alignedEnd, buffer });
      const aligned = op('write', o.fd, [buffer], alignedStart, alignedEnd - alignedStart, undefined);
      aligned.aligned = true;
      aligned.reqs = o.reqs;
      out.push(aligned);
      logical = Math.max(logical, end);
      physical = Math.max(physical, alignedEnd);
    } else if (o.kind === 'fallocate') {
      out.push(o);
      logical = Math.max(logical, o.position + o.length);
      physical = Math.max(physical, o.position + o.length);
    } else if (o.kind === 'fsync') {
      if (physical !== logical && ftruncateInChain && o.writable) {
        // No requests of its own: if it fails, the fsync after it is
        // cancelled and fails the barrier's requests.
        out.push(op('ftruncate', o.fd, [], logical, 0, undefined));
        physical = logical;
      }
      out.push(o);
    } else {
      out.push(o);
    }
  }
  if (missing.size > 0) return [];
  commitStaged(file, written, logical, physical);
  return out;
}

/** Applies a fully staged plan to what JS knows of the file: sizes, zero mark and block images. */
function commitStaged(file: FileState, written: readonly Staged[], logical: number, physical: number): void {
  const B = file.block;
  file.logical = logical;
  file.physical = physical;
  file.prefetched = new Map();
  for (const run of written) {
    file.zeroFrom = Math.max(file.zeroFrom, run.end);
    const first = run.start / B;
    const last = run.end / B - 1;
    for (const index of [...file.cache.keys()]) {
      if (index >= first && index <= last) file.remember(index, run.buffer.subarray((index - first) * B, (index - first + 1) * B));
    }
    file.remember(first, run.buffer.subarray(0, B));
    file.remember(last, run.buffer.subarray(run.buffer.byteLength - B));
  }
}

/** Reads whole blocks from disk into `file.prefetched` (no chain of the file is in flight). */
export async function readBlocks(
  file: FileState,
  plan: ChainOp[],
  indexes: number[],
  alloc: AlignedAlloc,
  core: Pick<Core, 'read'>,
): Promise<void> {
  const fd = plan[0]!.fd;
  await Promise.all(
    indexes.map(async (index) => {
      const buffer = alloc(file.block, file.block);
      const position = index * file.block;
      const { block, name } = file;
      await readThrough(core, { fd, target: buffer, targetOffset: 0, remaining: block, position, block, name });
      // Past the logical size the block must read as zeros, whatever padding the disk holds.
      const keep = file.logical - index * file.block;
      if (keep < file.block) buffer.fill(0, Math.max(0, keep));
      file.prefetched.set(index, buffer);
    }),
  );
}

/** After a failed direct-mode chain nothing cached can be trusted: start again from the disk. */
export async function reloadState(file: FileState): Promise<void> {
  file.cache.clear();
  file.prefetched = new Map();
  file.stale = false;
  const fd = file.fds.values().next().value as number | undefined;
  if (fd === undefined) return;
  const size = Number((await fstatFd(fd)).size);
  file.logical = Math.min(file.logical, size);
  file.physical = size;
  // A failed write may have landed anywhere: only past the end is known zero now.
  file.zeroFrom = size;
}
