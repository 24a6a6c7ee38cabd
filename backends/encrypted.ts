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
 */

import { randomBytes } from 'node:crypto';

import { ClosedError, CorruptionError, ErrorCode, InvalidArgumentError, isRaftlogError } from '../src/errors.js';
import type { DirectoryLock, FileHandle, FileSystem } from '../src/filesystem.js';
import type { FsCapabilities, OpenOptions, WriteOptions } from '../src/filesystem.js';
import { KEY_BYTES, ctrInPlace, ctrInto, ctrIntoOffThread, freshIv, freshKey } from './encryption/cipher.js';
import {
  DICTIONARY_NAME,
  DICTIONARY_TMP_NAME,
  decodeDictionary,
  encodeDictionary,
  newDictionary,
  type DataKey,
  type Dictionary,
  type Extent,
  type FileRecord,
} from './encryption/dictionary.js';
import {
  FILE_ID_BYTES,
  HEADER_BYTES,
  SLOT_BYTES,
  SLOT_OFFSETS,
  encodeSlot,
  pickHeader,
  slotFileIds,
  slotWriteBytes,
  type FileHeader,
} from './encryption/header.js';
import { MARK_BYTES, endMark, findEnd } from './encryption/end-mark.js';
import { KeyDictionaryStore } from './encryption/store.js';
import { checkCount, checkOpenOptions, checkRange, checkReadArgs, checkWriteArgs } from './arguments.js';
import { checkName } from './path-names.js';

export { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from './encryption/dictionary.js';
export { HEADER_BYTES } from './encryption/header.js';

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

export interface FileEncryptionInfo {
  /** Undefined for a file with no durable header yet (reads as empty). */
  readonly fileId: string | undefined;
  /** Bytes below this are ciphertext; above it the file reads as zeros. */
  readonly hwm: number;
  readonly extents: readonly ExtentInfo[];
}

const RESERVED = new Set([DICTIONARY_NAME, DICTIONARY_TMP_NAME]);

/**
 * Serialises async critical sections (promise chain); a failed section does
 * not poison later ones. A section that finds the mutex free starts at once,
 * not a microtask later: an append is on the group commit's critical path,
 * and every microtask queued ahead of it would run before its inner write
 * was issued.
 */
class Mutex {
  /** Settles when the last section queued so far is done; undefined once the mutex is free again. */
  #tail: Promise<void> | undefined;

  run<T>(body: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    const tail = new Promise<void>((resolve) => (release = resolve));
    this.#tail = tail;
    const result = previous === undefined ? startNow(body) : previous.then(body);
    void result.then(release, release);
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    return result;
  }
}

/** `body()`, with a synchronous throw turned into a rejection as `then(body)` would. */
function startNow<T>(body: () => Promise<T>): Promise<T> {
  try {
    return body();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * How far past the HWM a header lease reaches: the header is rewritten once
 * per this many appended bytes, and a reopen after a crash scans at most
 * this much for the end mark.
 */
const LEASE_BYTES = 8 << 20;

/**
 * Writes at least this large are encrypted on a threadpool thread. The
 * hand-off is not free: the pass's completion waits for the JS thread to
 * return to the event loop, and at W2 C=64 (264 KiB groups) that put
 * 380-500 µs between a group's write call and its inner write, against
 * 100-130 µs with the pass on the JS thread. Only a pass long enough to
 * stall other work on the event loop (about 250 µs per MiB) is moved.
 */
const OFF_THREAD_CIPHER_BYTES = 1 << 20;

/** Writes larger than this encrypt into a buffer of their own rather than the file's reused one. */
const MAX_SCRATCH_BYTES = 8 << 20;

/**
 * Everything EncryptedFs knows about one file generation (one file id),
 * shared by every handle open on it in this process: two handles must agree
 * on the HWM and the frontiers, or one would re-encrypt what the other wrote.
 */
class FileState {
  /** Undefined for a file that never got a durable header, until its first write gives it a generation. */
  fileId: string | undefined;
  extents: readonly Extent[];
  /** See the module comment: ciphertext below, zeros above. */
  hwm: number;
  /**
   * Keystream frontier per IV (hex) for IVs this session has encrypted
   * under; an IV missing here has an unknown frontier (it was loaded from
   * disk) and is never used again for writing.
   */
  readonly frontiers = new Map<string, number>();
  /** Sequence, HWM (exact, or a floor under a lease) and bound of the header last written (or read). */
  headerSeq = 0n;
  headerHwm = -1;
  headerBound = -1;
  /**
   * Inner bytes of the data area at or past this are known to be zeros,
   * but for end marks: space this process created or extended. Below it,
   * past the HWM, may lie bytes a crash left behind (an unsynced write, an
   * earlier life of a recycled file). A lease covers only known zeros.
   */
  zeroFrom: number;
  /** Whether the inner backend takes the unaligned 16-byte end marks (a buffered one): else every HWM move rewrites the header. */
  readonly leases: boolean;
  /** The HWM an end mark sits at, when the last HWM move wrote one. */
  markedEnd: number | undefined;
  /** Size of the data area of the inner file, as far as this process knows: end marks must fit inside it, never grow the file. */
  innerSize = 0;
  /** Whether the header with `headerSeq` is known durable (a barrier on its writer succeeded after it). */
  headerDurable = false;
  headerWriter: EncryptedFileHandle | undefined;
  /** Loaded from a header that may not be durable yet: the first writable open syncs before any header write. */
  needsInitialSync = false;
  /** Orders writes, barriers, truncates and preallocations on this file. */
  readonly mutex = new Mutex();
  /**
   * Ciphertext of the write in progress, reused across writes (they are
   * serialised by `mutex`, and the inner write has settled before the next
   * one starts). A fresh buffer per write cost more main-thread time than
   * the AES pass itself (page faults and unmapping of large allocations).
   */
  #scratch = Buffer.alloc(0);

  #fileIdBytes: { readonly hex: string; readonly bytes: Buffer } | undefined;

  /** The file id as bytes, for end marks (converted once per generation, not per append). */
  fileIdBytes(): Buffer {
    const hex = this.fileId!;
    if (this.#fileIdBytes?.hex !== hex) this.#fileIdBytes = { hex, bytes: Buffer.from(hex, 'hex') };
    return this.#fileIdBytes.bytes;
  }

  /** A buffer of `length` bytes to encrypt into, valid until the next call. */
  scratch(length: number): Buffer {
    // A rare huge write (a rewrite of a whole file) is not worth holding on to.
    if (length > MAX_SCRATCH_BYTES) return Buffer.allocUnsafeSlow(length);
    if (this.#scratch.byteLength < length) {
      // Grow geometrically so a log's growing group sizes settle on one buffer.
      this.#scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.#scratch.byteLength, 64 << 10));
    }
    return this.#scratch.subarray(0, length);
  }

  constructor(fileId: string | undefined, extents: readonly Extent[], hwm: number, innerSize: number, zeroFrom: number, leases: boolean) {
    this.fileId = fileId;
    this.extents = extents;
    this.hwm = hwm;
    this.innerSize = innerSize;
    this.zeroFrom = zeroFrom;
    this.leases = leases;
  }

  /** Whether the header last written already tells a reader where `hwm` is: exactly, or as the end mark inside its lease. */
  headerCovers(hwm: number, markedEnd: number | undefined): boolean {
    if (hwm === this.headerHwm) return true;
    return this.headerHwm < hwm && hwm <= this.headerBound && markedEnd === hwm;
  }

  /** The bound for a header written with `hwm`: a lease when an end mark can stand for the HWM, else the HWM itself (exact). */
  boundFor(hwm: number, markedEnd: number | undefined): number {
    if (!this.leases || markedEnd !== hwm || hwm < this.zeroFrom) return hwm;
    return Math.max(hwm, Math.min(hwm + LEASE_BYTES, this.innerSize - MARK_BYTES));
  }

  /** Whether an append ending at `end` gets an end mark: it moves the HWM into known zeros, and the mark fits in space the inner file already has. */
  marksAt(end: number): boolean {
    return this.leases && end > this.hwm && end >= this.zeroFrom && end + MARK_BYTES <= this.innerSize;
  }

  /** The marked end after a write ending at `end` (with or without a mark). */
  markedEndAfter(end: number, marked: boolean): number | undefined {
    if (marked) return end;
    return end > this.hwm ? undefined : this.markedEnd;
  }
}

/** The EncryptedFs operations its handles need. */
interface Internals {
  dataKey(id: number): DataKey;
  freshExtent(state: FileState, name: string, start: number, end: number, reason: IssuedKeyIv['reason']): Promise<Extent>;
  writeHeader(state: FileState, handle: EncryptedFileHandle, hwm: number, bound?: number): Promise<void>;
  adoptBlank(state: FileState, handle: EncryptedFileHandle): Promise<void>;
}

/** Header sequence numbers alternate between the two slots. */
function slotOffsetOf(seq: bigint): number {
  return SLOT_OFFSETS[Number((seq - 1n) % 2n)]!;
}

function extentInfo(extents: readonly Extent[]): ExtentInfo[] {
  return extents.map((e) => ({ start: e.start, keyId: e.keyId, iv: e.iv.toString('hex') }));
}

function checkMasterKey(key: unknown, what: string): Buffer {
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

export class EncryptedFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly #inner: FileSystem;
  readonly #store: KeyDictionaryStore;
  readonly #provider: MasterKeyProvider | undefined;
  readonly #previous: Buffer[];
  readonly #slotBytes: number;
  /** Whether files here may lease their header (header.ts): the inner backend takes unaligned end marks. */
  readonly #leases: boolean;
  #master: Buffer | undefined;
  #dict: Dictionary | undefined;
  #ready: Promise<void> | undefined;
  /** Serialises dictionary updates: each builds on the last saved one. */
  readonly #dictMutex = new Mutex();
  /** File id -> state, for every generation opened in this process. */
  readonly #states = new Map<string, FileState>();
  /** File ids whose inner file was removed or replaced; dropped from the dictionary once `syncDir` made that durable. */
  readonly #pendingDrops = new Set<string>();
  readonly #issued: IssuedKeyIv[] = [];
  #closed = false;
  /** What handles may call back into; a private field so none of it leaks into the public type. */
  readonly #internals: Internals = {
    dataKey: (id) => this.#dataKey(id),
    freshExtent: (state, name, start, end, reason) => this.#freshExtent(state, name, start, end, reason),
    writeHeader: (state, handle, hwm, bound) => this.#writeHeader(state, handle, hwm, bound),
    adoptBlank: (state, handle) => this.#adoptBlank(state, handle),
  };

  constructor(inner: FileSystem, options: EncryptedFsOptions) {
    if (typeof inner !== 'object' || inner === null) throw new InvalidArgumentError('EncryptedFs: inner file system required');
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('EncryptedFs: options required');
    if ((options.masterKey === undefined) === (options.keyProvider === undefined)) {
      throw new InvalidArgumentError('EncryptedFs: give exactly one of masterKey and keyProvider');
    }
    this.#inner = inner;
    this.#store = new KeyDictionaryStore(inner);
    this.#master = options.masterKey === undefined ? undefined : checkMasterKey(options.masterKey, 'masterKey');
    this.#provider = options.keyProvider;
    this.#previous = (options.previousMasterKeys ?? []).map((k) => checkMasterKey(k, 'previousMasterKeys[]'));
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
      if (!readOnly && state.needsInitialSync) {
        // The header just read may be one a previous session wrote but never
        // synced. The next header goes to the other slot, overwriting the one
        // before it, so this one must be durable first. Written again, not
        // just synced: after a failed barrier the kernel serves its page
        // clean, and an fdatasync alone would skip it. Same bytes, same slot.
        if (state.fileId !== undefined) {
          const slot = encodeSlot(
            { seq: state.headerSeq, fileId: state.fileId, hwm: state.headerHwm, bound: state.headerBound },
            this.#slotBytes,
          );
          await inner.write([slot], slotOffsetOf(state.headerSeq));
        }
        await inner.sync();
        state.needsInitialSync = false;
      }
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
    await this.#live('rename');
    this.#checkUserName(from, 'rename');
    this.#checkUserName(to, 'rename');
    // No dictionary change is needed for the move itself: the header names the
    // generation, so whichever name a crash leaves the file under decrypts.
    const moved = await this.#peekFileId(from);
    const replaced = from === to ? undefined : await this.#peekFileId(to);
    await this.#inner.rename(from, to);
    if (replaced !== undefined && replaced !== moved) this.#pendingDrops.add(replaced);
    if (moved !== undefined) await this.#renameHint(moved, to);
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
    await this.#live('reuse');
    this.#checkUserName(from, 'reuse');
    this.#checkUserName(to, 'reuse');
    const old = await this.#peekFileId(from);
    const replaced = from === to ? undefined : await this.#peekFileId(to);
    const record = await this.#newGeneration(to, 'reuse');
    let inner: FileHandle;
    try {
      inner = await this.#inner.reuse(from, to);
    } catch (error) {
      await this.#forget(record.id);
      throw error;
    }
    try {
      const previous = await this.#readHeader(inner);
      // Make the old header durable before the new one goes into the other slot
      // (see writeHeader), so a torn write cannot leave no valid header at all.
      await inner.sync();
      // The earlier life's bytes stay where they are: no lease over them.
      const innerSize = await dataSize(inner);
      const state = this.#freshState(record, innerSize, innerSize);
      state.headerSeq = typeof previous === 'object' ? previous.seq : 0n;
      state.headerDurable = true; // the new header goes to the slot the durable old one is not in
      const handle = new EncryptedFileHandle(this.#internals, to, inner, state, false);
      await this.#writeHeader(state, handle, 0);
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
      await this.#updateDictionary(true, (d) => {
        const files = new Map(d.files);
        for (const id of drops) files.delete(id);
        return { ...d, files };
      });
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
    this.#master?.fill(0);
    for (const key of this.#dict?.keys.values() ?? []) key.key.fill(0);
    await this.#inner.close();
  }

  /**
   * Makes a new random data key current: files and extents created from now
   * on use it; existing ones keep theirs and stay readable. Returns its id.
   */
  async rotateDataKey(): Promise<number> {
    await this.#live('rotateDataKey');
    const next = await this.#updateDictionary(true, (d) => {
      const id = Math.max(...d.keys.keys()) + 1;
      const keys = new Map(d.keys);
      keys.set(id, { id, createdAt: Date.now(), key: freshKey() });
      return { ...d, keys, currentKeyId: id };
    });
    return next.currentKeyId;
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
    await this.#dictMutex.run(async () => {
      const next: Dictionary = { ...this.#dictionary(), salt: randomBytes(16) };
      await this.#store.save(encodeDictionary(next, key));
      this.#dict = next;
      this.#master?.fill(0);
      this.#master = key;
    });
  }

  /** The dictionary as loaded in memory: data key ids and, per file generation, its extents. */
  async stats(): Promise<EncryptionStats> {
    await this.#live('stats');
    const d = this.#dictionary();
    return {
      currentKeyId: d.currentKeyId,
      dataKeys: [...d.keys.values()].map((k) => ({ id: k.id, createdAt: k.createdAt })),
      files: [...d.files.values()].map((f) => ({ fileId: f.id, name: f.name, extents: extentInfo(f.extents) })),
    };
  }

  /** Every (data key, IV) pair this instance put into use, in order. None may repeat, here or across instances. */
  issuedKeyIvs(): readonly IssuedKeyIv[] {
    return [...this.#issued];
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

  // ---- used by EncryptedFileHandle, through #internals --------------------

  #dataKey(id: number): DataKey {
    const key = this.#dictionary().keys.get(id);
    if (key === undefined) throw new CorruptionError(`EncryptedFs: data key ${id} is not in the key dictionary`, { file: DICTIONARY_NAME });
    return key;
  }

  /**
   * Gives `[start, end)` of the file a fresh IV under the current data key,
   * durably recorded before it returns (module comment, rule 4).
   */
  async #freshExtent(state: FileState, name: string, start: number, end: number, reason: IssuedKeyIv['reason']): Promise<Extent> {
    const fileId = state.fileId;
    if (fileId === undefined) throw new InvalidArgumentError(`write ${name}: file has no generation`, { file: name });
    let fresh: Extent | undefined;
    await this.#updateDictionary(true, (d) => {
      const iv = this.#freshIvFor(d);
      fresh = { start, keyId: d.currentKeyId, iv };
      const record = d.files.get(fileId);
      const files = new Map(d.files);
      files.set(fileId, {
        id: fileId,
        name: record?.name ?? name,
        extents: spliceExtents(state.extents, start, end, state.hwm, fresh),
      });
      return { ...d, files };
    });
    const extent = fresh!;
    state.extents = this.#dictionary().files.get(fileId)!.extents;
    state.frontiers.set(ivHex(extent.iv), start);
    this.#issued.push({ keyId: extent.keyId, iv: extent.iv.toString('hex'), fileId, name, reason });
    return extent;
  }

  /**
   * Writes the file's header with `hwm`. The slot alternates only once the
   * previous header is known durable; until then the same (not yet durable)
   * slot is rewritten, so a torn header write can never destroy the only
   * durable copy.
   */
  async #writeHeader(state: FileState, handle: EncryptedFileHandle, hwm: number, bound = hwm): Promise<void> {
    if (state.fileId === undefined) return;
    const seq = state.headerDurable || state.headerSeq === 0n ? state.headerSeq + 1n : state.headerSeq;
    state.headerDurable = false;
    state.headerWriter = handle;
    state.headerSeq = seq;
    const slot = encodeSlot({ seq, fileId: state.fileId, hwm, bound }, this.#slotBytes);
    await handle.inner.write([slot], slotOffsetOf(seq));
    state.headerHwm = hwm;
    state.headerBound = Math.max(bound, hwm);
  }

  // ---- private ------------------------------------------------------------

  async #load(): Promise<void> {
    await this.#inner.init();
    if (this.#master === undefined) {
      this.#master = checkMasterKey(await this.#provider!.getMasterKey(), 'the key provider’s master key');
    }
    const bytes = await this.#store.read();
    if (bytes === undefined) {
      await this.#refuseMissingDictionary();
      const fresh = newDictionary();
      await this.#store.save(encodeDictionary(fresh, this.#master));
      this.#dict = fresh;
      return;
    }
    const { dictionary, masterIndex } = decodeDictionary(bytes, [this.#master, ...this.#previous]);
    this.#dict = dictionary;
    if (masterIndex > 0) {
      // An interrupted master-key rotation: finish it.
      const resealed: Dictionary = { ...dictionary, salt: randomBytes(16) };
      await this.#store.save(encodeDictionary(resealed, this.#master));
      this.#dict = resealed;
    }
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
        throw new CorruptionError(`${DICTIONARY_NAME} is missing but ${name} is encrypted: restore the key dictionary, it cannot be rebuilt`, {
          file: DICTIONARY_NAME,
        });
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
    const d = this.#dictionary();
    const present = new Set(names);
    if ([...d.files.values()].every((f) => present.has(f.name))) return;
    const live = new Set<string>();
    for (const name of names) {
      // Both slots count: after a recycle whose new header never became
      // durable (a failed barrier, then a kill), the page cache shows the
      // new generation while the disk still holds the old one in the other
      // slot, and a power loss brings it back.
      const generations = await this.#withInner(name, async (inner) => {
        const ids = slotFileIds(...(await this.#readSlots(inner)));
        return ids.length === 0 && (await inner.size()) > HEADER_BYTES ? 'invalid' : ids;
      });
      if (generations === 'invalid') return;
      for (const id of generations ?? []) live.add(id);
    }
    if ([...d.files.keys()].every((id) => live.has(id))) return;
    await this.#updateDictionary(true, (cur) => ({ ...cur, files: new Map([...cur.files].filter(([id]) => live.has(id))) }));
  }

  /** The header of `name`, or undefined if there is no such file. Other failures propagate: guessing "not encrypted" could reset the dictionary. */
  #headerOf(name: string): Promise<FileHeader | 'blank' | 'invalid' | undefined> {
    return this.#withInner(name, (inner) => this.#readHeader(inner));
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

  async #peekFileId(name: string): Promise<string | undefined> {
    const header = await this.#headerOf(name);
    return typeof header === 'object' ? header.fileId : undefined;
  }

  /**
   * The file's header. Without a valid slot: 'blank' if the file holds no
   * data area (a crash while it was being created: both header slots are
   * made durable before `open` returns, so no data can exist yet), else
   * 'invalid' (damage, or a file EncryptedFs did not write).
   */
  async #readHeader(inner: FileHandle): Promise<FileHeader | 'blank' | 'invalid'> {
    const header = pickHeader(...(await this.#readSlots(inner)));
    if (header !== undefined) return header;
    return (await inner.size()) <= HEADER_BYTES ? 'blank' : 'invalid';
  }

  async #readSlots(inner: FileHandle): Promise<[Uint8Array, Uint8Array]> {
    const slots: [Uint8Array, Uint8Array] = [new Uint8Array(SLOT_BYTES), new Uint8Array(SLOT_BYTES)];
    for (let i = 0; i < SLOT_OFFSETS.length; i++) await inner.read(slots[i]!, 0, SLOT_BYTES, SLOT_OFFSETS[i]!);
    return slots;
  }

  /**
   * Puts a new generation's header in both slots and makes it durable, before
   * any data can be written: from here on a torn header write can only ever
   * damage one slot, so "no valid slot" in a file with data means damage.
   */
  async #initHeaders(state: FileState, handle: EncryptedFileHandle): Promise<void> {
    for (let i = 0; i < SLOT_OFFSETS.length; i++) {
      state.headerDurable = true; // alternate slots; nothing durable to protect yet
      await this.#writeHeader(state, handle, 0);
    }
    await handle.inner.sync();
    state.headerDurable = true;
  }

  async #createFile(name: string, exclusive: boolean, readOnly: boolean, capacityBytes: number | undefined): Promise<FileHandle> {
    const record = await this.#newGeneration(name, 'create');
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
      if (!readOnly) await this.#initHeaders(state, handle);
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
    const header = await this.#readHeader(inner);
    if (header === 'invalid') {
      throw new CorruptionError(`${name}: no valid encryption header (both slots damaged, or not written by EncryptedFs); the file cannot be decrypted`, {
        file: name,
        offset: 0,
      });
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
    const record = this.#dictionary().files.get(header.fileId);
    if (record === undefined) {
      throw new CorruptionError(`${name}: encrypted as generation ${header.fileId}, which the key dictionary does not know (dictionary from another directory or restored from an older backup?)`, {
        file: name,
      });
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
    const record = await this.#newGeneration(handle.name, 'blank');
    state.fileId = record.id;
    state.extents = record.extents;
    for (const e of record.extents) state.frontiers.set(ivHex(e.iv), 0);
    this.#states.set(record.id, state);
    await this.#initHeaders(state, handle);
  }

  async #newGeneration(name: string, reason: IssuedKeyIv['reason']): Promise<FileRecord> {
    const id = randomBytes(FILE_ID_BYTES).toString('hex');
    let record: FileRecord | undefined;
    await this.#updateDictionary(true, (d) => {
      record = { id, name, extents: [{ start: 0, keyId: d.currentKeyId, iv: this.#freshIvFor(d) }] };
      const files = new Map(d.files);
      files.set(id, record);
      return { ...d, files };
    });
    const extent = record!.extents[0]!;
    this.#issued.push({ keyId: extent.keyId, iv: extent.iv.toString('hex'), fileId: id, name, reason });
    return record!;
  }

  /** Removes a generation that never reached the disk, in memory only (it is harmless on disk and goes with the next save). */
  async #forget(fileId: string): Promise<void> {
    this.#states.delete(fileId);
    await this.#updateDictionary(false, (d) => {
      const files = new Map(d.files);
      files.delete(fileId);
      return { ...d, files };
    });
  }

  async #renameHint(fileId: string, name: string): Promise<void> {
    await this.#updateDictionary(false, (d) => {
      const record = d.files.get(fileId);
      if (record === undefined) return d;
      const files = new Map(d.files);
      files.set(fileId, { ...record, name });
      return { ...d, files };
    });
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

  /** Applies `mutate` to the current dictionary; with `persist`, saves the result atomically before making it current. */
  #updateDictionary(persist: boolean, mutate: (d: Dictionary) => Dictionary): Promise<Dictionary> {
    return this.#dictMutex.run(async () => {
      const next = mutate(this.#dictionary());
      if (persist) await this.#store.save(encodeDictionary(next, this.#master!));
      this.#dict = next;
      return next;
    });
  }

  #dictionary(): Dictionary {
    if (this.#dict === undefined) throw new ClosedError('EncryptedFs: not initialised');
    return this.#dict;
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

/** A handle on the plaintext view of one inner file. */
class EncryptedFileHandle implements FileHandle {
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
  #encrypt(buffers: readonly Uint8Array[], start: number, position: number, end: number, extent: Extent): Uint8Array[] | Promise<Uint8Array[]> {
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
   * its IV this session. Otherwise undefined (module comment, rule 2).
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
    if (this.#readOnly) throw new InvalidArgumentError(`${operation} ${this.name}: handle is read-only`, { file: this.name });
  }
}

const hexOfIv = new WeakMap<Uint8Array, string>();

/** An IV as the hex key of `FileState.frontiers`, computed once per IV object (this runs on every append). */
function ivHex(iv: Buffer): string {
  let hex = hexOfIv.get(iv);
  if (hex === undefined) {
    hex = iv.toString('hex');
    hexOfIv.set(iv, hex);
  }
  return hex;
}

/** The size of the data area of an inner file (past the encryption header). */
async function dataSize(inner: FileHandle): Promise<number> {
  return Math.max(0, (await inner.size()) - HEADER_BYTES);
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
