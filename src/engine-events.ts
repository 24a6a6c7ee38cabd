/**
 * The engine's events: `engine.on('corruption', listener)`. Typed, and kept
 * to what the engine reports on its own, outside any call's result.
 */
import type { VerifyProblem } from './verify.js';

/** Damage a verification found in bytes the log holds (each problem once per engine lifetime). */
export interface CorruptionEvent {
  /** Which pass found it: `engine.verify()` / `consistencyCheck()`, or the background scrub. */
  source: 'verify' | 'scrub';
  problem: VerifyProblem;
}

export interface EngineEventMap {
  corruption: CorruptionEvent;
}

export type EngineEventName = keyof EngineEventMap;
export type EngineListener<K extends EngineEventName> = (event: EngineEventMap[K]) => void;

export class EngineEvents {
  readonly #listeners: { [K in EngineEventName]: Set<EngineListener<K>> } = { corruption: new Set() };

  on<K extends EngineEventName>(name: K, listener: EngineListener<K>): void {
    this.#listeners[name].add(listener);
  }

  off<K extends EngineEventName>(name: K, listener: EngineListener<K>): void {
    this.#listeners[name].delete(listener);
  }

  emit<K extends EngineEventName>(name: K, event: EngineEventMap[K]): void {
    for (const listener of this.#listeners[name]) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug is the listener's: it surfaces as an uncaught
        // exception (as from an EventEmitter), not as a failed pass.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
