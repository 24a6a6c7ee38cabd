/**
 * End marks: how a file under a lease (see header.ts) knows its exact HWM
 * without a header write per barrier.
 *
 * An append that moves the HWM to `end` writes, in the same inner write,
 * 16 raw bytes at `[end, end + 16)` derived from (file id, end), with no
 * zero byte. The next append starts at `end` and overwrites the mark with
 * ciphertext; those bytes were never encrypted before (the mark is not
 * keystream), so no (key, IV, counter) is spent twice.
 *
 * Reading it back: past the true end of a `zeroTail` file there are only
 * zeros, so the last nonzero byte between the header's floor and its bound
 * ends either a mark (the HWM is where the mark starts) or ciphertext of a
 * write that was in flight at a crash (the HWM is just past it).
 *
 * Why the HWM never lands below synced data: a barrier made the last mark
 * durable together with its data. Every later write starts at or past that
 * mark, so each of the mark's bytes is either still the mark (nonzero) or
 * ciphertext written over it; all 16 turning into zero ciphertext is a
 * 2^-128 event. The last nonzero byte therefore lies at or past the synced
 * end. In the torn case, bytes between the synced end and the HWM read as
 * garbage, as an unsynced torn write reads on any file system; the engine's
 * checksums reject them like any torn tail.
 *
 * Why not a plain "last nonzero byte": ciphertext is zero one byte in 256, so
 * synced data ending in zero ciphertext bytes would be cut short.
 *
 * A mark is not secret: it is derived from the file id (in the header) and
 * the HWM, both of which the threat model already leaves visible. Nor does
 * it need to resist forgery: CTR gives no integrity anyway (see the threat
 * model), and ciphertext cannot be steered to equal it without the keystream.
 */

import type { FileHandle } from '../../src/filesystem.js';

export const MARK_BYTES = 16;
/** How far back the scan reads per inner call. */
const SCAN_CHUNK = 1 << 20;

/**
 * The mark written after data ending at `end` in the file generation
 * `fileId` (16 bytes): the 16 random bytes of the file id, XORed with `end` (twice,
 * as u64), with zero bytes made nonzero. It only has to be something
 * ciphertext does not happen to equal (16 bytes: 2^-128) and something a
 * stale mark of an earlier generation or an earlier end is not; it is
 * computed per append, so it is cheap, not a hash.
 */
export function endMark(fileId: Uint8Array, end: number): Buffer {
  const mark = Buffer.allocUnsafe(MARK_BYTES);
  mark.set(fileId.subarray(0, MARK_BYTES));
  const high = Math.floor(end / 2 ** 32);
  const low = end >>> 0;
  for (const at of [0, 8]) {
    mark.writeUInt32BE((mark.readUInt32BE(at) ^ high) >>> 0, at);
    mark.writeUInt32BE((mark.readUInt32BE(at + 4) ^ low) >>> 0, at + 4);
  }
  // No zero byte: the scan looks for the last nonzero byte, which must be the mark's last.
  for (let i = 0; i < MARK_BYTES; i++) if (mark[i] === 0) mark[i] = 1;
  return mark;
}

export interface FoundEnd {
  /** The recovered HWM. */
  readonly hwm: number;
  /** Whether a mark sits at `hwm` (else the tail is torn, or nothing was appended past the floor). */
  readonly marked: boolean;
}

/**
 * The HWM of a leased file whose data area starts at `dataOffset` in `inner`:
 * the last nonzero byte in `[floor, limit)` (a mark, or torn ciphertext),
 * or `floor` if there is none.
 */
export async function findEnd(inner: FileHandle, dataOffset: number, fileIdHex: string, floor: number, limit: number): Promise<FoundEnd> {
  const chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, Math.max(0, limit - floor)));
  const zeros = Buffer.alloc(chunk.byteLength);
  for (let hi = limit; hi > floor; ) {
    const lo = Math.max(floor, hi - chunk.byteLength);
    const n = await inner.read(chunk, 0, hi - lo, dataOffset + lo);
    const bytes = chunk.subarray(0, n);
    if (n > 0 && !bytes.equals(zeros.subarray(0, n))) {
      let last = n - 1;
      while (bytes[last] === 0) last--;
      const end = lo + last + 1;
      const markStart = end - MARK_BYTES;
      if (markStart >= floor) {
        const candidate = Buffer.alloc(MARK_BYTES);
        await inner.read(candidate, 0, MARK_BYTES, dataOffset + markStart);
        if (candidate.equals(endMark(Buffer.from(fileIdHex, 'hex'), markStart))) return { hwm: markStart, marked: true };
      }
      return { hwm: end, marked: false };
    }
    hi = lo;
  }
  return { hwm: floor, marked: false };
}
