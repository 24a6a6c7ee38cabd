/**
 * The continuation of a short vectored write, shared by the backends that
 * issue writev themselves (PosixFs through node:fs, UringFs through the ring):
 * both must resume exactly where the kernel stopped, without copying what the
 * caller handed in.
 */

/**
 * The buffers still to write after the first `written` bytes went down: whole
 * buffers are dropped and the first partly written one is re-viewed (no copy).
 */
export function remainingBuffers(buffers: readonly Uint8Array[], written: number): Uint8Array[] {
  let skip = written;
  let index = 0;
  while (index < buffers.length && skip >= buffers[index]!.byteLength) {
    skip -= buffers[index]!.byteLength;
    index++;
  }
  const rest = buffers.slice(index);
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}
