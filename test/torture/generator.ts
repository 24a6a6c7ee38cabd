/**
 * The seeded torture generator. One seed decides everything: the engine
 * configuration, a swarm of operation weights (each seed switches some kinds
 * off and skews the rest, so different seeds stress different mixes, as
 * TigerBeetle's VOPR and swarm testing do), and every operation and fault.
 *
 * Operations: appends over several regions, tail overwrites, compactions,
 * cleans, key-value puts/deletes, mixed batches, barriers, live read checks,
 * GC (purgeExpiredFiles, then the compactions it asks for), clean restarts,
 * process kills (at rest or mid-write), power losses with every crash policy
 * (at rest or mid-write), fault bursts (EIO/ENOSPC on write, barrier,
 * preallocate, file creation, directory sync, GC's rename/remove/reuse and
 * rewrite files; sometimes the engine is closed while they last), bit flips
 * at rest, reopens with zero free space and power cuts during recovery.
 */
import type { CrashPolicy, FaultRule } from '../../backends/fault.js';
import type { FileSystem } from '../../src/filesystem.js';
import { mark } from './marks.js';
import { RecoveryMode } from '../../src/recovery/recovery.js';
import { applyItems, lastIndexOf, type ModelItem, type ModelState, type WrittenEntry } from './model.js';
import { knownIssueOf, type KnownIssue } from './known-issues.js';
import { Random } from '../support/random.js';
import { Scenario, Violation, describeError, type EngineConfig, type RecoverOptions, type ScenarioStats } from './scenario.js';

export const OPS = [
  'append',
  'overwrite',
  'compact',
  'clean',
  'kv',
  'mixed',
  'barrier',
  'live',
  'restart',
  'kill',
  'power',
  'burst',
  'flip',
  'purge',
] as const;
export type OpName = (typeof OPS)[number];

export const POLICIES: readonly CrashPolicy[] = [
  'dropUnsynced',
  'keepPrefix',
  'keepPages',
  'tornZeros',
  'tornOld',
  'tornGarbage',
  'loseDirEntries',
  'mixed',
  { data: 'pages', dir: 'prefix', keepProbability: 0.85 },
  { data: 'prefix', dir: 'subset' },
  // Persistent memory: only flushed 64-byte lines are durable, stores are
  // atomic in 8-byte units, a crash keeps any subset of unflushed lines.
  'pmem',
];

export interface Swarm {
  readonly engine: EngineConfig;
  readonly regions: number;
  readonly steps: number;
  readonly weights: Readonly<Record<OpName, number>>;
  readonly syncP: number;
  /** Most batches submitted together (group commit). */
  readonly concurrency: number;
  readonly entriesMax: number;
  readonly entryBytesMax: number;
  readonly compressibleP: number;
  readonly policies: readonly CrashPolicy[];
  readonly zeroSpaceP: number;
  readonly recoveryCrashP: number;
  readonly midFlightP: number;
  readonly shortIo: boolean;
}

/** The swarm of one seed: configuration and operation weights. */
export function swarmFor(seed: number): Swarm {
  const rng = Random.derive(seed, 'swarm');
  const weights = {} as Record<OpName, number>;
  for (const op of OPS) weights[op] = rng.chance(0.2) ? 0 : rng.between(1, 10);
  // Appends feed everything else; crash-type operations are expensive, keep them rarer.
  weights.append = Math.max(weights.append, 4);
  for (const op of ['restart', 'kill', 'power', 'burst', 'flip'] as const) weights[op] = Math.ceil(weights[op] / 3);
  if (weights.power + weights.kill + weights.burst === 0) weights.power = 2;
  const policies = POLICIES.filter(() => rng.chance(0.6));
  return {
    // Its own stream, so every other draw of a seed stays what it was before periodic checkpoints.
    engine: { ...engineConfig(rng), indexCheckpointInterval: Random.derive(seed, 'index-checkpoint').pick([0, 1024, 4096, 64 << 20]) },
    regions: rng.between(1, 6),
    steps: rng.between(15, 45),
    weights,
    syncP: rng.pick([0.1, 0.3, 0.6, 0.9]),
    concurrency: rng.pick([1, 1, 2, 4]),
    entriesMax: rng.pick([1, 3, 8]),
    entryBytesMax: rng.pick([24, 200, 900, 2500]),
    compressibleP: rng.pick([0, 0.3, 0.8]),
    policies: policies.length > 0 ? policies : [rng.pick(POLICIES)],
    zeroSpaceP: rng.pick([0, 0.1, 0.3]),
    recoveryCrashP: rng.pick([0, 0.15, 0.4]),
    midFlightP: rng.pick([0, 0.5, 0.8]),
    shortIo: rng.chance(0.25),
  };
}

function engineConfig(rng: Random): EngineConfig {
  const targetFileSize = rng.pick([4096, 4096, 8192, 16384]);
  return {
    recoveryMode: rng.chance(0.7) ? RecoveryMode.TolerateTailCorruption : RecoveryMode.AbsoluteConsistency,
    targetFileSize,
    preallocateBytes: rng.pick([0, 512, 4096, 16384]),
    compressionThreshold: rng.pick([64, 1024, 1 << 20]),
    // Small thresholds so that purges write checkpoints, rewrite regions and recycle files.
    purgeThreshold: targetFileSize * rng.pick([1, 2, 8]),
    rewriteMaxEntries: rng.pick([4, 64, 1024]),
    forceRewriteAfter: rng.pick([1, 3]),
    recycleFiles: rng.pick([0, 1, 2]),
    prefillFiles: rng.pick([0, 0, 1]),
  };
}

export interface SeedResult {
  readonly seed: number;
  /** `known`: the violation is a reported, not yet fixed engine bug (known-issues.ts). */
  readonly status: 'pass' | 'fail' | 'known';
  readonly stats: ScenarioStats;
  readonly violation: Violation | undefined;
  readonly known: KnownIssue | undefined;
}

export interface SeedOptions {
  /** Wraps the engine's FileSystem (the self-test's lying disk). */
  readonly wrapFs?: (fs: FileSystem) => FileSystem;
  /** Runs the engine on an EncryptedFs over the faulty disk, with a master key derived from the seed. */
  readonly encrypted?: boolean;
}

/** A master key derived from `seed`, so an encrypted run replays (only IVs and data keys are random). */
export function seededMasterKey(seed: number): Uint8Array {
  const rng = Random.derive(seed, 'master-key');
  const key = new Uint8Array(32);
  for (let i = 0; i < key.length; i++) key[i] = rng.below(256);
  return key;
}

/** Runs the scenario of one seed to the end or to its first violation. */
export async function runSeed(seed: number, options: SeedOptions = {}): Promise<SeedResult> {
  const swarm = swarmFor(seed);
  const persistentRules: FaultRule[] = swarm.shortIo ? [{ ops: ['write', 'read'], when: { probability: 0.3 }, error: 'short' }] : [];
  const masterKey = options.encrypted === true ? seededMasterKey(seed) : undefined;
  const scenario = new Scenario(seed, swarm.engine, { persistentRules, wrapFs: options.wrapFs, masterKey });
  const generator = new Generator(scenario, swarm, Random.derive(seed, 'ops'));
  try {
    try {
      await scenario.start();
      for (let step = 0; step < swarm.steps; step++) await generator.step();
      await scenario.finish();
    } catch (error) {
      if (error instanceof Violation) throw error;
      scenario.violation('exception', `the scenario threw: ${describeError(error)}`);
    }
    return { seed, status: 'pass', stats: scenario.stats, violation: undefined, known: undefined };
  } catch (error) {
    await scenario.abandon();
    if (!(error instanceof Violation)) throw error;
    const known = knownIssueOf(error);
    return { seed, status: known === undefined ? 'fail' : 'known', stats: scenario.stats, violation: error, known };
  }
}

const KEYS: readonly Uint8Array[] = [
  new TextEncoder().encode('hard_state'),
  new TextEncoder().encode('apply_state'),
  new TextEncoder().encode('a'),
  Uint8Array.of(0),
  Uint8Array.of(0xff, 0x00, 0x7f),
];

export class Generator {
  readonly #scenario: Scenario;
  readonly #swarm: Swarm;
  readonly #rng: Random;
  /** Highest term used per region, so overwrites bring newer terms as Raft does. */
  readonly #terms = new Map<number, number>();
  #nonce = 0;

  constructor(scenario: Scenario, swarm: Swarm, rng: Random) {
    this.#scenario = scenario;
    this.#swarm = swarm;
    this.#rng = rng;
  }

  async step(): Promise<void> {
    const scenario = this.#scenario;
    if (scenario.failed) {
      await this.#recoverFromFailure();
      return;
    }
    const op = this.#rng.weighted(this.#swarm.weights);
    switch (op) {
      case 'append':
      case 'overwrite':
      case 'compact':
      case 'clean':
      case 'kv':
      case 'mixed':
        this.#writes(op);
        await this.#maybeSettle();
        return;
      case 'barrier':
        scenario.barrier();
        await this.#maybeSettle();
        return;
      case 'live':
        await scenario.checkLive();
        return;
      case 'restart':
        await scenario.restart(this.#recoverOptions());
        return;
      case 'kill':
        if (this.#rng.chance(this.#swarm.midFlightP)) {
          scenario.armKill(this.#rng.between(0, 12));
          this.#writes('mixed');
        }
        await scenario.kill(this.#recoverOptions());
        return;
      case 'power':
        await this.#powerLoss();
        return;
      case 'burst':
        await this.#burst();
        return;
      case 'purge':
        await this.#purge();
        return;
      case 'flip': {
        const mode = this.#rng.chance(0.5) ? RecoveryMode.AbsoluteConsistency : RecoveryMode.TolerateTailCorruption;
        // Damage at rest: mostly a flipped bit, sometimes a whole file deleted or cut short.
        if (this.#rng.chance(0.3)) await scenario.lostFileExperiment(this.#rng, mode);
        else await scenario.flipExperiment(this.#rng, mode);
        return;
      }
    }
  }

  async #maybeSettle(): Promise<void> {
    // Usually wait, sometimes let the next step's batches join the same group.
    if (this.#rng.chance(0.75)) await this.#scenario.settle();
  }

  #recoverOptions(): RecoverOptions {
    const rng = this.#rng;
    return {
      zeroSpace: rng.chance(this.#swarm.zeroSpaceP),
      crashDuringRecoveryAfter: rng.chance(this.#swarm.recoveryCrashP) ? rng.between(0, 30) : undefined,
      recoveryCrashPolicy: rng.pick(this.#swarm.policies),
    };
  }

  async #powerLoss(): Promise<void> {
    const scenario = this.#scenario;
    const rng = this.#rng;
    if (rng.chance(this.#swarm.midFlightP)) {
      scenario.armPowerCut(rng.between(0, 30));
      this.#writes(rng.pick(['append', 'mixed', 'kv', 'overwrite'] as const));
      await scenario.settle();
    }
    await scenario.powerLoss(rng.pick(this.#swarm.policies), this.#recoverOptions());
  }

  /** GC; like a Raft node, compact (some of) the regions it asks for. */
  async #purge(): Promise<void> {
    if (this.#rng.chance(0.15)) {
      await this.#failedCheckpoint();
      return;
    }
    await this.#purgeAndCompact();
  }

  /**
   * A purge whose checkpoint runs out of space part-way (a partial .rewrite
   * file), then more purges (which may remove files below their watermark
   * without a checkpoint), then a power loss and a reopen: the failed pass
   * must leave nothing that stops an open (issue 15, case 4).
   */
  async #failedCheckpoint(): Promise<void> {
    const scenario = this.#scenario;
    const rng = this.#rng;
    const full = scenario.inject({
      ops: ['write', 'preallocate'],
      path: '*.rewrite',
      when: { afterBytes: rng.between(0, 400), partial: true },
      error: 'ENOSPC',
    });
    await scenario.purge();
    full.remove();
    if (full.fired > 0) mark('gc.failed-checkpoint');
    for (let i = rng.between(1, 3); i > 0 && !scenario.failed; i--) await this.#purgeAndCompact();
    await scenario.powerLoss(rng.pick(this.#swarm.policies), this.#recoverOptions());
  }

  async #purgeAndCompact(): Promise<void> {
    const scenario = this.#scenario;
    const asked = await scenario.purge();
    if (scenario.failed || asked.length === 0 || !this.#rng.chance(0.7)) return;
    const items: ModelItem[] = [];
    for (const region of asked) {
      const current = scenario.history.latest.get(region);
      const last = lastIndexOf(current);
      if (current === undefined || last === undefined) continue;
      items.push({ kind: 'compact', region, index: this.#rng.between(current.first + 1, last + 1) });
    }
    if (items.length > 0) scenario.submit(items, this.#rng.chance(this.#swarm.syncP));
    await scenario.settle();
  }

  /** A short storm of injected errors; it must surface, and fail-stop the engine. */
  async #burst(): Promise<void> {
    const scenario = this.#scenario;
    const rng = this.#rng;
    const path = '*.raftlog';
    const menu: FaultRule[] = [
      { ops: ['write'], path, when: { probability: rng.pick([0.3, 1]) }, error: 'EIO' },
      { ops: ['sync'], path, when: { script: 'fail' }, error: 'EIO' },
      { ops: ['sync'], path, when: { script: 'pass,fail' }, error: 'EIO' },
      { ops: ['write', 'preallocate'], path, when: { afterBytes: rng.between(0, 6000), partial: rng.chance(0.5) }, error: 'ENOSPC' },
      { ops: ['preallocate'], path, when: { script: 'fail' }, error: 'EIO' },
      { ops: ['open'], path, when: { script: 'fail' }, error: 'EIO' },
      { ops: ['syncDir'], when: { script: 'fail' }, error: 'EIO' },
      { ops: ['sync'], path, when: { script: 'fail' }, error: 'ENOSPC' },
      { ops: ['write', 'sync', 'preallocate', 'open', 'syncDir'], when: { probability: 0.2 }, error: rng.pick(['EIO', 'ENOSPC'] as const) },
      // GC's own steps: checkpoint file, retiring files into the recycle pool, reuse.
      { ops: ['rename', 'remove', 'reuse'], when: { probability: 0.5 }, error: 'EIO' },
      { ops: ['write', 'sync', 'open'], path: '*.rewrite', when: { probability: 0.5 }, error: rng.pick(['EIO', 'ENOSPC'] as const) },
    ];
    const rules = [scenario.inject(rng.pick(menu))];
    if (rng.chance(0.3)) rules.push(scenario.inject(rng.pick(menu)));
    scenario.stats.bursts++;
    const failuresBefore = scenario.stats.failures + scenario.stats.purgeFailures;
    const writes = rng.between(1, 5);
    for (let i = 0; i < writes; i++) {
      this.#writes(rng.pick(['append', 'mixed', 'kv'] as const));
      if (rng.chance(0.3) && !scenario.failed) await scenario.purge();
      if (rng.chance(0.5)) await scenario.settle();
    }
    await scenario.settle();
    const fired = rules.reduce((n, rule) => n + rule.fired, 0);
    const remove = (): void => {
      for (const rule of rules) rule.remove();
    };
    scenario.note(`burst over: ${fired} fault(s) fired${scenario.failed ? ', engine failed' : ''}`);
    // Every fault these rules inject hits an operation a write or a purge is waiting on.
    const ids = new Set(rules.map((rule) => rule.id));
    const surfacing = scenario.fault.log.filter(
      (e) => e.rule !== undefined && ids.has(e.rule) && e.kind !== 'barrierLost' && !scenario.absorbedByDesign(e),
    );
    if (surfacing.length > 0 && scenario.stats.failures + scenario.stats.purgeFailures === failuresBefore) {
      scenario.violation('errors-surface', `${fired} injected fault(s) fired, yet every write and purge succeeded`);
    }
    if (rng.chance(0.25)) await scenario.restart(this.#recoverOptions(), remove);
    else remove();
  }

  /** After a failure: probe that writes are refused, then restart one way or another. */
  async #recoverFromFailure(): Promise<void> {
    const scenario = this.#scenario;
    const rng = this.#rng;
    const probes = rng.between(0, 2);
    for (let i = 0; i < probes; i++) scenario.probe(this.#batch('append', scenario.history.latest));
    await scenario.settle();
    const how = rng.weighted({ restart: 3, kill: 2, power: 3 });
    if (how === 'restart') await scenario.restart(this.#recoverOptions());
    else if (how === 'kill') await scenario.kill(this.#recoverOptions());
    else await scenario.powerLoss(rng.pick(this.#swarm.policies), this.#recoverOptions());
  }

  /** Submits 1..concurrency batches of a kind, each built on the state the previous one leads to. */
  #writes(kind: 'append' | 'overwrite' | 'compact' | 'clean' | 'kv' | 'mixed'): void {
    const scenario = this.#scenario;
    const count = this.#rng.between(1, this.#swarm.concurrency);
    for (let i = 0; i < count; i++) {
      const items = this.#batch(kind, scenario.history.latest);
      if (items.length === 0) continue;
      scenario.submit(items, this.#rng.chance(this.#swarm.syncP));
    }
  }

  #batch(kind: 'append' | 'overwrite' | 'compact' | 'clean' | 'kv' | 'mixed', state: ModelState): ModelItem[] {
    const rng = this.#rng;
    const items: ModelItem[] = [];
    // Items are planned against a running copy so that several items of one batch compose.
    let view = state;
    // LogBatch rejects, within one batch, entries that leave a gap after the
    // region's previous entries in the same batch, even when an earlier item
    // emptied the region (only clean resets it); plan around that.
    const lastInBatch = new Map<number, number>();
    const add = (item: ModelItem | undefined): void => {
      if (item === undefined) return;
      if (item.kind === 'entries') {
        const previous = lastInBatch.get(item.region);
        if (previous !== undefined && item.entries[0]!.index > previous + 1) return;
        lastInBatch.set(item.region, item.entries[item.entries.length - 1]!.index);
      }
      if (item.kind === 'clean') lastInBatch.delete(item.region);
      items.push(item);
      view = applyOne(view, item);
    };
    switch (kind) {
      case 'append':
        for (let i = rng.between(1, 3); i > 0; i--) add(this.#append(view, this.#region()));
        break;
      case 'overwrite':
        add(this.#overwrite(view, this.#region()) ?? this.#append(view, this.#region()));
        break;
      case 'compact':
        add(this.#compact(view, this.#region()));
        break;
      case 'clean':
        add({ kind: 'clean', region: this.#region() });
        break;
      case 'kv':
        if (rng.chance(0.5)) add(this.#append(view, this.#region()));
        for (let i = rng.between(1, 3); i > 0; i--) add(this.#keyOp());
        break;
      case 'mixed':
        for (let i = rng.between(2, 5); i > 0; i--) {
          const region = this.#region();
          const pick = rng.weighted({ append: 5, overwrite: 2, compact: 2, clean: 1, kv: 3 });
          if (pick === 'append') add(this.#append(view, region));
          else if (pick === 'overwrite') add(this.#overwrite(view, region));
          else if (pick === 'compact') add(this.#compact(view, region));
          else if (pick === 'clean') add({ kind: 'clean', region });
          else add(this.#keyOp());
        }
        break;
    }
    if (items.length === 0) add(this.#append(view, this.#region()));
    return items;
  }

  #region(): number {
    return 1 + this.#rng.below(this.#swarm.regions);
  }

  #append(state: ModelState, region: number): ModelItem {
    const last = lastIndexOf(state.get(region));
    // An empty region takes any index (a fresh or fully compacted Raft group).
    const start = last !== undefined ? last + 1 : 1 + this.#rng.below(40);
    return { kind: 'entries', region, entries: this.#entries(region, start, this.#term(region, false)) };
  }

  #overwrite(state: ModelState, region: number): ModelItem | undefined {
    const current = state.get(region);
    const last = lastIndexOf(current);
    if (current === undefined || last === undefined) return undefined;
    const start = Math.max(current.first, last - this.#rng.below(4));
    return { kind: 'entries', region, entries: this.#entries(region, start, this.#term(region, true)) };
  }

  #compact(state: ModelState, region: number): ModelItem | undefined {
    const current = state.get(region);
    const last = lastIndexOf(current);
    if (current === undefined || last === undefined) return undefined;
    return { kind: 'compact', region, index: this.#rng.between(Math.max(0, current.first - 1), last + 2) };
  }

  #keyOp(): ModelItem {
    const rng = this.#rng;
    const region = this.#region();
    const key = rng.pick(KEYS);
    if (rng.chance(0.25)) return { kind: 'delete', region, key };
    const value = new Uint8Array(rng.below(48));
    for (let i = 0; i < value.length; i++) value[i] = rng.below(256);
    return { kind: 'put', region, key, value };
  }

  #term(region: number, bump: boolean): number {
    const term = (this.#terms.get(region) ?? 1) + (bump ? 1 : 0);
    this.#terms.set(region, term);
    return term;
  }

  #entries(region: number, start: number, term: number): WrittenEntry[] {
    const rng = this.#rng;
    const count = rng.between(1, this.#swarm.entriesMax);
    const out: WrittenEntry[] = [];
    for (let i = 0; i < count; i++) {
      const index = start + i;
      // The prefix names the entry, so a misplaced entry can never compare equal.
      const prefix = new TextEncoder().encode(`${region}/${index}/${term}/${this.#nonce++}|`);
      const data = new Uint8Array(Math.max(prefix.length, rng.between(0, this.#swarm.entryBytesMax)));
      data.set(prefix);
      if (rng.chance(this.#swarm.compressibleP)) data.fill(0x61 + (index % 26), prefix.length);
      else for (let j = prefix.length; j < data.length; j++) data[j] = rng.below(256);
      out.push({ index, term, data });
    }
    return out;
  }
}

function applyOne(state: ModelState, item: ModelItem): ModelState {
  return applyItems(state, [item]);
}
