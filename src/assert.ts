/**
 * Internal invariants as code (TigerBeetle's TIGER_STYLE, Pebble's
 * AssertionFailedf). An assertion states what the code around it guarantees;
 * when one fails, raftlog has a bug, so it throws a BugError (code `BUG`),
 * never INVALID_ARGUMENT (the caller's fault, checked at the API edge with
 * src/validate.ts) and never CORRUPTION (the disk's fault, found by
 * checksums and the decoders). Assertions stay on in production: a broken
 * invariant caught here costs one refused write (the engine fail-stops), one
 * that is not can cost acknowledged data.
 *
 * Hot paths call these with a constant message, or branch themselves and call
 * `bug()` with a template string, so nothing is built unless the check fails:
 *
 *     assert(count > 0, 'append: empty run');                  // constant
 *     if (firstIndex > last + 1) bug(`append at ${firstIndex} after ${last}`);
 *
 * Split compound conditions into one assertion each: the message then names
 * the part that failed.
 */
import { BugError } from './errors.js';

/** Throws a BugError with `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BugError(message);
}

/** Throws a BugError: for a failed check whose message needs values (built only on failure). */
export function bug(message: string): never {
  throw new BugError(message);
}

/**
 * Exhaustiveness: the compiler proves `value` cannot exist (every case of a
 * union was handled); if one arrives anyway (a cast, a new case without its
 * branch), it is a bug.
 */
export function unreachable(value: never, what = 'case'): never {
  throw new BugError(`unhandled ${what}: ${String(value)}`);
}
