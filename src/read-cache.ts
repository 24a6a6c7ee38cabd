/**
 * The cache of decompressed record payloads that reads of compressed entries
 * go through (Raft reads runs of neighbouring entries, which share a
 * record). Bounded by bytes, not records: records range from a few KiB to
 * 1 GiB decompressed, so a record count bounds nothing (16 records of 32 MiB
 * pinned half a gigabyte). Least recently used payloads go first; a payload
 * larger than the whole budget is not cached at all.
 */

export interface ReadCacheStats {
  /** The byte budget (EngineOptions.readCacheBytes). */
  budgetBytes: number;
  /** Bytes of decompressed payloads held now; never above budgetBytes. */
  bytes: number;
  records: number;
  hits: number;
  misses: number;
  evictions: number;
}

export class ReadCache {
  // Map iteration order is insertion order: the first key is the least recently used.
  readonly #payloads = new Map<string, Uint8Array>();
  #budgetBytes = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  /** Sets the byte budget (a validated non-negative integer), evicting down to it. */
  setBudget(bytes: number): void {
    this.#budgetBytes = bytes;
    this.#evictAbove(bytes);
  }

  get(key: string): Uint8Array | undefined {
    const payload = this.#payloads.get(key);
    if (payload === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#payloads.delete(key);
    this.#payloads.set(key, payload);
    return payload;
  }

  set(key: string, payload: Uint8Array): void {
    this.#remove(key);
    if (payload.byteLength > this.#budgetBytes) return;
    this.#evictAbove(this.#budgetBytes - payload.byteLength);
    this.#payloads.set(key, payload);
    this.#bytes += payload.byteLength;
  }

  /** Drops every payload whose key starts with `prefix` (a file going away). */
  forgetPrefix(prefix: string): void {
    for (const key of [...this.#payloads.keys()]) if (key.startsWith(prefix)) this.#remove(key);
  }

  stats(): ReadCacheStats {
    return {
      budgetBytes: this.#budgetBytes,
      bytes: this.#bytes,
      records: this.#payloads.size,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }

  #remove(key: string): void {
    const payload = this.#payloads.get(key);
    if (payload === undefined) return;
    this.#payloads.delete(key);
    this.#bytes -= payload.byteLength;
  }

  #evictAbove(limit: number): void {
    for (const [key, payload] of this.#payloads) {
      if (this.#bytes <= limit) return;
      this.#payloads.delete(key);
      this.#bytes -= payload.byteLength;
      this.#evictions++;
    }
  }
}
