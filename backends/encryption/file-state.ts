/**
 * The per-file cipher state of EncryptedFs: for one file generation, its
 * extents (which data key and IV encrypt which range), its high-water mark,
 * the keystream frontier of every IV this session wrote under, and what its
 * header last said. It is what makes the no-(key, IV)-reuse rules of
 * encrypted.ts hold across handles: every handle open on the generation
 * shares this one object, so two handles never disagree on the HWM or a
 * frontier. Also here: the header lease's arithmetic, and the reused
 * ciphertext buffer of a file's writes.
 */

import type { FileHandle } from '../../src/filesystem.js';
import type { Extent } from './dictionary.js';
import { MARK_BYTES } from './end-mark.js';
import { HEADER_BYTES } from './header.js';
import { Mutex } from './mutex.js';

/** Whoever wrote a file's header last: a handle, compared by identity. */
export interface HeaderWriter {
  readonly inner: FileHandle;
}

/**
 * How far past the HWM a header lease reaches: the header is rewritten once
 * per this many appended bytes, and a reopen after a crash scans at most
 * this much for the end mark.
 */
const LEASE_BYTES = 8 << 20;

/** Writes larger than this encrypt into a buffer of their own rather than the file's reused one. */
const MAX_SCRATCH_BYTES = 8 << 20;

/**
 * Everything EncryptedFs knows about one file generation (one file id),
 * shared by every handle open on it in this process: two handles must agree
 * on the HWM and the frontiers, or one would re-encrypt what the other wrote.
 */
export class FileState {
  /** Undefined for a file that never got a durable header, until its first write gives it a generation. */
  fileId: string | undefined;
  extents: readonly Extent[];
  /** See the header of encrypted.ts: ciphertext below, zeros above. */
  hwm: number;
  /**
   * Keystream frontier per IV (hex) for IVs this session has encrypted
   * under; an IV missing here has an unknown frontier (it was loaded from
   * disk) and is never used again for writing.
   */
  readonly frontiers = new Map<string, number>();
  /** Sequence, HWM (exact, or a floor under a lease) and bound of the header last written (or read). */
  headerSeq = 0n;
  headerHwm = -1;
  headerBound = -1;
  /**
   * Inner bytes of the data area at or past this are known to be zeros,
   * but for end marks: space this process created or extended. Below it,
   * past the HWM, may lie bytes a crash left behind (an unsynced write, an
   * earlier life of a recycled file). A lease covers only known zeros.
   */
  zeroFrom: number;
  /** Whether the inner backend takes the unaligned 16-byte end marks (a buffered one): else every HWM move rewrites the header. */
  readonly leases: boolean;
  /** The HWM an end mark sits at, when the last HWM move wrote one. */
  markedEnd: number | undefined;
  /** Size of the data area of the inner file, as far as this process knows: end marks must fit inside it, never grow the file. */
  innerSize = 0;
  /** Whether the header with `headerSeq` is known durable (a barrier on its writer succeeded after it). */
  headerDurable = false;
  headerWriter: HeaderWriter | undefined;
  /** Loaded from a header that may not be durable yet: the first writable open syncs before any header write. */
  needsInitialSync = false;
  /** Orders writes, barriers, truncates and preallocations on this file. */
  readonly mutex = new Mutex();
  /**
   * Ciphertext of the write in progress, reused across writes (they are
   * serialised by `mutex`, and the inner write has settled before the next
   * one starts). A fresh buffer per write cost more main-thread time than
   * the AES pass itself (page faults and unmapping of large allocations).
   */
  #scratch = Buffer.alloc(0);

  #fileIdBytes: { readonly hex: string; readonly bytes: Buffer } | undefined;

  /** The file id as bytes, for end marks (converted once per generation, not per append). */
  fileIdBytes(): Buffer {
    const hex = this.fileId!;
    if (this.#fileIdBytes?.hex !== hex) this.#fileIdBytes = { hex, bytes: Buffer.from(hex, 'hex') };
    return this.#fileIdBytes.bytes;
  }

  /** A buffer of `length` bytes to encrypt into, valid until the next call. */
  scratch(length: number): Buffer {
    // A rare huge write (a rewrite of a whole file) is not worth holding on to.
    if (length > MAX_SCRATCH_BYTES) return Buffer.allocUnsafeSlow(length);
    if (this.#scratch.byteLength < length) {
      // Grow geometrically so a log's growing group sizes settle on one buffer.
      this.#scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.#scratch.byteLength, 64 << 10));
    }
    return this.#scratch.subarray(0, length);
  }

  constructor(fileId: string | undefined, extents: readonly Extent[], hwm: number, innerSize: number, zeroFrom: number, leases: boolean) {
    this.fileId = fileId;
    this.extents = extents;
    this.hwm = hwm;
    this.innerSize = innerSize;
    this.zeroFrom = zeroFrom;
    this.leases = leases;
  }

  /** Whether the header last written already tells a reader where `hwm` is: exactly, or as the end mark inside its lease. */
  headerCovers(hwm: number, markedEnd: number | undefined): boolean {
    if (hwm === this.headerHwm) return true;
    return this.headerHwm < hwm && hwm <= this.headerBound && markedEnd === hwm;
  }

  /** The bound for a header written with `hwm`: a lease when an end mark can stand for the HWM, else the HWM itself (exact). */
  boundFor(hwm: number, markedEnd: number | undefined): number {
    if (!this.leases || markedEnd !== hwm || hwm < this.zeroFrom) return hwm;
    return Math.max(hwm, Math.min(hwm + LEASE_BYTES, this.innerSize - MARK_BYTES));
  }

  /** Whether an append ending at `end` gets an end mark: it moves the HWM into known zeros, and the mark fits in space the inner file already has. */
  marksAt(end: number): boolean {
    return this.leases && end > this.hwm && end >= this.zeroFrom && end + MARK_BYTES <= this.innerSize;
  }

  /** The marked end after a write ending at `end` (with or without a mark). */
  markedEndAfter(end: number, marked: boolean): number | undefined {
    if (marked) return end;
    return end > this.hwm ? undefined : this.markedEnd;
  }
}

const hexOfIv = new WeakMap<Uint8Array, string>();

/** An IV as the hex key of `FileState.frontiers`, computed once per IV object (this runs on every append). */
export function ivHex(iv: Buffer): string {
  let hex = hexOfIv.get(iv);
  if (hex === undefined) {
    hex = iv.toString('hex');
    hexOfIv.set(iv, hex);
  }
  return hex;
}

/** The size of the data area of an inner file (past the encryption header). */
export async function dataSize(inner: FileHandle): Promise<number> {
  return Math.max(0, (await inner.size()) - HEADER_BYTES);
}
