/**
 * What recovery does about each kind of damage, as data: one row per place
 * damage can be (and, where it matters, whether something written later
 * proved the damaged bytes durable), with the action in each RecoveryMode.
 *
 * recovery.ts, log.ts and checkpoint.ts classify what they find into a
 * `DamageSite` and ask `decide` what to do; none of them decides by itself.
 * The README's table is generated from `DECISION_TABLE`
 * (`node scripts/decision-table.mjs`; test/decision-table.test.ts checks the
 * copy is current and that recovery takes every row's action on a log
 * damaged that way).
 *
 * A record is "proven durable" when something written after it says so: a
 * later record of the same file whose synced-through mark lies past it, a
 * later file (files are synced in full before the next one is created), or
 * the MANIFEST's clean end. Damage that nothing proves durable is a torn
 * write from a crash.
 */
import { assert } from '../assert.js';
import type { RecoveryMode } from './recovery.js';

export type DamageSite =
  | 'zero-tail'
  | 'last-file-record'
  | 'recycled-stale-tail'
  | 'older-file-record'
  | 'older-file-past-end'
  | 'older-file-short'
  | 'unfinished-header'
  | 'bad-header'
  | 'sequence-gap'
  | 'listed-file-missing'
  | 'unlisted-empty'
  | 'unlisted-records'
  | 'clean-end-missing'
  | 'manifest-damaged'
  | 'manifest-lost'
  | 'checkpoint-damaged';

/**
 * - `end-of-log` / `end-of-file`: the file's data ends here; nothing is reported.
 * - `cut`: the last file is truncated here (reported).
 * - `skip-record`: replay continues at the next record that verifies; with
 *   none, the rest of the file is dropped (the last file is cut there).
 * - `corruption`: open fails with CORRUPTION.
 * - `report`: listed in the report, replay goes on.
 * - `remove-file`: the file is deleted (reported).
 * - `skip-file`: the file is not replayed (reported).
 */
export type RecoveryAction = 'end-of-log' | 'end-of-file' | 'cut' | 'skip-record' | 'corruption' | 'report' | 'remove-file' | 'skip-file';

/** `either` when durability is not an input for this site (the note says why). */
export type Proven = 'yes' | 'no' | 'either';

export interface DecisionRow {
  site: DamageSite;
  proven: Proven;
  /** The case letter the code and tests use (A–G), when it has one. */
  label: string;
  /** Where the damage is, for the generated markdown. */
  where: string;
  actions: Readonly<Record<RecoveryMode, RecoveryAction>>;
}

const all = (action: RecoveryAction): Record<RecoveryMode, RecoveryAction> => ({
  AbsoluteConsistency: action,
  TolerateTailCorruption: action,
  TolerateAnyCorruption: action,
});
const fatalUnlessAny = (otherwise: RecoveryAction): Record<RecoveryMode, RecoveryAction> => ({
  AbsoluteConsistency: 'corruption',
  TolerateTailCorruption: 'corruption',
  TolerateAnyCorruption: otherwise,
});

export const DECISION_TABLE: readonly DecisionRow[] = [
  {
    site: 'zero-tail',
    proven: 'either',
    label: '',
    where: 'zeros after the last record of a file (preallocated)',
    actions: all('end-of-log'),
  },
  {
    site: 'last-file-record',
    proven: 'no',
    label: 'A',
    where: 'damage in the last file, not proven durable (torn write)',
    actions: { AbsoluteConsistency: 'cut', TolerateTailCorruption: 'cut', TolerateAnyCorruption: 'skip-record' },
  },
  {
    site: 'last-file-record',
    proven: 'yes',
    label: 'B',
    where: 'damage in the last file, proven durable (by a later record or the clean end)',
    actions: { AbsoluteConsistency: 'corruption', TolerateTailCorruption: 'cut', TolerateAnyCorruption: 'skip-record' },
  },
  {
    site: 'recycled-stale-tail',
    proven: 'either',
    label: '',
    where:
      'recycled last file: stale bytes of its earlier life after the last record, nothing verifying after them, no clean end past them',
    actions: all('end-of-log'),
  },
  {
    site: 'older-file-record',
    proven: 'either',
    label: 'C',
    where: 'damage in an older file (always proven durable: its successor exists)',
    actions: fatalUnlessAny('skip-record'),
  },
  {
    site: 'older-file-past-end',
    proven: 'either',
    label: '',
    where: 'older file: bytes after the length its successor records (preallocated, recycled)',
    actions: all('end-of-file'),
  },
  {
    site: 'older-file-short',
    proven: 'either',
    label: 'D',
    where: 'older file shorter than its successor says',
    actions: fatalUnlessAny('report'),
  },
  {
    site: 'unfinished-header',
    proven: 'either',
    label: 'E',
    where: "last file's header unreadable and the rest zero, or the header of a recycled file's past life (crash during rotation)",
    actions: all('remove-file'),
  },
  { site: 'bad-header', proven: 'either', label: 'F', where: 'other unreadable file header', actions: fatalUnlessAny('skip-file') },
  {
    site: 'sequence-gap',
    proven: 'either',
    label: 'F',
    where: 'file(s) missing from the sequence (or below the GC watermark)',
    actions: fatalUnlessAny('report'),
  },
  {
    site: 'listed-file-missing',
    proven: 'either',
    label: 'F',
    where: 'a file the `MANIFEST` lists is missing (the message says when `spillFs` is)',
    actions: fatalUnlessAny('skip-file'),
  },
  {
    site: 'unlisted-empty',
    proven: 'either',
    label: 'E',
    where: "a file past the `MANIFEST`'s last one, holding no record (crash during rotation)",
    actions: all('remove-file'),
  },
  {
    site: 'unlisted-records',
    proven: 'either',
    label: '',
    where: "a file past the `MANIFEST`'s last one that holds records (a damaged `MANIFEST` slot?)",
    actions: fatalUnlessAny('report'),
  },
  {
    site: 'clean-end-missing',
    proven: 'either',
    label: 'G',
    where: 'after a clean close, the last file cut at a record boundary (its seal gone)',
    actions: fatalUnlessAny('report'),
  },
  { site: 'manifest-damaged', proven: 'either', label: '', where: 'both `MANIFEST` slots damaged', actions: fatalUnlessAny('skip-file') },
  {
    site: 'manifest-lost',
    proven: 'either',
    label: '',
    where: '`MANIFEST` deleted from a directory whose log files were written under one',
    actions: fatalUnlessAny('report'),
  },
  {
    site: 'checkpoint-damaged',
    proven: 'either',
    label: '',
    where: 'the GC checkpoint (`.rewrite`) damaged or unfinished while the `MANIFEST` lists it or the files it replaced are gone',
    actions: fatalUnlessAny('skip-file'),
  },
];

/** Every site; the Record type makes the compiler check that none is left out. */
const SITES: Record<DamageSite, true> = {
  'zero-tail': true,
  'last-file-record': true,
  'recycled-stale-tail': true,
  'older-file-record': true,
  'older-file-past-end': true,
  'older-file-short': true,
  'unfinished-header': true,
  'bad-header': true,
  'sequence-gap': true,
  'listed-file-missing': true,
  'unlisted-empty': true,
  'unlisted-records': true,
  'clean-end-missing': true,
  'manifest-damaged': true,
  'manifest-lost': true,
  'checkpoint-damaged': true,
};
export const DAMAGE_SITES = Object.keys(SITES) as readonly DamageSite[];

export function matches(row: DecisionRow, site: DamageSite, proven: boolean): boolean {
  return row.site === site && (row.proven === 'either' || (row.proven === 'yes') === proven);
}

/** One decision recovery took, for tests and tools that follow it. */
export interface Decision {
  site: DamageSite;
  proven: boolean;
  mode: RecoveryMode;
  action: RecoveryAction;
  file: string;
}

/** The action for damage at `site` in `mode`; `proven` counts only for rows that depend on it. */
export function decide(site: DamageSite, proven: boolean, mode: RecoveryMode, file: string, log?: Decision[]): RecoveryAction {
  const rows = DECISION_TABLE.filter((row) => matches(row, site, proven));
  assert(rows.length === 1, `recovery decision table: ${rows.length} rows for ${site} (proven: ${proven})`);
  const action = rows[0]!.actions[mode];
  log?.push({ site, proven, mode, action, file });
  return action;
}

const ACTION_TEXT: Record<RecoveryAction, string> = {
  'end-of-log': 'end of log',
  'end-of-file': 'end of file',
  cut: 'cut there, reported',
  'skip-record': 'skip to the next record that verifies (none: drop the rest)',
  corruption: '`CORRUPTION`',
  report: 'reported',
  'remove-file': 'file removed',
  'skip-file': 'file skipped',
};

const PROVEN_TEXT: Record<Proven, string> = { yes: 'yes', no: 'no', either: '' };

/** The table as markdown, the copy the README shows. */
export function decisionTableMarkdown(): string {
  const lines = [
    '| case | where | proven durable | `AbsoluteConsistency` | `TolerateTailCorruption` (default) | `TolerateAnyCorruption` |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of DECISION_TABLE) {
    const a = row.actions;
    const cells = [row.label, row.where, PROVEN_TEXT[row.proven], a.AbsoluteConsistency, a.TolerateTailCorruption, a.TolerateAnyCorruption];
    lines.push(`| ${cells.map((c, i) => (i >= 3 ? ACTION_TEXT[c as RecoveryAction] : c)).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
