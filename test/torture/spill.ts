/**
 * Torture scenarios with a spill FileSystem: the primary (a FaultFs) fills
 * up (ENOSPC on every growth), new files go to `spillFs` (a second FaultFs),
 * space may come back, GC purges run over files on both, and the power goes
 * out on both disks at once at a random operation of either. The reopen must
 * hold exactly a prefix of the writes between the last acknowledged sync and
 * the last attempted write (entries, first index, hard state), open again to
 * the same state, and, opened without `spillFs` while the MANIFEST places a
 * file there, refuse with CORRUPTION saying spillFs is missing
 * (TolerateAnyCorruption: report it).
 */
import { FaultFs, type CrashPolicy, type FaultRuleHandle } from '../../backends/fault.js';
import { MemFs } from '../../backends/memfs.js';
import { Engine, type EngineOptions } from '../../src/engine.js';
import { ErrorCode, isRaftlogError } from '../../src/errors.js';
import { readManifest, spilledPerManifest } from '../../src/file-set/manifest.js';
import { logFileName } from '../../src/file-names.js';
import { Queue } from '../../src/format/layout.js';
import { LogBatch } from '../../src/log-batch.js';
import { RecoveryMode } from '../../src/recovery/recovery.js';
import { mark } from './marks.js';
import { Random } from '../support/random.js';

const REGIONS = 3;
const HARD_STATE = new TextEncoder().encode('hard_state');
const POLICIES: CrashPolicy[] = [
  'dropUnsynced',
  'keepPrefix',
  'keepPages',
  'tornZeros',
  'tornOld',
  'tornGarbage',
  'loseDirEntries',
  'mixed',
];
/** Codes a write may fail with once the power is cut or the disk is full. */
const FAILURE_CODES: ReadonlySet<string> = new Set([ErrorCode.IO, ErrorCode.NO_SPACE, ErrorCode.FSYNC_FAILED, ErrorCode.FAILED]);

type Item = { kind: 'entry'; region: number; index: number } | { kind: 'compact'; region: number; index: number };

export interface SpillStats {
  scenarios: number;
  writes: number;
  syncAcks: number;
  spilledFiles: number;
  withheldRefused: number;
  /** Salvaged-without-spillFs states the prefix oracle rejected (its self-test). */
  oracleCaughtLoss: number;
  purges: number;
}

export function emptySpillStats(): SpillStats {
  return { scenarios: 0, writes: 0, syncAcks: 0, spilledFiles: 0, withheldRefused: 0, oracleCaughtLoss: 0, purges: 0 };
}

export class SpillViolation extends Error {}

function entryData(region: number, index: number): Uint8Array {
  const bytes = new Uint8Array(200 + ((region * 37 + index * 11) % 300));
  for (let i = 0; i < bytes.length; i++) bytes[i] = (region * 31 + index * 7 + i) & 0xff;
  return bytes;
}

function hardState(region: number, index: number): Uint8Array {
  return Uint8Array.of(region, index & 0xff, index >> 8);
}

/** One seeded scenario; throws a SpillViolation (with the seed and a trace) on any breach. */
export async function runSpillSeed(seed: number, stats: SpillStats): Promise<void> {
  const rng = Random.derive(seed, 'spill');
  const trace: string[] = [];
  const fail = (detail: string): never => {
    throw new SpillViolation(
      `spill seed=${seed}: ${detail}\ntrace:\n${trace
        .slice(-40)
        .map((t) => `  ${t}`)
        .join('\n')}`,
    );
  };
  const options: Partial<EngineOptions> = {
    targetFileSize: rng.pick([4096, 8192]),
    preallocateBytes: rng.pick([0, 4096]),
    recycleFiles: rng.pick([0, 2]),
    purgeThreshold: 16384,
    rewriteMaxEntries: rng.pick([4, 64]),
    seed: rng.u32(),
  };
  trace.push(`options ${JSON.stringify(options)}`);
  const primary = new FaultFs(new MemFs(), { seed: rng.u32() });
  const spill = new FaultFs(new MemFs(), { seed: rng.u32() });
  const engine = new Engine({ ...options, fs: primary, spillFs: spill });
  await engine.open();
  const history: Item[] = [];
  /** History length every acknowledged sync made durable. */
  let floor = 0;
  const next = new Array<number>(REGIONS + 1).fill(1);
  let full: FaultRuleHandle | undefined;
  let frozen = false;
  const writes = rng.between(40, 120);
  const freezeAfterWrite = rng.between(5, writes);
  try {
    for (let w = 0; w < writes; w++) {
      if (w === freezeAfterWrite) {
        // The power cut: at a random near-future operation of either disk.
        const target = rng.chance(0.5) ? primary : spill;
        target.freezeAt(target.opIndex + rng.between(0, 30));
        frozen = true;
        trace.push(`freeze ${target === primary ? 'primary' : 'spill'}`);
      }
      if (full === undefined && rng.chance(0.08)) {
        full = primary.inject({ ops: ['preallocate', 'write'], when: { afterBytes: 0 }, error: 'ENOSPC' });
        trace.push('primary full');
      } else if (full !== undefined && rng.chance(0.03)) {
        full.remove();
        full = undefined;
        trace.push('primary has room again');
      }
      const region = rng.between(1, REGIONS);
      const sync = rng.chance(0.6);
      let item: Item;
      let write: () => Promise<unknown>;
      if (next[region]! > 8 && rng.chance(0.1)) {
        item = { kind: 'compact', region, index: next[region]! - rng.between(1, 6) };
        write = () => engine.compactTo(region, item.index, { sync });
      } else {
        const index = next[region]!;
        item = { kind: 'entry', region, index };
        const batch = new LogBatch();
        batch.addEntries(region, [{ index, term: 1, data: entryData(region, index) }]);
        batch.put(region, HARD_STATE, hardState(region, index));
        write = () => engine.write(batch, { sync });
      }
      history.push(item);
      stats.writes++;
      trace.push(`h${history.length} ${item.kind} r${region} ${item.index}${sync ? ' sync' : ''}`);
      try {
        await write();
      } catch (error) {
        if (!isRaftlogError(error) || !FAILURE_CODES.has(error.code)) fail(`write failed with ${String(error)}`);
        trace.push(`  failed: ${describe(error)}`);
        if (frozen) break;
        // A full primary with its spill in use: a write may still fail
        // (NO_SPACE); the engine then stops and nothing later is acknowledged.
        break;
      }
      if (item.kind === 'entry') next[region]!++;
      if (sync) {
        floor = history.length;
        stats.syncAcks++;
      }
      if (rng.chance(0.15)) {
        stats.purges++;
        await engine.purgeExpiredFiles().catch((error: unknown) => {
          if (!isRaftlogError(error) || !FAILURE_CODES.has(error.code)) fail(`purge failed with ${String(error)}`);
          trace.push(`  purge failed: ${describe(error)}`);
        });
      }
    }
  } finally {
    // Both disks lose power at once.
    await engine.close().catch(() => undefined);
  }
  const policy = rng.pick(POLICIES);
  trace.push(`power loss (${String(policy)}); floor h${floor}, attempted h${history.length}`);
  const primaryImage = (await primary.crash(policy)).snapshot();
  const spillImage = (await spill.crash(policy)).snapshot();
  stats.spilledFiles += [...spillImage.keys()].filter((n) => n.endsWith('.raftlog')).length;

  // Without spillFs, when the MANIFEST places a file there that the spill disk holds.
  const manifest = await readManifest(MemFs.fromSnapshot(primaryImage));
  if (manifest.kind === 'ok' && manifest.state.first !== 0) {
    let placed: string | undefined;
    for (let seq = manifest.state.first; seq <= manifest.state.last && placed === undefined; seq++) {
      if (spilledPerManifest(manifest.state, seq) === true && spillImage.has(logFileName(Queue.Append, seq)))
        placed = logFileName(Queue.Append, seq);
    }
    if (placed !== undefined) {
      for (const recoveryMode of [RecoveryMode.AbsoluteConsistency, RecoveryMode.TolerateTailCorruption]) {
        const withheld = new Engine({ ...options, fs: MemFs.fromSnapshot(primaryImage), recoveryMode });
        try {
          await withheld.open();
          await withheld.close();
          fail(`${recoveryMode}: opened without spillFs although the MANIFEST places ${placed} there`);
        } catch (error) {
          if (error instanceof SpillViolation) throw error;
          if (!isRaftlogError(error, 'CORRUPTION') || !/spillFs is missing/.test(error.message))
            fail(`${recoveryMode} without spillFs: ${String(error)}`);
        }
      }
      const any = new Engine({ ...options, fs: MemFs.fromSnapshot(primaryImage), recoveryMode: RecoveryMode.TolerateAnyCorruption });
      await any.open();
      const reported = any.recoveryReport!.problems.some((p) => /spillFs is missing/.test(p.detail));
      // The oracle's own check: what Any salvages without the spilled files
      // is (almost always) no prefix, which the oracle must notice.
      if (matchPrefix(history, await readState(any), floor) === undefined) stats.oracleCaughtLoss++;
      await any.close();
      if (!reported) fail('TolerateAnyCorruption without spillFs reported no missing spillFs');
      stats.withheldRefused++;
      mark('spill.withheld');
    }
  }

  // With spillFs: exactly a prefix between the floor and the last attempted write, twice.
  const disk = MemFs.fromSnapshot(primaryImage);
  const spillDisk = MemFs.fromSnapshot(spillImage);
  let digest = '';
  for (const round of [1, 2]) {
    const reopened = new Engine({ ...options, fs: disk, spillFs: spillDisk, recoveryMode: RecoveryMode.AbsoluteConsistency });
    try {
      await reopened.open();
    } catch (error) {
      fail(`reopen ${round} after a power loss failed: ${String(error)}`);
    }
    if (round === 2 && reopened.recoveryReport!.problems.length > 0)
      fail(`the second reopen repaired something: ${JSON.stringify(reopened.recoveryReport!.problems)}`);
    const state = await readState(reopened);
    await reopened.close();
    if (round === 1) {
      digest = state;
      const prefix = matchPrefix(history, state, floor);
      if (prefix === undefined) fail(`the reopened state is no prefix h${floor}..h${history.length} of the history:\n${state}`);
    } else if (state !== digest) {
      fail('the second reopen gives another state');
    }
  }
  if (spillImage.size > 0) mark('spill.crash-reopen');
  stats.scenarios++;
}

function describe(error: unknown): string {
  return isRaftlogError(error) ? error.code : String(error);
}

async function readState(engine: Engine): Promise<string> {
  const lines: string[] = [];
  for (let region = 1; region <= REGIONS; region++) {
    const first = engine.firstIndex(region);
    const last = engine.lastIndex(region);
    const entries = first === undefined || last === undefined ? [] : await engine.fetchEntriesTo(region, first, last + 1);
    const data = entries
      .map((e) => (Buffer.compare(Buffer.from(e.data), Buffer.from(entryData(region, e.index))) === 0 ? '' : `!${e.index}`))
      .join('');
    const hard = engine.get(region, HARD_STATE);
    lines.push(`r${region} ${first ?? '-'}..${last ?? '-'} n${entries.length}${data} hs${hard === undefined ? '-' : [...hard].join(',')}`);
  }
  return lines.join('\n');
}

/** The length p in [floor, history.length] whose prefix gives `state`, if any. */
function matchPrefix(history: readonly Item[], state: string, floor: number): number | undefined {
  const first = new Array<number>(REGIONS + 1).fill(1);
  const last = new Array<number>(REGIONS + 1).fill(0);
  for (let p = 0; p <= history.length; p++) {
    if (p > 0) {
      const item = history[p - 1]!;
      if (item.kind === 'entry') last[item.region] = item.index;
      else first[item.region] = Math.max(first[item.region]!, item.index);
    }
    if (p < floor) continue;
    const lines: string[] = [];
    for (let region = 1; region <= REGIONS; region++) {
      const lo = first[region]!;
      const hi = last[region]!;
      const n = hi >= lo ? hi - lo + 1 : 0;
      const range = n === 0 ? (hi === 0 ? '-..-' : `${hi + 1}..${hi}`) : `${lo}..${hi}`;
      lines.push(`r${region} ${range} n${n} hs${hi === 0 ? '-' : [...hardState(region, hi)].join(',')}`);
    }
    if (lines.join('\n') === state) return p;
  }
  return undefined;
}
