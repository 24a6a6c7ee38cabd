/**
 * Reads up to `length` bytes at `position` of `handle` into `target` from
 * `at`, looping over short reads; fewer only at end of file.
 */
import type { FileHandle } from './filesystem.js';

export async function readFully(handle: FileHandle, target: Uint8Array, at: number, length: number, position: number): Promise<number> {
  let read = 0;
  while (read < length) {
    const n = await handle.read(target, at + read, length - read, position + read);
    if (n === 0) break;
    read += n;
  }
  return read;
}
