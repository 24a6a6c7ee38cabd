/**
 * The per-file header EncryptedFs keeps at the start of every inner file.
 *
 * Why a header at all: preallocated space must read back as zeros, and it
 * must NOT be encrypted (encrypting zeros would spend keystream that the
 * records written there later would reuse: C1 = K, C2 = K ^ P hands P to
 * anyone who saw both). So the inner file holds ciphertext below a
 * high-water mark (HWM) and plain zeros above it, and a reader must know
 * where the HWM is. It cannot be inferred from the bytes (a ciphertext byte
 * is zero one time in 256), and putting it in the key dictionary would cost
 * a rename and a directory fsync per barrier. The header rides with the data
 * instead: it is rewritten just before a barrier whenever the HWM moved, so
 * the same fdatasync makes both durable, for one extra small write.
 *
 * Two slots, written alternately, each with a sequence number and a
 * checksum: a torn header write (a crash mid-write) can only damage the slot
 * being written, and the other still holds the previous, durable HWM. Both
 * slots are written and made durable when the file is created, before any
 * data, so from then on at least one is always valid.
 *
 * The header also carries the file's `fileId`, the key under which the key
 * dictionary stores the file's (key id, IV) extents. Naming the generation
 * inside the file, rather than by its name, is what makes rename and reuse
 * crash-safe without touching the dictionary: whatever name a crash leaves
 * the inner file under, its header says which keys decrypt it.
 *
 * A header per barrier still costs an extra block in every fdatasync
 * (measured: about a fifth of single-writer throughput). So where the inner
 * bytes past the HWM are known to be zeros, the header may carry a *lease*
 * instead: `bound` says "no ciphertext at or past here", `hwm` is a floor,
 * and every append that moves the HWM inside the lease also writes an end
 * mark (see end-mark.ts) right after its data, in the same inner write. The
 * header is then rewritten only when the HWM leaves the lease, and a reader
 * that finds a lease recovers the exact HWM from the mark (end-mark.ts says
 * how, and why a torn tail is safe).
 *
 * Slot layout (64 bytes, big-endian):
 *   0  magic "RLEF"          4  format version (1)     5  reserved (3)
 *   8  sequence (u64)        16 fileId (16 bytes)     32 HWM (u64)
 *   40 bound (u64; at most the HWM means no lease: the HWM is exact)
 *   48 reserved (8)          56 first 8 bytes of SHA-256 over bytes 0..56
 */

import { createHash } from 'node:crypto';

import { UnsupportedError } from '../../src/errors.js';

/** Plaintext offset 0 lives at this inner offset. 8 KiB: two 4 KiB-aligned slots, so O_DIRECT inner backends keep their alignment. */
export const HEADER_BYTES = 8192;
export const SLOT_OFFSETS: readonly [number, number] = [0, 4096];
export const SLOT_BYTES = 64;
export const FILE_ID_BYTES = 16;
const MAGIC = Buffer.from('RLEF', 'latin1');
const VERSION = 1;
const CHECKED_BYTES = 56;

export interface FileHeader {
  readonly seq: bigint;
  /** Hex of the 16-byte file id. */
  readonly fileId: string;
  /** The exact HWM when `bound` equals it; otherwise a floor of it. */
  readonly hwm: number;
  /** No ciphertext lies at or past this (not counting an end mark); at least `hwm`. */
  readonly bound: number;
}

/** How many bytes one slot write takes on an inner backend with this write alignment. */
export function slotWriteBytes(writeAlignment: number): number {
  const size = Math.max(SLOT_BYTES, writeAlignment);
  if (!Number.isInteger(writeAlignment) || writeAlignment < 1 || 4096 % size !== 0) {
    throw new UnsupportedError(`EncryptedFs: inner write alignment ${writeAlignment} is not a power of two up to 4096`);
  }
  return size;
}

export function encodeSlot(header: FileHeader, writeBytes: number): Buffer {
  const slot = Buffer.alloc(writeBytes);
  MAGIC.copy(slot, 0);
  slot[4] = VERSION;
  slot.writeBigUInt64BE(header.seq, 8);
  Buffer.from(header.fileId, 'hex').copy(slot, 16);
  slot.writeBigUInt64BE(BigInt(header.hwm), 32);
  slot.writeBigUInt64BE(BigInt(Math.max(header.bound, header.hwm)), 40);
  digest(slot).copy(slot, CHECKED_BYTES);
  return slot;
}

/** 'blank' when the slot was never written (all zeros), 'invalid' when it was written but fails its checksum. */
export function decodeSlot(bytes: Uint8Array): FileHeader | 'blank' | 'invalid' {
  const slot = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (slot.byteLength < SLOT_BYTES) return slot.every((b) => b === 0) ? 'blank' : 'invalid';
  if (slot.subarray(0, SLOT_BYTES).every((b) => b === 0)) return 'blank';
  if (!slot.subarray(0, 4).equals(MAGIC) || slot[4] !== VERSION) return 'invalid';
  if (!digest(slot).equals(slot.subarray(CHECKED_BYTES, SLOT_BYTES))) return 'invalid';
  const hwm = slot.readBigUInt64BE(32);
  const bound = slot.readBigUInt64BE(40);
  if (hwm > BigInt(Number.MAX_SAFE_INTEGER) || bound > BigInt(Number.MAX_SAFE_INTEGER)) return 'invalid';
  return {
    seq: slot.readBigUInt64BE(8),
    fileId: slot.subarray(16, 16 + FILE_ID_BYTES).toString('hex'),
    hwm: Number(hwm),
    bound: Math.max(Number(bound), Number(hwm)),
  };
}

/** The generations named by the valid slots (the current one, and the previous one while it survives). */
export function slotFileIds(slot0: Uint8Array, slot1: Uint8Array): string[] {
  const ids = new Set<string>();
  for (const slot of [decodeSlot(slot0), decodeSlot(slot1)]) if (typeof slot === 'object') ids.add(slot.fileId);
  return [...ids];
}

/**
 * The file's current header given both slots: the valid one with the higher
 * sequence, or undefined if neither is valid. Whether "no valid header" means
 * "never finished being created" or "damaged" is the caller's call, made on
 * the file size (see EncryptedFs: headers are durable before any data).
 */
export function pickHeader(slot0: Uint8Array, slot1: Uint8Array): FileHeader | undefined {
  const a = decodeSlot(slot0);
  const b = decodeSlot(slot1);
  if (typeof a === 'object' && typeof b === 'object') return a.seq >= b.seq ? a : b;
  if (typeof a === 'object') return a;
  if (typeof b === 'object') return b;
  return undefined;
}

function digest(slot: Buffer): Buffer {
  return createHash('sha256').update(slot.subarray(0, CHECKED_BYTES)).digest().subarray(0, 8);
}
