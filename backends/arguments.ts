/**
 * Argument validation shared by the backends for everything but file names
 * (those are path-names.ts): offsets, lengths, buffers and open options. Every
 * backend rejects the same bad input with the same code (INVALID_ARGUMENT)
 * before touching storage; keeping the checks in one place is what lets the
 * conformance suite demand identical behaviour from every backend.
 */

import type { OpenOptions } from '../src/filesystem.js';
import { InvalidArgumentError } from '../src/errors.js';

/** Throws INVALID_ARGUMENT unless `value` is a non-negative safe integer (offsets, lengths, sizes). */
export function checkCount(value: unknown, what: string, operation: string, file?: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${operation}: ${what} must be a non-negative safe integer, got ${String(value)}`, { file });
  }
  return value;
}

/** Validates the arguments of `FileHandle.read` against the target buffer. */
export function checkReadArgs(target: unknown, targetOffset: unknown, length: unknown, position: unknown, file: string): void {
  if (!(target instanceof Uint8Array)) {
    throw new InvalidArgumentError('read: target must be a Uint8Array', { file });
  }
  const offset = checkCount(targetOffset, 'targetOffset', 'read', file);
  const count = checkCount(length, 'length', 'read', file);
  checkCount(position, 'position', 'read', file);
  if (offset + count > target.byteLength) {
    throw new InvalidArgumentError(`read: targetOffset + length (${offset + count}) exceeds the target's ${target.byteLength} bytes`, {
      file,
    });
  }
}

/**
 * Validates the arguments of `FileHandle.write` and returns the total byte
 * count. The end must stay a safe integer, or later size arithmetic would
 * silently round.
 */
export function checkWriteArgs(buffers: unknown, position: unknown, file: string): number {
  if (!Array.isArray(buffers)) {
    throw new InvalidArgumentError('write: buffers must be an array of Uint8Array', { file });
  }
  const start = checkCount(position, 'position', 'write', file);
  let total = 0;
  for (const buffer of buffers) {
    if (!(buffer instanceof Uint8Array)) {
      throw new InvalidArgumentError('write: every buffer must be a Uint8Array', { file });
    }
    total += buffer.byteLength;
  }
  checkCount(start + total, 'position + total length', 'write', file);
  return total;
}

/** Validates `[offset, offset + length)` and returns its end. */
export function checkRange(offset: unknown, length: unknown, operation: string, file: string): number {
  const start = checkCount(offset, 'offset', operation, file);
  const count = checkCount(length, 'length', operation, file);
  return checkCount(start + count, 'offset + length', operation, file);
}

/**
 * Validates OpenOptions the same way in every backend and returns whether
 * the handle is read-only. `exclusive` without `create` is refused: there is
 * nothing to be exclusive about, and a caller who passes it alone almost
 * certainly meant create + exclusive.
 */
export function checkOpenOptions(options: OpenOptions, name: string): boolean {
  if (options.exclusive === true && options.create !== true) {
    throw new InvalidArgumentError('open: exclusive requires create', { file: name });
  }
  if (options.capacityBytes !== undefined) checkCount(options.capacityBytes, 'capacityBytes', 'open', name);
  return options.readOnly === true;
}
