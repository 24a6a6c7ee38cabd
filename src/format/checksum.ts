/**
 * CRC32C (Castagnoli) in native code (SSE4.2 / ARMv8 CRC instructions via
 * @node-rs/crc32). The seed lets a file mix its salt into every record's
 * header checksum, so a record from an earlier incarnation of a recycled file
 * can never verify in the new one.
 *
 * A sealed batch needs one CRC per entry and one over its payload: through
 * the binding, one native call each, and the calls cost more than the bytes
 * (a W2 write: six calls, about 2.7 us). `checksumBatch` does them all in
 * one call when the raftlog addon is there (the composition root installs
 * it, src/index.ts: the engine does not import the addon), else call by call.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** Inputs up to this long are cheaper to checksum in JS than to hand to the binding (a record header: 20 bytes). */
const SMALL_INPUT = 32;

/** CRC32C's reflected polynomial table, for the small inputs. */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array, seed = 0): number {
  if (bytes.length <= SMALL_INPUT) {
    let c = ~seed;
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    return ~c >>> 0;
  }
  // The binding takes any Uint8Array; wrapping views in Buffers first would
  // double the cost of a call, which the write path makes per entry.
  return nativeCrc32c(bytes as Buffer, seed) >>> 0;
}

/**
 * Writes, for i < count, the CRC32C of the entry at
 * `bytes[payloadStart + entryOffsets[i]]` (`entryLengths[i]` bytes) as a
 * little-endian u32 into the 4 bytes before it, then returns the CRC32C of
 * `bytes[payloadStart, payloadEnd)`, which covers those CRCs.
 */
export type BatchChecksum = (
  bytes: Uint8Array,
  payloadStart: number,
  payloadEnd: number,
  entryOffsets: Uint32Array,
  entryLengths: Uint32Array,
  count: number,
) => number;

/** `checksumBatch` call by call, through the binding: the path without the addon. */
export const portableBatchChecksum: BatchChecksum = (bytes, payloadStart, payloadEnd, entryOffsets, entryLengths, count) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    const at = payloadStart + entryOffsets[i]!;
    view.setUint32(at - 4, crc32c(bytes.subarray(at, at + entryLengths[i]!)), true);
  }
  return crc32c(bytes.subarray(payloadStart, payloadEnd));
};

let batchChecksum: BatchChecksum = portableBatchChecksum;

export const checksumBatch: BatchChecksum = (bytes, payloadStart, payloadEnd, entryOffsets, entryLengths, count) =>
  batchChecksum(bytes, payloadStart, payloadEnd, entryOffsets, entryLengths, count) >>> 0;

/** Installs a one-call `checksumBatch` (the addon's), or the portable one again with undefined. */
export function installBatchChecksum(implementation: BatchChecksum | undefined): void {
  batchChecksum = implementation ?? portableBatchChecksum;
}
