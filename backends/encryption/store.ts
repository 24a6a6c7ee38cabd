/**
 * Where the key dictionary lives: one file in the inner file system,
 * replaced atomically.
 *
 * Save protocol: write `ENCRYPTION.keys.tmp` and fdatasync it, rename it
 * over `ENCRYPTION.keys`, fsync the directory. At every point a crash leaves
 * a complete dictionary under `ENCRYPTION.keys`:
 * - before the rename: the old one (the tmp file is ignored and removed at
 *   the next load);
 * - after the rename, before the directory fsync: the old or the new one,
 *   both complete, because the tmp file was synced before it was renamed.
 * `save` resolves only after the directory fsync, and EncryptedFs writes no
 * data under a new (key, IV) until then, so whichever dictionary survives
 * can decrypt everything that became durable: a surviving old dictionary
 * only lacks IVs nothing durable was encrypted under.
 */

import type { FileSystem } from '../../src/filesystem.js';
import { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from './dictionary.js';

export class KeyDictionaryStore {
  readonly #inner: FileSystem;

  constructor(inner: FileSystem) {
    this.#inner = inner;
  }

  /** The stored dictionary bytes, or undefined if there is none. Removes a tmp file left by a crash before its rename. */
  async read(): Promise<Uint8Array | undefined> {
    if (await this.#inner.exists(DICTIONARY_TMP_NAME)) {
      // A crash between writing the tmp file and renaming it: the rename never
      // happened (or was not durable), so `save` never resolved and nothing
      // was encrypted under what the tmp file adds. The old file is the truth.
      await this.#inner.remove(DICTIONARY_TMP_NAME);
      await this.#inner.syncDir();
    }
    if (!(await this.#inner.exists(DICTIONARY_NAME))) return undefined;
    const handle = await this.#inner.open(DICTIONARY_NAME, { readOnly: true });
    try {
      const size = await handle.size();
      const bytes = new Uint8Array(size);
      const n = await handle.read(bytes, 0, size, 0);
      return bytes.subarray(0, n);
    } finally {
      await handle.close();
    }
  }

  async save(bytes: Uint8Array): Promise<void> {
    const handle = await this.#inner.open(DICTIONARY_TMP_NAME, { create: true });
    try {
      await handle.truncate(0);
      await handle.write([bytes], 0, { sync: true });
    } finally {
      await handle.close();
    }
    await this.#inner.rename(DICTIONARY_TMP_NAME, DICTIONARY_NAME);
    await this.#inner.syncDir();
  }
}
