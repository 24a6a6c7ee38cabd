/**
 * The key dictionary's lifecycle, as EncryptedFs holds it in memory: loading
 * it (creating one in an empty directory, finishing an interrupted master-key
 * rotation), every update (serialised, and saved durably before it counts,
 * which is rule 4 of encrypted.ts), issuing file generations and fresh IVs
 * that no extent and no earlier issue uses, key rotation, and wiping the keys
 * on close. The encoding is dictionary.ts's and the atomic save store.ts's;
 * which files exist and what their headers say is the facade's business.
 */

import { randomBytes } from 'node:crypto';

import { ClosedError, CorruptionError, InvalidArgumentError } from '../../src/errors.js';
import type { FileSystem } from '../../src/filesystem.js';
import { KEY_BYTES, freshIv, freshKey } from './cipher.js';
import {
  DICTIONARY_NAME,
  decodeDictionary,
  encodeDictionary,
  newDictionary,
  type DataKey,
  type Dictionary,
  type Extent,
  type FileRecord,
} from './dictionary.js';
import { ivHex, type FileState } from './file-state.js';
import { FILE_ID_BYTES } from './header.js';
import { Mutex } from './mutex.js';
import { KeyDictionaryStore } from './store.js';

/** One (data key, IV) pair put into use, with why. For audits and for tests proving uniqueness. */
export interface IssuedKeyIv {
  readonly keyId: number;
  /** Hex. */
  readonly iv: string;
  readonly fileId: string;
  readonly name: string;
  readonly reason: 'create' | 'reuse' | 'rewrite' | 'reopen' | 'blank';
}

export interface ExtentInfo {
  readonly start: number;
  readonly keyId: number;
  /** Hex. */
  readonly iv: string;
}

export interface EncryptionStats {
  readonly currentKeyId: number;
  readonly dataKeys: readonly { readonly id: number; readonly createdAt: number }[];
  readonly files: readonly { readonly fileId: string; readonly name: string; readonly extents: readonly ExtentInfo[] }[];
}

export function extentInfo(extents: readonly Extent[]): ExtentInfo[] {
  return extents.map((e) => ({ start: e.start, keyId: e.keyId, iv: e.iv.toString('hex') }));
}

export function checkMasterKey(key: unknown, what: string): Buffer {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) {
    throw new InvalidArgumentError(`EncryptedFs: ${what} must be a ${KEY_BYTES}-byte Uint8Array`);
  }
  return Buffer.from(key);
}

/**
 * Replaces `[start, end)` of a file's extent list with a fresh extent,
 * keeping bytes past `end` (up to `hwm`) under whatever encrypted them.
 * Exported for unit tests.
 */
export function spliceExtents(extents: readonly Extent[], start: number, end: number, hwm: number, fresh: Omit<Extent, 'start'>): Extent[] {
  const result: Extent[] = extents.filter((e) => e.start < start);
  result.push({ start, keyId: fresh.keyId, iv: fresh.iv });
  if (end < hwm) {
    // Older ciphertext survives after the write: it keeps its own IV.
    const covering = [...extents].reverse().find((e) => e.start <= end);
    const rest = extents.filter((e) => e.start >= end && e.start < hwm);
    if (covering !== undefined && rest[0]?.start !== end) result.push({ start: end, keyId: covering.keyId, iv: covering.iv });
    result.push(...rest);
  }
  return result;
}

export class KeyRing {
  readonly #store: KeyDictionaryStore;
  readonly #previous: readonly Buffer[];
  #master: Buffer | undefined;
  #dict: Dictionary | undefined;
  /** Serialises dictionary updates: each builds on the last saved one. */
  readonly #mutex = new Mutex();
  readonly #issued: IssuedKeyIv[] = [];

  /** `master` may be undefined until `load` is given one (a key provider's). */
  constructor(inner: FileSystem, master: Buffer | undefined, previous: readonly Buffer[]) {
    this.#store = new KeyDictionaryStore(inner);
    this.#master = master;
    this.#previous = previous;
  }

  get hasMaster(): boolean {
    return this.#master !== undefined;
  }

  /**
   * Loads the dictionary under the master key (or a previous one, then
   * resealing it under the current key). Where there is none, `whenMissing`
   * may refuse (a lost dictionary); otherwise a new one is saved.
   */
  async load(master: Buffer | undefined, whenMissing: () => Promise<void>): Promise<void> {
    if (master !== undefined) this.#master = master;
    const key = this.#master!;
    const bytes = await this.#store.read();
    if (bytes === undefined) {
      await whenMissing();
      const fresh = newDictionary();
      await this.#store.save(encodeDictionary(fresh, key));
      this.#dict = fresh;
      return;
    }
    const { dictionary, masterIndex } = decodeDictionary(bytes, [key, ...this.#previous]);
    this.#dict = dictionary;
    if (masterIndex > 0) {
      // An interrupted master-key rotation: finish it.
      const resealed: Dictionary = { ...dictionary, salt: randomBytes(16) };
      await this.#store.save(encodeDictionary(resealed, key));
      this.#dict = resealed;
    }
  }

  /** The dictionary as loaded in memory; CLOSED before `load`. */
  dictionary(): Dictionary {
    if (this.#dict === undefined) throw new ClosedError('EncryptedFs: not initialised');
    return this.#dict;
  }

  dataKey(id: number): DataKey {
    const key = this.dictionary().keys.get(id);
    if (key === undefined) throw new CorruptionError(`EncryptedFs: data key ${id} is not in the key dictionary`, { file: DICTIONARY_NAME });
    return key;
  }

  /** Applies `mutate` to the current dictionary; with `persist`, saves the result atomically before making it current. */
  update(persist: boolean, mutate: (d: Dictionary) => Dictionary): Promise<Dictionary> {
    return this.#mutex.run(async () => {
      const next = mutate(this.dictionary());
      if (persist) await this.#store.save(encodeDictionary(next, this.#master!));
      this.#dict = next;
      return next;
    });
  }

  /** A new file generation with a fresh IV under the current data key, durably recorded. */
  async newGeneration(name: string, reason: IssuedKeyIv['reason']): Promise<FileRecord> {
    const id = randomBytes(FILE_ID_BYTES).toString('hex');
    let record: FileRecord | undefined;
    await this.update(true, (d) => {
      record = { id, name, extents: [{ start: 0, keyId: d.currentKeyId, iv: this.#freshIvFor(d) }] };
      return withFile(d, id, record);
    });
    const extent = record!.extents[0]!;
    this.#issue(extent, id, name, reason);
    return record!;
  }

  /**
   * Gives `[start, end)` of the file a fresh IV under the current data key,
   * durably recorded before it returns (rule 4 of encrypted.ts).
   */
  async freshExtent(state: FileState, name: string, start: number, end: number, reason: IssuedKeyIv['reason']): Promise<Extent> {
    const fileId = state.fileId;
    if (fileId === undefined) throw new InvalidArgumentError(`write ${name}: file has no generation`, { file: name });
    let fresh: Extent | undefined;
    await this.update(true, (d) => {
      const iv = this.#freshIvFor(d);
      fresh = { start, keyId: d.currentKeyId, iv };
      const record = d.files.get(fileId);
      const extents = spliceExtents(state.extents, start, end, state.hwm, fresh);
      return withFile(d, fileId, { id: fileId, name: record?.name ?? name, extents });
    });
    const extent = fresh!;
    state.extents = this.dictionary().files.get(fileId)!.extents;
    state.frontiers.set(ivHex(extent.iv), start);
    this.#issue(extent, fileId, name, reason);
    return extent;
  }

  /** Removes a generation that never reached the disk, in memory only (it is harmless on disk and goes with the next save). */
  async forget(fileId: string): Promise<void> {
    await this.update(false, (d) => withoutFiles(d, [fileId]));
  }

  /** Drops the generations whose files are durably gone, saving the result. */
  async drop(fileIds: readonly string[]): Promise<void> {
    await this.update(true, (d) => withoutFiles(d, fileIds));
  }

  /** Notes the name a generation's file now has (in memory; it goes with the next save). */
  async renameHint(fileId: string, name: string): Promise<void> {
    await this.update(false, (d) => {
      const record = d.files.get(fileId);
      return record === undefined ? d : withFile(d, fileId, { ...record, name });
    });
  }

  /** Makes a new random data key current and returns its id. */
  async rotateDataKey(): Promise<number> {
    const next = await this.update(true, (d) => {
      const id = Math.max(...d.keys.keys()) + 1;
      const keys = new Map(d.keys);
      keys.set(id, { id, createdAt: Date.now(), key: freshKey() });
      return { ...d, keys, currentKeyId: id };
    });
    return next.currentKeyId;
  }

  /** Re-wraps every data key under `key` (with a new salt) and replaces the dictionary atomically. */
  async rotateMasterKey(key: Buffer): Promise<void> {
    await this.#mutex.run(async () => {
      const next: Dictionary = { ...this.dictionary(), salt: randomBytes(16) };
      await this.#store.save(encodeDictionary(next, key));
      this.#dict = next;
      this.#master?.fill(0);
      this.#master = key;
    });
  }

  stats(): EncryptionStats {
    const d = this.dictionary();
    return {
      currentKeyId: d.currentKeyId,
      dataKeys: [...d.keys.values()].map((k) => ({ id: k.id, createdAt: k.createdAt })),
      files: [...d.files.values()].map((f) => ({ fileId: f.id, name: f.name, extents: extentInfo(f.extents) })),
    };
  }

  /** Every (data key, IV) pair put into use, in order. */
  issued(): readonly IssuedKeyIv[] {
    return [...this.#issued];
  }

  /** Overwrites the master key and every data key in memory. */
  wipe(): void {
    this.#master?.fill(0);
    for (const key of this.#dict?.keys.values() ?? []) key.key.fill(0);
  }

  #issue(extent: Extent, fileId: string, name: string, reason: IssuedKeyIv['reason']): void {
    this.#issued.push({ keyId: extent.keyId, iv: extent.iv.toString('hex'), fileId, name, reason });
  }

  /**
   * A random IV no extent in the dictionary and no pair issued by this
   * instance uses. The check is belt and braces: 128 random bits do not
   * collide in practice, but it makes the guarantee unconditional here.
   */
  #freshIvFor(d: Dictionary): Buffer {
    const used = new Set<string>(this.#issued.map((i) => i.iv));
    for (const f of d.files.values()) for (const e of f.extents) used.add(e.iv.toString('hex'));
    for (;;) {
      const iv = freshIv();
      if (!used.has(iv.toString('hex'))) return iv;
    }
  }
}

function withFile(d: Dictionary, id: string, record: FileRecord): Dictionary {
  const files = new Map(d.files);
  files.set(id, record);
  return { ...d, files };
}

function withoutFiles(d: Dictionary, ids: readonly string[]): Dictionary {
  const files = new Map(d.files);
  for (const id of ids) files.delete(id);
  return { ...d, files };
}
