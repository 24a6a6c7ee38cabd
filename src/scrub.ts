/**
 * The background scrub (EngineOptions.scrub, off by default): a verification
 * pass (src/verify.ts) over the whole log, again and again, slowly. Between
 * two passes it waits `intervalMs`; within a pass it reads at most
 * `bytesPerSecond` (sleeping off what it read ahead of that rate) and steps
 * aside for one turn of the event loop whenever writes are queued. Damage
 * goes to `metrics()` and the 'corruption' event; the engine stops the
 * scrub, waiting out the pass in flight, before it closes.
 */
import { assert } from './assert.js';

export interface ScrubOptions {
  /** Pause between the end of one pass and the start of the next (and before the first), ms. Default 3,600,000 (an hour). */
  intervalMs?: number;
  /** Read rate limit of a pass, bytes per second. Default 4 MiB/s. */
  bytesPerSecond?: number;
}

export const SCRUB_DEFAULTS: Required<ScrubOptions> = { intervalMs: 3_600_000, bytesPerSecond: 4 << 20 };

/** Sleeps shorter than this are saved up: a timer per small record would cost more than the reads. */
const MIN_SLEEP_MS = 10;

/** Thrown out of `pace` to end a pass the scrub was told to stop. */
class Stopped extends Error {}

export interface ScrubHooks {
  /** One pass; it calls `pace` as it reads (src/verify.ts). */
  pass: (pace: (bytes: number) => Promise<void>) => Promise<void>;
  /** Writes are queued: step aside. */
  busy: () => boolean;
  /** Bytes read (counted as they are read, for metrics). */
  onBytes: (bytes: number) => void;
  /** A pass ended (completed or failed). */
  onPassEnd: (error: unknown) => void;
}

export class Scrubber {
  readonly #options: Required<ScrubOptions>;
  readonly #hooks: ScrubHooks;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  /** Ends the current sleep early (at stop). */
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;

  constructor(options: Required<ScrubOptions>, hooks: ScrubHooks) {
    assert(options.intervalMs >= 0 && options.bytesPerSecond > 0, 'scrub: options are checked before the scrubber is made');
    this.#options = options;
    this.#hooks = hooks;
  }

  start(): void {
    this.#schedule();
  }

  /** Stops scheduling and ends the pass in flight at its next step; resolves once it has. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake?.();
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
        this.#schedule();
      });
    }, this.#options.intervalMs);
    // A scrub alone never keeps the process alive.
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const started = performance.now();
    let bytes = 0;
    const pace = async (read: number): Promise<void> => {
      if (this.#stopped) throw new Stopped();
      bytes += read;
      this.#hooks.onBytes(read);
      const wait = started + (bytes / this.#options.bytesPerSecond) * 1000 - performance.now();
      if (wait >= MIN_SLEEP_MS) await this.#sleep(wait);
      else if (this.#hooks.busy()) await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#stopped) throw new Stopped();
    };
    let failure: unknown;
    try {
      await this.#hooks.pass(pace);
    } catch (error) {
      if (error instanceof Stopped) return;
      failure = error;
    }
    this.#hooks.onPassEnd(failure);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
