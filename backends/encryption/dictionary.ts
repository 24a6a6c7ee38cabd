/**
 * The key dictionary: which data keys exist (wrapped by the master key) and,
 * for every file generation, which (data key id, IV) pairs encrypt which
 * byte ranges of it. Stored in the inner file system as one small file,
 * replaced atomically (see `KeyDictionaryStore.save`).
 *
 * File layout (all big-endian):
 *   0   magic "RLKEYDIC"                       8  format version (u32)
 *   12  salt (16): HKDF salt for this master key
 *   28  key-check value (16): HKDF(master, salt, "raftlog key check v1")
 *   44  sealed payload: AES-256-GCM(HKDF(master, salt, "raftlog dictionary v1"),
 *       JSON, AAD = bytes 0..44) as nonce || ciphertext || tag
 *   end-32  SHA-256 over everything before it
 *
 * Why both a key-check value and a checksum: GCM alone fails identically for
 * a wrong key and for damaged bytes, and the two must be told apart (BAD_KEY
 * means "give me the right key", CORRUPTION means "restore this file"). The
 * unkeyed SHA-256 says whether the bytes are as written; only if they are
 * does a key-check mismatch mean the key is wrong. GCM then authenticates
 * the payload against deliberate tampering that also fixed the checksum.
 *
 * Data keys are additionally wrapped one by one (AES-256-GCM under a
 * separate derived wrapping key, AAD naming the key id), so a key can never
 * be swapped for another id, and master-key rotation is just re-wrapping
 * 32-byte keys: no data is rewritten.
 */

import { createHash, randomBytes } from 'node:crypto';

import { BadKeyError, CorruptionError, UnsupportedError } from '../../src/errors.js';
import { IV_BYTES, KEY_BYTES, deriveKey, sameBytes, seal, unseal } from './cipher.js';
import { FILE_ID_BYTES } from './header.js';

export const DICTIONARY_NAME = 'ENCRYPTION.keys';
export const DICTIONARY_TMP_NAME = 'ENCRYPTION.keys.tmp';

const MAGIC = Buffer.from('RLKEYDIC', 'latin1');
const FORMAT_VERSION = 1;
const SALT_BYTES = 16;
const KCV_BYTES = 16;
const PREFIX_BYTES = 8 + 4 + SALT_BYTES + KCV_BYTES; // 44
const SUM_BYTES = 32;

export interface DataKey {
  readonly id: number;
  /** Milliseconds since the epoch, for operators deciding when to rotate. */
  readonly createdAt: number;
  readonly key: Buffer;
}

/**
 * One range of a file generation: bytes from `start` up to the next
 * extent's start (the last extent runs to the end of the file) are encrypted
 * under data key `keyId` with `iv` as the counter base of byte 0 (the
 * counter at byte p is iv + floor(p / 16), whatever the extent's start).
 */
export interface Extent {
  readonly start: number;
  readonly keyId: number;
  readonly iv: Buffer;
}

export interface FileRecord {
  /** Hex of the 16-byte id written in the file's header. */
  readonly id: string;
  /** Name the file had when the record last changed: diagnostics only, never used to decrypt. */
  readonly name: string;
  /** Sorted by start, first start 0, never empty. */
  readonly extents: readonly Extent[];
}

/** The decoded dictionary. Treated as immutable: updates build a new one, save it, then swap it in. */
export interface Dictionary {
  readonly salt: Buffer;
  readonly currentKeyId: number;
  readonly keys: ReadonlyMap<number, DataKey>;
  readonly files: ReadonlyMap<string, FileRecord>;
}

interface KeyJson {
  id: number;
  createdAt: number;
  wrapped: string;
}

interface PayloadJson {
  currentKeyId: number;
  keys: KeyJson[];
  files: { id: string; name: string; extents: [number, number, string][] }[];
}

export function newDictionary(): Dictionary {
  const first: DataKey = { id: 1, createdAt: Date.now(), key: randomBytes(KEY_BYTES) };
  return { salt: randomBytes(SALT_BYTES), currentKeyId: 1, keys: new Map([[1, first]]), files: new Map() };
}

function subKeys(master: Uint8Array, salt: Uint8Array): { kcv: Buffer; sealKey: Buffer; wrapKey: Buffer } {
  return {
    kcv: deriveKey(master, salt, 'raftlog key check v1', KCV_BYTES),
    sealKey: deriveKey(master, salt, 'raftlog dictionary v1'),
    wrapKey: deriveKey(master, salt, 'raftlog data key wrap v1'),
  };
}

function keyAad(id: number): Buffer {
  return Buffer.from(`raftlog data key ${id}`, 'utf8');
}

export function encodeDictionary(dictionary: Dictionary, master: Uint8Array): Buffer {
  const { kcv, sealKey, wrapKey } = subKeys(master, dictionary.salt);
  const payload: PayloadJson = {
    currentKeyId: dictionary.currentKeyId,
    keys: [...dictionary.keys.values()].map((k) => ({
      id: k.id,
      createdAt: k.createdAt,
      wrapped: seal(wrapKey, k.key, keyAad(k.id)).toString('base64'),
    })),
    files: [...dictionary.files.values()].map((f) => ({
      id: f.id,
      name: f.name,
      extents: f.extents.map((e): [number, number, string] => [e.start, e.keyId, e.iv.toString('hex')]),
    })),
  };
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(FORMAT_VERSION, 8);
  dictionary.salt.copy(prefix, 12);
  kcv.copy(prefix, 12 + SALT_BYTES);
  const sealed = seal(sealKey, Buffer.from(JSON.stringify(payload), 'utf8'), prefix);
  const body = Buffer.concat([prefix, sealed]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/**
 * Decodes and authenticates a stored dictionary. Tries `masters` in order
 * (the current master key first, then keys from an interrupted rotation)
 * and returns which one matched.
 * Throws CorruptionError (damaged bytes), BadKeyError (intact, but no given
 * master key matches) or UnsupportedError (a newer format).
 */
export function decodeDictionary(bytes: Uint8Array, masters: readonly Uint8Array[]): { dictionary: Dictionary; masterIndex: number } {
  const file = DICTIONARY_NAME;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string, offset?: number): CorruptionError =>
    new CorruptionError(`${file}: key dictionary is damaged (${why}); restore it from a backup, it cannot be rebuilt`, { file, offset });
  if (buf.byteLength < PREFIX_BYTES + SUM_BYTES + 28) throw corrupt(`only ${buf.byteLength} bytes`);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw corrupt('bad magic', 0);
  const body = buf.subarray(0, buf.byteLength - SUM_BYTES);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(body.byteLength))) {
    throw corrupt('checksum mismatch');
  }
  const version = buf.readUInt32BE(8);
  if (version !== FORMAT_VERSION) {
    throw new UnsupportedError(`${file}: key dictionary format version ${version} is not supported (this build reads ${FORMAT_VERSION})`, {
      file,
    });
  }
  const salt = Buffer.from(buf.subarray(12, 12 + SALT_BYTES));
  const storedKcv = buf.subarray(12 + SALT_BYTES, PREFIX_BYTES);
  const masterIndex = masters.findIndex((m) => sameBytes(subKeys(m, salt).kcv, storedKcv));
  if (masterIndex < 0) {
    throw new BadKeyError(`${file}: the master key does not match the key dictionary (wrong key, or a rotation to a key not supplied)`, {
      file,
    });
  }
  const { sealKey, wrapKey } = subKeys(masters[masterIndex]!, salt);
  const json = unseal(sealKey, body.subarray(PREFIX_BYTES), body.subarray(0, PREFIX_BYTES));
  if (json === undefined) throw corrupt('payload fails authentication', PREFIX_BYTES);
  let payload: unknown;
  try {
    payload = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new CorruptionError(`${file}: key dictionary payload is not JSON`, { file, cause: error });
  }
  return { dictionary: validatePayload(payload, salt, wrapKey, corrupt), masterIndex };
}

function validatePayload(payload: unknown, salt: Buffer, wrapKey: Buffer, corrupt: (why: string) => CorruptionError): Dictionary {
  const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
  const isHex = (v: unknown, bytes: number): v is string => typeof v === 'string' && new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(v);
  if (typeof payload !== 'object' || payload === null) throw corrupt('payload is not an object');
  const p = payload as Partial<Record<keyof PayloadJson, unknown>>;
  if (!isId(p.currentKeyId) || !Array.isArray(p.keys) || !Array.isArray(p.files)) throw corrupt('payload fields missing');
  const keys = new Map<number, DataKey>();
  for (const k of p.keys as unknown[]) {
    const entry = k as Partial<Record<keyof KeyJson, unknown>>;
    if (
      typeof k !== 'object' ||
      k === null ||
      !isId(entry.id) ||
      typeof entry.createdAt !== 'number' ||
      typeof entry.wrapped !== 'string'
    ) {
      throw corrupt('bad data key entry');
    }
    const key = unseal(wrapKey, Buffer.from(entry.wrapped, 'base64'), keyAad(entry.id));
    if (key === undefined || key.byteLength !== KEY_BYTES) throw corrupt(`data key ${entry.id} fails to unwrap`);
    if (keys.has(entry.id)) throw corrupt(`data key ${entry.id} appears twice`);
    keys.set(entry.id, { id: entry.id, createdAt: entry.createdAt, key });
  }
  if (!keys.has(p.currentKeyId)) throw corrupt(`current data key ${p.currentKeyId} is missing`);
  const files = new Map<string, FileRecord>();
  for (const f of p.files as unknown[]) {
    const rec = f as Record<string, unknown>;
    if (
      typeof f !== 'object' ||
      f === null ||
      !isHex(rec.id, FILE_ID_BYTES) ||
      typeof rec.name !== 'string' ||
      !Array.isArray(rec.extents)
    ) {
      throw corrupt('bad file entry');
    }
    const extents: Extent[] = [];
    for (const e of rec.extents as unknown[]) {
      if (!Array.isArray(e) || e.length !== 3) throw corrupt(`bad extent in file ${rec.id}`);
      const [start, keyId, iv] = e as unknown[];
      const previous = extents.at(-1);
      if (
        typeof start !== 'number' ||
        !Number.isSafeInteger(start) ||
        start < 0 ||
        (previous === undefined ? start !== 0 : start <= previous.start)
      ) {
        throw corrupt(`extents of file ${rec.id} out of order`);
      }
      if (!isId(keyId) || !keys.has(keyId)) throw corrupt(`file ${rec.id} names unknown data key ${String(keyId)}`);
      if (!isHex(iv, IV_BYTES)) throw corrupt(`bad IV in file ${rec.id}`);
      extents.push({ start, keyId, iv: Buffer.from(iv, 'hex') });
    }
    if (extents.length === 0) throw corrupt(`file ${rec.id} has no extents`);
    if (files.has(rec.id)) throw corrupt(`file ${rec.id} appears twice`);
    files.set(rec.id, { id: rec.id, name: rec.name, extents });
  }
  return { salt, currentKeyId: p.currentKeyId, keys, files };
}
