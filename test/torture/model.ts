/**
 * The reference model: what a Multi-Raft log holds, as plain immutable data,
 * and the history of states a crash may legally go back to.
 *
 * Semantics are the engine's public contract (DESIGN.md, LogBatch docs), not
 * its code:
 *  - entries at `i` append when `i = last + 1`; at or below `last` they
 *    overwrite the tail from `i` (Raft truncation); at or below `first` they
 *    replace the region's entries; an empty region accepts any index;
 *  - `compactTo(i)` drops entries below `i` (all of them when `i > last`);
 *  - `clean` drops the region's entries and keys;
 *  - a region with neither entries nor keys does not exist.
 *
 * One log stream means prefix semantics: after a crash the engine must hold
 * exactly the state after some prefix of the attempted writes, no shorter
 * than the last acknowledged barrier. `History` keeps one state per attempted
 * write (regions are shared between states, so this costs a few objects per
 * write) and answers "which states is this recovered state equal to".
 */
import { crc32c } from '../../src/format/checksum.js';
import { LogBatch } from '../../src/log-batch.js';

export interface EntryModel {
  readonly term: number;
  readonly length: number;
  readonly crc: number;
}

export interface RegionModel {
  readonly first: number;
  readonly entries: readonly EntryModel[];
  /** hex(key) → `${length}.${crc}` of the value. */
  readonly kv: ReadonlyMap<string, string>;
}

export type ModelState = ReadonlyMap<number, RegionModel>;

export const EMPTY_STATE: ModelState = new Map();

/** An entry as written: the bytes the engine gets and their model. */
export interface WrittenEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

export type ModelItem =
  | { readonly kind: 'entries'; readonly region: number; readonly entries: readonly WrittenEntry[] }
  | { readonly kind: 'put'; readonly region: number; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly region: number; readonly key: Uint8Array }
  | { readonly kind: 'compact'; readonly region: number; readonly index: number }
  | { readonly kind: 'clean'; readonly region: number };

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function valueDigest(value: Uint8Array): string {
  return `${value.length}.${crc32c(value)}`;
}

export function entryModel(term: number, data: Uint8Array): EntryModel {
  return { term, length: data.length, crc: crc32c(data) };
}

export function lastIndexOf(region: RegionModel | undefined): number | undefined {
  return region === undefined || region.entries.length === 0 ? undefined : region.first + region.entries.length - 1;
}

/** Applies a batch's items in order; returns a new state sharing untouched regions. */
export function applyItems(state: ModelState, items: readonly ModelItem[]): ModelState {
  const next = new Map(state);
  for (const item of items) {
    const region = next.get(item.region);
    let updated: RegionModel | undefined;
    switch (item.kind) {
      case 'entries':
        updated = appendEntries(region, item.entries);
        break;
      case 'put': {
        const kv = new Map(region?.kv);
        kv.set(hex(item.key), valueDigest(item.value));
        updated = { first: region?.first ?? 0, entries: region?.entries ?? [], kv };
        break;
      }
      case 'delete': {
        if (region === undefined || !region.kv.has(hex(item.key))) continue;
        const kv = new Map(region.kv);
        kv.delete(hex(item.key));
        updated = { first: region.first, entries: region.entries, kv };
        break;
      }
      case 'compact': {
        const last = lastIndexOf(region);
        if (region === undefined || last === undefined || item.index <= region.first) continue;
        updated =
          item.index > last
            ? { first: 0, entries: [], kv: region.kv }
            : { first: item.index, entries: region.entries.slice(item.index - region.first), kv: region.kv };
        break;
      }
      case 'clean':
        updated = undefined;
        break;
    }
    if (updated === undefined || (updated.entries.length === 0 && updated.kv.size === 0)) next.delete(item.region);
    else next.set(item.region, updated);
  }
  return next;
}

function appendEntries(region: RegionModel | undefined, written: readonly WrittenEntry[]): RegionModel {
  const models = written.map((e) => entryModel(e.term, e.data));
  const start = written[0]!.index;
  const kv = region?.kv ?? new Map<string, string>();
  const last = lastIndexOf(region);
  if (region === undefined || last === undefined || start <= region.first) return { first: start, entries: models, kv };
  if (start > last + 1) throw new Error(`model: entries at ${start} leave a gap after ${last} (generator bug)`);
  return { first: region.first, entries: [...region.entries.slice(0, start - region.first), ...models], kv };
}

/** The LogBatch that carries `items`, in order. */
export function toLogBatch(items: readonly ModelItem[]): LogBatch {
  const batch = new LogBatch();
  for (const item of items) {
    switch (item.kind) {
      case 'entries':
        batch.addEntries(
          item.region,
          item.entries.map((e) => ({ index: e.index, term: e.term, data: e.data })),
        );
        break;
      case 'put':
        batch.put(item.region, item.key, item.value);
        break;
      case 'delete':
        batch.delete(item.region, item.key);
        break;
      case 'compact':
        batch.compactTo(item.region, item.index);
        break;
      case 'clean':
        batch.clean(item.region);
        break;
    }
  }
  return batch;
}

const regionDigests = new WeakMap<RegionModel, string>();
const stateDigests = new WeakMap<ModelState, string>();

export function regionDigest(id: number, first: number, entries: readonly EntryModel[], kv: ReadonlyMap<string, string>): string {
  const last = first + entries.length - 1;
  const range = entries.length === 0 ? '-' : `${first}..${last}`;
  const body = entries.map((e) => `${e.term}.${e.length}.${e.crc}`).join(',');
  const keys = [...kv.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
  return `r${id}[${range}] ${body} | ${keys.join(',')}`;
}

/** A canonical text of the whole state; equal states have equal digests. */
export function stateDigest(state: ModelState): string {
  let digest = stateDigests.get(state);
  if (digest !== undefined) return digest;
  const lines: string[] = [];
  for (const id of [...state.keys()].sort((a, b) => a - b)) {
    const region = state.get(id)!;
    let line = regionDigests.get(region);
    if (line === undefined) {
      line = regionDigest(id, region.first, region.entries, region.kv);
      regionDigests.set(region, line);
    }
    lines.push(line);
  }
  digest = lines.join('\n');
  stateDigests.set(state, digest);
  return digest;
}

/**
 * The states along one physical log: `states[i]` is the state after the
 * first `i` writes that went (or may have gone) into the log, in log order.
 * `floor` is the lowest index a crash may return to: everything up to it was
 * acknowledged durable (or was recovered after a power loss, hence on disk).
 */
export class History {
  #states: ModelState[] = [EMPTY_STATE];
  #floor = 0;

  get floor(): number {
    return this.#floor;
  }

  /** Number of attempted writes on this line (the index of the latest state). */
  get attempted(): number {
    return this.#states.length - 1;
  }

  get latest(): ModelState {
    return this.#states[this.#states.length - 1]!;
  }

  state(index: number): ModelState {
    const state = this.#states[index];
    if (state === undefined) throw new RangeError(`history has no state ${index}`);
    return state;
  }

  /** Records an attempted write; returns the index of the state it leads to. */
  push(state: ModelState): number {
    this.#states.push(state);
    return this.#states.length - 1;
  }

  /** Everything up to `index` is durable (an acknowledged barrier, or recovered after power loss). */
  raiseFloor(index: number): void {
    if (index > this.#floor) this.#floor = Math.min(index, this.attempted);
  }

  /**
   * The highest index in [from, to] whose state has this digest. The highest
   * is the permissive choice: equal states are interchangeable for every
   * later check, and a higher index keeps more states legal after it.
   */
  match(digest: string, from = this.#floor, to = this.attempted): number | undefined {
    for (let i = Math.min(to, this.attempted); i >= from; i--) {
      if (stateDigest(this.#states[i]!) === digest) return i;
    }
    return undefined;
  }

  /**
   * The log now ends after write `index` (a reopen found that prefix): later
   * attempts are gone from the line for good, because recovery cut them.
   */
  truncate(index: number): void {
    if (index < this.#floor) throw new RangeError(`truncate(${index}) below floor ${this.#floor}`);
    this.#states.length = index + 1;
  }
}
