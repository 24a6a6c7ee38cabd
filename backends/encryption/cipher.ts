/**
 * The primitives EncryptedFs is built from, all on node:crypto (the data
 * cipher also through the native addon, which calls the very OpenSSL
 * node:crypto uses but writes into a caller's buffer instead of allocating):
 *
 * - AES-256-CTR at an arbitrary byte offset (the data cipher). CTR is a
 *   stream cipher: it preserves lengths and offsets, so positional reads and
 *   writes, preallocation and O_DIRECT alignment all pass straight through to
 *   the inner file system. Its price is that it has no integrity and that a
 *   (key, IV, counter) triple must never encrypt two different plaintexts;
 *   `encrypted.ts` is organised around that rule.
 * - AES-256-GCM sealing (wrapping data keys, sealing the key dictionary):
 *   authenticated, so a wrong key or a flipped bit fails loudly instead of
 *   producing garbage keys.
 * - HKDF-SHA256 to derive independent sub-keys from the master key, so the
 *   same master-key bytes are never used directly for two purposes.
 */

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadNativeCipher } from '../../hardware/native.js';

export const KEY_BYTES = 32;
export const IV_BYTES = 16;
export const BLOCK_BYTES = 16;
const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

/**
 * The IV for the block holding byte `position`: `iv + floor(position / 16)`
 * as a 128-bit big-endian integer, wrapping modulo 2^128. This is exactly how
 * OpenSSL's CTR mode advances its counter from block to block, so starting a
 * stream at this counter yields the same keystream the file would have had
 * if it had been encrypted from offset 0.
 */
export function counterAt(iv: Uint8Array, position: number): Buffer {
  const counter = Buffer.from(iv);
  let add = Math.floor(position / BLOCK_BYTES);
  let carry = 0;
  for (let i = IV_BYTES - 1; i >= 0 && (add > 0 || carry > 0); i--) {
    const sum = counter[i]! + (add % 256) + carry;
    counter[i] = sum & 0xff;
    carry = sum >> 8;
    add = Math.floor(add / 256);
  }
  return counter;
}

/**
 * A keystream positioned at byte `position` of a file encrypted under
 * (key, iv). The partial first block is handled by running the cipher over
 * `position % 16` throwaway bytes, so callers can start anywhere.
 * `update` returns fresh buffers: the caller's plaintext is never mutated.
 */
export class CtrStream {
  readonly #cipher: ReturnType<typeof createCipheriv>;

  constructor(key: Uint8Array, iv: Uint8Array, position: number) {
    this.#cipher = createCipheriv('aes-256-ctr', key, counterAt(iv, position));
    const skip = position % BLOCK_BYTES;
    if (skip > 0) this.#cipher.update(Buffer.alloc(skip));
  }

  /** XORs `input` with the next `input.byteLength` keystream bytes into a new buffer (CTR: encrypt == decrypt). */
  update(input: Uint8Array): Buffer {
    return this.#cipher.update(input);
  }
}

/** Writes `inputs` (concatenated) XOR the keystream of (key, iv) at `position` into `output`, whose length is their total. */
export type CtrInto = (key: Uint8Array, iv: Uint8Array, position: number, inputs: readonly Uint8Array[], output: Uint8Array) => void;

/** `CtrInto` on node:crypto alone: one fresh buffer per input, copied into `output`. */
export const ctrIntoNodeCrypto: CtrInto = (key, iv, position, inputs, output) => {
  const stream = new CtrStream(key, iv, position);
  let at = 0;
  for (const input of inputs) {
    output.set(stream.update(input), at);
    at += input.byteLength;
  }
};

/** `CtrInto` through the native addon (no allocation), or undefined when the addon is not available. */
export const ctrIntoNative: CtrInto | undefined = nativeCtr(loadNativeCipher());

function nativeCtr(binding: ReturnType<typeof loadNativeCipher>): CtrInto | undefined {
  if (binding === undefined) return undefined;
  return (key, iv, position, inputs, output) => binding.aesCtr(key, counterAt(iv, position), position % BLOCK_BYTES, inputs, output);
}

/** The data cipher: native when the addon is loaded, node:crypto otherwise; the same keystream either way. */
export const ctrInto: CtrInto = ctrIntoNative ?? ctrIntoNodeCrypto;

/**
 * `CtrInto` run off the JS thread (the addon's libuv work), or undefined
 * without the addon. For writes of a MiB and more, whose pass would
 * otherwise hold up everything else waiting on the event loop.
 */
export const ctrIntoOffThread: ((...args: Parameters<CtrInto>) => Promise<void>) | undefined = nativeCtrAsync(loadNativeCipher());

function nativeCtrAsync(binding: ReturnType<typeof loadNativeCipher>): ((...args: Parameters<CtrInto>) => Promise<void>) | undefined {
  if (binding === undefined) return undefined;
  // async: bad arguments reject like a failed pass, rather than throwing at the call.
  return async (key, iv, position, inputs, output) =>
    binding.aesCtrAsync(key, counterAt(iv, position), position % BLOCK_BYTES, inputs, output);
}

/** XORs `bytes` in place with the keystream of (key, iv) at `position`. For decrypting into a read target the caller owns. */
export function ctrInPlace(key: Uint8Array, iv: Uint8Array, position: number, bytes: Uint8Array): void {
  if (bytes.byteLength === 0) return;
  ctrInto(key, iv, position, [bytes], bytes);
}

/** Derives a sub-key of `length` bytes for one purpose (`info`) from the master key and a per-dictionary salt. */
export function deriveKey(master: Uint8Array, salt: Uint8Array, info: string, length: number = KEY_BYTES): Buffer {
  return Buffer.from(hkdfSync('sha256', master, salt, info, length));
}

/** AES-256-GCM with a random nonce: returns nonce || ciphertext || tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Opens what `seal` produced; undefined when authentication fails (wrong key, wrong AAD, or damaged bytes). */
export function unseal(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (sealed.byteLength < GCM_NONCE_BYTES + GCM_TAG_BYTES) return undefined;
  const nonce = sealed.subarray(0, GCM_NONCE_BYTES);
  const tag = sealed.subarray(sealed.byteLength - GCM_TAG_BYTES);
  const body = sealed.subarray(GCM_NONCE_BYTES, sealed.byteLength - GCM_TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Constant-time comparison, for key-check values. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

export function freshKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function freshIv(): Buffer {
  return randomBytes(IV_BYTES);
}
