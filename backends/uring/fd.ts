/**
 * Callback-style fd calls as promises. UringFs keeps raw descriptors (the
 * ring takes fds, and node:fs/promises works only on its own FileHandles), so
 * the few calls that do not go through the ring (open, close, fstat, and
 * ftruncate and the zero fill of a preallocation from a queued task) are
 * wrapped here.
 */

import * as fs from 'node:fs';

import { IoError } from '../../src/errors.js';
import { FILE_MODE } from '../posix-directory.js';

export function openFd(file: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, FILE_MODE, (e, fd) => (e ? reject(e) : resolve(fd))));
}
export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve())));
}
export function fstatFd(fd: number): Promise<fs.BigIntStats> {
  return new Promise((resolve, reject) => fs.fstat(fd, { bigint: true }, (e, s) => (e ? reject(e) : resolve(s))));
}
export function ftruncateFd(fd: number, size: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, size, (e) => (e ? reject(e) : resolve())));
}

/** One shared buffer of zeros, never written: large enough to amortise the calls, small enough to keep. */
const ZEROS = new Uint8Array(1 << 20);

/** Writes zeros over `[from, to)`, continuing over short writes. */
export async function writeZerosFd(fd: number, from: number, to: number): Promise<void> {
  for (let at = from; at < to; ) {
    const length = Math.min(ZEROS.byteLength, to - at);
    const written = await new Promise<number>((resolve, reject) =>
      fs.write(fd, ZEROS, 0, length, at, (e, n) => (e ? reject(e) : resolve(n))),
    );
    if (written <= 0) throw new IoError(`write: no progress at offset ${at}`, { offset: at });
    at += written;
  }
}
