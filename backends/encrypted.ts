/**
 * EncryptedFs: transparent encryption at rest over any FileSystem.
 *
 * ## Threat model (what is and is not protected)
 *
 * Protected: the confidentiality of file contents against someone who reads
 * the storage underneath (a stolen disk, a backup, a snapshot, the raw
 * files), including someone who reads it several times over the files'
 * lifetime. Every byte is AES-256-CTR encrypted under a random data key and
 * a random per-file IV; data keys are stored only wrapped (AES-256-GCM) by
 * the master key, which never touches the disk. No (key, IV, counter) is
 * ever used for two different plaintexts, across appends, preallocation,
 * truncate-and-rewrite, overwrites, recycling (`reuse`), reopen after a
 * crash, and key rotation, so comparing two snapshots reveals nothing about
 * the contents beyond which byte ranges changed.
 *
 * Not protected:
 * - Metadata: file names, file sizes, the high-water mark of written bytes
 *   (in each file's header), timestamps, and the access pattern (which
 *   offsets are written and read, when, how often) are all visible.
 * - Integrity: CTR is malleable. Flipping a ciphertext bit flips the same
 *   plaintext bit, and EncryptedFs does not detect it. The engine's CRC32C
 *   over the plaintext of every record is what catches damage or tampering
 *   of data (as corruption, file and offset named); a deliberate attacker
 *   who can also recompute a CRC over guessed plaintext is out of scope
 *   (that would need a MAC per record, which the log format does not carry).
 *   The key dictionary itself is authenticated (GCM + SHA-256): a wrong
 *   master key fails with BAD_KEY at `init()`, a damaged dictionary with
 *   CORRUPTION, never with a silent reset.
 * - Rollback: an attacker can replace files (or the whole directory) with
 *   older copies; nothing here binds the state to a monotonic counter.
 * - A live attacker on the host (memory, the master key in process).
 *
 * ## How (key, IV) reuse is ruled out
 *
 * CTR's keystream at byte p of a file is AES(key, iv + floor(p / 16)). If
 * the same position is ever encrypted twice under one (key, iv) with
 * different plaintext, C1 ^ C2 = P1 ^ P2 leaks both. The engine does write
 * the same positions more than once: into preallocated space, and after a
 * recovery truncates a torn tail and appends again. So:
 *
 * 1. Preallocated and zero-extended space is never encrypted. Each file has
 *    a high-water mark (HWM); bytes below it are ciphertext, bytes above it
 *    read as zeros whatever the inner file holds. An append over
 *    preallocated space is therefore the first encryption of those bytes.
 *    The HWM is kept in the file's own header (see encryption/header.ts),
 *    rewritten just before a barrier when it moved, so it becomes durable
 *    with the data for one small extra write, never an extra fsync. Where
 *    the space past the HWM is known zeros (appends into preallocated space)
 *    the header instead leases 8 MiB ahead, and a 16-byte end mark written
 *    after each append's data says where the HWM is (encryption/end-mark.ts).
 * 2. Within a session each IV has a keystream frontier: the highest
 *    position ever encrypted under it. A write that starts at or past the
 *    frontier of the file's last extent (the append fast path) uses that IV.
 *    Any other write (an overwrite below the frontier, an append after a
 *    truncation, the first write after the file was reopened, when the
 *    frontier is unknown because unsynced bytes may have reached the disk
 *    before a crash) gets a fresh random IV for the written range: a new
 *    extent in the key dictionary. Nothing already on disk is re-encrypted,
 *    so no durable byte is ever at risk, and the cost (one dictionary
 *    update) is paid only on those rare events.
 * 3. New file generations (create, `reuse`) get a fresh file id and IV;
 *    after `reuse` nothing written before is readable (the HWM is 0).
 * 4. The dictionary update that introduces an IV is durable (write, barrier,
 *    rename, directory fsync) before any byte encrypted under it is handed to
 *    the inner file system, so a crash can never leave durable data that
 *    the surviving dictionary cannot decrypt.
 * IVs are 128 random bits, checked against every IV this directory knows;
 * files are far shorter than 2^64 blocks, so counter ranges of different
 * IVs overlapping is as likely as guessing a key.
 *
 * Cost model: appends and reads are one AES pass plus the inner call; a
 * barrier after the HWM moved adds one 64-byte header write (same fdatasync),
 * once per 8 MiB under a lease, else every time.
 * Creating or recycling a file, the first write to a file after reopening,
 * and any rewrite below the frontier add one dictionary update (small file
 * write, fdatasync, rename, directory fsync); creating or recycling a file
 * and the first writable open of an existing one also add one fdatasync of
 * that file (its headers must be durable before anything relies on them). With an O_DIRECT inner backend
 * the engine's own tail-page rewrites would hit that slow path on every
 * append; pair EncryptedFs with buffered backends.
 *
 * ## Where the pieces are
 *
 * This file is the facade: the FileSystem operations, which generation each
 * name holds, and the dictionary entries that follow removes and renames.
 * In encryption/: the key dictionary's lifecycle (keyring.ts) over its
 * encoding (dictionary.ts) and atomic save (store.ts); the per-file cipher
 * state (file-state.ts); header slot I/O (header-slots.ts) over the slot
 * bytes (header.ts); end marks (end-mark.ts); AES-CTR (cipher.ts); the
 * handle (handle.ts).
 */

import { CorruptionError, ErrorCode, ClosedError, InvalidArgumentError, isRaftlogError } from '../src/errors.js';
import type { DirectoryLock, FileHandle, FileSystem } from '../src/filesystem.js';
import type { FsCapabilities, OpenOptions } from '../src/filesystem.js';
import { checkOpenOptions } from './arguments.js';
import { DICTIONARY_NAME, DICTIONARY_TMP_NAME, type FileRecord } from './encryption/dictionary.js';
import { MARK_BYTES, findEnd } from './encryption/end-mark.js';
import { FileState, dataSize, ivHex } from './encryption/file-state.js';
import { EncryptedFileHandle, type Internals } from './encryption/handle.js';
import { HEADER_BYTES, slotFileIds, slotWriteBytes, type FileHeader } from './encryption/header.js';
import { initHeaders, readHeader, readSlots, secureLoadedHeader, writeHeader } from './encryption/header-slots.js';
import { KeyRing, checkMasterKey, extentInfo } from './encryption/keyring.js';
import type { EncryptionStats, ExtentInfo, IssuedKeyIv } from './encryption/keyring.js';
import { checkName } from './path-names.js';

export { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from './encryption/dictionary.js';
export { HEADER_BYTES } from './encryption/header.js';
export { spliceExtents } from './encryption/keyring.js';
export type { EncryptionStats, ExtentInfo, IssuedKeyIv } from './encryption/keyring.js';

/** Supplies the master key, e.g. from a KMS or an HSM, instead of passing the bytes in. */
export interface MasterKeyProvider {
  /** The current 32-byte master key. Called once, by `init()`. */
  getMasterKey(): Promise<Uint8Array> | Uint8Array;
}

export interface EncryptedFsOptions {
  /** The 32-byte master key. Exactly one of `masterKey` and `keyProvider`. */
  masterKey?: Uint8Array;
  keyProvider?: MasterKeyProvider;
  /**
   * Keys the dictionary may still be sealed under. A crash during
   * `rotateMasterKey` can leave either the old or the new dictionary; if it
   * is the old one, `init()` finds it under one of these keys and reseals it
   * under the current key, finishing the rotation.
   */
  previousMasterKeys?: readonly Uint8Array[];
}

export interface FileEncryptionInfo {
  /** Undefined for a file with no durable header yet (reads as empty). */
  readonly fileId: string | undefined;
  /** Bytes below this are ciphertext; above it the file reads as zeros. */
  readonly hwm: number;
  readonly extents: readonly ExtentInfo[];
}

const RESERVED = new Set([DICTIONARY_NAME, DICTIONARY_TMP_NAME]);

export class EncryptedFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly #inner: FileSystem;
  readonly #keys: KeyRing;
  readonly #provider: MasterKeyProvider | undefined;
  readonly #slotBytes: number;
  /** Whether files here may lease their header (header.ts): the inner backend takes unaligned end marks. */
  readonly #leases: boolean;
  #ready: Promise<void> | undefined;
  /** File id -> state, for every generation opened in this process. */
  readonly #states = new Map<string, FileState>();
  /** File ids whose inner file was removed or replaced; dropped from the dictionary once `syncDir` made that durable. */
  readonly #pendingDrops = new Set<string>();
  #closed = false;
  /** What handles may call back into; a private field so none of it leaks into the public type. */
  readonly #internals: Internals = {
    dataKey: (id) => this.#keys.dataKey(id),
    freshExtent: (state, name, start, end, reason) => this.#keys.freshExtent(state, name, start, end, reason),
    writeHeader: (state, handle, hwm, bound) => writeHeader(state, handle, this.#slotBytes, hwm, bound),
    adoptBlank: (state, handle) => this.#adoptBlank(state, handle),
  };

  constructor(inner: FileSystem, options: EncryptedFsOptions) {
    if (typeof inner !== 'object' || inner === null) throw new InvalidArgumentError('EncryptedFs: inner file system required');
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('EncryptedFs: options required');
    if ((options.masterKey === undefined) === (options.keyProvider === undefined)) {
      throw new InvalidArgumentError('EncryptedFs: give exactly one of masterKey and keyProvider');
    }
    this.#inner = inner;
    const master = options.masterKey === undefined ? undefined : checkMasterKey(options.masterKey, 'masterKey');
    this.#provider = options.keyProvider;
    const previous = (options.previousMasterKeys ?? []).map((k) => checkMasterKey(k, 'previousMasterKeys[]'));
    this.#keys = new KeyRing(inner, master, previous);
    this.#slotBytes = slotWriteBytes(inner.capabilities.writeAlignment);
    this.#leases = inner.capabilities.writeAlignment === 1;
    this.capabilities = { ...inner.capabilities, backend: 'encrypted' };
    this.description = `encrypted:${inner.description}`;
  }

  /** The wrapped file system (which sees only ciphertext). */
  unwrap(): FileSystem {
    return this.#inner;
  }

  /**
   * Loads the key dictionary (creating one in an empty directory). A wrong
   * master key rejects with BAD_KEY, a damaged dictionary with CORRUPTION,
   * a missing dictionary next to encrypted files with CORRUPTION. Every
   * other method waits for this, so a failure here fails them all.
   */
  init(): Promise<void> {
    this.#ready ??= this.#load();
    return this.#ready;
  }

  async list(): Promise<string[]> {
    await this.#live('list');
    return (await this.#inner.list()).filter((name) => !RESERVED.has(name));
  }

  async exists(name: string): Promise<boolean> {
    await this.#live('exists');
    if (RESERVED.has(checkName(name, 'exists'))) return false;
    return this.#inner.exists(name);
  }

  async open(name: string, options: OpenOptions = {}): Promise<FileHandle> {
    await this.#live('open');
    this.#checkUserName(name, 'open');
    const readOnly = checkOpenOptions(options, name);
    const capacityBytes = options.capacityBytes === undefined ? undefined : options.capacityBytes + HEADER_BYTES;
    if (options.create === true && (options.exclusive === true || !(await this.#inner.exists(name)))) {
      return this.#createFile(name, options.exclusive === true, readOnly, capacityBytes);
    }
    const inner = await this.#inner.open(name, { readOnly, capacityBytes });
    try {
      const state = await this.#loadState(inner, name);
      const handle = new EncryptedFileHandle(this.#internals, name, inner, state, readOnly);
      if (!readOnly && state.needsInitialSync) await secureLoadedHeader(state, inner, this.#slotBytes);
      return handle;
    } catch (error) {
      await inner.close().catch(() => undefined);
      throw error;
    }
  }

  async remove(name: string): Promise<void> {
    await this.#live('remove');
    this.#checkUserName(name, 'remove');
    const fileId = await this.#peekFileId(name);
    await this.#inner.remove(name);
    if (fileId !== undefined) this.#pendingDrops.add(fileId);
  }

  async rename(from: string, to: string): Promise<void> {
    // No dictionary change is needed for the move itself: the header names the
    // generation, so whichever name a crash leaves the file under decrypts.
    const { moved, replaced } = await this.#beforeMove('rename', from, to);
    await this.#inner.rename(from, to);
    if (replaced !== undefined && replaced !== moved) this.#pendingDrops.add(replaced);
    if (moved !== undefined) await this.#keys.renameHint(moved, to);
  }

  /**
   * Recycles `from` as `to` under a brand-new generation: new file id, fresh
   * IV from the current data key, HWM 0. The stale bytes stay on disk
   * (that is the point of recycling: no reallocation) but read as zeros, and
   * their keystream is never used again. The new header is made durable
   * here, so that once the rename is durable the old generation's dictionary
   * entry can be dropped without ever orphaning the file.
   */
  async reuse(from: string, to: string): Promise<FileHandle> {
    const { moved: old, replaced } = await this.#beforeMove('reuse', from, to);
    const record = await this.#keys.newGeneration(to, 'reuse');
    let inner: FileHandle;
    try {
      inner = await this.#inner.reuse(from, to);
    } catch (error) {
      await this.#forget(record.id);
      throw error;
    }
    try {
      const previous = await readHeader(inner);
      // Make the old header durable before the new one goes into the other slot
      // (see writeHeader in encryption/header-slots.ts), so a torn write
      // cannot leave no valid header at all.
      await inner.sync();
      // The earlier life's bytes stay where they are: no lease over them.
      const innerSize = await dataSize(inner);
      const state = this.#freshState(record, innerSize, innerSize);
      state.headerSeq = typeof previous === 'object' ? previous.seq : 0n;
      state.headerDurable = true; // the new header goes to the slot the durable old one is not in
      const handle = new EncryptedFileHandle(this.#internals, to, inner, state, false);
      await writeHeader(state, handle, this.#slotBytes, 0);
      await inner.sync();
      state.headerDurable = true;
      if (old !== undefined) {
        this.#states.delete(old);
        this.#pendingDrops.add(old);
      }
      if (replaced !== undefined && replaced !== old) this.#pendingDrops.add(replaced);
      return handle;
    } catch (error) {
      await inner.close().catch(() => undefined);
      throw error;
    }
  }

  async syncDir(): Promise<void> {
    await this.#live('syncDir');
    const drops = [...this.#pendingDrops];
    await this.#inner.syncDir();
    if (drops.length === 0) return;
    // Removes and renames are durable now: the dropped generations' files are
    // gone for good, so their entries (and keys to their IVs) can go too.
    try {
      await this.#keys.drop(drops);
    } catch (error) {
      // Housekeeping only: a stale entry costs a few bytes and is dropped by a
      // later syncDir or init. Removing files is how a full disk recovers, so
      // a dictionary that cannot be rewritten for lack of space must not fail it.
      if (isRaftlogError(error, ErrorCode.NO_SPACE)) return;
      throw error;
    }
    for (const id of drops) {
      this.#pendingDrops.delete(id);
      this.#states.delete(id);
    }
  }

  async lock(name: string): Promise<DirectoryLock> {
    await this.#live('lock');
    this.#checkUserName(name, 'lock');
    return this.#inner.lock(name);
  }

  /** Closes the inner file system too (it is owned by this wrapper) and forgets the keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.wipe();
    await this.#inner.close();
  }

  /**
   * Makes a new random data key current: files and extents created from now
   * on use it; existing ones keep theirs and stay readable. Returns its id.
   */
  async rotateDataKey(): Promise<number> {
    await this.#live('rotateDataKey');
    return this.#keys.rotateDataKey();
  }

  /**
   * Re-wraps every data key under `newMasterKey` (with a new salt) and
   * replaces the dictionary atomically. No data is rewritten. Keep the old
   * key until this resolves: a crash before that may leave the old
   * dictionary, which `previousMasterKeys` lets `init()` pick up.
   */
  async rotateMasterKey(newMasterKey: Uint8Array): Promise<void> {
    await this.#live('rotateMasterKey');
    const key = checkMasterKey(newMasterKey, 'new master key');
    await this.#keys.rotateMasterKey(key);
  }

  /** The dictionary as loaded in memory: data key ids and, per file generation, its extents. */
  async stats(): Promise<EncryptionStats> {
    await this.#live('stats');
    return this.#keys.stats();
  }

  /** Every (data key, IV) pair this instance put into use, in order. None may repeat, here or across instances. */
  issuedKeyIvs(): readonly IssuedKeyIv[] {
    return this.#keys.issued();
  }

  /** How the named file is encrypted now (reads its header; uses the live state when the file is open). */
  async inspectFile(name: string): Promise<FileEncryptionInfo> {
    await this.#live('inspectFile');
    this.#checkUserName(name, 'inspectFile');
    const inner = await this.#inner.open(name, { readOnly: true });
    try {
      const state = await this.#loadState(inner, name);
      return { fileId: state.fileId, hwm: state.hwm, extents: extentInfo(state.extents) };
    } finally {
      await inner.close();
    }
  }

  // ---- private ------------------------------------------------------------

  async #load(): Promise<void> {
    await this.#inner.init();
    const master = this.#keys.hasMaster ? undefined : checkMasterKey(await this.#provider!.getMasterKey(), 'the key provider’s master key');
    await this.#keys.load(master, () => this.#refuseMissingDictionary());
    try {
      await this.#collectGarbage();
    } catch {
      // Garbage collection is housekeeping: a file that cannot be read now
      // keeps its entry, and the next init tries again.
    }
  }

  /** A missing dictionary is only legitimate in a directory with no encrypted file; otherwise it was lost, and starting afresh would orphan the data. */
  async #refuseMissingDictionary(): Promise<void> {
    for (const name of await this.#inner.list()) {
      if (RESERVED.has(name)) continue;
      if (typeof (await this.#headerOf(name)) === 'object') {
        throw new CorruptionError(
          `${DICTIONARY_NAME} is missing but ${name} is encrypted: restore the key dictionary, it cannot be rebuilt`,
          {
            file: DICTIONARY_NAME,
          },
        );
      }
    }
  }

  /**
   * Drops dictionary entries of generations no file carries any more (a
   * crash after a remove or reuse, before the drop was saved). Runs only
   * when some entry's last known name is gone, and never if any header is
   * unreadable (that file's entry must not be lost).
   */
  async #collectGarbage(): Promise<void> {
    const names = (await this.#inner.list()).filter((n) => !RESERVED.has(n));
    const d = this.#keys.dictionary();
    const present = new Set(names);
    if ([...d.files.values()].every((f) => present.has(f.name))) return;
    const live = new Set<string>();
    for (const name of names) {
      // Both slots count: after a recycle whose new header never became
      // durable (a failed barrier, then a kill), the page cache shows the
      // new generation while the disk still holds the old one in the other
      // slot, and a power loss brings it back.
      const generations = await this.#withInner(name, async (inner) => {
        const ids = slotFileIds(...(await readSlots(inner)));
        return ids.length === 0 && (await inner.size()) > HEADER_BYTES ? 'invalid' : ids;
      });
      if (generations === 'invalid') return;
      for (const id of generations ?? []) live.add(id);
    }
    if ([...d.files.keys()].every((id) => live.has(id))) return;
    await this.#keys.update(true, (cur) => ({ ...cur, files: new Map([...cur.files].filter(([id]) => live.has(id))) }));
  }

  /** The header of `name`, or undefined if there is no such file. Other failures propagate: guessing "not encrypted" could reset the dictionary. */
  #headerOf(name: string): Promise<FileHeader | 'blank' | 'invalid' | undefined> {
    return this.#withInner(name, readHeader);
  }

  /** `body` over the inner file `name` opened read-only, or undefined if there is no such file. */
  async #withInner<T>(name: string, body: (inner: FileHandle) => Promise<T>): Promise<T | undefined> {
    let inner: FileHandle;
    try {
      inner = await this.#inner.open(name, { readOnly: true });
    } catch (error) {
      if (isRaftlogError(error, ErrorCode.NOT_FOUND)) return undefined;
      throw error;
    }
    try {
      return await body(inner);
    } finally {
      await inner.close();
    }
  }

  /** Checks the names of a rename or reuse, and reads which generations `from` and `to` hold. */
  async #beforeMove(operation: string, from: string, to: string): Promise<{ moved?: string; replaced?: string }> {
    await this.#live(operation);
    this.#checkUserName(from, operation);
    this.#checkUserName(to, operation);
    const moved = await this.#peekFileId(from);
    const replaced = from === to ? undefined : await this.#peekFileId(to);
    return { moved, replaced };
  }

  async #peekFileId(name: string): Promise<string | undefined> {
    const header = await this.#headerOf(name);
    return typeof header === 'object' ? header.fileId : undefined;
  }

  async #createFile(name: string, exclusive: boolean, readOnly: boolean, capacityBytes: number | undefined): Promise<FileHandle> {
    const record = await this.#keys.newGeneration(name, 'create');
    let inner: FileHandle;
    try {
      inner = await this.#inner.open(name, { create: true, exclusive, readOnly, capacityBytes });
    } catch (error) {
      await this.#forget(record.id);
      throw error;
    }
    try {
      const state = this.#freshState(record, await dataSize(inner), 0);
      const handle = new EncryptedFileHandle(this.#internals, name, inner, state, readOnly);
      if (!readOnly) await initHeaders(state, handle, this.#slotBytes);
      return handle;
    } catch (error) {
      // The inner file is ours (it did not exist), but without durable
      // headers it is no encrypted file yet: a failed create leaves nothing
      // behind, as on the inner file system. Best effort: a blank file left
      // over reads as empty and is safe to remove later.
      await inner.close().catch(() => undefined);
      await this.#inner.remove(name).catch(() => undefined);
      this.#states.delete(record.id);
      await this.#forget(record.id);
      throw error;
    }
  }

  /** The shared state of the generation `inner` holds, loading it from the header the first time. */
  async #loadState(inner: FileHandle, name: string): Promise<FileState> {
    const header = await readHeader(inner);
    if (header === 'invalid') {
      throw new CorruptionError(
        `${name}: no valid encryption header (both slots damaged, or not written by EncryptedFs); the file cannot be decrypted`,
        {
          file: name,
          offset: 0,
        },
      );
    }
    if (header === 'blank') {
      // A crash while the file was being created: it holds nothing and reads
      // as empty. Its first write gives it a generation; until then opening
      // it changes nothing, so recovery can open and remove such a file on a
      // full disk (a generation costs a key dictionary update).
      return new FileState(undefined, [], 0, 0, 0, this.#leases);
    }
    const cached = this.#states.get(header.fileId);
    if (cached !== undefined) return cached;
    const record = this.#keys.dictionary().files.get(header.fileId);
    if (record === undefined) {
      throw new CorruptionError(
        `${name}: encrypted as generation ${header.fileId}, which the key dictionary does not know (dictionary from another directory or restored from an older backup?)`,
        {
          file: name,
        },
      );
    }
    // Past the HWM may lie what a crash left (an unsynced write): known zeros start at the inner size.
    const innerSize = await dataSize(inner);
    const found =
      header.bound > header.hwm
        ? await findEnd(inner, HEADER_BYTES, header.fileId, header.hwm, Math.min(header.bound + MARK_BYTES, innerSize))
        : { hwm: header.hwm, marked: false };
    const state = new FileState(header.fileId, record.extents, Math.min(found.hwm, innerSize), innerSize, innerSize, this.#leases);
    state.markedEnd = found.marked ? state.hwm : undefined;
    state.headerSeq = header.seq;
    state.headerHwm = header.hwm;
    state.headerBound = header.bound;
    state.headerDurable = true;
    state.needsInitialSync = true;
    this.#states.set(header.fileId, state);
    return state;
  }

  #freshState(record: FileRecord, innerSize: number, zeroFrom: number): FileState {
    const state = new FileState(record.id, record.extents, 0, innerSize, zeroFrom, this.#leases);
    for (const e of record.extents) state.frontiers.set(ivHex(e.iv), 0);
    this.#states.set(record.id, state);
    return state;
  }

  /** Gives a blank file (see #loadState) its generation and durable headers, before its first write. */
  async #adoptBlank(state: FileState, handle: EncryptedFileHandle): Promise<void> {
    const record = await this.#keys.newGeneration(handle.name, 'blank');
    state.fileId = record.id;
    state.extents = record.extents;
    for (const e of record.extents) state.frontiers.set(ivHex(e.iv), 0);
    this.#states.set(record.id, state);
    await initHeaders(state, handle, this.#slotBytes);
  }

  /** Removes a generation that never reached the disk (see KeyRing.forget). */
  async #forget(fileId: string): Promise<void> {
    this.#states.delete(fileId);
    await this.#keys.forget(fileId);
  }

  #checkUserName(name: string, operation: string): void {
    if (RESERVED.has(checkName(name, operation))) {
      throw new InvalidArgumentError(`${operation}: ${name} is reserved for EncryptedFs's key dictionary`, { file: name });
    }
  }

  async #live(operation: string): Promise<void> {
    if (this.#closed) throw new ClosedError(`${operation}: ${this.description} is closed`);
    await this.init();
  }
}
