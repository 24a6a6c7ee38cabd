/**
 * The recovery decision table (src/recovery/decision-table.ts), both ways:
 * every (site, proven durable, mode) has exactly one row, and recovery, run
 * on a log damaged the way each row describes, takes that row's action in
 * every mode. The README's copy is the one the table generates.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { isRaftlogError } from '../src/errors.js';
import { LogBatch } from '../src/log-batch.js';
import { MANIFEST_NAME } from '../src/file-names.js';
import { MANIFEST_SLOT_SIZE } from '../src/file-set/manifest.js';
import { FILE_FLAG_MANIFEST, FILE_FLAG_RECYCLED, decodeFileHeader, encodeFileHeader } from '../src/format/layout.js';
import { recoverLog } from '../src/recovery/log.js';
import { RecoveryMode, type RecoveryProblem } from '../src/recovery/recovery.js';
import { type Files, editManifest, logNames, recordOffsets, withoutCleanEnd, writeLog } from './support/damaged-log.js';
import {
  DAMAGE_SITES,
  DECISION_TABLE,
  decisionTableMarkdown,
  matches,
  type Decision,
  type DecisionRow,
  type RecoveryAction,
} from '../src/recovery/decision-table.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MODES = Object.values(RecoveryMode);

const manyFiles = (): Promise<Files> => writeLog(12, { targetFileSize: 4096 });

function editHeader(files: Files, name: string, flags: (old: number) => number): void {
  const bytes = Uint8Array.from(files.get(name)!);
  const header = decodeFileHeader(bytes);
  assert.ok(typeof header === 'object');
  bytes.set(encodeFileHeader({ ...header, flags: flags(header.flags) }), 0);
  files.set(name, bytes);
}

/** A directory from before manifests: no MANIFEST, and no header saying one governed it. */
function withoutManifest(files: Files): void {
  files.delete(MANIFEST_NAME);
  for (const name of logNames(files)) editHeader(files, name, (flags) => flags & ~FILE_FLAG_MANIFEST);
}

function damageByte(files: Files, name: string, at: number): void {
  const bytes = Uint8Array.from(files.get(name)!);
  bytes[at]! ^= 0x10;
  files.set(name, bytes);
}

function appendBytes(files: Files, name: string, extra: Uint8Array): void {
  const old = files.get(name)!;
  const bytes = new Uint8Array(old.length + extra.length);
  bytes.set(old);
  bytes.set(extra, old.length);
  files.set(name, bytes);
}

const garbage = (length: number): Uint8Array => new Uint8Array(length).map((_, i) => (i * 131 + 7) & 0xff);

/** One damaged log per row, keyed `site/proven`. */
const SCENARIOS: Record<string, () => Promise<Files>> = {
  'zero-tail/either': async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    appendBytes(files, name!, new Uint8Array(65536));
    return files;
  },
  'last-file-record/no': async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    const offsets = await recordOffsets(files.get(name!)!);
    files.set(name!, files.get(name!)!.subarray(0, offsets[2]! + 100)); // the third record torn
    withoutCleanEnd(files);
    return files;
  },
  'last-file-record/yes': async () => {
    const files = await writeLog(5);
    const [name] = logNames(files);
    damageByte(files, name!, (await recordOffsets(files.get(name!)!))[1]! + 40); // a later record proves it durable
    return files;
  },
  'recycled-stale-tail/either': async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    editHeader(files, name!, (flags) => flags | FILE_FLAG_RECYCLED);
    appendBytes(files, name!, garbage(500));
    withoutCleanEnd(files);
    return files;
  },
  'older-file-record/either': async () => {
    const files = await manyFiles();
    const older = logNames(files)[0]!;
    damageByte(files, older, (await recordOffsets(files.get(older)!)).at(-1)! + 30);
    return files;
  },
  'older-file-past-end/either': async () => {
    const files = await manyFiles();
    appendBytes(files, logNames(files)[0]!, garbage(500));
    return files;
  },
  'older-file-short/either': async () => {
    const files = await manyFiles();
    const older = logNames(files)[0]!;
    files.set(older, files.get(older)!.subarray(0, (await recordOffsets(files.get(older)!)).at(-1)!));
    return files;
  },
  'unfinished-header/either': async () => {
    const files = await writeLog(3);
    withoutManifest(files);
    files.set('0000000000000002.raftlog', new Uint8Array(4096)); // created, header lost
    return files;
  },
  'bad-header/either': async () => {
    const files = await manyFiles();
    damageByte(files, logNames(files)[0]!, 20);
    return files;
  },
  'sequence-gap/either': async () => {
    const files = await manyFiles();
    withoutManifest(files);
    files.delete(logNames(files)[1]!);
    return files;
  },
  'listed-file-missing/either': async () => {
    const files = await manyFiles();
    files.delete(logNames(files)[1]!);
    return files;
  },
  'unlisted-empty/either': async () => {
    const files = await writeLog(3);
    files.set('0000000000000002.raftlog', new Uint8Array(4096));
    return files;
  },
  'unlisted-records/either': async () => {
    const files = await manyFiles();
    // The MANIFEST as its older slot would read: the newest file not yet listed.
    editManifest(files, (state) => ({ ...state, last: state.last - 1, cleanEnd: 0 }));
    return files;
  },
  'clean-end-missing/either': async () => {
    const files = await writeLog(3);
    const [name] = logNames(files);
    files.set(name!, files.get(name!)!.subarray(0, (await recordOffsets(files.get(name!)!)).at(-1)!)); // the seal gone
    return files;
  },
  'manifest-damaged/either': async () => {
    const files = await writeLog(3);
    const manifest = Uint8Array.from(files.get(MANIFEST_NAME)!);
    manifest[100]! ^= 1;
    manifest[MANIFEST_SLOT_SIZE + 100]! ^= 1;
    files.set(MANIFEST_NAME, manifest);
    return files;
  },
  'manifest-lost/either': async () => {
    const files = await writeLog(3);
    files.delete(MANIFEST_NAME);
    return files;
  },
  'checkpoint-damaged/either': async () => {
    const fs = new MemFs();
    const engine = new Engine({
      fs,
      seed: 9,
      targetFileSize: 4096,
      preallocateBytes: 0,
      purgeThreshold: 4096,
      recycleFiles: 0,
      indexCheckpoint: false,
    });
    await engine.open();
    const batch = new LogBatch();
    batch.addEntries(2, [{ index: 1, term: 1, data: new Uint8Array(100) }]);
    await engine.write(batch, { sync: true });
    for (let i = 1; i <= 4; i++) {
      const next = new LogBatch();
      next.addEntries(1, [{ index: i, term: 1, data: new Uint8Array(3000).fill(i) }]);
      await engine.write(next, { sync: true });
    }
    await engine.compactTo(1, 4, { sync: true });
    await engine.purgeExpiredFiles();
    await engine.close();
    const files = fs.snapshot();
    files.delete('LOCK');
    const checkpoint = [...files.keys()].find((n) => n.endsWith('.rewrite'));
    assert.ok(checkpoint !== undefined, 'the purge wrote a GC checkpoint');
    damageByte(files, checkpoint, 100);
    return files;
  },
};

const rowKey = (row: DecisionRow): string => `${row.site}/${row.proven}`;

/** The report's action for each table action (a skip with nothing to skip to drops the rest: a cut in the last file). */
const REPORTED: Record<RecoveryAction, readonly (RecoveryProblem['action'] | 'none')[]> = {
  'end-of-log': ['none'],
  'end-of-file': ['none'],
  cut: ['cut'],
  'skip-record': ['skipped', 'cut'],
  corruption: [],
  report: ['reported'],
  'remove-file': ['removed-file'],
  'skip-file': ['skipped-file'],
};

interface Outcome {
  decisions: Decision[];
  problems: RecoveryProblem[];
  error: unknown;
}

async function recover(files: Files, mode: RecoveryMode): Promise<Outcome> {
  const fs = MemFs.fromSnapshot(files);
  const decisions: Decision[] = [];
  try {
    const state = await recoverLog(fs, mode, new Map(), { decisions });
    await Promise.all([...state.log.files.map((f) => f.handle.close()), state.rewrite.checkpoint?.handle.close()]);
    return { decisions, problems: state.log.report.problems, error: undefined };
  } catch (error) {
    return { decisions, problems: [], error };
  }
}

describe('recovery decision table', () => {
  it('has exactly one row for every damage site, durability and mode', () => {
    for (const site of DAMAGE_SITES) {
      for (const proven of [false, true]) {
        const rows = DECISION_TABLE.filter((row) => matches(row, site, proven));
        assert.equal(rows.length, 1, `${site}, proven ${proven}: ${rows.length} rows`);
        for (const mode of MODES) assert.ok(rows[0]!.actions[mode] !== undefined, `${site}/${mode}`);
      }
    }
    assert.deepEqual(Object.keys(SCENARIOS).sort(), DECISION_TABLE.map(rowKey).sort(), 'one damaged log per row');
  });

  for (const row of DECISION_TABLE) {
    it(`${row.label === '' ? '' : `${row.label}: `}${row.where}${row.proven === 'either' ? '' : ` (proven durable: ${row.proven})`}`, async () => {
      const files = await SCENARIOS[rowKey(row)]!();
      for (const mode of MODES) {
        const expected = row.actions[mode];
        const { decisions, problems, error } = await recover(files, mode);
        const taken = decisions.filter((d) => d.site === row.site && matches(row, d.site, d.proven));
        assert.ok(taken.length >= 1, `${mode}: recovery never met ${rowKey(row)}; it decided ${JSON.stringify(decisions)}`);
        const decision = taken[0]!;
        assert.equal(decision.action, expected, `${mode}: ${JSON.stringify(decision)}`);
        if (expected === 'corruption') {
          assert.ok(isRaftlogError(error, 'CORRUPTION'), `${mode}: ${String(error)}`);
          assert.equal(decisions.at(-1), decision, `${mode}: the corruption decision is the last one`);
          continue;
        }
        assert.equal(error, undefined, `${mode}: ${String(error)}`);
        const reported = problems.filter((p) => p.file === decision.file).map((p) => p.action);
        const want = REPORTED[expected];
        if (want.includes('none')) assert.deepEqual(reported, [], `${mode}: nothing reported for ${decision.file}`);
        else
          assert.ok(
            reported.some((a) => want.includes(a)),
            `${mode}: ${decision.file} reported ${JSON.stringify(reported)}, want one of ${want.join(', ')}`,
          );
      }
    });
  }

  it('the README shows the table as the table generates it', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes(decisionTableMarkdown()), 'README.md is stale: run `node scripts/decision-table.mjs` after `npm run build`');
  });
});
