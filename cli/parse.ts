/**
 * Option value parsers for commander. Each throws commander's
 * InvalidArgumentError, which commander turns into
 * "error: option '--x <n>' argument 'y' is invalid. <reason>" and exit 2.
 */
import { InvalidArgumentError } from 'commander';
import { RecoveryMode } from '../src/recovery/recovery.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

/** Seconds, fractions allowed ("0.5"). */
export function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86_400 * 365) throw new InvalidArgumentError('expected a number of seconds > 0.');
  return n;
}

/** Seconds, 0 allowed (disables what it schedules). */
export function secondsOrZero(value: string): number {
  return value.trim() === '0' ? 0 : seconds(value);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?$/i;
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte count: "1024", "4k", "128m", "1GiB" (binary units). */
export function byteSize(value: string): number {
  const match = SIZE.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('expected a size such as 1024, 4k, 128m or 1g.');
  const bytes = Math.round(Number(match[1]) * UNIT[match[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InvalidArgumentError('expected a positive size.');
  return bytes;
}

/** Comma-separated or repeated region ids. */
export function regionList(value: string, previous: number[] = []): number[] {
  const ids = value.split(',').map((part) => {
    const text = part.trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected region ids (non-negative integers, comma-separated).');
    return n;
  });
  return [...previous, ...ids];
}

/** Comma-separated or repeated file names or sequence numbers. */
export function fileList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((part) => part.trim()).filter((part) => part.length > 0)];
}

const MODES: Record<string, RecoveryMode> = {};
for (const mode of Object.values(RecoveryMode)) {
  MODES[mode.toLowerCase()] = mode;
}
// Short names as raft-engine's ctl spells them.
MODES['absolute'] = RecoveryMode.AbsoluteConsistency;
MODES['tail'] = RecoveryMode.TolerateTailCorruption;
MODES['any'] = RecoveryMode.TolerateAnyCorruption;

/** A RecoveryMode by full name (any case) or short name: absolute, tail, any. */
export function recoveryMode(value: string): RecoveryMode {
  const mode = MODES[value.trim().toLowerCase()];
  if (mode === undefined) {
    throw new InvalidArgumentError(`expected one of ${Object.values(RecoveryMode).join(', ')} (or absolute, tail, any).`);
  }
  return mode;
}
