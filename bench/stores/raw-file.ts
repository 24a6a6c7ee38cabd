/**
 * The floor: what any Raft log on this disk costs at least. One append-only
 * file, each op's entries appended as bare records, one `fdatasync` per group
 * of concurrent ops (the same group commit raftlog does, with nothing else:
 * no checksums, no index on disk, no compression, no space reclamation).
 *
 * Two variants:
 *  - `raw-append`: the file grows with every write, so each fdatasync also
 *    commits the new size and block allocation (a journal commit on ext4);
 *  - `raw-prealloc`: the file is extended with written zeros 8 MiB ahead of
 *    the write offset (raftlog's default policy), so most syncs flush data
 *    blocks only.
 *
 * Compaction is logical (the in-memory index forgets the prefix): the floor
 * for write cost, not for space.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { LogStore, LogWrite, MaintenanceResult, StoreDescriptor, StoredData } from './store.js';

/** length u32, kind u32 (1 entry, 2 hard state), region u64, index u64. */
const HEADER = 24;
const KIND_ENTRY = 1;
const KIND_HARD_STATE = 2;
const PREALLOCATE_BYTES = 8 << 20;
/** Linux IOV_MAX: longer buffer lists go down in several writev calls. */
const IOV_MAX = 1024;
const ZEROS = new Uint8Array(1 << 20);

interface RegionIndex {
  first: number;
  positions: number[];
  lengths: number[];
}

interface Pending {
  buffers: Uint8Array[];
  bytes: number;
  sync: boolean;
  op: LogWrite | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

class RawFileStore implements LogStore {
  readonly #path: string;
  readonly #preallocate: boolean;
  #file: fsp.FileHandle | undefined;
  #offset = 0;
  #allocated = 0;
  readonly #regions = new Map<number, RegionIndex>();
  #pending: Pending[] = [];
  #leading = false;
  #writes = 0;
  #groups = 0;
  #syncs = 0;

  constructor(dir: string, preallocate: boolean) {
    this.#path = join(dir, 'log.raw');
    this.#preallocate = preallocate;
  }

  get #live(): fsp.FileHandle {
    if (this.#file === undefined) throw new Error('raw file store is not open');
    return this.#file;
  }

  async open(): Promise<void> {
    await fsp.mkdir(join(this.#path, '..'), { recursive: true });
    // 'a+' creates without truncating; positional writes need a handle not opened in append mode.
    await (await fsp.open(this.#path, 'a+')).close();
    this.#file = await fsp.open(this.#path, 'r+');
    this.#allocated = (await this.#file.stat()).size;
    await this.#recover();
  }

  /** Rebuilds the index by reading every record header (what a restart of the floor costs). */
  async #recover(): Promise<void> {
    const file = this.#live;
    const chunk = Buffer.allocUnsafe(4 << 20);
    /** File position of chunk[0], and how many bytes of chunk are valid. */
    let base = 0;
    let filled = 0;
    let position = 0;
    for (;;) {
      if (position + HEADER > base + filled) {
        // Refill from the current record on.
        base = position;
        const { bytesRead } = await file.read(chunk, 0, chunk.length, base);
        filled = bytesRead;
        if (filled < HEADER) break;
      }
      const at = position - base;
      const length = chunk.readUInt32LE(at);
      const kind = chunk.readUInt32LE(at + 4);
      if (kind !== KIND_ENTRY && kind !== KIND_HARD_STATE) break; // preallocated zeros (or a torn tail): the end
      const region = Number(chunk.readBigUInt64LE(at + 8));
      const index = Number(chunk.readBigUInt64LE(at + 16));
      if (kind === KIND_ENTRY) this.#indexEntry(region, index, position + HEADER, length);
      position += HEADER + length;
    }
    this.#offset = position;
  }

  #indexEntry(region: number, index: number, position: number, length: number): void {
    let r = this.#regions.get(region);
    if (r === undefined || r.positions.length === 0 || index < r.first) {
      r = { first: index, positions: [], lengths: [] };
      this.#regions.set(region, r);
    }
    const slot = index - r.first;
    if (slot < r.positions.length) {
      // Raft overwrite: appending at or below the last index drops the tail.
      r.positions.length = slot;
      r.lengths.length = slot;
    }
    r.positions.push(position);
    r.lengths.push(length);
  }

  write(op: LogWrite, sync: boolean): Promise<void> {
    const buffers: Uint8Array[] = [];
    let bytes = 0;
    const add = (kind: number, index: number, data: Uint8Array): void => {
      const header = Buffer.allocUnsafe(HEADER);
      header.writeUInt32LE(data.byteLength, 0);
      header.writeUInt32LE(kind, 4);
      header.writeBigUInt64LE(BigInt(op.region), 8);
      header.writeBigUInt64LE(BigInt(index), 16);
      buffers.push(header, data);
      bytes += HEADER + data.byteLength;
    };
    op.entries.forEach((data, i) => add(KIND_ENTRY, op.firstIndex + i, data));
    if (op.hardState !== undefined) add(KIND_HARD_STATE, 0, op.hardState);
    this.#writes++;
    return this.#enqueue(buffers, bytes, sync, op);
  }

  #enqueue(buffers: Uint8Array[], bytes: number, sync: boolean, op: LogWrite | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ buffers, bytes, sync, op, resolve, reject });
      if (!this.#leading) {
        this.#leading = true;
        // As raftlog's write queue does: let ops issued in the same turn of
        // the event loop join the first group, instead of a group of one.
        queueMicrotask(() => void this.#lead());
      }
    });
  }

  /** Group commit: the leader writes everything queued with one writev chain and one fdatasync, until nothing is queued. */
  async #lead(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const group = this.#pending;
        this.#pending = [];
        try {
          const start = this.#offset;
          const bytes = group.reduce((sum, p) => sum + p.bytes, 0);
          if (this.#preallocate) await this.#ensureAllocated(start + bytes);
          await this.#writeAll(
            group.flatMap((p) => p.buffers),
            start,
          );
          if (group.some((p) => p.sync)) {
            await this.#live.datasync();
            this.#syncs++;
          }
          this.#offset = start + bytes;
          this.#groups++;
          let at = start;
          for (const p of group) {
            if (p.op !== undefined) {
              for (let i = 0; i < p.op.entries.length; i++) {
                const length = p.op.entries[i]!.byteLength;
                this.#indexEntry(p.op.region, p.op.firstIndex + i, at + HEADER, length);
                at += HEADER + length;
              }
              if (p.op.hardState !== undefined) at += HEADER + p.op.hardState.byteLength;
            }
            p.resolve();
          }
        } catch (error) {
          for (const p of group) p.reject(error);
        }
      }
    } finally {
      this.#leading = false;
    }
  }

  async #writeAll(buffers: Uint8Array[], position: number): Promise<void> {
    let at = position;
    for (let from = 0; from < buffers.length; from += IOV_MAX) {
      const pending = buffers.slice(from, from + IOV_MAX);
      let left = pending.reduce((sum, b) => sum + b.byteLength, 0);
      while (left > 0) {
        const { bytesWritten } = await this.#live.writev(pending, at);
        if (bytesWritten <= 0) throw new Error(`raw file: writev made no progress at ${at}`);
        left -= bytesWritten;
        at += bytesWritten;
        let skip = bytesWritten;
        while (pending.length > 0 && skip >= pending[0]!.byteLength) skip -= pending.shift()!.byteLength;
        if (skip > 0) pending[0] = pending[0]!.subarray(skip);
      }
    }
  }

  /** Writes zeros ahead of `end` (not fallocate: unwritten extents would still need a journal commit on first write). */
  async #ensureAllocated(end: number): Promise<void> {
    if (end <= this.#allocated) return;
    const target = end + PREALLOCATE_BYTES;
    for (let at = this.#allocated; at < target; at += ZEROS.byteLength) {
      await this.#writeAll([ZEROS.subarray(0, Math.min(ZEROS.byteLength, target - at))], at);
    }
    this.#allocated = target;
  }

  async compact(region: number, index: number): Promise<void> {
    const r = this.#regions.get(region);
    if (r === undefined) return;
    const drop = Math.min(Math.max(0, index - r.first), r.positions.length);
    r.positions.splice(0, drop);
    r.lengths.splice(0, drop);
    r.first += drop;
  }

  async read(region: number, begin: number, end: number): Promise<StoredData[]> {
    const r = this.#regions.get(region);
    const out: StoredData[] = [];
    if (r === undefined) return out;
    for (let index = Math.max(begin, r.first); index < end && index - r.first < r.positions.length; index++) {
      const slot = index - r.first;
      const data = new Uint8Array(r.lengths[slot]!);
      await this.#live.read(data, 0, data.byteLength, r.positions[slot]!);
      out.push({ index, data });
    }
    return out;
  }

  async last(region: number): Promise<StoredData | undefined> {
    const r = this.#regions.get(region);
    if (r === undefined || r.positions.length === 0) return undefined;
    const last = r.first + r.positions.length - 1;
    return (await this.read(region, last, last + 1))[0];
  }

  async maintain(): Promise<MaintenanceResult> {
    return { compactRegions: [] };
  }

  async sync(): Promise<void> {
    await this.#enqueue([], 0, true, undefined);
  }

  async close(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    await file.datasync();
    await file.close();
  }

  counters(): Record<string, number> {
    return { writes: this.#writes, groups: this.#groups, syncs: this.#syncs, bytesWritten: this.#offset };
  }
}

export const rawAppendStore: StoreDescriptor = {
  id: 'raw-append',
  kind: 'floor',
  durableMode: 'floor: writev at the end of one file, then fdatasync; group commit across concurrent writers',
  unavailable: async () => undefined,
  create: async (dir) => new RawFileStore(dir, false),
};

export const rawPreallocStore: StoreDescriptor = {
  id: 'raw-prealloc',
  kind: 'floor',
  durableMode: 'floor on a preallocated file: as raw-append, into zeros written 8 MiB ahead (overwrites, not appends)',
  unavailable: async () => undefined,
  create: async (dir) => new RawFileStore(dir, true),
};
