/**
 * FaultHandle: a FileHandle that forwards to the inner handle, records every
 * change in the file's model (by inode, so it follows renames and outlives a
 * remove), and applies the rules that fire.
 */

import { checkCount, checkRange, checkReadArgs, checkWriteArgs } from '../arguments.js';
import { FileHandle, WriteOptions } from '../../src/filesystem.js';
import { FaultCore } from './core.js';
import { OpFacts, Rule } from './injectors.js';
import { FileModel } from './model.js';
import { Prng } from './prng.js';

function concat(buffers: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const buffer of buffers) {
    out.set(buffer, at);
    at += buffer.byteLength;
  }
  return out;
}

/** Splits `length` into at least two random pieces (one when length < 2). */
function pieces(length: number, prng: Prng): number[] {
  const out: number[] = [];
  let left = length;
  while (left > 0) {
    // The first piece is kept short of the whole so a short transfer really happens.
    const max = out.length === 0 && left > 1 ? left - 1 : left;
    const piece = prng.between(1, max);
    out.push(piece);
    left -= piece;
  }
  return out;
}

function ruleFor(rules: readonly Rule[], kind: 'short' | 'flip' | 'misdirect'): Rule | undefined {
  return rules.find((rule) => rule.spec.error === kind);
}

export class FaultHandle implements FileHandle {
  readonly name: string;
  readonly #core: FaultCore;
  readonly #inner: FileHandle;
  readonly #model: FileModel;

  constructor(core: FaultCore, name: string, inner: FileHandle, model: FileModel) {
    this.#core = core;
    this.name = name;
    this.#inner = inner;
    this.#model = model;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return this.#core.run('read', this.name, async (index) => {
      checkReadArgs(target, targetOffset, length, position, this.name);
      const facts: OpFacts = { index, kind: 'read', paths: [this.name] };
      this.#core.check(facts);
      const shapers = this.#core.shapers(facts);
      const short = ruleFor(shapers, 'short');
      let done = 0;
      if (short === undefined) {
        done = await this.#inner.read(target, targetOffset, length, position);
      } else {
        // Delivered in pieces; the loop is what every backend does over a
        // short read, so the caller still gets `length` bytes (or EOF).
        const sizes = pieces(length, short.how(this.name));
        let calls = 0;
        for (const size of sizes) {
          calls++;
          const n = await this.#inner.read(target, targetOffset + done, size, position + done);
          done += n;
          if (n < size) break;
        }
        this.#core.note(short, facts, 'short', `read ${length}@${position} served by ${calls} inner read(s)`);
      }
      const flip = ruleFor(shapers, 'flip');
      if (flip !== undefined && done > 0) {
        const prng = flip.how(this.name);
        const at = prng.below(done);
        const bit = prng.below(8);
        target[targetOffset + at] = (target[targetOffset + at] ?? 0) ^ (1 << bit);
        this.#core.note(flip, facts, 'flip', `transient flip of bit ${bit} at file offset ${position + at}`);
      }
      return done;
    });
  }

  write(buffers: readonly Uint8Array[], position: number, options?: WriteOptions): Promise<void> {
    return this.#core.run('write', this.name, async (index) => {
      const total = checkWriteArgs(buffers, position, this.name);
      let data = concat(buffers, total);
      const size = this.#model.volatile.size;
      const facts: OpFacts = { index, kind: 'write', paths: [this.name], growth: Math.max(0, position + total - size) };
      const hit = this.#core.firstError(facts);
      if (hit !== undefined) {
        let detail = `write ${total}@${position}`;
        const allowed = hit.decision.allowedGrowth;
        if (allowed !== undefined) {
          // A disk that fills up mid-write stores what fits, then fails.
          const prefix = Math.min(total, Math.max(0, size + allowed - position));
          if (prefix > 0) await this.#store(index, position, data.subarray(0, prefix), false);
          detail += `, partial: ${prefix} byte(s) stored`;
        }
        throw this.#core.fail(hit, facts, detail);
      }

      const shapers = this.#core.shapers(facts);
      const flip = ruleFor(shapers, 'flip');
      if (flip !== undefined && total > 0) {
        const prng = flip.how(this.name);
        const at = prng.below(total);
        const bit = prng.below(8);
        data = data.slice(); // never touch the caller's buffers
        data[at] = (data[at] ?? 0) ^ (1 << bit);
        this.#core.note(flip, facts, 'flip', `stored with bit ${bit} flipped at file offset ${position + at}`);
      }
      let target = position;
      const misdirect = ruleFor(shapers, 'misdirect');
      if (misdirect !== undefined) {
        target = this.#misdirectTarget(position, total, size, misdirect.how(this.name));
        this.#core.note(misdirect, facts, 'misdirect', `write ${total}@${position} landed at ${target}`);
      }

      // The barrier half of write-with-sync is consulted before any byte is
      // written, so the decision does not depend on how the write went.
      const syncFacts: OpFacts = { index, kind: 'sync', paths: [this.name] };
      const syncHit = options?.sync === true ? this.#core.firstError(syncFacts) : undefined;
      const barrierOnLast = options?.sync === true && syncHit === undefined;

      const short = ruleFor(shapers, 'short');
      const sizes = short === undefined ? [total] : pieces(total, short.how(this.name));
      if (short !== undefined) {
        this.#core.note(short, facts, 'short', `write ${total}@${target} issued as ${sizes.length} inner write(s): ${sizes.join('+')}`);
      }
      let at = 0;
      for (let i = 0; i < sizes.length; i++) {
        const piece = sizes[i] ?? 0;
        await this.#store(index, target + at, data.subarray(at, at + piece), barrierOnLast && i === sizes.length - 1);
        at += piece;
      }
      if (syncHit !== undefined) throw this.#failBarrier(index, syncHit, syncFacts);
      if (options?.sync === true) this.#core.mutate(index, 'write', this.name, () => this.#model.barrier());
    });
  }

  sync(): Promise<void> {
    return this.#core.run('sync', this.name, async (index) => {
      const facts: OpFacts = { index, kind: 'sync', paths: [this.name] };
      const hit = this.#core.firstError(facts);
      if (hit !== undefined) throw this.#failBarrier(index, hit, facts);
      await this.#inner.sync();
      this.#core.mutate(index, 'sync', this.name, () => this.#model.barrier());
    });
  }

  truncate(size: number): Promise<void> {
    return this.#core.run('truncate', this.name, async (index) => {
      checkCount(size, 'size', 'truncate', this.name);
      this.#core.check({ index, kind: 'truncate', paths: [this.name] });
      await this.#inner.truncate(size);
      this.#core.mutate(index, 'truncate', this.name, () => this.#model.truncate(this.#core.nextSeq(), size));
    });
  }

  preallocate(offset: number, length: number): Promise<void> {
    return this.#core.run('preallocate', this.name, async (index) => {
      const end = checkRange(offset, length, 'preallocate', this.name);
      const growth = Math.max(0, end - this.#model.volatile.size);
      const facts: OpFacts = { index, kind: 'preallocate', paths: [this.name], growth };
      const hit = this.#core.firstError(facts);
      if (hit !== undefined) throw this.#core.fail(hit, facts, `preallocate ${length}@${offset}`);
      await this.#inner.preallocate(offset, length);
      this.#core.mutate(index, 'preallocate', this.name, () => this.#model.preallocate(this.#core.nextSeq(), offset, length));
    });
  }

  size(): Promise<number> {
    return this.#core.run('size', this.name, async (index) => {
      this.#core.check({ index, kind: 'size', paths: [this.name] });
      return this.#inner.size();
    });
  }

  close(): Promise<void> {
    return this.#core.run('close', this.name, async (index) => {
      const hit = this.#core.firstError({ index, kind: 'close', paths: [this.name] });
      // close(2) releases the descriptor even when it reports EIO.
      await this.#inner.close();
      if (hit !== undefined) throw this.#core.fail(hit, { index, kind: 'close', paths: [this.name] }, '');
    });
  }

  /** One inner write and its model record (a separate pending entry, so a crash can tear between pieces). */
  async #store(index: number, position: number, bytes: Uint8Array, barrier: boolean): Promise<void> {
    await this.#inner.write([bytes], position, barrier ? { sync: true } : undefined);
    this.#core.mutate(index, 'write', this.name, () => this.#model.write(this.#core.nextSeq(), position, bytes));
  }

  /**
   * Linux fsync-failure semantics: the pending writes are marked clean and
   * will never reach the disk, even though reads still return them and the
   * next barrier reports success.
   */
  #failBarrier(index: number, hit: NonNullable<ReturnType<FaultCore['firstError']>>, facts: OpFacts): Error {
    let dropped = 0;
    this.#core.mutate(index, facts.kind, this.name, () => {
      dropped = this.#model.dropPending();
    });
    const error = this.#core.fail(hit, facts, `barrier failed; ${dropped} pending op(s) dropped from the durable future`);
    this.#core.note(undefined, facts, 'barrierLost', `${dropped} pending op(s) of ${this.name} will not survive a crash`);
    return error;
  }

  /**
   * Another offset of the same file, whole pages away so it never overlaps
   * the intended range, inside the file when possible (TigerBeetle moves a
   * misdirected write to another sector of the same zone).
   */
  #misdirectTarget(position: number, length: number, size: number, prng: Prng): number {
    const page = this.#core.pageSize;
    const minPages = Math.max(1, Math.ceil(length / page));
    const limit = Math.max(size, position + length);
    const candidates: number[] = [];
    for (let j = minPages; j < minPages + 8; j++) {
      for (const target of [position - j * page, position + j * page]) {
        if (target >= 0 && target + length <= limit) candidates.push(target);
      }
    }
    return candidates.length > 0 ? prng.pick(candidates) : position + minPages * page;
  }
}
