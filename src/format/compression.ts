/**
 * lz4 for record payloads: a 4-byte little-endian uncompressed size, then one
 * standard LZ4 block (docs/format.md, "Payload"), which is lz4-napi's
 * compressSync/uncompressSync framing.
 *
 * Two implementations write and read the same bytes: lz4-napi (portable,
 * always there) and the raftlog addon's, which works in caller-owned memory,
 * allocates nothing and gives up early on incompressible input (a 4 KiB
 * batch: about 1-3 us against lz4-napi's 7-11 us, bench/lz4.ts). The
 * composition root installs the addon's (index.ts: the engine does not
 * import the addon); replay workers, which cannot, keep lz4-napi.
 */
import { compressSync, uncompressSync } from 'lz4-napi';

/** Bytes of the uncompressed-size prefix before the block. */
export const LZ4_SIZE_PREFIX = 4;

/**
 * An lz4 codec over caller-owned memory, in the framing above.
 *
 * `compress` writes prefix and block at `dst[dstStart, dstLimit)` and returns
 * the bytes written, or 0 when they would not fit (dstLimit = dstStart +
 * input length asks for output only when it is smaller than the input).
 *
 * `decompress` decodes the framed block `src[srcStart, srcEnd)` into
 * `dst[dstStart, dstLimit)` and returns the decoded length; malformed input
 * gives a negative Lz4DecodeFailure or a thrown error, never an access
 * outside the given ranges.
 */
export interface Lz4Codec {
  compress(src: Uint8Array, srcStart: number, srcEnd: number, dst: Uint8Array, dstStart: number, dstLimit: number): number;
  decompress(src: Uint8Array, srcStart: number, srcEnd: number, dst: Uint8Array, dstStart: number, dstLimit: number): number;
}

/** The addon's decoding results below zero (hardware/lz4.cc, DecodeError). */
export const Lz4DecodeFailure = {
  NoPrefix: -1,
  NoRoom: -2,
  Truncated: -3,
  BadOffset: -4,
  TooLong: -5,
  TooShort: -6,
} as const;

const FAILURE_TEXT: Readonly<Record<number, string>> = {
  [Lz4DecodeFailure.NoPrefix]: 'shorter than its 4-byte size prefix',
  [Lz4DecodeFailure.NoRoom]: 'declares more bytes than the destination holds',
  [Lz4DecodeFailure.Truncated]: 'the block is truncated (a length, literals or a match offset run past its end)',
  [Lz4DecodeFailure.BadOffset]: 'a match offset is zero or points before the start of the output',
  [Lz4DecodeFailure.TooLong]: 'the block decodes to more bytes than its size prefix declares',
  [Lz4DecodeFailure.TooShort]: 'the block decodes to fewer bytes than its size prefix declares',
};

/** A stored lz4 payload that does not decode; callers turn it into damage or CorruptionError. */
export class Lz4FormatError extends Error {}

/**
 * A block can only expand so far: a match of n bytes takes at least n / 255
 * bytes of lengths. A prefix promising more is corrupt, refused before
 * allocating what it asks for, whichever codec decodes.
 */
const MAX_EXPANSION = 255;

/** Larger inputs are sampled before lz4-napi compresses them whole. */
const SAMPLE_BYTES = 64 << 10;

/**
 * lz4-napi over an incompressible megabyte costs more than writing it (about
 * 1 ms against 0.2 ms measured here), so a large input is compressed whole
 * only when a sample of it shrinks by at least a tenth. The addon needs no
 * sample: its skip acceleration crosses a random megabyte in about 30-40 us
 * (bench/lz4.ts), and it sees compressible bytes past the first 64 KiB.
 */
function sampleShrinks(input: Buffer): boolean {
  if (input.length <= SAMPLE_BYTES) return true;
  return compressSync(input.subarray(0, SAMPLE_BYTES)).length < SAMPLE_BYTES * 0.9;
}

function bufferOf(bytes: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
}

/** lz4-napi behind the Lz4Codec calls: a Buffer per call and a copy into `dst`. */
export const portableLz4: Lz4Codec = {
  compress(src, srcStart, srcEnd, dst, dstStart, dstLimit) {
    const input = bufferOf(src, srcStart, srcEnd);
    if (!sampleShrinks(input)) return 0;
    const output = compressSync(input);
    if (output.length > dstLimit - dstStart) return 0;
    dst.set(output, dstStart);
    return output.length;
  },
  decompress(src, srcStart, srcEnd, dst, dstStart, dstLimit) {
    const output = uncompressSync(bufferOf(src, srcStart, srcEnd));
    if (output.length > dstLimit - dstStart) return Lz4DecodeFailure.NoRoom;
    dst.set(output, dstStart);
    return output.length;
  },
};

let installed: Lz4Codec | undefined;

/** Installs the addon's codec, or lz4-napi again with undefined. */
export function installCompression(codec: Lz4Codec | undefined): void {
  installed = codec;
}

/** Compresses `src[srcStart, srcEnd)` into `dst` with the installed codec: see Lz4Codec.compress. */
export function compressInto(
  src: Uint8Array,
  srcStart: number,
  srcEnd: number,
  dst: Uint8Array,
  dstStart: number,
  dstLimit: number,
): number {
  return (installed ?? portableLz4).compress(src, srcStart, srcEnd, dst, dstStart, dstLimit);
}

/** The uncompressed size a framed block declares, checked against what its length can decode to. */
function declaredSize(stored: Uint8Array): number {
  if (stored.length < LZ4_SIZE_PREFIX) throw new Lz4FormatError(`lz4: ${FAILURE_TEXT[Lz4DecodeFailure.NoPrefix]}`);
  const size = new DataView(stored.buffer, stored.byteOffset, LZ4_SIZE_PREFIX).getUint32(0, true);
  const most = (stored.length - LZ4_SIZE_PREFIX) * MAX_EXPANSION;
  if (size > most) {
    throw new Lz4FormatError(`lz4: the size prefix declares ${size} bytes, more than a ${stored.length}-byte block can decode to`);
  }
  return size;
}

/**
 * The payload a stored lz4 payload decodes to, in memory of its own (callers
 * keep it: the read cache, a replayed record). Throws Lz4FormatError when it
 * does not decode.
 */
export function decompress(stored: Uint8Array): Uint8Array {
  const size = declaredSize(stored);
  if (installed === undefined) {
    try {
      return uncompressSync(bufferOf(stored, 0, stored.length));
    } catch (error) {
      throw new Lz4FormatError(`lz4: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  // Every byte is written before it is read: the codec fills exactly `size` or fails.
  const payload = Buffer.allocUnsafeSlow(size);
  const result = installed.decompress(stored, 0, stored.length, payload, 0, size);
  if (result < 0) throw new Lz4FormatError(`lz4: ${FAILURE_TEXT[result] ?? `decoding failed (${result})`}`);
  return payload;
}
