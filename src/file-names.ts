/**
 * File naming. Names sort by sequence number, so listing a directory gives
 * the replay order without reading any file.
 */
import { Queue } from './format/layout.js';

const SEQ_DIGITS = 16;
const SUFFIX: Record<Queue, string> = { [Queue.Append]: '.raftlog', [Queue.Rewrite]: '.rewrite' };
const NAME = /^(\d{16})\.(raftlog|rewrite)$/;

export const LOCK_NAME = 'LOCK';

export interface ParsedName {
  queue: Queue;
  seq: number;
}

export function logFileName(queue: Queue, seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0') + SUFFIX[queue];
}

export function parseLogFileName(name: string): ParsedName | undefined {
  const match = NAME.exec(name);
  if (match === null) return undefined;
  const seq = Number(match[1]);
  if (!Number.isSafeInteger(seq) || seq === 0) return undefined;
  return { queue: match[2] === 'raftlog' ? Queue.Append : Queue.Rewrite, seq };
}

/**
 * File ids pack the queue into bit 31 so one u32 column in the memtable says
 * which file an entry lives in.
 */
export function fileId(queue: Queue, seq: number): number {
  return ((queue === Queue.Rewrite ? 0x8000_0000 : 0) | seq) >>> 0;
}

export function fileIdQueue(id: number): Queue {
  return (id & 0x8000_0000) !== 0 ? Queue.Rewrite : Queue.Append;
}

export function fileIdSeq(id: number): number {
  return id & 0x7fff_ffff;
}

/** The manifest: which log files must exist, and where (src/file-set/manifest.ts). */
export const MANIFEST_NAME = 'MANIFEST';
/** A manifest being created, renamed to MANIFEST once complete. */
export const MANIFEST_TMP_NAME = 'MANIFEST.tmp';

const RECYCLE_NAME = /^(\d{16})\.recycle$/;

/** Name of a retired append file kept for reuse (the recycle pool). */
export function recycleFileName(number: number): string {
  return `${String(number).padStart(SEQ_DIGITS, '0')}.recycle`;
}

/** The pool number of a recycle-pool file name, or undefined for any other name. */
export function parseRecycleFileName(name: string): number | undefined {
  const match = RECYCLE_NAME.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/** The index checkpoint a clean close writes (src/recovery/index-checkpoint.ts). */
export const INDEX_CHECKPOINT_NAME = 'INDEX';
/** An index checkpoint being written, renamed to INDEX once durable. */
export const INDEX_CHECKPOINT_TMP_NAME = 'INDEX.tmp';
