/**
 * An async mutex, for EncryptedFs's two kinds of critical section: the
 * writes, barriers, truncates and preallocations of one file (they move its
 * HWM and frontiers), and the key dictionary's updates (each builds on the
 * last saved one). Small, but on the group commit's critical path, which is
 * why a free mutex starts its section synchronously.
 */

/**
 * Serialises async critical sections (promise chain); a failed section does
 * not poison later ones. A section that finds the mutex free starts at once,
 * not a microtask later: an append is on the group commit's critical path,
 * and every microtask queued ahead of it would run before its inner write
 * was issued.
 */
export class Mutex {
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
