/**
 * A file's two header slots as I/O on the inner file: reading both and
 * picking the valid one, writing the next header so that a torn write can
 * never destroy the only durable copy, and making a new generation's
 * headers durable before any data is written. The bytes of a slot are
 * header.ts's; which HWM and bound a header should carry is decided by the
 * handle (file-state.ts).
 */

import type { FileHandle } from '../../src/filesystem.js';
import type { FileState, HeaderWriter } from './file-state.js';
import { HEADER_BYTES, SLOT_BYTES, SLOT_OFFSETS, encodeSlot, pickHeader, type FileHeader } from './header.js';

/** Header sequence numbers alternate between the two slots. */
function slotOffsetOf(seq: bigint): number {
  return SLOT_OFFSETS[Number((seq - 1n) % 2n)]!;
}

export async function readSlots(inner: FileHandle): Promise<[Uint8Array, Uint8Array]> {
  const slots: [Uint8Array, Uint8Array] = [new Uint8Array(SLOT_BYTES), new Uint8Array(SLOT_BYTES)];
  for (let i = 0; i < SLOT_OFFSETS.length; i++) await inner.read(slots[i]!, 0, SLOT_BYTES, SLOT_OFFSETS[i]!);
  return slots;
}

/**
 * The file's header. Without a valid slot: 'blank' if the file holds no
 * data area (a crash while it was being created: both header slots are
 * made durable before `open` returns, so no data can exist yet), else
 * 'invalid' (damage, or a file EncryptedFs did not write).
 */
export async function readHeader(inner: FileHandle): Promise<FileHeader | 'blank' | 'invalid'> {
  const header = pickHeader(...(await readSlots(inner)));
  if (header !== undefined) return header;
  return (await inner.size()) <= HEADER_BYTES ? 'blank' : 'invalid';
}

/**
 * Writes the file's header with `hwm`. The slot alternates only once the
 * previous header is known durable; until then the same (not yet durable)
 * slot is rewritten, so a torn header write can never destroy the only
 * durable copy.
 */
export async function writeHeader(state: FileState, writer: HeaderWriter, slotBytes: number, hwm: number, bound = hwm): Promise<void> {
  if (state.fileId === undefined) return;
  const seq = state.headerDurable || state.headerSeq === 0n ? state.headerSeq + 1n : state.headerSeq;
  state.headerDurable = false;
  state.headerWriter = writer;
  state.headerSeq = seq;
  const slot = encodeSlot({ seq, fileId: state.fileId, hwm, bound }, slotBytes);
  await writer.inner.write([slot], slotOffsetOf(seq));
  state.headerHwm = hwm;
  state.headerBound = Math.max(bound, hwm);
}

/**
 * Puts a new generation's header in both slots and makes it durable, before
 * any data can be written: from here on a torn header write can only ever
 * damage one slot, so "no valid slot" in a file with data means damage.
 */
export async function initHeaders(state: FileState, writer: HeaderWriter, slotBytes: number): Promise<void> {
  for (let i = 0; i < SLOT_OFFSETS.length; i++) {
    state.headerDurable = true; // alternate slots; nothing durable to protect yet
    await writeHeader(state, writer, slotBytes, 0);
  }
  await writer.inner.sync();
  state.headerDurable = true;
}

/**
 * Makes the header a writable open just read durable. It may be one a
 * previous session wrote but never synced. The next header goes to the other
 * slot, overwriting the one before it, so this one must be durable first.
 * Written again, not just synced: after a failed barrier the kernel serves
 * its page clean, and an fdatasync alone would skip it. Same bytes, same slot.
 */
export async function secureLoadedHeader(state: FileState, inner: FileHandle, slotBytes: number): Promise<void> {
  if (state.fileId !== undefined) {
    const header = { seq: state.headerSeq, fileId: state.fileId, hwm: state.headerHwm, bound: state.headerBound };
    const slot = encodeSlot(header, slotBytes);
    await inner.write([slot], slotOffsetOf(state.headerSeq));
  }
  await inner.sync();
  state.needsInitialSync = false;
}
