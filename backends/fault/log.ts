/**
 * The fault log: every fault that fires, every barrier whose data was lost,
 * every crash decision and freeze, in order. A failing test prints it with
 * the seed (`describe()`), and the same seed replays the same log.
 */

import { FaultEvent } from './types.js';

export class FaultLog {
  readonly #events: FaultEvent[] = [];

  get events(): readonly FaultEvent[] {
    return this.#events;
  }

  append(event: Omit<FaultEvent, 'seq'>): FaultEvent {
    const full: FaultEvent = Object.freeze({ seq: this.#events.length, ...event });
    this.#events.push(full);
    return full;
  }
}

export function formatEvent(event: FaultEvent): string {
  const path = event.path === '' ? '' : ` ${event.path}`;
  const rule = event.rule === undefined ? '' : ` [rule ${event.rule}]`;
  return `#${event.seq} op ${event.opIndex} ${event.op}${path}: ${event.kind}${rule} ${event.detail}`;
}
