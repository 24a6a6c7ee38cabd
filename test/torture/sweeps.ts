/**
 * Exhaustive sweeps over short scripted workloads (Pebble's
 * TestDBWALRotationCrash and TestErrors, ACE's bounded workloads):
 *  - crash sweep: a power cut after FileSystem operation k, for every k of
 *    the workload (open included), each followed by a crash under several
 *    policies and the full reopen checks;
 *  - kill sweep: the process dies at its k-th FileSystem call, for every k;
 *    the restart sees the page cache, then a power loss must still leave a
 *    prefix no shorter than the acknowledged syncs;
 *  - error sweep: operation k fails (EIO, then ENOSPC), for every k; the
 *    error must reach a caller with its code, and the log must reopen.
 * Each case is a Scenario, so every check of scenario.ts applies.
 */
import type { CrashPolicy } from '../../backends/fault.js';
import { ErrorCode, isRaftlogError } from '../../src/errors.js';
import { RecoveryMode } from '../../src/recovery/recovery.js';
import { POLICIES, seededMasterKey } from './generator.js';
import type { ModelItem, WrittenEntry } from './model.js';
import { Random } from '../support/random.js';
import { Scenario, Violation, describeError, type EngineConfig } from './scenario.js';

type Step =
  | { readonly kind: 'write'; readonly items: readonly ModelItem[]; readonly sync: boolean }
  | { readonly kind: 'barrier' }
  | { readonly kind: 'purge' }
  | { readonly kind: 'close' };

export interface Workload {
  readonly name: string;
  readonly config: EngineConfig;
  readonly steps: readonly Step[];
  /** Runs the engine on an EncryptedFs under this key (see `encrypted`). */
  readonly masterKey?: Uint8Array;
}

/** The same workload on an EncryptedFs: its key dictionary and file headers take the same crashes and faults. */
export function encrypted(workload: Workload): Workload {
  return { ...workload, name: `${workload.name}+encrypted`, masterKey: seededMasterKey(caseSeed(workload.name, 'master-key')) };
}

const BASE: EngineConfig = {
  recoveryMode: RecoveryMode.TolerateTailCorruption,
  targetFileSize: 16384,
  preallocateBytes: 4096,
  compressionThreshold: 1 << 20,
  purgeThreshold: 1 << 20,
  rewriteMaxEntries: 1024,
  forceRewriteAfter: 3,
  recycleFiles: 0,
  prefillFiles: 0,
};

function entries(region: number, first: number, count: number, term: number, bytes: number): ModelItem {
  const out: WrittenEntry[] = [];
  for (let i = 0; i < count; i++) {
    const index = first + i;
    const data = new Uint8Array(bytes);
    const name = new TextEncoder().encode(`${region}/${index}/${term}|`);
    data.set(name.subarray(0, bytes));
    for (let j = name.length; j < bytes; j++) data[j] = (index * 31 + j * 7 + term) & 0xff;
    out.push({ index, term, data });
  }
  return { kind: 'entries', region, entries: out };
}

const key = (text: string): Uint8Array => new TextEncoder().encode(text);
const write = (sync: boolean, ...items: ModelItem[]): Step => ({ kind: 'write', items, sync });

/** Short workloads, each a few engine operations: write, rotate, compact (with GC). */
export const WORKLOADS: readonly Workload[] = [
  {
    name: 'write',
    config: BASE,
    steps: [
      write(true, entries(1, 1, 3, 1, 40)),
      write(false, { kind: 'put', region: 2, key: key('hard_state'), value: Uint8Array.of(1, 2, 3) }, entries(1, 4, 2, 1, 40)),
      write(false, entries(1, 4, 3, 2, 40), { kind: 'delete', region: 2, key: key('x') }),
      { kind: 'barrier' },
      write(true, entries(3, 1, 2, 1, 60)),
      { kind: 'close' },
    ],
  },
  {
    name: 'rotate',
    // Periodic index checkpoints too: the sweep crashes inside their writes.
    config: { ...BASE, targetFileSize: 4096, preallocateBytes: 1024, indexCheckpointInterval: 1024 },
    steps: [
      write(true, entries(1, 1, 2, 1, 1500)),
      write(false, entries(1, 3, 2, 1, 1500)),
      write(true, entries(2, 1, 2, 1, 1500)),
      write(false, entries(1, 5, 2, 1, 1500)),
      write(true, entries(1, 7, 1, 1, 1500), { kind: 'put', region: 2, key: key('k'), value: Uint8Array.of(9) }),
      { kind: 'close' },
    ],
  },
  {
    name: 'compact',
    config: {
      ...BASE,
      targetFileSize: 4096,
      preallocateBytes: 0,
      purgeThreshold: 4096,
      rewriteMaxEntries: 8,
      recycleFiles: 1,
      indexCheckpointInterval: 1024,
    },
    steps: [
      write(true, entries(1, 1, 2, 1, 1200)),
      write(true, entries(1, 3, 2, 1, 1200)),
      write(true, entries(2, 1, 2, 1, 300), { kind: 'put', region: 3, key: key('k'), value: Uint8Array.of(1) }),
      write(false, { kind: 'compact', region: 1, index: 4 }, { kind: 'put', region: 3, key: key('applied'), value: Uint8Array.of(4) }),
      { kind: 'purge' },
      write(true, entries(1, 5, 2, 1, 1200)),
      write(false, { kind: 'clean', region: 2 }, { kind: 'delete', region: 3, key: key('k') }),
      { kind: 'purge' },
      { kind: 'close' },
    ],
  },
];

/** Runs a workload's steps; stops once the engine failed or closed. */
async function runSteps(scenario: Scenario, workload: Workload): Promise<void> {
  for (const step of workload.steps) {
    if (!scenario.isOpen || scenario.failed) return;
    switch (step.kind) {
      case 'write':
        scenario.submit(step.items, step.sync);
        await scenario.settle();
        break;
      case 'barrier':
        scenario.barrier();
        await scenario.settle();
        break;
      case 'purge':
        await scenario.purge();
        break;
      case 'close':
        await scenario.close();
        break;
    }
  }
  await scenario.settle();
}

function caseSeed(...parts: (string | number)[]): number {
  return Random.derive(0x5eed, ...parts).u32();
}

/** FileSystem operations and process calls of a fault-free run, open to close. */
export async function measure(workload: Workload): Promise<{ ops: number; calls: number }> {
  const scenario = new Scenario(caseSeed(workload.name, 'measure'), workload.config, { masterKey: workload.masterKey });
  await scenario.start();
  await runSteps(scenario, workload);
  if (scenario.isOpen) await scenario.close();
  return { ops: scenario.fault.opIndex, calls: scenario.processCalls };
}

export interface SweepCase {
  readonly sweep: 'crash' | 'kill' | 'error';
  readonly workload: string;
  readonly k: number;
  readonly detail: string;
  readonly seed: number;
}

export interface SweepResult {
  readonly cases: number;
  readonly violations: { readonly case: SweepCase; readonly violation: Violation }[];
}

async function runCase(c: SweepCase, body: (scenario: Scenario) => Promise<void>, workload: Workload): Promise<Violation | undefined> {
  const scenario = new Scenario(c.seed, workload.config, { masterKey: workload.masterKey });
  try {
    try {
      await body(scenario);
    } catch (error) {
      if (error instanceof Violation) throw error;
      scenario.violation('exception', `sweep ${c.sweep} ${c.workload} k=${c.k} ${c.detail} threw: ${describeError(error)}`);
    }
    return undefined;
  } catch (error) {
    await scenario.abandon();
    if (error instanceof Violation) {
      return new Violation(error.invariant, `sweep=${c.sweep} workload=${c.workload} k=${c.k} ${c.detail}\n${error.message}`);
    }
    throw error;
  }
}

/** Power cut after operation k, for every k, under `policiesPerPoint` policies each (rotating through all). */
export async function crashSweep(workload: Workload, policiesPerPoint: number): Promise<SweepResult> {
  const { ops } = await measure(workload);
  const violations: SweepResult['violations'] = [];
  let cases = 0;
  for (let k = 0; k <= ops; k++) {
    for (let p = 0; p < policiesPerPoint; p++) {
      const policy: CrashPolicy = POLICIES[(k + p * 3) % POLICIES.length]!;
      const name = typeof policy === 'string' ? policy : `${policy.data}/${policy.dir}`;
      const c: SweepCase = {
        sweep: 'crash',
        workload: workload.name,
        k,
        detail: `policy=${name}`,
        seed: caseSeed('crash', workload.name, k, p),
      };
      cases++;
      const violation = await runCase(
        c,
        async (scenario) => {
          scenario.armPowerCut(k);
          if (await scenario.tryStart()) await runSteps(scenario, workload);
          await scenario.powerLoss(policy, { reopenTwice: true });
          await scenario.close();
        },
        workload,
      );
      if (violation !== undefined) violations.push({ case: c, violation });
    }
  }
  return { cases, violations };
}

/** The process dies at its k-th call, for every k; restart on the page cache, then lose power. */
export async function killSweep(workload: Workload): Promise<SweepResult> {
  const { calls } = await measure(workload);
  const violations: SweepResult['violations'] = [];
  let cases = 0;
  for (let k = 0; k <= calls; k++) {
    const c: SweepCase = {
      sweep: 'kill',
      workload: workload.name,
      k,
      detail: 'then dropUnsynced',
      seed: caseSeed('kill', workload.name, k),
    };
    cases++;
    const violation = await runCase(
      c,
      async (scenario) => {
        scenario.armKill(k);
        if (await scenario.tryStart()) await runSteps(scenario, workload);
        // Also when the open died or the workload closed: the dead process's lock must go.
        await scenario.kill();
        // The restarted process must make what it builds on durable: one
        // acknowledged sync, then the power goes (dropping unsynced data and
        // directory entries alike).
        scenario.submit([entries(9, 1, 1, 1, 64)], true);
        await scenario.settle();
        await scenario.powerLoss('dropUnsynced');
        await scenario.close();
      },
      workload,
    );
    if (violation !== undefined) violations.push({ case: c, violation });
  }
  return { cases, violations };
}

/** Operations whose failure the engine may swallow by design (closing a descriptor after its data is synced, or on cleanup). */
const SWALLOWABLE = new Set(['close']);

/** Operation k fails with EIO, then with ENOSPC, for every k; the error must reach a caller and the log must reopen. */
export async function errorSweep(workload: Workload): Promise<SweepResult> {
  const { ops } = await measure(workload);
  const violations: SweepResult['violations'] = [];
  let cases = 0;
  for (let k = 0; k < ops; k++) {
    for (const error of ['EIO', 'ENOSPC'] as const) {
      const c: SweepCase = {
        sweep: 'error',
        workload: workload.name,
        k,
        detail: `error=${error}`,
        seed: caseSeed('error', workload.name, k, error),
      };
      cases++;
      const violation = await runCase(
        c,
        async (scenario) => {
          const rule = scenario.inject({ ops: 'any', when: { index: k }, error });
          if (await scenario.tryStart()) await runSteps(scenario, workload);
          await scenario.settle();
          checkSurfaced(scenario, rule.id, rule.fired, k, error);
          rule.remove();
          await scenario.restart();
          await scenario.powerLoss('dropUnsynced');
          await scenario.close();
        },
        workload,
      );
      if (violation !== undefined) violations.push({ case: c, violation });
    }
  }
  return { cases, violations };
}

/**
 * An injected error either reaches a caller (its code intact, its message
 * naming the operation and rule in the error or a cause) or hit an
 * operation the engine may ignore by design.
 */
function checkSurfaced(scenario: Scenario, ruleId: number, fired: number, k: number, error: 'EIO' | 'ENOSPC'): void {
  if (fired === 0) return;
  const event = scenario.fault.log.find((e) => e.rule === ruleId);
  if (event !== undefined && SWALLOWABLE.has(event.op)) return;
  if (event !== undefined && scenario.absorbedByDesign(event) && scenario.observedErrors.length === 0) return;
  const tag = `(op ${k}, rule ${ruleId})`;
  const codes: ReadonlySet<string> =
    error === 'EIO' ? new Set([ErrorCode.IO, ErrorCode.FSYNC_FAILED]) : new Set([ErrorCode.NO_SPACE, ErrorCode.FSYNC_FAILED]);
  const reached = scenario.observedErrors.some(
    (observed) => isRaftlogError(observed) && codes.has(observed.code) && chainMentions(observed, tag),
  );
  if (!reached) {
    const seen = scenario.observedErrors.map((e) => `  ${describeError(e)}`).join('\n') || '  (none)';
    scenario.violation(
      'errors-surface',
      `injected ${error} on op ${k} (${event?.op ?? '?'} ${event?.path ?? ''}) reached no caller with its code; errors seen:\n${seen}`,
    );
  }
}

function chainMentions(error: unknown, tag: string): boolean {
  // Bounded: cause chains are a few links long; the cap guards against cycles.
  for (let link = error, depth = 0; link instanceof Error && depth < 8; link = link.cause, depth++) {
    if (link.message.includes(tag)) return true;
  }
  return false;
}
