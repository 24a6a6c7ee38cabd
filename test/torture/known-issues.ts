/**
 * Engine bugs the suite has found and reported but that are not fixed yet,
 * because the fix needs a design decision by the engine's owner. Each entry
 * matches its own symptom precisely (invariant and error text), so the suite
 * keeps running its other checks on those seeds' neighbours, counts every
 * occurrence, and prints them on every run. `--strict` (CLI) treats them as
 * failures. Delete an entry when its bug is fixed: the seed that found it
 * must then pass.
 */
import type { Violation } from './scenario.js';

export interface KnownIssue {
  readonly id: string;
  /** A seed of `npm run torture` that shows it. */
  readonly seed: number;
  readonly summary: string;
  matches(violation: Violation): boolean;
}

export const KNOWN_ISSUES: readonly KnownIssue[] = [
  // Fixed, with the seeds that found them now passing under --strict:
  // gc-checkpoint-replay-gap (seed 40), checkpoint-damage-silent (seed 202),
  // zero-space-open-creates-file (seed 112).
];

export function knownIssueOf(violation: Violation): KnownIssue | undefined {
  return KNOWN_ISSUES.find((issue) => issue.matches(violation));
}
