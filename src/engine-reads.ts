/**
 * Read-side helpers behind Engine's public methods that answer from the
 * memtables alone (scan, fileSpan, getMessage's decoding): each checks its
 * arguments at the edge and computes its answer without touching a file.
 */
import { keyString } from './apply.js';
import { InvalidArgumentError, RaftlogError } from './errors.js';
import { fileIdQueue, fileIdSeq } from './file-names.js';
import { Queue } from './format/layout.js';
import { keyBytes } from './log-batch.js';
import type { RegionMemtable } from './memtable.js';
import type { MessageType } from './protos.js';
import { optionalBoolean, optionalBound, requireKey, requireMethods } from './validate.js';

/** A log file: its queue ('append' for the log, 'rewrite' for GC checkpoints) and sequence number. */
export interface LogFileRef {
  queue: 'append' | 'rewrite';
  seq: number;
}

/** The oldest and newest files holding a region's entries (rewrite files count as older than append files). */
export interface FileSpan {
  first: LogFileRef;
  last: LogFileRef;
}

/**
 * The keys of `kv` that `options` (ScanOptions, checked here) selects, in
 * key byte order or its reverse, at most `limit` of them. Options are
 * checked even when the region holds nothing, so a bad call fails the same
 * way whatever the state.
 */
export function scanKeys(kv: ReadonlyMap<string, unknown> | undefined, options: Readonly<Record<string, unknown>>): string[] {
  const start = options.start === undefined ? undefined : keyString(keyBytes(requireKey(options.start, 'scan options.start')));
  const end = options.end === undefined ? undefined : keyString(keyBytes(requireKey(options.end, 'scan options.end')));
  const limit = optionalBound(options.limit, 'scan options.limit', Number.POSITIVE_INFINITY);
  const reverse = optionalBoolean(options.reverse, 'scan options.reverse');
  if (kv === undefined || limit === 0) return [];
  // latin1 key strings compare code unit by code unit, which is byte order.
  const keys = [...kv.keys()].filter((k) => (start === undefined || k >= start) && (end === undefined || k < end)).sort();
  if (reverse) keys.reverse();
  return limit < keys.length ? keys.slice(0, limit) : keys;
}

/** Orders file ids oldest first: rewrite files (GC copies of old entries) before append files, then by sequence. */
function fileAge(id: number): number {
  return (fileIdQueue(id) === Queue.Rewrite ? 0 : 2 ** 32) + fileIdSeq(id);
}

function fileRef(id: number): LogFileRef {
  return { queue: fileIdQueue(id) === Queue.Rewrite ? 'rewrite' : 'append', seq: fileIdSeq(id) };
}

/** The span of files holding the memtable's entries, or undefined when it holds none. */
export function fileSpanOf(memtable: RegionMemtable | undefined): FileSpan | undefined {
  if (memtable === undefined || memtable.entryCount === 0) return undefined;
  let oldest = -1;
  let newest = -1;
  memtable.forEachFileRun((id, _first, count) => {
    if (count <= 0) return;
    if (oldest < 0 || fileAge(id) < fileAge(oldest)) oldest = id;
    if (newest < 0 || fileAge(id) > fileAge(newest)) newest = id;
  });
  if (oldest < 0) return undefined;
  return { first: fileRef(oldest), last: fileRef(newest) };
}

/**
 * Decodes a stored value with a protobufjs-style type. The value passed its
 * checksum, so bytes that do not decode were stored as another type: the
 * caller named the wrong type, which is INVALID_ARGUMENT, not CORRUPTION.
 */
export function decodeStoredMessage<T>(value: Uint8Array | undefined, type: MessageType<T>, region: number): T | undefined {
  requireMethods<MessageType<T>>(type, 'getMessage type', ['decode']);
  if (value === undefined) return undefined;
  try {
    return type.decode(value);
  } catch (error) {
    if (error instanceof RaftlogError) throw error;
    const detail = error instanceof Error ? error.message : 'decode failed';
    throw new InvalidArgumentError(`region ${region}: the ${value.length}-byte value does not decode as the given type (${detail})`, {
      cause: error,
    });
  }
}
