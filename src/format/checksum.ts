/**
 * CRC32C (Castagnoli) in native code (SSE4.2 / ARMv8 CRC instructions via
 * @node-rs/crc32). The seed lets a file mix its salt into every record's
 * header checksum, so a record from an earlier incarnation of a recycled file
 * can never verify in the new one.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(bytes: Uint8Array, seed = 0): number {
  // The binding accepts Buffer; wrap views without copying.
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return nativeCrc32c(buffer, seed) >>> 0;
}
