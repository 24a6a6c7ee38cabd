/**
 * The FileHandle of EncryptedFs: the plaintext view of one inner file. It
 * decides, per write, whether the append fast path may keep the file's IV or
 * a fresh extent is needed (the rules in encrypted.ts), encrypts, adds the
 * end mark or header write a moved HWM needs, and decrypts reads, zeroing
 * what lies past the HWM. Everything it needs from the file system (data
 * keys, fresh extents, header writes, a blank file's first generation) comes
 * through the narrow `Internals`.
 */

import { ClosedError } from '../../src/errors.js';
import type { FileHandle, WriteOptions } from '../../src/filesystem.js';
import { checkCount, checkRange, checkReadArgs, checkWriteArgs } from '../arguments.js';
import { readOnlyError } from '../error-edge.js';
import { ctrInPlace, ctrInto, ctrIntoOffThread } from './cipher.js';
import type { DataKey, Extent } from './dictionary.js';
import { MARK_BYTES, endMark } from './end-mark.js';
import { dataSize, ivHex, type FileState } from './file-state.js';
import { HEADER_BYTES } from './header.js';
import type { IssuedKeyIv } from './keyring.js';

/**
 * Writes at least this large are encrypted on a threadpool thread. The
 * hand-off is not free: the pass's completion waits for the JS thread to
 * return to the event loop, and at W2 C=64 (264 KiB groups) that put
 * 380-500 µs between a group's write call and its inner write, against
 * 100-130 µs with the pass on the JS thread. Only a pass long enough to
 * stall other work on the event loop (about 250 µs per MiB) is moved.
 */
const OFF_THREAD_CIPHER_BYTES = 1 << 20;

/** The EncryptedFs operations its handles need. */
export interface Internals {
  dataKey(id: number): DataKey;
  freshExtent(state: FileState, name: string, start: number, end: number, reason: IssuedKeyIv['reason']): Promise<Extent>;
  writeHeader(state: FileState, handle: EncryptedFileHandle, hwm: number, bound?: number): Promise<void>;
  adoptBlank(state: FileState, handle: EncryptedFileHandle): Promise<void>;
}

/** A handle on the plaintext view of one inner file. */
export class EncryptedFileHandle implements FileHandle {
  readonly name: string;
  /** @internal */
  readonly inner: FileHandle;
  readonly #fs: Internals;
  readonly #state: FileState;
  readonly #readOnly: boolean;
  #closed = false;

  constructor(fs: Internals, name: string, inner: FileHandle, state: FileState, readOnly: boolean) {
    this.#fs = fs;
    this.name = name;
    this.inner = inner;
    this.#state = state;
    this.#readOnly = readOnly;
  }

  async read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    checkReadArgs(target, targetOffset, length, position, this.name);
    this.#live('read');
    const n = await this.inner.read(target, targetOffset, length, HEADER_BYTES + position);
    this.#decryptInPlace(target.subarray(targetOffset, targetOffset + n), position);
    return n;
  }

  /** Turns `bytes`, the ciphertext found at `position`, into what a reader sees there. */
  #decryptInPlace(bytes: Uint8Array, position: number): void {
    const state = this.#state;
    const cipherEnd = Math.min(position + bytes.length, state.hwm);
    const extents = state.extents;
    // Decrypt the part below the HWM extent by extent (each has its own IV)…
    for (let i = 0; i < extents.length && position < cipherEnd; i++) {
      const e = extents[i]!;
      const from = Math.max(position, e.start);
      const to = Math.min(cipherEnd, extents[i + 1]?.start ?? Infinity);
      if (from >= to) continue;
      const key = this.#fs.dataKey(e.keyId).key;
      ctrInPlace(key, e.iv, from, bytes.subarray(from - position, to - position));
    }
    // …and the rest is never-written space: zeros, whatever stale bytes lie there.
    const zeroFrom = Math.max(position, state.hwm);
    if (zeroFrom < position + bytes.length) bytes.fill(0, zeroFrom - position);
  }

  /**
   * The ciphertext already at `[position, position + total)` when it decrypts
   * to exactly `buffers`, else undefined. Writing the same plaintext again
   * under the same (key, IV) yields the same ciphertext, which reveals
   * nothing new, so such a rewrite (the engine re-dirties a file header this
   * way when it resumes a log) needs no fresh IV and no dictionary update:
   * it must work on a full disk.
   *
   * The range may run past the HWM when what it writes there is zeros (the
   * engine re-dirties a record with its alignment padding, and a crash can
   * leave the HWM just short of the padding): those bytes already read as
   * zeros, so only the part below the HWM is written again.
   */
  async #unchangedCiphertext(buffers: readonly Uint8Array[], position: number, total: number): Promise<Uint8Array[] | undefined> {
    const cipher = new Uint8Array(total);
    if ((await this.inner.read(cipher, 0, total, HEADER_BYTES + position)) !== total) return undefined;
    const plain = cipher.slice();
    this.#decryptInPlace(plain, position); // zeros past the HWM, as a reader sees them
    let at = 0;
    for (const b of buffers) {
      if (Buffer.compare(b, plain.subarray(at, at + b.length)) !== 0) return undefined;
      at += b.length;
    }
    return [cipher.subarray(0, Math.min(total, this.#state.hwm - position))];
  }

  async write(buffers: readonly Uint8Array[], position: number, options: WriteOptions = {}): Promise<void> {
    const total = checkWriteArgs(buffers, position, this.name);
    this.#writable('write');
    const state = this.#state;
    await state.mutex.run(async () => {
      this.#writable('write');
      if (total === 0) {
        if (options.sync === true) await this.#barrier();
        return;
      }
      if (state.fileId === undefined) await this.#fs.adoptBlank(state, this);
      const end = position + total;
      const start = Math.min(position, state.hwm);
      let cipher = position < state.hwm ? await this.#unchangedCiphertext(buffers, position, total) : undefined;
      // What reaches the inner file ends here: short of `end` when an unchanged rewrite's zeros past the HWM need no write.
      let written = Math.min(end, state.hwm);
      if (cipher === undefined) {
        const extent = this.#appendExtent(start) ?? (await this.#freshExtentFor(start, end));
        // Awaited only when it is a promise (a large write, encrypted off the JS thread): each await is a turn of the microtask queue before the inner write starts.
        const encrypted = this.#encrypt(buffers, start, position, end, extent);
        cipher = encrypted instanceof Promise ? await encrypted : encrypted;
        written = end;
      }
      const hwm = Math.max(state.hwm, written);
      const marked = state.marksAt(written);
      if (marked) cipher.push(endMark(state.fileIdBytes(), written));
      const markedEnd = state.markedEndAfter(written, marked);
      try {
        if (options.sync === true) {
          if (this.#headerStale(hwm, markedEnd)) {
            // Header and data are independent writes: issue them together and
            // let one barrier cover both, rather than paying a round trip to
            // the inner file system for each before the barrier can start.
            const header = this.#fs.writeHeader(state, this, hwm, state.boundFor(hwm, markedEnd));
            await settleAll([header, this.inner.write(cipher, HEADER_BYTES + start)]);
            await this.inner.sync();
          } else {
            await this.inner.write(cipher, HEADER_BYTES + start, { sync: true });
          }
          this.#wrote(hwm, markedEnd, written, marked);
          if (state.headerWriter === this) state.headerDurable = true;
        } else {
          await this.inner.write(cipher, HEADER_BYTES + start);
          this.#wrote(hwm, markedEnd, written, marked);
        }
      } catch (error) {
        // Some of it may have reached the inner file past the HWM: those
        // bytes are no longer known zeros, and no lease may cover them.
        if (written > state.hwm) state.zeroFrom = Math.max(state.zeroFrom, written + MARK_BYTES);
        throw error;
      }
    });
  }

  /** Whether a barrier must rewrite the header first: it does not describe `hwm`, or it is not known durable through this handle. */
  #headerStale(hwm: number, markedEnd: number | undefined): boolean {
    const state = this.#state;
    return !state.headerCovers(hwm, markedEnd) || (!state.headerDurable && state.headerWriter !== this);
  }

  #wrote(hwm: number, markedEnd: number | undefined, end: number, marked: boolean): void {
    const state = this.#state;
    state.hwm = hwm;
    state.markedEnd = markedEnd;
    state.innerSize = Math.max(state.innerSize, marked ? end + MARK_BYTES : end);
  }

  /** Ciphertext of `buffers` for `[start, end)` under `extent`, whose frontier moves to `end`; large writes are encrypted off the JS thread. */
  #encrypt(
    buffers: readonly Uint8Array[],
    start: number,
    position: number,
    end: number,
    extent: Extent,
  ): Uint8Array[] | Promise<Uint8Array[]> {
    // A write past the HWM leaves a gap that must read as zeros; it is
    // encrypted as zeros here (a rare path: the engine appends contiguously).
    const plain = start < position ? [new Uint8Array(position - start), ...buffers] : buffers;
    const state = this.#state;
    const ivKey = ivHex(extent.iv);
    state.frontiers.set(ivKey, Math.max(state.frontiers.get(ivKey) ?? 0, end));
    // One output buffer for the whole write: one inner iovec.
    const cipher = state.scratch(end - start);
    const key = this.#fs.dataKey(extent.keyId).key;
    if (ctrIntoOffThread !== undefined && end - start >= OFF_THREAD_CIPHER_BYTES) {
      return ctrIntoOffThread(key, extent.iv, start, plain, cipher).then(() => [cipher]);
    }
    ctrInto(key, extent.iv, start, plain, cipher);
    return [cipher];
  }

  async sync(): Promise<void> {
    this.#live('sync');
    if (this.#readOnly) {
      await this.inner.sync();
      return;
    }
    await this.#state.mutex.run(() => this.#barrier());
  }

  async truncate(size: number): Promise<void> {
    checkCount(size, 'size', 'truncate', this.name);
    this.#writable('truncate');
    const state = this.#state;
    await state.mutex.run(async () => {
      if (size < state.hwm || (state.markedEnd !== undefined && size < state.markedEnd + MARK_BYTES)) {
        // The header must say "nothing past `size`" durably before the inner
        // file shrinks: otherwise a crash could leave an old HWM over a region
        // that later reads back decrypted zeros (garbage) instead of zeros.
        // A crash between this barrier and the truncate itself leaves the old
        // size with zeros past `size`: the truncate took effect, the size
        // change did not; never garbage, never a byte below `size` lost.
        // No end mark stands at `size` (nor survives whole past it), so the
        // header says the HWM exactly.
        state.hwm = Math.min(state.hwm, size);
        state.markedEnd = undefined;
        await this.#barrier();
      }
      await this.inner.truncate(HEADER_BYTES + size);
      state.innerSize = size;
      state.zeroFrom = Math.min(state.zeroFrom, size);
    });
  }

  async preallocate(offset: number, length: number): Promise<void> {
    checkRange(offset, length, 'preallocate', this.name);
    this.#writable('preallocate');
    // Passed through unencrypted: the range stays above the HWM and reads as
    // zeros, and the first record written there is its first encryption.
    const state = this.#state;
    await state.mutex.run(async () => {
      await this.inner.preallocate(HEADER_BYTES + offset, length);
      state.innerSize = Math.max(state.innerSize, offset + length);
    });
  }

  async size(): Promise<number> {
    this.#live('size');
    return dataSize(this.inner);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.inner.close();
  }

  /** Header (if it moved or is not known durable through this handle), then the inner barrier. Runs under the file mutex. */
  async #barrier(): Promise<void> {
    const state = this.#state;
    if (state.fileId !== undefined && this.#headerStale(state.hwm, state.markedEnd)) {
      await this.#fs.writeHeader(state, this, state.hwm, state.boundFor(state.hwm, state.markedEnd));
    }
    await this.inner.sync();
    if (state.headerWriter === this) state.headerDurable = true;
  }

  /**
   * The extent an append at `start` may use without a fresh IV: the file's
   * last extent, when nothing at or after `start` was ever encrypted under
   * its IV this session. Otherwise undefined (rule 2 in encrypted.ts).
   */
  #appendExtent(start: number): Extent | undefined {
    const last = this.#state.extents.at(-1);
    if (last === undefined) return undefined;
    const frontier = this.#state.frontiers.get(ivHex(last.iv));
    return frontier !== undefined && start >= last.start && start >= frontier ? last : undefined;
  }

  /** A fresh IV for `[start, end)`, durably in the key dictionary, for a write that cannot use `#appendExtent`. */
  #freshExtentFor(start: number, end: number): Promise<Extent> {
    const state = this.#state;
    const last = state.extents.at(-1);
    const reason = last === undefined ? 'blank' : state.frontiers.has(ivHex(last.iv)) ? 'rewrite' : 'reopen';
    return this.#fs.freshExtent(state, this.name, start, end, reason);
  }

  #live(operation: string): void {
    if (this.#closed) throw new ClosedError(`${operation} ${this.name}: handle is closed`, { file: this.name });
  }

  #writable(operation: string): void {
    this.#live(operation);
    if (this.#readOnly) throw readOnlyError(operation, this.name);
  }
}

/**
 * Waits for every operation, then throws the first failure: a barrier must
 * not start while a write it is meant to cover is still in flight, even when
 * a sibling write has already failed.
 */
async function settleAll(operations: readonly Promise<void>[]): Promise<void> {
  const outcomes = await Promise.allSettled(operations);
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
}
