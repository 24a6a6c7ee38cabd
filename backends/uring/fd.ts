/**
 * Callback-style fd calls as promises. UringFs keeps raw descriptors (the
 * ring takes fds, and node:fs/promises works only on its own FileHandles), so
 * the few calls that do not go through the ring (open, close, fstat, and
 * ftruncate from a queued task) are wrapped here.
 */

import * as fs from 'node:fs';

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
