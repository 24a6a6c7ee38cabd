/**
 * The durable-state model behind FaultFs.
 *
 * Per file (an inode: it keeps its identity across renames):
 * - `durable`: the bytes and size a crash is guaranteed to keep;
 * - `pending`: the writes, truncates and preallocates issued since the last
 *   barrier, in order, each with a global sequence number;
 * - `volatile`: what reads see now (the page cache).
 *
 * `volatile` is NOT always `durable + pending`: after a failed barrier Linux
 * marks the dirty pages clean, so their data stays readable but is out of the
 * durable future for good (`dropPending`). A later successful barrier folds
 * only what was written after the failure.
 *
 * Per directory (raftlog uses one flat root): the durable name → inode map,
 * the current map, and the create/rename/remove operations since the last
 * `syncDir()`.
 *
 * The model is general on purpose: a crash policy only needs "durable image +
 * ordered pending log". The persistent-memory mode (fault/pmem.ts: only
 * flushed 64-byte lines durable, 8-byte atomic stores) is one more policy
 * over the same log; a barrier is the seam's flush of everything pending.
 */

/** A growable byte array with a logical size; bytes past `size` are always zero. */
export class ByteImage {
  #bytes: Uint8Array;
  #size: number;

  constructor(bytes: Uint8Array = new Uint8Array(0), size: number = bytes.length) {
    this.#bytes = bytes;
    this.#size = size;
  }

  static of(content: Uint8Array): ByteImage {
    return new ByteImage(content.slice(), content.length);
  }

  get size(): number {
    return this.#size;
  }

  clone(): ByteImage {
    return new ByteImage(this.#bytes.slice(0, this.#size), this.#size);
  }

  /** The content, `size` bytes (a view: copy before keeping it). */
  view(): Uint8Array {
    return this.#bytes.subarray(0, this.#size);
  }

  byteAt(offset: number): number {
    return offset < this.#size ? (this.#bytes[offset] ?? 0) : 0;
  }

  #reserve(capacity: number): void {
    if (capacity <= this.#bytes.length) return;
    // Doubling keeps a long run of appends linear overall.
    const next = new Uint8Array(Math.max(capacity, this.#bytes.length * 2, 64));
    next.set(this.#bytes.subarray(0, this.#size));
    this.#bytes = next;
  }

  /** Sets the size; growth reads as zeros, and shrinking zeroes the cut tail so later growth does too. */
  setSize(size: number): void {
    if (size < this.#size) this.#bytes.fill(0, size, this.#size);
    else this.#reserve(size);
    this.#size = size;
  }

  /** Writes `data` at `offset`, growing the size (a gap reads as zeros). */
  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.#size) this.setSize(end);
    this.#bytes.set(data, offset);
  }

  /** Flips the bits of `mask` in the byte at `offset` (inside the size). */
  xorByte(offset: number, mask: number): void {
    if (offset >= this.#size) return;
    this.#bytes[offset] = (this.#bytes[offset] ?? 0) ^ mask;
  }
}

export type PendingOp =
  | { readonly seq: number; readonly kind: 'write'; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly seq: number; readonly kind: 'truncate'; readonly size: number }
  | { readonly seq: number; readonly kind: 'preallocate'; readonly offset: number; readonly length: number };

/** Applies one pending operation to an image (the same rules the inner FS follows). */
export function applyPending(image: ByteImage, op: PendingOp): void {
  switch (op.kind) {
    case 'write':
      image.write(op.offset, op.bytes);
      return;
    case 'truncate':
      image.setSize(op.size);
      return;
    case 'preallocate':
      if (op.offset + op.length > image.size) image.setSize(op.offset + op.length);
      return;
  }
}

export class FileModel {
  /** Inode number, unique within one FaultFs. */
  readonly id: number;
  /**
   * Stable PRNG key: the name the file was created under plus how many files
   * were created under that name before. Independent of other files'
   * activity, so crash choices for this file do not move when unrelated
   * operations interleave differently.
   */
  readonly key: string;
  readonly durable: ByteImage;
  readonly volatile: ByteImage;
  pending: PendingOp[] = [];

  constructor(id: number, key: string, content: Uint8Array, contentIsDurable: boolean) {
    this.id = id;
    this.key = key;
    this.volatile = ByteImage.of(content);
    this.durable = contentIsDurable ? ByteImage.of(content) : new ByteImage();
  }

  write(seq: number, offset: number, bytes: Uint8Array): void {
    // pwrite of zero bytes changes nothing, not even the size.
    if (bytes.length === 0) return;
    const copy = bytes.slice();
    this.volatile.write(offset, copy);
    this.pending.push({ seq, kind: 'write', offset, bytes: copy });
  }

  truncate(seq: number, size: number): void {
    const op: PendingOp = { seq, kind: 'truncate', size };
    applyPending(this.volatile, op);
    this.pending.push(op);
  }

  preallocate(seq: number, offset: number, length: number): void {
    const op: PendingOp = { seq, kind: 'preallocate', offset, length };
    applyPending(this.volatile, op);
    this.pending.push(op);
  }

  /** What the durable image becomes if every pending operation persists. */
  future(): ByteImage {
    const image = this.durable.clone();
    for (const op of this.pending) applyPending(image, op);
    return image;
  }

  /** A successful barrier: every pending operation becomes durable. */
  barrier(): void {
    // In place: the durable image is owned here (crashes clone it), and a
    // copy per barrier would make a sync cost the whole file size.
    for (const op of this.pending) applyPending(this.durable, op);
    this.pending = [];
  }

  /**
   * A failed barrier, Linux semantics: the dirty pages are marked clean, so
   * the pending operations will never reach the disk, yet reads still see
   * them. Returns how many were dropped.
   */
  dropPending(): number {
    const dropped = this.pending.length;
    this.pending = [];
    return dropped;
  }

  /** Flips `mask` at `offset` everywhere the byte is stored: durable, pending data, volatile. */
  flipAtRest(offset: number, mask: number): void {
    this.durable.xorByte(offset, mask);
    for (const op of this.pending) {
      if (op.kind === 'write' && offset >= op.offset && offset < op.offset + op.bytes.length) {
        const index = offset - op.offset;
        op.bytes[index] = (op.bytes[index] ?? 0) ^ mask;
      }
    }
    this.volatile.xorByte(offset, mask);
  }
}

export type DirOp =
  | { readonly seq: number; readonly kind: 'create'; readonly name: string; readonly id: number }
  | { readonly seq: number; readonly kind: 'rename'; readonly from: string; readonly to: string; readonly id: number }
  | { readonly seq: number; readonly kind: 'remove'; readonly name: string; readonly id: number };

/**
 * Applies a directory operation to a name → inode map if what it acted on is
 * still there; returns whether it applied. The guard matters when a crash
 * keeps a later operation and drops an earlier one (a rename of a file whose
 * create was lost is a no-op, never a duplicate).
 */
export function applyDirOp(entries: Map<string, number>, op: DirOp): boolean {
  switch (op.kind) {
    case 'create':
      entries.set(op.name, op.id);
      return true;
    case 'rename':
      if (entries.get(op.from) !== op.id) return false;
      entries.delete(op.from);
      entries.set(op.to, op.id);
      return true;
    case 'remove':
      if (entries.get(op.name) !== op.id) return false;
      entries.delete(op.name);
      return true;
  }
}

export function describeDirOp(op: DirOp): string {
  switch (op.kind) {
    case 'create':
      return `create ${op.name}`;
    case 'rename':
      return `rename ${op.from}->${op.to}`;
    case 'remove':
      return `remove ${op.name}`;
  }
}

export class DirModel {
  durable = new Map<string, number>();
  readonly current = new Map<string, number>();
  pending: DirOp[] = [];

  /** Records an entry that existed before FaultFs saw the directory: it counts as durable. */
  adopt(name: string, id: number): void {
    this.durable.set(name, id);
    this.current.set(name, id);
  }

  apply(op: DirOp): void {
    applyDirOp(this.current, op);
    this.pending.push(op);
  }

  sync(): void {
    this.durable = new Map(this.current);
    this.pending = [];
  }
}
