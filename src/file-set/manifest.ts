/**
 * The manifest: the durable list of the log files that must exist, and which
 * FileSystem (primary or spill) holds each. Open compares it with what the
 * directories hold, so a missing file is reported instead of served as a
 * smaller log.
 *
 * `MANIFEST` is a fixed 8 KiB file on the primary FileSystem: two 4 KiB
 * slots, each a complete, checksummed state with a generation number. An
 * update writes the next generation into the slot that does not hold the
 * current one, in place, with a barrier. The slot being written may tear; the
 * other one still holds the previous state, and readers take the valid slot
 * with the higher generation. Writing in place into blocks written at creation
 * needs no new blocks, so the manifest can record a spill to `spillFs`
 * exactly when the primary is full. Every byte is in docs/format.md
 * ("Manifest").
 *
 * The file is created complete under MANIFEST.tmp and renamed, so MANIFEST is
 * either absent or whole.
 */
import { FsyncFailedError, isRaftlogError } from '../errors.js';
import { MANIFEST_NAME, MANIFEST_TMP_NAME } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { crc32c } from '../format/checksum.js';
import { readU64, writeU64 } from '../format/layout.js';
import { readFully } from '../read-fully.js';

export const MANIFEST_MAGIC = Uint8Array.from([0x52, 0x4c, 0x4d, 0x41, 0x4e, 0x49, 0x46, 0x0a]); // "RLMANIF\n"
export const MANIFEST_VERSION = 1;
/** One slot; a multiple of every backend's write alignment (O_DIRECT) and of the page size. */
export const MANIFEST_SLOT_SIZE = 4096;
export const MANIFEST_SIZE = 2 * MANIFEST_SLOT_SIZE;
const RANGES_AT = 64;
const CRC_AT = MANIFEST_SLOT_SIZE - 4;
/** Spill ranges one slot holds; past this the manifest only says "some files spilled". */
export const MAX_SPILL_RANGES = Math.floor((CRC_AT - RANGES_AT) / 8);
/** Slot flag: more spilled ranges than fit; files not listed may be on either FileSystem. */
export const MANIFEST_FLAG_SPILL_OVERFLOW = 1;
/** Slot flag: the GC checkpoint file lives on the spill FileSystem. */
export const MANIFEST_FLAG_CHECKPOINT_SPILLED = 2;

export interface ManifestCheckpoint {
  seq: number;
  /** Append files below this are superseded by the checkpoint. */
  watermark: number;
  spilled: boolean;
}

export interface ManifestState {
  /** First append file replayed (0: the log has no file yet). Files below it are superseded. */
  first: number;
  /** Last append file (0: none). Every file in [first, last] must exist. */
  last: number;
  checkpoint: ManifestCheckpoint | undefined;
  /** Append files in [first, last] that live on the spill FileSystem, as inclusive ranges, ascending. */
  spilled: [number, number][];
  /** More spilled ranges existed than a slot holds (`spilled` lists the oldest). */
  spillOverflow: boolean;
  /**
   * Set at a clean close: file `last` ends with a seal record ending at this
   * offset. 0: nothing recorded (cleared before the first write after open).
   */
  cleanEnd: number;
}

export function emptyManifestState(): ManifestState {
  return { first: 0, last: 0, checkpoint: undefined, spilled: [], spillOverflow: false, cleanEnd: 0 };
}

export function encodeManifestSlot(state: ManifestState, generation: number): Uint8Array {
  const bytes = new Uint8Array(MANIFEST_SLOT_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(MANIFEST_MAGIC, 0);
  view.setUint16(8, MANIFEST_VERSION, true);
  const ranges = state.spilled.slice(0, MAX_SPILL_RANGES);
  const overflow = state.spillOverflow || state.spilled.length > MAX_SPILL_RANGES;
  const flags = (overflow ? MANIFEST_FLAG_SPILL_OVERFLOW : 0) | (state.checkpoint?.spilled === true ? MANIFEST_FLAG_CHECKPOINT_SPILLED : 0);
  view.setUint16(10, flags, true);
  view.setUint32(12, ranges.length, true);
  writeU64(view, 16, generation);
  writeU64(view, 24, state.first);
  writeU64(view, 32, state.last);
  writeU64(view, 40, state.checkpoint?.seq ?? 0);
  writeU64(view, 48, state.checkpoint?.watermark ?? 0);
  view.setUint32(56, state.cleanEnd, true);
  // 60..64 reserved (zero).
  for (let i = 0; i < ranges.length; i++) {
    view.setUint32(RANGES_AT + 8 * i, ranges[i]![0], true);
    view.setUint32(RANGES_AT + 8 * i + 4, ranges[i]![1], true);
  }
  view.setUint32(CRC_AT, crc32c(bytes.subarray(0, CRC_AT)), true);
  return bytes;
}

/** The slot's state and generation, or why it does not verify. */
export function decodeManifestSlot(bytes: Uint8Array): { state: ManifestState; generation: number } | string {
  if (bytes.length < MANIFEST_SLOT_SIZE) return 'short';
  const view = new DataView(bytes.buffer, bytes.byteOffset, MANIFEST_SLOT_SIZE);
  if (view.getUint32(CRC_AT, true) !== crc32c(bytes.subarray(0, CRC_AT))) return 'checksum';
  for (let i = 0; i < MANIFEST_MAGIC.length; i++) if (bytes[i] !== MANIFEST_MAGIC[i]) return 'magic';
  const version = view.getUint16(8, true);
  if (version !== MANIFEST_VERSION) return `version ${version} (this build reads manifest version ${MANIFEST_VERSION})`;
  const flags = view.getUint16(10, true);
  const count = view.getUint32(12, true);
  if (count > MAX_SPILL_RANGES) return 'range count';
  const spilled: [number, number][] = [];
  for (let i = 0; i < count; i++) spilled.push([view.getUint32(RANGES_AT + 8 * i, true), view.getUint32(RANGES_AT + 8 * i + 4, true)]);
  const checkpointSeq = readU64(view, 40);
  return {
    generation: readU64(view, 16),
    state: {
      first: readU64(view, 24),
      last: readU64(view, 32),
      checkpoint:
        checkpointSeq === 0
          ? undefined
          : { seq: checkpointSeq, watermark: readU64(view, 48), spilled: (flags & MANIFEST_FLAG_CHECKPOINT_SPILLED) !== 0 },
      spilled,
      spillOverflow: (flags & MANIFEST_FLAG_SPILL_OVERFLOW) !== 0,
      cleanEnd: view.getUint32(56, true),
    },
  };
}

/** Whether append file `seq` lives on the spill FileSystem per `state` (undefined: unknown, the list overflowed). */
export function spilledPerManifest(state: ManifestState, seq: number): boolean | undefined {
  for (const [first, last] of state.spilled) if (seq >= first && seq <= last) return true;
  return state.spillOverflow ? undefined : false;
}

/** Spilled sequence numbers as ascending inclusive ranges. */
export function spillRanges(seqs: Iterable<number>): [number, number][] {
  const sorted = [...seqs].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const seq of sorted) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && seq === last[1] + 1) last[1] = seq;
    else ranges.push([seq, seq]);
  }
  return ranges;
}

export type ManifestRead =
  | { kind: 'absent' }
  | { kind: 'ok'; state: ManifestState; generation: number }
  /** Both slots fail to verify. */
  | { kind: 'damaged'; detail: string };

/** Reads MANIFEST from `fs` without changing anything. */
export async function readManifest(fs: FileSystem): Promise<ManifestRead> {
  if (!(await fs.exists(MANIFEST_NAME))) return { kind: 'absent' };
  const handle = await fs.open(MANIFEST_NAME, { readOnly: true });
  try {
    const bytes = new Uint8Array(MANIFEST_SIZE);
    const read = await readFully(handle, bytes, 0, MANIFEST_SIZE, 0);
    const slots = [
      decodeManifestSlot(bytes.subarray(0, Math.min(read, MANIFEST_SLOT_SIZE))),
      decodeManifestSlot(bytes.subarray(MANIFEST_SLOT_SIZE, read)),
    ];
    let best: { state: ManifestState; generation: number } | undefined;
    for (const slot of slots) if (typeof slot === 'object' && (best === undefined || slot.generation > best.generation)) best = slot;
    if (best === undefined)
      return { kind: 'damaged', detail: `neither slot verifies (slot 0: ${String(slots[0])}, slot 1: ${String(slots[1])})` };
    return { kind: 'ok', ...best };
  } finally {
    await handle.close();
  }
}

/**
 * The open MANIFEST of an engine. Updates are serialized; after an update
 * that failed with an I/O error the file is never written again by this
 * process (the kernel's view of the slot is unknown), so every later update
 * fails too and the engine fail-stops. NO_SPACE is not sticky: the
 * generation did not advance, so a retry rewrites the same slot only.
 */
export class Manifest {
  readonly #handle: FileHandle;
  #generation: number;
  #chain: Promise<void> = Promise.resolve();
  #failure: unknown;

  private constructor(handle: FileHandle, generation: number) {
    this.#handle = handle;
    this.#generation = generation;
  }

  /** Opens an existing MANIFEST whose newest slot has `generation`. */
  static async open(fs: FileSystem, generation: number): Promise<Manifest> {
    return new Manifest(await fs.open(MANIFEST_NAME), generation);
  }

  /**
   * Creates MANIFEST holding `state` in both slots: written under a temporary
   * name, made durable, renamed, and the rename made durable.
   */
  static async create(fs: FileSystem, state: ManifestState): Promise<Manifest> {
    // Left by a creation that died; never listed anywhere.
    if (await fs.exists(MANIFEST_TMP_NAME)) await fs.remove(MANIFEST_TMP_NAME);
    const bytes = new Uint8Array(MANIFEST_SIZE);
    bytes.set(encodeManifestSlot(state, 1), 0);
    bytes.set(encodeManifestSlot(state, 1), MANIFEST_SLOT_SIZE);
    const handle = await fs.open(MANIFEST_TMP_NAME, { create: true, capacityBytes: MANIFEST_SIZE });
    try {
      await handle.write([bytes], 0, { sync: true });
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.remove(MANIFEST_TMP_NAME).catch(() => undefined);
      throw error;
    }
    await handle.close();
    await fs.rename(MANIFEST_TMP_NAME, MANIFEST_NAME);
    await fs.syncDir();
    return new Manifest(await fs.open(MANIFEST_NAME), 1);
  }

  get generation(): number {
    return this.#generation;
  }

  /**
   * Makes `state()` durable as the next generation. `state` is called when
   * this update's turn comes, so it includes every change made before then.
   */
  update(state: () => ManifestState): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      const generation = this.#generation + 1;
      try {
        await this.#handle.write([encodeManifestSlot(state(), generation)], (generation % 2) * MANIFEST_SLOT_SIZE, { sync: true });
      } catch (error) {
        // NO_SPACE (an encrypting or copy-on-write file system needs room even
        // for an in-place write): the generation did not advance, so a retry
        // writes the same slot again and never the other, good one.
        if (isRaftlogError(error, 'NO_SPACE')) throw error;
        // As for any failed barrier: the engine must stop (see log-writer.ts).
        this.#failure = new FsyncFailedError(`${MANIFEST_NAME}: update failed: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
          file: MANIFEST_NAME,
        });
        throw this.#failure;
      }
      this.#generation = generation;
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.#handle.close();
  }
}
