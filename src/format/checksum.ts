/**
 * CRC32C (Castagnoli) in native code (SSE4.2 / ARMv8 CRC instructions via
 * @node-rs/crc32). The seed lets a file mix its salt into every record's
 * header checksum, so a record from an earlier incarnation of a recycled file
 * can never verify in the new one.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(bytes: Uint8Array, seed = 0): number {
  // The binding takes any Uint8Array; wrapping views in Buffers first would
  // double the cost of a call, which the write path makes per entry.
  return nativeCrc32c(bytes as Buffer, seed) >>> 0;
}
