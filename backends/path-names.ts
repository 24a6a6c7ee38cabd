/**
 * What a file name may be, checked the same way by every backend, so a name
 * that one backend accepts means the same single file in the root on every
 * other (POSIX would otherwise fail with ENAMETOOLONG or EISDIR, memfs not at
 * all). The checks of the other arguments (offsets, lengths, buffers, open
 * options) are in arguments.ts.
 */

import { InvalidArgumentError } from '../src/errors.js';

/** NAME_MAX on Linux and most POSIX file systems, in bytes of the encoded name. */
const MAX_NAME_BYTES = 255;

const encoder = new TextEncoder();

/**
 * Throws INVALID_ARGUMENT unless `name` is a plain file name in the root.
 * '\\' is refused as well as '/' so a name means the same file on every
 * platform, and NUL because the kernel would truncate the path at it.
 */
export function checkName(name: unknown, operation: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${operation}: file name must be a non-empty string`);
  }
  if (name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new InvalidArgumentError(`${operation}: invalid file name ${JSON.stringify(name)} (a plain name in the root is required)`, {
      file: name,
    });
  }
  if (encoder.encode(name).length > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(`${operation}: file name longer than ${MAX_NAME_BYTES} bytes`, { file: name });
  }
  return name;
}
