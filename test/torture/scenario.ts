/**
 * One torture scenario: an engine on a FaultFs, driven write by write, with
 * every acknowledgement, failure, restart, kill and power loss checked
 * against the reference model (model.ts). The generator (generator.ts) and
 * the scripted sweeps (sweeps.ts) both drive the engine through this class,
 * so every check below applies to both.
 *
 * Checks, and where they happen:
 *  - after every reopen (`#recover`), whether after a clean restart, a
 *    process kill (page cache kept, ProcessFs) or a power loss (a FaultFs
 *    crash image): the engine holds exactly some state of the history between
 *    the durability floor and the last attempted write (acknowledged syncs
 *    survive; batches are all-or-nothing; indexes are contiguous; nothing
 *    compacted, cleaned, deleted or purged comes back); opening never fails
 *    after a crash alone; a second open gives the same state and repairs
 *    nothing; an open may itself be cut by a power loss and the next one must
 *    still pass; an open with 0 bytes of free space must work;
 *  - on every settled write, barrier and purge (`#onAck`, `#onFail`,
 *    `purge`): errors are RaftlogErrors with an I/O-class code, appear only
 *    when a fault was armed, and after the first failure nothing is
 *    acknowledged until reopen;
 *  - `checkLive`: reads return exactly what was acknowledged;
 *  - `flipExperiment`: a clean close followed by a power loss loses nothing,
 *    and a bit flipped at rest gets the outcome the recovery case table
 *    promises (image.ts).
 * Any breach throws a Violation carrying the seed, the trace and the fault log.
 */
import { EncryptedFs, HEADER_BYTES as ENCRYPTION_HEADER_BYTES } from '../../backends/encrypted.js';
import { DICTIONARY_NAME, DICTIONARY_TMP_NAME } from '../../backends/encryption/dictionary.js';
import { FaultFs, type CrashPolicy, type FaultEvent, type FaultRule, type FaultRuleHandle } from '../../backends/fault.js';
import { MemFs } from '../../backends/memfs.js';
import { Engine, type EngineOptions } from '../../src/engine.js';
import { ErrorCode, isRaftlogError } from '../../src/errors.js';
import { INDEX_CHECKPOINT_NAME, INDEX_CHECKPOINT_TMP_NAME, MANIFEST_NAME, parseLogFileName } from '../../src/file-names.js';
import { FILE_HEADER_SIZE, RECORD_HEADER_SIZE } from '../../src/format/layout.js';
import type { FileSystem } from '../../src/filesystem.js';
import { RecoveryMode, type RecoveryProblem, type RecoveryReport } from '../../src/recovery/recovery.js';
import { readFile } from '../conformance/suite.js';
import {
  applyFlip,
  expectFlip,
  pickFlip,
  truncateImage,
  walkImage,
  type Flip,
  type FlipExpectation,
  type Image,
  type WalkedFile,
} from './image.js';
import { mark } from './marks.js';
import { History, applyItems, entryModel, hex, regionDigest, stateDigest, toLogBatch, valueDigest, type ModelItem } from './model.js';
import { ProcessFs } from './process-fs.js';
import { Random } from '../support/random.js';

/** Engine options a scenario varies (the rest stay at their defaults). */
export type EngineConfig = Required<
  Pick<
    EngineOptions,
    | 'recoveryMode'
    | 'targetFileSize'
    | 'preallocateBytes'
    | 'compressionThreshold'
    | 'purgeThreshold'
    | 'rewriteMaxEntries'
    | 'forceRewriteAfter'
    | 'recycleFiles'
    | 'prefillFiles'
  >
> &
  Pick<EngineOptions, 'indexCheckpointInterval'>;

export class Violation extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(message);
  }
  override get name(): string {
    return `Violation[${this.invariant}]`;
  }
}

export interface ScenarioStats {
  writes: number;
  acks: number;
  syncAcks: number;
  failures: number;
  powerLosses: number;
  restarts: number;
  kills: number;
  bursts: number;
  flips: number;
  /** Files deleted or truncated at rest (after a clean close) and reported as such. */
  lostFiles: number;
  zeroSpaceOpens: number;
  recoveryCrashes: number;
  reopenChecks: number;
  /** Flip experiments where the table let acknowledged-synced data be cut (see image.ts / report). */
  syncedLostToUnprovenFlip: number;
  /** …of which recovery reported nothing (recycled last file). */
  syncedLostSilently: number;
  /** Flips in the checkpoint in use: refused with CORRUPTION, or opened to the same state. */
  checkpointFlipRefused: number;
  checkpointFlipSame: number;
  purges: number;
  purgeFailures: number;
  /** A damaged header reported at its recycled predecessor's stale tail instead. */
  corruptionNamedPredecessor: number;
  /** Flip cuts that removed a compaction or clean whose dead data GC had already retired. */
  cutBelowGc: number;
}

export function emptyStats(): ScenarioStats {
  return {
    writes: 0,
    acks: 0,
    syncAcks: 0,
    failures: 0,
    powerLosses: 0,
    restarts: 0,
    kills: 0,
    bursts: 0,
    flips: 0,
    lostFiles: 0,
    zeroSpaceOpens: 0,
    recoveryCrashes: 0,
    reopenChecks: 0,
    syncedLostToUnprovenFlip: 0,
    syncedLostSilently: 0,
    checkpointFlipRefused: 0,
    checkpointFlipSame: 0,
    purges: 0,
    purgeFailures: 0,
    cutBelowGc: 0,
    corruptionNamedPredecessor: 0,
  };
}

/** Crash/fault scenarios a seed checked: each reopen after a restart, kill or power loss, each fault burst, each bit flip. */
export function scenarioCount(stats: ScenarioStats): number {
  return stats.reopenChecks + stats.bursts + stats.flips + stats.lostFiles;
}

/** What a reopen may add on top of a plain open. */
export interface RecoverOptions {
  /** Every growth fails with ENOSPC during the open (and the check reopen). */
  readonly zeroSpace?: boolean;
  /** Power cut after this many operations of the open; then crash with `recoveryCrashPolicy` and open again. */
  readonly crashDuringRecoveryAfter?: number;
  readonly recoveryCrashPolicy?: CrashPolicy;
  /** Open a second time and compare (default true). */
  readonly reopenTwice?: boolean;
}

export interface ScenarioOptions {
  /** Rules every FaultFs of the scenario carries from birth (short transfers). */
  readonly persistentRules?: readonly FaultRule[];
  /** Wraps the engine's FileSystem (the self-test uses it to break barriers). */
  readonly wrapFs?: (fs: FileSystem) => FileSystem;
  /**
   * Puts an EncryptedFs under this master key between the engine and the
   * disk: every crash, kill and fault then also lands on the key dictionary
   * and the per-file encryption headers.
   */
  readonly masterKey?: Uint8Array;
}

/** I/O-class codes a faulted write may fail with. */
const WRITE_FAILURE_CODES: ReadonlySet<string> = new Set([ErrorCode.IO, ErrorCode.NO_SPACE, ErrorCode.FSYNC_FAILED, ErrorCode.FAILED]);

const TRACE_LIMIT = 600;

export class Scenario {
  readonly seed: number;
  readonly config: EngineConfig;
  readonly history = new History();
  readonly stats: ScenarioStats = emptyStats();
  readonly #rng: Random;
  readonly #trace: string[] = [];
  /** Fault logs of FaultFs instances that died in power losses, newest last. */
  readonly #pastFaults: string[] = [];
  #fault: FaultFs;
  #process: ProcessFs;
  #engine: Engine | undefined;
  #incarnation = 0;
  #lastPolicy: string = 'none';
  readonly #observed: unknown[] = [];
  #pendingKill: number | undefined;

  // Per incarnation: write bookkeeping for the fail-stop and error checks.
  #serial = 0;
  #inFlight = new Set<Promise<void>>();
  #firstFailure: number | undefined;
  #firstFailureCode: string | undefined;
  #ackedSerials: number[] = [];
  /** History index of the newest acknowledged write (what live reads must show). */
  #applied = 0;
  /** A fault (rule, freeze, kill) is armed: failures are expected, not violations. */
  #faultsArmed = false;
  #sawFsyncFailed = false;
  /** Highest history index acknowledged durable by the engine itself (not by recovery). */
  #ackedDurable = 0;

  /**
   * Rules every FaultFs of this scenario carries from birth (short transfers):
   * they change how I/O happens, never whether it succeeds.
   */
  readonly #persistentRules: readonly FaultRule[];

  /** Sits between the engine and its disk: identity, except in the suite's self-test (a disk that lies). */
  readonly #wrapFs: (fs: FileSystem) => FileSystem;
  readonly #plainDisk: boolean;
  /** Periodic index checkpoints are written in this scenario. */
  readonly #periodicCheckpoints: boolean;
  readonly #masterKey: Uint8Array | undefined;

  /** Whether the engine runs on an EncryptedFs. */
  get encrypted(): boolean {
    return this.#masterKey !== undefined;
  }

  /** Operation indexes of the current FaultFs that ran inside engine.close(), as [from, to) ranges. */
  readonly #closeWindows: [number, number][] = [];

  /**
   * A fault nothing has to report, by design:
   * - ENOSPC on the seal a clean close appends after its final barrier (an
   *   empty record, exactly one record header): on a full disk the close
   *   skips it, as everything before it is durable already (docs/format.md).
   *   On an EncryptedFs the seal is several inner operations, so any ENOSPC
   *   inside a close that reached no caller counts: the close's own barrier
   *   fails loudly before the seal is tried.
   * - ENOSPC on the MANIFEST update a clean close makes to record where its
   *   seal ends (the clean end): like the seal, it only adds proof, and the
   *   close skips it on a full disk (docs/format.md, "The clean end").
   * - ENOSPC while a clean close gives back held space (cuts the active
   *   file's preallocated tail, removes recycled files): the close skips it.
   * - ENOSPC while EncryptedFs saves its key dictionary only to drop removed
   *   files' entries: the drop is deferred (freeing space must work on a full
   *   disk). The save writes the temp file, renames it and syncs the
   *   directory; a directory sync has no file name, so on an encrypted disk
   *   an ENOSPC there counts too (the unencrypted runs check that the
   *   engine's own directory syncs surface). A save that brings a new IV or
   *   generation is on a write path and does surface.
   */
  absorbedByDesign(event: FaultEvent): boolean {
    // A periodic index checkpoint is an optimization the engine gives up on any
    // error (src/file-set/index-checkpointer.ts): its files, and the directory
    // sync after its rename (which has no path to tell it from others: the
    // seeds with indexCheckpointInterval 0 check that one).
    if (this.#periodicCheckpoints && (this.#indexCheckpointFile(event) || event.op === 'syncDir')) return true;
    // On an EncryptedFs, creating INDEX.tmp saves the key dictionary: that save is the checkpoint's too.
    if (
      this.#periodicCheckpoints &&
      this.encrypted &&
      event.path.split('->').some((name) => name === DICTIONARY_NAME || name === DICTIONARY_TMP_NAME)
    )
      return true;
    if (event.kind !== 'ENOSPC') return false;
    if (event.op === 'write' && event.path.endsWith('.raftlog') && event.detail.startsWith(`write ${RECORD_HEADER_SIZE}@`)) return true;
    const inClose = this.#closeWindows.some(([from, to]) => event.opIndex >= from && event.opIndex < to);
    if (inClose && event.op === 'write' && event.path === MANIFEST_NAME) return true;
    // Giving back space at a clean close (cutting the active file, removing recycled files): skipped on a full disk.
    if (inClose && event.op === 'truncate' && event.path.endsWith('.raftlog')) return true;
    if (inClose && event.op === 'remove' && event.path.endsWith('.recycle')) return true;
    if (inClose && this.#indexCheckpointOp(event)) return true;
    if (!this.encrypted) return false;
    if (inClose) return true;
    if (event.op === 'syncDir') return true;
    return event.path.split('->').some((name) => name === DICTIONARY_NAME || name === DICTIONARY_TMP_NAME);
  }

  /**
   * An operation of a close's index checkpoint, which runs after the seal
   * (everything is durable): reading the headers and sizes of the log files
   * (append files and the GC checkpoint), then INDEX.tmp, its rename and the
   * directory sync. On a full disk the close
   * skips the checkpoint and the next open replays (src/engine.ts).
   */
  #indexCheckpointOp(event: FaultEvent): boolean {
    if (this.#indexCheckpointFile(event)) return true;
    // Every log file it covers: append files and the GC checkpoint (.rewrite).
    if ((event.op === 'read' || event.op === 'size') && (event.path.endsWith('.raftlog') || event.path.endsWith('.rewrite'))) return true;
    return event.op === 'syncDir';
  }

  #indexCheckpointFile(event: FaultEvent): boolean {
    return event.path.split('->').some((name) => name === INDEX_CHECKPOINT_NAME || name === INDEX_CHECKPOINT_TMP_NAME);
  }

  constructor(seed: number, config: EngineConfig, options: ScenarioOptions = {}) {
    this.seed = seed;
    this.config = config;
    this.#persistentRules = options.persistentRules ?? [];
    this.#wrapFs = options.wrapFs ?? ((fs) => fs);
    this.#plainDisk = options.wrapFs === undefined;
    // Even with the default interval (64 MiB, more than any scenario writes) one is due right after a purge.
    this.#periodicCheckpoints = config.indexCheckpointInterval !== 0;
    this.#masterKey = options.masterKey;
    this.#rng = Random.derive(seed, 'scenario');
    this.#fault = this.#newFault(new MemFs(), 'fault', 0);
    this.#process = new ProcessFs(this.#fault);
  }

  #newFault(disk: MemFs, label: string, ordinal: number): FaultFs {
    this.#closeWindows.length = 0; // operation indexes restart with every FaultFs
    const fault = new FaultFs(disk, { seed: Random.derive(this.seed, label, ordinal).u32() });
    for (const rule of this.#persistentRules) fault.inject(rule);
    return fault;
  }

  get fault(): FaultFs {
    return this.#fault;
  }

  get engine(): Engine {
    if (this.#engine === undefined) throw new Error('scenario: no engine is open');
    return this.#engine;
  }

  get isOpen(): boolean {
    return this.#engine !== undefined;
  }

  /** The engine refused or failed a write in this incarnation (so it must be reopened). */
  get failed(): boolean {
    return this.#firstFailure !== undefined;
  }

  get faultsArmed(): boolean {
    return this.#faultsArmed;
  }

  note(line: string): void {
    this.#trace.push(line);
    if (this.#trace.length > TRACE_LIMIT) this.#trace.splice(0, this.#trace.length - TRACE_LIMIT);
  }

  /** Throws a Violation carrying everything needed to replay and understand it. */
  violation(invariant: string, detail: string): never {
    const config = Object.entries(this.config)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    const message = [
      `seed=${this.seed} policy=${this.#lastPolicy} invariant=${invariant}`,
      detail,
      `config: ${config}`,
      `history: attempted=${this.history.attempted} floor=${this.history.floor} ackedDurable=${this.#ackedDurable}`,
      `trace (last ${this.#trace.length} steps):`,
      ...this.#trace.map((t) => `  ${t}`),
      ...this.#pastFaults.slice(-2).map((d, i, all) => `earlier FaultFs (${all.length - i} power loss(es) ago):\n${d}`),
      `current ${this.#fault.describe()}`,
    ].join('\n');
    throw new Violation(invariant, message);
  }

  // ---- engine life cycle ---------------------------------------------------

  /** Opens the first engine on the empty disk. */
  async start(): Promise<void> {
    this.note('open (empty disk)');
    try {
      this.#engine = await this.#newEngine();
    } catch (error) {
      this.violation('open', `opening an empty disk failed: ${describeError(error)}`);
    }
  }

  /**
   * Opens the first engine when a fault may stop it (sweeps arm faults
   * before the open). Returns whether it opened; a failure must be one a
   * fault explains.
   */
  async tryStart(): Promise<boolean> {
    this.note('open (empty disk, faults armed)');
    try {
      this.#engine = await this.#newEngine();
      return true;
    } catch (error) {
      this.#observe(error);
      if (!this.#faultsArmed || !isRaftlogError(error) || !WRITE_FAILURE_CODES.has(error.code)) {
        this.violation('open', `opening an empty disk failed: ${describeError(error)}`);
      }
      this.note(`open failed: ${describeError(error)}`);
      return false;
    }
  }

  /** Every error an engine call reported in this scenario, for checks that injected faults surface. */
  get observedErrors(): readonly unknown[] {
    return this.#observed;
  }

  #observe(error: unknown): void {
    this.#observed.push(error);
  }

  /** Calls the current process made through the seam (for kill sweeps). */
  get processCalls(): number {
    return this.#process.calls;
  }

  /** The current engine's open loaded an index checkpoint (a clean close wrote it, with `indexCheckpoint` on by default). */
  #loadedCheckpoint = false;

  async #newEngine(): Promise<Engine> {
    this.#incarnation++;
    this.#process = new ProcessFs(this.#fault);
    if (this.#pendingKill !== undefined) this.#process.killAfter(this.#pendingKill);
    this.#pendingKill = undefined;
    const engine = new Engine({
      ...this.config,
      fs: this.#wrapFs(encryptedOver(this.#process, this.#masterKey)),
      seed: Random.derive(this.seed, 'engine', this.#incarnation).u32(),
    });
    await engine.open();
    this.#loadedCheckpoint = engine.recoveryReport?.indexCheckpoint?.used === true;
    return engine;
  }

  #resetIncarnation(): void {
    this.#serial = 0;
    this.#inFlight = new Set();
    this.#firstFailure = undefined;
    this.#firstFailureCode = undefined;
    this.#ackedSerials = [];
    this.#faultsArmed = false;
    this.#sawFsyncFailed = false;
  }

  // ---- writes ---------------------------------------------------------------

  /** Submits a batch without waiting; the model records it as attempted. */
  submit(items: readonly ModelItem[], sync: boolean): void {
    const engine = this.engine;
    const index = this.history.push(applyItems(this.history.latest, items));
    const serial = this.#serial++;
    this.stats.writes++;
    this.note(`#${serial} write h${index}${sync ? ' sync' : ''}: ${describeItems(items)}`);
    const batch = toLogBatch(items);
    this.#track(
      engine.write(batch, { sync }).then(
        () => this.#onAck(serial, index, sync),
        (error: unknown) => this.#onFail(serial, error),
      ),
    );
  }

  /** `engine.sync()`: a barrier for everything acknowledged before it. */
  barrier(): void {
    const engine = this.engine;
    const index = this.history.attempted;
    const serial = this.#serial++;
    this.note(`#${serial} sync() covering h${index}`);
    this.#track(
      engine.sync().then(
        () => this.#onAck(serial, index, true),
        (error: unknown) => this.#onFail(serial, error),
      ),
    );
  }

  /**
   * A write after a failure: it must be refused (FAILED) and must never reach
   * the log, so the model does not record it; if recovery later shows it,
   * the state matches no history entry.
   */
  probe(items: readonly ModelItem[]): void {
    const serial = this.#serial++;
    this.note(`#${serial} probe write after failure: ${describeItems(items)}`);
    this.#track(
      this.engine.write(toLogBatch(items), { sync: this.#rng.chance(0.5) }).then(
        () => this.violation('fail-stop', `probe write #${serial} was acknowledged after the engine failed (${this.#firstFailureCode})`),
        (error: unknown) => {
          if (!isRaftlogError(error) || (error.code !== ErrorCode.FAILED && error.code !== ErrorCode.CLOSED)) {
            this.violation('fail-stop', `probe write #${serial} after failure got ${describeError(error)}, expected FAILED`);
          }
          if (this.#sawFsyncFailed && error.code === ErrorCode.FAILED) mark('write.fsync-failed-failstop');
        },
      ),
    );
  }

  /**
   * `purgeExpiredFiles()`: changes files, never the logical state. A failed
   * purge leaves the engine writable unless a barrier failed (then it
   * fail-stops like a write). Resolves to the regions GC asks to compact.
   */
  purge(): Promise<number[]> {
    const serial = this.#serial++;
    this.stats.purges++;
    this.note(`#${serial} purgeExpiredFiles()`);
    let regions: number[] = [];
    const engine = this.engine;
    const done = engine.purgeExpiredFiles().then(
      async (asked) => {
        regions = asked;
        this.#ackedSerials.push(serial);
        const files = (await this.#fault.unwrap().list()).filter((n) => n !== 'LOCK').sort();
        this.note(`#${serial} purge done${asked.length > 0 ? `, compact regions ${asked.join(', ')}` : ''}; files: ${files.join(' ')}`);
      },
      (error: unknown) => {
        this.stats.purgeFailures++;
        this.#observe(error);
        const code = isRaftlogError(error) ? error.code : undefined;
        this.note(`#${serial} purge failed: ${describeError(error)}`);
        if (code === undefined || !WRITE_FAILURE_CODES.has(code))
          this.violation('error-code', `purge #${serial} failed with ${describeError(error)}`);
        if (!this.#faultsArmed)
          this.violation('unexpected-failure', `purge #${serial} failed with no fault armed: ${describeError(error)}`);
        // A failed barrier (or an earlier failure) stops the engine; other purge errors leave it writable.
        if (code === ErrorCode.FSYNC_FAILED || code === ErrorCode.FAILED || engine.stats().failed) this.#recordFailure(serial, code);
      },
    );
    this.#track(done);
    return done.then(() => regions);
  }

  #recordFailure(serial: number, code: string): void {
    if (this.#firstFailure === undefined || serial < this.#firstFailure) {
      this.#firstFailure = serial;
      this.#firstFailureCode = code;
    }
  }

  #track(promise: Promise<void>): void {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise)).catch(() => undefined);
  }

  #onAck(serial: number, index: number, sync: boolean): void {
    this.stats.acks++;
    this.#ackedSerials.push(serial);
    if (index > this.#applied) this.#applied = index;
    if (sync) {
      this.stats.syncAcks++;
      this.history.raiseFloor(index);
      if (index > this.#ackedDurable) this.#ackedDurable = index;
    }
  }

  #onFail(serial: number, error: unknown): void {
    this.stats.failures++;
    this.#observe(error);
    const code = isRaftlogError(error) ? error.code : undefined;
    this.note(`#${serial} failed: ${describeError(error)}`);
    if (code === undefined || !WRITE_FAILURE_CODES.has(code)) {
      this.violation('error-code', `write #${serial} failed with ${describeError(error)}; expected IO, NO_SPACE, FSYNC_FAILED or FAILED`);
    }
    if (!this.#faultsArmed) this.violation('unexpected-failure', `write #${serial} failed with no fault armed: ${describeError(error)}`);
    this.#recordFailure(serial, code);
    if (code === ErrorCode.FSYNC_FAILED) this.#sawFsyncFailed = true;
    if (code === ErrorCode.NO_SPACE) mark('write.enospc');
    if (code === ErrorCode.IO && !this.#process.dead && !this.#fault.crashed && !this.#fault.frozen) mark('write.eio');
    if (code === ErrorCode.FAILED && this.#sawFsyncFailed) mark('write.fsync-failed-failstop');
  }

  /** Waits for every submitted write; checks nothing was acknowledged after the first failure. */
  async settle(): Promise<void> {
    // Bounded: each settled promise leaves the set, and settling adds none.
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    const first = this.#firstFailure;
    if (first === undefined) return;
    const late = this.#ackedSerials.filter((s) => s > first);
    if (late.length > 0) {
      this.violation('fail-stop', `write(s) #${late.join(', #')} acknowledged after write #${first} failed (${this.#firstFailureCode})`);
    }
  }

  /** Arms a fault rule for this incarnation; failures become expected. */
  inject(rule: FaultRule): FaultRuleHandle {
    this.#faultsArmed = true;
    const handle = this.#fault.inject(rule);
    this.note(
      `inject rule ${handle.id}: ${rule.error} on ${rule.ops === 'any' ? 'any' : rule.ops.join('|')} when ${JSON.stringify(rule.when)}`,
    );
    return handle;
  }

  /** Cuts the power after `ops` more FileSystem operations (the crash itself comes with `powerLoss`). */
  armPowerCut(ops: number): void {
    this.#faultsArmed = true;
    const at = this.#fault.opIndex + ops;
    this.note(`power cut armed after op ${at}`);
    this.#fault.freezeAt(at);
  }

  /** Reads must show exactly the acknowledged writes (and nothing failed or refused). */
  async checkLive(): Promise<void> {
    await this.settle();
    const digest = await this.#readState('live');
    const expected = stateDigest(this.history.state(this.#applied));
    if (digest !== expected) {
      this.violation(
        'read-your-writes',
        `live reads differ from the state after the last acknowledged write h${this.#applied}\n${diff(expected, digest)}`,
      );
    }
  }

  // ---- restarts and crashes -------------------------------------------------------

  /** Clean restart: close (which syncs unless the engine failed), open again. */
  async restart(options: RecoverOptions = {}, beforeReopen?: () => void): Promise<void> {
    this.stats.restarts++;
    if (this.#engine !== undefined) await this.close();
    // A shutdown during a disk problem: the fault clears only after the close.
    beforeReopen?.();
    await this.#recover('restart', options);
  }

  /** Closes the engine (which syncs unless it failed); the next step must reopen or crash. */
  async close(): Promise<void> {
    await this.settle();
    const engine = this.engine;
    // close() syncs only an engine that has not failed.
    const failed = this.failed || engine.stats().failed;
    this.note(`close${failed ? ' a failed engine' : ''}`);
    let closed = false;
    const from = this.#fault.opIndex;
    try {
      await engine.close();
      closed = true;
    } catch (error) {
      this.#observe(error);
      if (!this.#faultsArmed) this.violation('close', `close failed with no fault armed: ${describeError(error)}`);
      this.note(`close failed: ${describeError(error)}`);
    } finally {
      this.#closeWindows.push([from, this.#fault.opIndex + 1]);
    }
    // A successful close of a healthy engine is a barrier for everything acknowledged.
    if (closed && !failed) {
      this.history.raiseFloor(this.history.attempted);
      this.#ackedDurable = Math.max(this.#ackedDurable, this.history.attempted);
    }
    this.#engine = undefined;
  }

  /** The process dies after `ops` more FileSystem calls (the restart comes with `kill`). */
  armKill(ops: number): void {
    this.#faultsArmed = true;
    this.note(`kill armed after ${ops} more call(s)`);
    // Before the first open, the budget goes to the process the open creates.
    if (this.#engine === undefined) this.#pendingKill = ops;
    else this.#process.killAfter(ops);
  }

  /** Kills the process (no power loss), then restarts on the same page cache. */
  async kill(options: RecoverOptions = {}): Promise<void> {
    this.stats.kills++;
    this.note('kill -9 (page cache survives)');
    this.#faultsArmed = true;
    await this.#process.kill();
    await this.settle();
    this.#engine = undefined;
    await this.#recover('kill', options);
    mark('restart.kill');
  }

  /** Power loss now (in-flight writes die with it), then reopen on what the crash left. */
  async powerLoss(policy: CrashPolicy, options: RecoverOptions = {}): Promise<void> {
    this.stats.powerLosses++;
    this.#faultsArmed = true;
    const files = (await this.#fault.unwrap().list()).filter((n) => n.endsWith('.raftlog')).length;
    const memfs = await this.#crash(policy);
    await this.settle();
    this.#engine = undefined;
    if (files > 1) mark('recovery.multi-file');
    this.#fault = this.#newFault(memfs, 'fault', this.stats.powerLosses);
    await this.#recover('power', options);
  }

  async #crash(policy: CrashPolicy): Promise<MemFs> {
    this.#lastPolicy = typeof policy === 'string' ? policy : `${policy.data}/${policy.dir}`;
    this.note(`power loss, policy ${this.#lastPolicy}`);
    const memfs = await this.#fault.crash(policy);
    this.#pastFaults.push(this.#fault.describe());
    if (this.#pastFaults.length > 3) this.#pastFaults.shift();
    return memfs;
  }

  /**
   * Opens after a restart, kill or power loss and checks the state against
   * the history. Only a power loss makes what was read durable.
   */
  async #recover(kind: 'restart' | 'kill' | 'power', options: RecoverOptions): Promise<void> {
    this.#resetIncarnation();
    // A kill or power loss after an open that loaded a checkpoint (which keeps it): the next open may load it again.
    const crashedOverCheckpoint = kind !== 'restart' && this.#loadedCheckpoint && options.crashDuringRecoveryAfter === undefined;
    if (options.crashDuringRecoveryAfter !== undefined) await this.#interruptedRecovery(options);
    let zeroSpace: FaultRuleHandle | undefined;
    if (options.zeroSpace === true) {
      zeroSpace = this.#fault.inject({ ops: 'any', when: { afterBytes: 0 }, error: 'ENOSPC' });
      this.note('open with 0 bytes free (ENOSPC on every growth)');
    }
    // The disk as this open finds it, to compare with a full replay of it (not under the self-test's lying disk).
    const inner = this.#fault.unwrap();
    const before = kind !== 'restart' && this.#plainDisk && inner instanceof MemFs ? inner.snapshot() : undefined;
    let engine: Engine;
    try {
      engine = await this.#newEngine();
    } catch (error) {
      this.violation(zeroSpace === undefined ? 'open' : 'zero-space-open', `open after ${kind} failed: ${describeError(error)}`);
    }
    const digest = await this.#readState('recovered', engine);
    if (before !== undefined) await this.#compareWithFullReplay(before, digest, kind, engine);
    const index = this.history.match(digest);
    if (index === undefined) {
      const floor = stateDigest(this.history.state(this.history.floor));
      const latest = stateDigest(this.history.latest);
      this.violation(
        'prefix',
        `after ${kind}, the recovered state is none of the states h${this.history.floor}..h${this.history.attempted}` +
          `${describeReport(engine.recoveryReport)}\n-- vs floor state h${this.history.floor}:\n${diff(floor, digest)}\n-- vs latest state h${this.history.attempted}:\n${diff(latest, digest)}`,
      );
    }
    this.note(
      `reopened (${kind}) at h${index} of h${this.history.floor}..h${this.history.attempted}${describeReport(engine.recoveryReport)}`,
    );
    this.stats.reopenChecks++;
    this.history.truncate(index);
    // After a power loss what recovery read is the disk; otherwise it may be page cache only.
    if (kind === 'power' || options.crashDuringRecoveryAfter !== undefined) this.history.raiseFloor(index);
    this.#ackedDurable = Math.min(this.#ackedDurable, index);
    this.#applied = index;
    const problems = engine.recoveryReport?.problems ?? [];
    if (problems.some((p) => p.action === 'cut')) mark('recovery.torn-tail-cut');
    if (problems.some((p) => p.action === 'removed-file')) mark('recovery.header-removed');
    this.#engine = engine;
    const checkpoint = engine.recoveryReport?.indexCheckpoint;
    if (crashedOverCheckpoint && before !== undefined) mark('recovery.index-checkpoint-crash');
    if (kind === 'restart' && checkpoint?.used === true) mark('recovery.index-checkpoint-loaded');
    if (options.reopenTwice !== false) await this.#reopenAndCompare(digest, kind);
    if (zeroSpace !== undefined) {
      this.stats.zeroSpaceOpens++;
      if ((await this.#fault.unwrap().list()).some((n) => n.endsWith('.raftlog'))) mark('recovery.zero-space-open');
      zeroSpace.remove();
      this.note('free space is back');
    }
  }

  /**
   * An open after a kill or power loss that loaded an index checkpoint and
   * replayed the tail after it must recover exactly what a full replay of the
   * same disk recovers (a copy opened with `indexCheckpoint: false`).
   */
  async #compareWithFullReplay(image: Image, digest: string, kind: string, engine: Engine): Promise<void> {
    const checkpoint = engine.recoveryReport?.indexCheckpoint;
    if (checkpoint?.used !== true) return;
    const full = await openImage(
      image,
      this.config.recoveryMode ?? RecoveryMode.TolerateTailCorruption,
      this.config,
      this.seed,
      this.#masterKey,
    );
    if (full.engine === undefined) {
      this.violation(
        'checkpoint-tail',
        `after ${kind}, open loaded the index checkpoint, but a full replay of the same disk fails: ${describeError(full.error)}`,
      );
    }
    const replayed = await this.#readState('full replay', full.engine);
    await full.engine.close();
    if (replayed !== digest) {
      this.violation(
        'checkpoint-tail',
        `after ${kind}, checkpoint + tail (${JSON.stringify(checkpoint)}) differs from a full replay\n${diff(replayed, digest)}`,
      );
    }
    if ((checkpoint.tailRecords ?? 0) > 0) mark('recovery.index-checkpoint-tail');
  }

  /** Reopening twice gives the same state, and the second open repairs nothing. */
  async #reopenAndCompare(digest: string, kind: string): Promise<void> {
    try {
      await this.engine.close();
    } catch (error) {
      this.violation('reopen-idempotent', `closing the freshly recovered engine failed: ${describeError(error)}`);
    }
    let again: Engine;
    try {
      again = await this.#newEngine();
    } catch (error) {
      this.violation('reopen-idempotent', `second open after ${kind} failed: ${describeError(error)}`);
    }
    const second = await this.#readState('reopened', again);
    // After a kill or power loss the first open replayed the log; this one, after a clean close, loads the checkpoint: the two must agree.
    if (again.recoveryReport?.indexCheckpoint?.used === true && second === digest) mark('recovery.index-checkpoint-loaded');
    if (second !== digest)
      this.violation('reopen-idempotent', `second open after ${kind} gives a different state\n${diff(digest, second)}`);
    const problems = again.recoveryReport?.problems ?? [];
    if (problems.length > 0)
      this.violation('reopen-idempotent', `second open after ${kind} repaired again:${describeReport(again.recoveryReport)}`);
    this.#engine = again;
  }

  /** A power cut inside the open itself; the crash image of that must recover too. */
  async #interruptedRecovery(options: RecoverOptions): Promise<void> {
    const after = options.crashDuringRecoveryAfter!;
    this.stats.recoveryCrashes++;
    this.#fault.freezeAt(this.#fault.opIndex + after);
    this.note(`open with a power cut after ${after} op(s)`);
    let interrupted = false;
    try {
      const engine = await this.#newEngine();
      // Recovery finished before the cut; the engine dies with the power.
      this.note('open finished before the cut');
      void engine;
    } catch (error) {
      interrupted = true;
      // Only the power cut may stop this open (as IO, or FSYNC_FAILED when it
      // hits a barrier); anything else is an open failure of its own.
      const cut = this.#fault.frozen && (isRaftlogError(error, ErrorCode.IO) || isRaftlogError(error, ErrorCode.FSYNC_FAILED));
      if (!cut) this.violation('open', `open failed before the power cut: ${describeError(error)}`);
      this.note(`open interrupted: ${describeError(error)}`);
    }
    if (!this.#fault.frozen) this.#fault.freeze();
    const memfs = await this.#crash(options.recoveryCrashPolicy ?? 'mixed');
    this.#fault = this.#newFault(memfs, 'fault-recovery', this.stats.recoveryCrashes);
    if (interrupted) mark('recovery.crash-during-recovery');
  }

  /**
   * Flips one bit of a settled log at rest (between two boots) and checks
   * what recovery does against the case table. A side experiment: the
   * scenario continues on the undamaged image.
   */
  async flipExperiment(rng: Random, mode: RecoveryMode): Promise<void> {
    await this.settle();
    if (this.failed) return;
    this.stats.flips++;
    const before = await this.#readState('before flip');
    const beforeIndex = this.history.match(before, 0) ?? this.violation('read-your-writes', 'state before the flip is not in the history');
    this.note('close, power loss (dropUnsynced), bit rot, reopen');
    await this.engine.close();
    this.#engine = undefined;
    // A cleanly closed engine has nothing unsynced: the durable image is the log.
    const raw: Image = (await this.#crash('dropUnsynced')).snapshot();
    // The oracle reads the log as the engine sees it: decrypted, when encrypted.
    const image = this.#masterKey === undefined ? raw : await decryptImage(raw, this.#masterKey);
    // First the undamaged image, on which the scenario continues: a clean
    // close followed by a power loss must lose nothing the engine served.
    this.#fault = this.#newFault(MemFs.fromSnapshot(raw), 'fault-flip', this.stats.flips);
    this.#resetIncarnation();
    try {
      this.#engine = await this.#newEngine();
    } catch (error) {
      this.violation('clean-close', `after a clean close and a power loss the log does not open: ${describeError(error)}`);
    }
    const after = await this.#readState('after clean close and power loss');
    if (after !== before) this.violation('clean-close', `a clean close then a power loss changed the state\n${diff(before, after)}`);
    let files: WalkedFile[];
    try {
      files = walkImage(image);
    } catch (error) {
      this.violation('clean-close', `after a clean close the durable image is not a settled log: ${String(error)}`);
    }
    const flip = pickFlip(files, rng);
    if (flip !== undefined) await this.#checkFlip(raw, image, files, flip, mode, beforeIndex, before);
  }

  /**
   * Deletes or truncates a file the log needs, at rest after a clean close
   * (an operator's mistake, a lost disk block): the newest append file, the
   * GC checkpoint in use, an older append file cut short, the MANIFEST, or
   * the newest append file cut at a record boundary (its seal gone). `mode`
   * (AbsoluteConsistency or TolerateTailCorruption) must refuse with
   * CORRUPTION naming that file, TolerateAnyCorruption must open and report
   * it: never a smaller log served as if whole. A side experiment: the
   * scenario continues on the undamaged image.
   */
  async lostFileExperiment(rng: Random, mode: RecoveryMode): Promise<void> {
    await this.settle();
    if (this.failed) return;
    this.note('close, power loss (dropUnsynced), lose a file, reopen');
    await this.engine.close();
    this.#engine = undefined;
    const raw: Image = (await this.#crash('dropUnsynced')).snapshot();
    const key = this.#masterKey;
    const image = key === undefined ? raw : await decryptImage(raw, key);
    this.stats.lostFiles++;
    this.#fault = this.#newFault(MemFs.fromSnapshot(raw), 'fault-lost', this.stats.lostFiles);
    this.#resetIncarnation();
    try {
      this.#engine = await this.#newEngine();
    } catch (error) {
      this.violation('clean-close', `after a clean close and a power loss the log does not open: ${describeError(error)}`);
    }
    const files = walkImage(image);
    const appends = files.filter((f) => f.role === 'append');
    const checkpoint = files.find((f) => f.role === 'checkpoint');
    if (appends.length === 0 || appends[0]!.listed !== true) return;
    const older = appends.slice(0, -1).filter((f) => f.dataEnd > FILE_HEADER_SIZE);
    const newest = appends[appends.length - 1]!;
    // A clean close ends the newest file with a seal (an empty record), unless it holds no record.
    const sealed =
      newest.records.length > 0 &&
      newest.records[newest.records.length - 1]!.payloadEnd - newest.records[newest.records.length - 1]!.offset === RECORD_HEADER_SIZE;
    const how = rng.weighted({
      'delete-newest': 3,
      'delete-checkpoint': checkpoint === undefined ? 0 : 2,
      'truncate-older': older.length === 0 ? 0 : 2,
      'delete-manifest': 2,
      'truncate-newest-at-record': sealed ? 2 : 0,
    });
    const damaged: Image = new Map(raw);
    let target: string;
    if (how === 'delete-manifest') {
      // The log files' headers say a MANIFEST governed them.
      target = MANIFEST_NAME;
      damaged.delete(target);
    } else if (how === 'truncate-newest-at-record') {
      // At a record boundary: the seal, or the seal and records before it, gone; no damage to see.
      target = newest.name;
      const at = rng.pick(newest.records).offset + (key === undefined ? 0 : ENCRYPTION_HEADER_BYTES);
      damaged.set(target, raw.get(target)!.subarray(0, at));
    } else if (how === 'delete-newest') {
      target = appends[appends.length - 1]!.name;
      damaged.delete(target);
    } else if (how === 'delete-checkpoint') {
      target = checkpoint!.name;
      damaged.delete(target);
    } else {
      const file = rng.pick(older);
      target = file.name;
      // Below where its successor's header says it ends: the chain proves the loss.
      const at = rng.between(FILE_HEADER_SIZE, file.dataEnd - 1) + (key === undefined ? 0 : ENCRYPTION_HEADER_BYTES);
      damaged.set(target, raw.get(target)!.subarray(0, at));
    }
    this.note(`${how} ${target}: expect CORRUPTION naming it under ${mode}, a report under TolerateAnyCorruption`);
    const strict = await openImage(damaged, mode, this.config, this.seed, key);
    await strict.engine?.close();
    if (!isRaftlogError(strict.error, ErrorCode.CORRUPTION) || strict.error.file !== target) {
      this.violation(
        'lost-file',
        `${how} ${target}, ${mode}: expected CORRUPTION naming it; got ${strict.error === undefined ? 'an open engine' : describeError(strict.error)}`,
      );
    }
    const any = await openImage(damaged, RecoveryMode.TolerateAnyCorruption, this.config, this.seed, key);
    const problems = any.engine?.recoveryReport?.problems ?? [];
    await any.engine?.close();
    if (any.engine === undefined)
      this.violation('lost-file', `${how} ${target}, TolerateAnyCorruption: does not open: ${describeError(any.error)}`);
    if (!problems.some((p) => p.file === target)) {
      this.violation('lost-file', `${how} ${target}, TolerateAnyCorruption: opened without reporting it${describeProblems(problems)}`);
    }
    mark('recovery.lost-file');
    if (how === 'delete-manifest') mark('recovery.lost-manifest');
    if (how === 'truncate-newest-at-record') mark('recovery.clean-end-cut');
  }

  /** `raw` is the disk; `image` the log the engine reads from it (the same map unless encrypted). */
  async #checkFlip(
    raw: Image,
    image: Image,
    files: readonly WalkedFile[],
    flip: Flip,
    mode: RecoveryMode,
    beforeIndex: number,
    before: string,
  ): Promise<void> {
    const key = this.#masterKey;
    // AES-CTR maps a flipped ciphertext bit to the same plaintext bit, one
    // encryption header further into the file; a flip past the file's
    // high-water mark changes nothing the engine can read.
    const flippedRaw =
      key === undefined ? applyFlip(raw, flip) : applyFlip(raw, { ...flip, offset: flip.offset + ENCRYPTION_HEADER_BYTES });
    const unread = key !== undefined && sameBytes((await decryptImage(flippedRaw, key)).get(flip.file)!, image.get(flip.file)!);
    const expectation: FlipExpectation = unread
      ? { kind: 'same', why: 'past the encryption high-water mark: reads as zeros' }
      : expectFlip(files, flip, mode);
    this.note(
      `flip bit ${flip.bit} of ${flip.file}@${flip.offset} (${flip.where}) under ${mode}: expect ${expectation.kind} (${expectation.why})`,
    );
    const opened = await openImage(flippedRaw, mode, this.config, this.seed, key);
    const problems = opened.engine?.recoveryReport?.problems ?? [];
    const state = opened.engine === undefined ? undefined : await this.#readState('flipped', opened.engine);
    await opened.engine?.close();
    const outcome = opened.error !== undefined ? describeError(opened.error) : `opened${describeProblems(problems)}`;
    const fail: (detail: string) => never = (detail) =>
      this.violation(
        'at-rest-damage',
        `flip bit ${flip.bit} of ${flip.file}@${flip.offset} (${flip.where}), ${mode}: expected ${expectation.kind} (${expectation.why}); ${detail}; got ${outcome}`,
      );
    switch (expectation.kind) {
      case 'corruption': {
        const error = opened.error;
        if (!isRaftlogError(error, ErrorCode.CORRUPTION)) fail('no CORRUPTION');
        const named = (at: { readonly file: string; readonly offset: number } | undefined): boolean =>
          at !== undefined && error.file === at.file && error.offset === at.offset;
        if (!named(expectation) && !named(expectation.or)) fail(`CORRUPTION must name ${expectation.file}@${expectation.offset}`);
        if (!named(expectation)) this.stats.corruptionNamedPredecessor++;
        mark(expectation.offset === 0 ? 'recovery.corrupt-header' : 'recovery.corruption-middle');
        return;
      }
      case 'same':
      case 'removed':
        if (state === undefined) fail('open failed');
        if (state !== before) fail(`state changed\n${diff(before, state)}`);
        if (expectation.kind === 'same' && problems.length > 0) fail('problems reported for an unchecked byte');
        if (expectation.kind === 'removed' && !problems.some((p) => p.action === 'removed-file' && p.file === expectation.file))
          fail('no removed-file problem');
        return;
      case 'corruption-or-same':
        if (opened.error !== undefined) {
          if (!isRaftlogError(opened.error, ErrorCode.CORRUPTION) || opened.error.file === undefined)
            fail('refused, but not with CORRUPTION naming a file');
          this.stats.checkpointFlipRefused++;
        } else if (state !== before) {
          fail(`state changed\n${diff(before, state ?? '')}`);
        } else {
          this.stats.checkpointFlipSame++;
        }
        mark('recovery.checkpoint-flip');
        return;
      case 'cut':
      case 'silent-cut': {
        if (state === undefined) fail('open failed');
        if (
          expectation.kind === 'cut' &&
          !problems.some((p) => p.action === 'cut' && p.file === expectation.file && p.offset === expectation.offset)
        ) {
          fail(`no 'cut' problem at ${expectation.file}@${expectation.offset}`);
        }
        const reference = await openImage(
          truncateImage(image, expectation.file, expectation.offset),
          RecoveryMode.TolerateTailCorruption,
          this.config,
          this.seed,
        );
        if (reference.engine === undefined)
          fail(`the reference (file cut at ${expectation.offset}) does not open: ${describeError(reference.error)}`);
        const cut = await this.#readState('reference cut', reference.engine);
        await reference.engine.close();
        if (state !== cut) fail(`state differs from the log cut at ${expectation.offset}\n${diff(cut, state)}`);
        const index = this.history.match(cut, 0, beforeIndex);
        if (index === undefined) {
          // After GC the cut can drop a compaction or clean whose dead data
          // was already retired: the state is then the prefix minus that
          // data, a state no write sequence produced. Without GC it must be
          // a prefix. (A failed purge may have retired files before failing.)
          if (this.stats.purges === 0) fail('the cut state is no prefix of the history');
          this.stats.cutBelowGc++;
          this.note('the cut state is a prefix minus data GC had retired');
          mark(expectation.kind === 'cut' && expectation.proven ? 'recovery.tail-cut-proven' : 'recovery.unproven-damage-cut');
          return;
        }
        const proven = expectation.kind === 'cut' && expectation.proven;
        if (index < this.#ackedDurable) {
          // Acknowledged-synced data is gone. The table allows it (the damage
          // is in the last file and nothing after it proves it durable, or
          // TolerateTail chose to cut proven data); counted and reported.
          if (!proven) this.stats.syncedLostToUnprovenFlip++;
          if (expectation.kind === 'silent-cut') this.stats.syncedLostSilently++;
          this.note(
            `flip cut acknowledged-synced writes h${index + 1}..h${this.#ackedDurable} (${proven ? 'proven, TolerateTail' : expectation.kind === 'silent-cut' ? 'unproven, unreported' : 'unproven'})`,
          );
        }
        if (expectation.kind === 'cut') mark(proven ? 'recovery.tail-cut-proven' : 'recovery.unproven-damage-cut');
        return;
      }
    }
  }

  /** Final check: close cleanly, lose power, and find every write. */
  async finish(): Promise<void> {
    await this.settle();
    if (this.failed) await this.restart();
    await this.checkLive();
    await this.restart({ reopenTwice: false });
    await this.powerLoss('dropUnsynced');
    if (this.history.floor !== this.history.attempted)
      this.violation('durability', 'after a clean close and a power loss, not every write is there');
    await this.engine.close();
    this.#engine = undefined;
  }

  /** Abandons the scenario (after a violation): nothing may keep running. */
  async abandon(): Promise<void> {
    await this.#process.kill().catch(() => undefined);
  }

  // ---- reading the engine -------------------------------------------------------------

  /** The engine's whole state as a digest comparable with `stateDigest`, checking read invariants on the way. */
  async #readState(what: string, engine: Engine = this.engine): Promise<string> {
    const lines: string[] = [];
    try {
      for (const region of engine.raftGroups()) {
        const first = engine.firstIndex(region);
        const last = engine.lastIndex(region);
        if ((first === undefined) !== (last === undefined) || (first !== undefined && last! < first)) {
          this.violation('index-contiguity', `${what}: region ${region} has firstIndex ${first} and lastIndex ${last}`);
        }
        const entries = first === undefined ? [] : await engine.fetchEntriesTo(region, first, last! + 1);
        entries.forEach((entry, i) => {
          if (entry.index !== first! + i)
            this.violation('index-contiguity', `${what}: region ${region} entry ${i} has index ${entry.index}, expected ${first! + i}`);
        });
        if (first !== undefined && entries.length !== last! - first + 1) {
          this.violation('index-contiguity', `${what}: region ${region} returned ${entries.length} entries for ${first}..${last}`);
        }
        const kv = new Map<string, string>();
        for (const pair of engine.scan(region)) {
          kv.set(hex(pair.key), valueDigest(pair.value));
          const single = engine.get(region, pair.key);
          if (single === undefined || valueDigest(single) !== valueDigest(pair.value))
            this.violation('read-consistency', `${what}: get and scan disagree on region ${region} key ${hex(pair.key)}`);
        }
        if (entries.length === 0 && kv.size === 0)
          this.violation('read-consistency', `${what}: region ${region} is listed but holds nothing`);
        if (entries.length > 0) {
          const probe = entries[this.#rng.below(entries.length)]!;
          const single = await engine.getEntry(region, probe.index);
          if (single === undefined || single.term !== probe.term || Buffer.compare(single.data, probe.data) !== 0) {
            this.violation('read-consistency', `${what}: getEntry and fetchEntriesTo disagree on region ${region} index ${probe.index}`);
          }
        }
        lines.push(
          regionDigest(
            region,
            first ?? 0,
            entries.map((e) => entryModel(e.term, e.data)),
            kv,
          ),
        );
      }
    } catch (error) {
      if (error instanceof Violation) throw error;
      this.violation('read', `${what}: reading the engine failed: ${describeError(error)}`);
    }
    return lines.join('\n');
  }
}

/**
 * Opens a standalone copy of an image (for the flip and lost-file experiments); never throws.
 * These check replay against the case table, so they replay in full: with the
 * index checkpoint the clean close left, open would not re-read the damaged
 * record (by design; reads and consistencyCheck find it, test/index-checkpoint.test.ts).
 */
async function openImage(
  image: Image,
  mode: RecoveryMode,
  config: EngineConfig,
  seed: number,
  masterKey?: Uint8Array,
): Promise<{ engine: Engine | undefined; error: unknown }> {
  const fs = encryptedOver(MemFs.fromSnapshot(image), masterKey);
  const engine = new Engine({ ...config, recoveryMode: mode, fs, seed: Random.derive(seed, 'flip-engine').u32(), indexCheckpoint: false });
  try {
    await engine.open();
    return { engine, error: undefined };
  } catch (error) {
    return { engine: undefined, error };
  }
}

function encryptedOver(disk: FileSystem, masterKey: Uint8Array | undefined): FileSystem {
  return masterKey === undefined ? disk : new EncryptedFs(disk, { masterKey });
}

/** The log files of an encrypted disk image as the engine reads them (plaintext, zeros past each high-water mark). */
async function decryptImage(raw: Image, masterKey: Uint8Array): Promise<Image> {
  const fs = new EncryptedFs(MemFs.fromSnapshot(raw), { masterKey });
  await fs.init();
  const image: Image = new Map();
  for (const name of await fs.list()) {
    if (parseLogFileName(name) !== undefined || name === MANIFEST_NAME) image.set(name, await readFile(fs, name));
  }
  return image;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

export function describeError(error: unknown): string {
  if (isRaftlogError(error)) {
    const where = error.file === undefined ? '' : ` [${error.file}${error.offset === undefined ? '' : `@${error.offset}`}]`;
    return `${error.code}${where}: ${error.message}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}

function describeReport(report: RecoveryReport | undefined): string {
  return describeProblems(report?.problems ?? []);
}

function describeProblems(problems: readonly RecoveryProblem[]): string {
  if (problems.length === 0) return '';
  return ` [${problems.map((p) => `${p.action} ${p.file}@${p.offset} (${p.detail}, ${p.bytesDropped} B)`).join('; ')}]`;
}

export function describeItems(items: readonly ModelItem[]): string {
  return items
    .map((item) => {
      switch (item.kind) {
        case 'entries': {
          const first = item.entries[0]!;
          const bytes = item.entries.reduce((n, e) => n + e.data.length, 0);
          return `r${item.region} entries ${first.index}..${first.index + item.entries.length - 1} t${first.term} (${bytes} B)`;
        }
        case 'put':
          return `r${item.region} put ${hex(item.key)} (${item.value.length} B)`;
        case 'delete':
          return `r${item.region} delete ${hex(item.key)}`;
        case 'compact':
          return `r${item.region} compactTo ${item.index}`;
        case 'clean':
          return `r${item.region} clean`;
      }
    })
    .join(', ');
}

/** The lines two digests differ in, for failure messages. */
function diff(expected: string, actual: string): string {
  const a = new Set(expected.split('\n'));
  const b = new Set(actual.split('\n'));
  const lines: string[] = [];
  for (const line of a) if (!b.has(line)) lines.push(`  - ${clip(line)}`);
  for (const line of b) if (!a.has(line)) lines.push(`  + ${clip(line)}`);
  return lines.length === 0 ? '  (identical)' : lines.join('\n');
}

function clip(line: string): string {
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}
