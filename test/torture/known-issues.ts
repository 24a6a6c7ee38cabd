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
  {
    id: 'gc-checkpoint-replay-gap',
    seed: 40,
    summary:
      'after a purge writes a checkpoint, an append file at or above the watermark can hold a record that ' +
      'appended after an entry later overwritten (the overwrite is also above the watermark): the checkpoint ' +
      'only copies live entries, so replay meets a gap and every open fails with INVALID_ARGUMENT; no fault needed',
    matches: (v) => /INVALID_ARGUMENT: region \d+: entries at \d+ leave a gap after \d+/.test(v.message),
  },
  {
    id: 'checkpoint-damage-silent',
    seed: 202,
    summary:
      'a bit flip at rest in the checkpoint in use makes recovery treat it as a never-completed checkpoint and ' +
      'silently ignore it; when the append files it superseded are gone, their live data (entries, keys) is lost ' +
      'without a report, even under AbsoluteConsistency',
    matches: (v) => v.invariant === 'at-rest-damage' && v.message.includes('expected corruption-or-same (the checkpoint in use); state changed'),
  },
  {
    id: 'zero-space-open-creates-file',
    seed: 112,
    summary:
      'with 0 bytes free, open fails with NO_SPACE when it must create the active file (no log file left, or ' +
      'the last one removed as case E): Engine.open writes the new header eagerly instead of at the first write',
    matches: (v) => v.invariant === 'zero-space-open' && /NO_SPACE \[\d{16}\.raftlog\]: injected ENOSPC on write \d{16}\.raftlog .*write 32@0/.test(v.message),
  },
];

export function knownIssueOf(violation: Violation): KnownIssue | undefined {
  return KNOWN_ISSUES.find((issue) => issue.matches(violation));
}
