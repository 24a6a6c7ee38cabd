/**
 * The API edge: every argument and option a caller hands to Engine or
 * LogBatch is checked here before anything is queued or written, so a bad
 * value is an INVALID_ARGUMENT naming the argument, never a TypeError from
 * deep inside (a BigInt meeting arithmetic, `null` read as an object) and
 * never a silently different meaning (`{ sync: 1 }` as an unsynced write).
 *
 * Rules: integers are JavaScript numbers that are safe integers (no BigInt,
 * no Long, no NaN, no fractions, nothing past 2^53 - 1); flags are booleans;
 * an options argument is undefined or a non-null object; keys are a
 * Uint8Array or a string, values a Uint8Array. Messages describe the bad
 * value without ever throwing themselves (a symbol, a null-prototype object).
 */
import { InvalidArgumentError } from './errors.js';

/** A short, never-throwing description of a value for error messages. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return String(value);
    case 'bigint':
      return `${value}n (a BigInt)`;
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return String(value);
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return 'an array';
      if (value instanceof Uint8Array) return `a ${value.length}-byte Uint8Array`;
      return 'an object';
  }
}

/** A safe integer at least `min` (0 unless stated): region ids, indexes, sizes. */
export function requireInteger(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a safe integer${min === 0 ? ' ≥ 0' : ` ≥ ${min}`}, got ${describeValue(value)}`);
  }
  return value;
}

/** A region id: a non-negative safe integer. */
export function requireRegion(value: unknown): number {
  return requireInteger(value, 'region');
}

/**
 * A bound such as a byte budget or a result limit: a safe integer ≥ `min`,
 * or Infinity for "no bound"; undefined gives `fallback`.
 */
export function optionalBound(value: unknown, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a safe integer ≥ ${min} or Infinity, got ${describeValue(value)}`);
  }
  return value;
}

/** An optional safe integer ≥ `min`; undefined gives `fallback`. */
export function optionalInteger(value: unknown, name: string, fallback: number, min = 0): number {
  return value === undefined ? fallback : requireInteger(value, name, min);
}

/** A flag: a boolean, or undefined for `false`. `1`, `'true'` and the like are refused, not guessed at. */
export function optionalBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean, got ${describeValue(value)}`);
  return value;
}

/**
 * An options argument: undefined (all defaults) or a non-null, non-array
 * object whose fields the caller then checks one by one.
 */
export function optionsObject(value: unknown, name: string): Readonly<Record<string, unknown>> {
  if (value === undefined) return EMPTY_OPTIONS;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${name} must be an object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

const EMPTY_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({});

/** `{ sync }` of write(), compactTo() and clean(). */
export function syncOption(options: unknown, method: string): boolean {
  return optionalBoolean(optionsObject(options, `${method} options`).sync, `${method} options.sync`);
}

/** A value stored under a key: bytes. */
export function requireBytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${name} must be a Uint8Array, got ${describeValue(value)}`);
  return value;
}

/** A key: a Uint8Array, or a string (stored as its UTF-8 bytes). */
export function requireKey(value: unknown, name: string): Uint8Array | string {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(`${name} must be a Uint8Array or a string, got ${describeValue(value)}`);
}

/** One of a fixed set of string values. */
export function requireOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got ${describeValue(value)}`);
}

/** An object with the named methods (a FileSystem, a protobufjs type). */
export function requireMethods<T>(value: unknown, name: string, methods: readonly string[]): T {
  if (typeof value === 'object' && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')) {
    return value as T;
  }
  throw new InvalidArgumentError(`${name} must be an object with ${methods.join(', ')}, got ${describeValue(value)}`);
}
