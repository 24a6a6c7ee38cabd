/**
 * The persistent-memory crash model (data mode `pmem`): what a power loss
 * leaves of a file that lives in byte-addressable persistent memory and is
 * written with plain stores, as PmemFs does (backends/pmem.ts).
 *
 * The hardware facts it encodes:
 * - only what a barrier flushed (clwb + sfence) is guaranteed durable; here a
 *   barrier is the seam's sync, so the durable image is the model's;
 * - between barriers the CPU writes dirty cache lines back whenever it likes,
 *   in any order, so a crash keeps any subset of the unflushed lines, and a
 *   line that was stored to several times may come back in any of its
 *   versions (the write-back happened between two of the stores);
 * - stores are power-fail atomic only in aligned 8-byte units: a line caught
 *   mid write-back is torn, each of its words independently old or new;
 * - the file's logical size is one such word (PmemFs keeps it in the header
 *   line), so it comes back as one of its versions, never torn, and
 *   independently of the data lines it covers.
 *
 * Lines and words are aligned to file offsets, which is what PmemFs gives:
 * its data region starts on a page boundary of the mapping.
 *
 * Truncate and preallocate touch no data lines by themselves (PmemFs changes
 * the size word); growth exposes zeros, which PmemFs stores only where old
 * bytes may linger, so the lines of an extension (by truncate, preallocate,
 * or the gap before a write past the end) are counted as stores of zeros
 * where some earlier version could be non-zero, and skipped where every
 * version is zero anyway (a fresh 8 MiB preallocation costs nothing here).
 */

import type { Prng } from './prng.js';
import { ByteImage, FileModel, PendingOp, applyPending } from './model.js';

/** Store atomicity of persistent memory on x86 (and the size word's width). */
export const PMEM_WORD_BYTES = 8;

export interface PmemCrashOptions {
  /** Cache-line size in bytes: a power of two, at least 8. */
  readonly lineSize: number;
  /** Chance that an unflushed line (or the size word) reached the media in some new version. */
  readonly keepProbability: number;
  /** Chance that a line that reached the media is torn (each word old or new on its own). */
  readonly tornProbability: number;
}

export interface PmemCrashOutcome {
  readonly content: Uint8Array;
  readonly detail: string;
}

interface LineChoice {
  /** Which version comes back: 0 the durable one, k the one after the line's k-th store. */
  readonly version: number;
  /** For a torn line: which words come from `version` (the others stay durable). */
  readonly words: readonly boolean[] | undefined;
}

/**
 * The byte ranges `op` stores to, given the size before it: the written
 * bytes, and the zeros an extension exposes (a write's gap past the end
 * included) wherever an earlier version could be non-zero.
 */
function storedRanges(op: PendingOp, size: number, everNonZeroEnd: number): Array<[number, number]> {
  const zeros = (end: number): [number, number] => [size, Math.min(end, everNonZeroEnd)];
  switch (op.kind) {
    case 'write':
      return op.offset > size ? [zeros(op.offset), [op.offset, op.offset + op.bytes.length]] : [[op.offset, op.offset + op.bytes.length]];
    case 'truncate':
      return op.size > size ? [zeros(op.size)] : [];
    case 'preallocate':
      return op.offset + op.length > size ? [zeros(op.offset + op.length)] : [];
  }
}

function sizeAfter(op: PendingOp, size: number): number {
  switch (op.kind) {
    case 'write':
      return Math.max(size, op.offset + op.bytes.length);
    case 'truncate':
      return op.size;
    case 'preallocate':
      return Math.max(size, op.offset + op.length);
  }
}

/**
 * Walks the pending operations in order, calling `visit(op, firstLine,
 * endLine)` with the lines each one stores to. Both passes of the crash use
 * it, so they agree on what counts as a store.
 */
function walkStores(model: FileModel, lineSize: number, visit: (index: number, first: number, end: number) => void): void {
  let size = model.durable.size;
  // Past this offset every version of every byte is zero (durable bytes past
  // the durable size are zero, and no pending write reached further yet).
  let everNonZeroEnd = model.durable.size;
  model.pending.forEach((op, index) => {
    // As line ranges, merged where they share a line, so one operation is one version of each line.
    let first = 0;
    let end = 0;
    for (const [startByte, endByte] of storedRanges(op, size, everNonZeroEnd)) {
      if (endByte <= startByte) continue;
      const a = Math.floor(startByte / lineSize);
      const b = Math.ceil(endByte / lineSize);
      if (end > first && a <= end) {
        end = Math.max(end, b);
        continue;
      }
      if (end > first) visit(index, first, end);
      first = a;
      end = b;
    }
    if (end > first) visit(index, first, end);
    if (op.kind === 'write') everNonZeroEnd = Math.max(everNonZeroEnd, op.offset + op.bytes.length);
    size = sizeAfter(op, size);
  });
}

/** The size word after the crash: its durable value, or the value after one of the size-changing operations. */
function chooseSize(model: FileModel, prng: Prng, keepProbability: number): { finalSize: number; writtenSize: number } {
  const sizes: number[] = [];
  let size = model.durable.size;
  for (const op of model.pending) {
    const next = sizeAfter(op, size);
    if (next !== size) sizes.push(next);
    size = next;
  }
  let finalSize = model.durable.size;
  if (sizes.length > 0 && prng.chance(keepProbability)) {
    finalSize = prng.chance(0.5) ? sizes[sizes.length - 1]! : prng.pick(sizes);
  }
  return { finalSize, writtenSize: size };
}

export function crashPmem(model: FileModel, prng: Prng, options: PmemCrashOptions): PmemCrashOutcome {
  const { lineSize, keepProbability, tornProbability } = options;
  const wordsPerLine = lineSize / PMEM_WORD_BYTES;

  // Pass 1: how many versions each line has past the durable one.
  const stores = new Map<number, number>();
  walkStores(model, lineSize, (_, first, end) => {
    for (let line = first; line < end; line++) stores.set(line, (stores.get(line) ?? 0) + 1);
  });

  // Decisions, in line order so they do not depend on Map insertion order.
  const choices = new Map<number, LineChoice>();
  let kept = 0;
  let torn = 0;
  const lines = [...stores.keys()].sort((a, b) => a - b);
  for (const line of lines) {
    const count = stores.get(line)!;
    if (!prng.chance(keepProbability)) continue; // never written back: the durable version
    // Usually the last version (the line was written back late); otherwise
    // any of them (written back between two stores, then never again).
    const version = prng.chance(0.5) ? count : prng.between(1, count);
    let words: boolean[] | undefined;
    if (prng.chance(tornProbability)) {
      words = Array.from({ length: wordsPerLine }, () => prng.chance(0.5));
      torn++;
    }
    kept++;
    choices.set(line, { version, words });
  }

  const { finalSize, writtenSize } = chooseSize(model, prng, keepProbability);

  // Pass 2: replay, snapshotting each kept line right after the store that made its chosen version.
  const snapshots = new Map<number, Uint8Array>();
  const seen = new Map<number, number>();
  const working: ByteImage = model.durable.clone();
  const ops = model.pending;
  let nextOp = 0;
  walkStores(model, lineSize, (index, first, end) => {
    while (nextOp <= index) applyPending(working, ops[nextOp++]!);
    for (let line = first; line < end; line++) {
      const n = (seen.get(line) ?? 0) + 1;
      seen.set(line, n);
      if (choices.get(line)?.version !== n) continue;
      const bytes = new Uint8Array(lineSize);
      const base = line * lineSize;
      const view = working.view();
      if (base < view.length) bytes.set(view.subarray(base, Math.min(base + lineSize, view.length)));
      snapshots.set(line, bytes);
    }
  });

  // The image: durable bytes, overlaid with what each kept line brought back.
  const content = new Uint8Array(finalSize);
  content.set(model.durable.view().subarray(0, Math.min(finalSize, model.durable.size)));
  for (const [line, bytes] of snapshots) {
    const base = line * lineSize;
    if (base >= finalSize) continue;
    const words = choices.get(line)!.words;
    for (let w = 0; w < wordsPerLine; w++) {
      if (words !== undefined && words[w] !== true) continue;
      const at = base + w * PMEM_WORD_BYTES;
      if (at >= finalSize) break;
      content.set(bytes.subarray(w * PMEM_WORD_BYTES, Math.min((w + 1) * PMEM_WORD_BYTES, finalSize - base)), at);
    }
  }
  const detail =
    `kept ${kept}/${lines.length} unflushed line(s) of ${lineSize} B (${torn} torn in ${PMEM_WORD_BYTES}-byte words), ` +
    `size ${finalSize} (synced ${model.durable.size}, written ${writtenSize})`;
  return { content, detail };
}
