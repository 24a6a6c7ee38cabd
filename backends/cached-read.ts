/**
 * A read's first try, on the event loop thread: what the page cache already
 * holds (preadv2 with RWF_NOWAIT through the addon, which never waits for
 * the device). A threadpool or io_uring round trip costs 20-50 us here, the
 * copy of a cached entry a few. Large reads (recovery's windows) skip it, so
 * their copy overlaps the caller's work on another thread.
 */
import { loadNativeCachedRead } from '../hardware/native.js';

const nativeCachedRead = loadNativeCachedRead();
const CACHED_READ_MAX_BYTES = 128 << 10;

/**
 * Bytes copied from the page cache into `target` (0 at end of file), or -1
 * when nothing was (not cached, too large, no addon): read the usual way then.
 * Fewer than `length` means the rest was not cached or is past the end.
 */
export function readCached(fd: number, target: Uint8Array, targetOffset: number, length: number, position: number): number {
  if (nativeCachedRead === undefined || length > CACHED_READ_MAX_BYTES) return -1;
  return nativeCachedRead(fd, target, targetOffset, length, position);
}
