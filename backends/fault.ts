/**
 * FaultFs: a deterministic fault-injecting FileSystem wrapper, exported for
 * users to test their own Raft code against power loss and disk errors.
 *
 *   const fault = new FaultFs(new MemFs(), { seed });
 *   … run the engine on `fault`, maybe with `fault.inject({ … })` rules …
 *   const restarted = await fault.crash('keepPrefix'); // a fresh MemFs
 *
 * What it models (see fault/model.ts): per file, the bytes made durable by a
 * successful barrier plus the log of writes/truncates/preallocates since;
 * per directory, the durable entries plus creates/renames/removes since the
 * last syncDir(). Reads go to the inner FS, which holds the volatile view.
 * `crash()` builds what a power loss would leave (fault/crash.ts) into a new,
 * independent MemFs and kills this FaultFs, so background work of the
 * crashed engine cannot touch the restarted one.
 *
 * Injected faults (fault/injectors.ts) compose; each fires deterministically
 * from the seed and is logged. `describe()` prints the seed and the log: a
 * failing test prints it, and re-running with that seed replays the run.
 * Nothing here reads the clock or Math.random, and there are no timers.
 *
 * Files already in the inner FS when FaultFs first touches it are treated as
 * durable. All access must go through the FaultFs: changes made to the
 * inner FS directly are not seen by the model.
 */

import { InvalidArgumentError, IoError, NotFoundError } from '../src/errors.js';
import { DirectoryLock, FileHandle, FileSystem, FsCapabilities, OpenOptions } from '../src/filesystem.js';
import { FaultCore } from './fault/core.js';
import { computeCrash } from './fault/crash.js';
import { FaultHandle } from './fault/handle.js';
import { Rule } from './fault/injectors.js';
import { formatEvent } from './fault/log.js';
import { derivePrng } from './fault/prng.js';
import { CrashPolicy, FaultEvent, FaultFsOptions, FaultRule, FaultRuleHandle, FlipBitsOptions } from './fault/types.js';
import { MemFs } from './memfs.js';
import { checkName } from './path-names.js';

export type * from './fault/types.js';

export class FaultFs implements FileSystem {
  readonly capabilities: FsCapabilities;
  readonly description: string;
  readonly #core: FaultCore;

  constructor(inner: FileSystem, options: FaultFsOptions) {
    if (!Number.isSafeInteger(options.seed)) throw new InvalidArgumentError(`FaultFs: seed must be a safe integer, got ${options.seed}`);
    const pageSize = options.pageSize ?? 4096;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new InvalidArgumentError(`FaultFs: bad pageSize ${pageSize}`);
    this.#core = new FaultCore(inner, options.seed, pageSize);
    this.capabilities = { ...inner.capabilities, backend: 'fault' };
    this.description = `fault(seed=${options.seed}):${inner.description}`;
  }

  /** The seed every random choice derives from. */
  get seed(): number {
    return this.#core.seed;
  }

  /**
   * Number of FileSystem/FileHandle operations started so far, which is also
   * the index the next one gets. Rules `{ index }` and `freezeAt` use it.
   */
  get opIndex(): number {
    return this.#core.opIndex;
  }

  /** Every fault, lost barrier, freeze and crash decision so far, in order. */
  get log(): readonly FaultEvent[] {
    return this.#core.log.events;
  }

  /** True once frozen (freezeAt reached, or freeze()); later operations reject. */
  get frozen(): boolean {
    return this.#core.life === 'frozen';
  }

  /** True once crash() was called; every operation rejects. */
  get crashed(): boolean {
    return this.#core.life === 'dead';
  }

  /** The wrapped FileSystem (its volatile view; it knows nothing of durability). */
  unwrap(): FileSystem {
    return this.#core.inner;
  }

  /** Adds a rule; rules are consulted in the order they were added. */
  inject(rule: FaultRule): FaultRuleHandle {
    const core = this.#core;
    const entry = new Rule(core.nextRuleId++, rule, core.seed);
    core.rules.push(entry);
    return {
      id: entry.id,
      get fired() {
        return entry.fired;
      },
      remove() {
        entry.removed = true;
      },
    };
  }

  /**
   * Cuts the power right after operation `index` settles: it is the last one
   * that takes effect. Later operations reject with IO at once; earlier ones
   * still in flight reject when they settle (their effect is dropped), so
   * nothing is acknowledged after the cut. `crash()` then yields the image
   * as of that point. For crash-at-every-op sweeps: run the workload with
   * freezeAt(k) for k = 0, 1, 2, … and check each crash image.
   */
  freezeAt(index: number): void {
    if (!Number.isSafeInteger(index) || index < this.#core.opIndex) {
      throw new InvalidArgumentError(`freezeAt(${index}): op ${index} has already started (opIndex ${this.#core.opIndex})`);
    }
    if (this.#core.life !== 'live') throw new InvalidArgumentError('freezeAt: the FaultFs is already frozen or crashed');
    this.#core.armFreeze(index);
  }

  /** Cuts the power now. */
  freeze(): void {
    this.#core.freezeNow(`freeze() at opIndex ${this.#core.opIndex}`);
  }

  /**
   * Flips bits at rest, now: in the durable bytes, the pending writes and
   * the inner file alike, so readers and crash images all see the damage.
   * Returns the logged events (one per bit).
   */
  async flipBits(options: FlipBitsOptions = {}): Promise<FaultEvent[]> {
    const core = this.#core;
    if (core.life !== 'live') throw new InvalidArgumentError('flipBits: the FaultFs is frozen or crashed');
    const count = options.count ?? 1;
    if (!Number.isSafeInteger(count) || count < 0) throw new InvalidArgumentError(`flipBits: bad count ${count}`);
    await core.adopt();
    if (options.file !== undefined) {
      checkName(options.file, 'flipBits');
      await core.ensureKnown(options.file);
      if (core.modelOf(options.file) === undefined) throw new NotFoundError(`flipBits: no file ${options.file}`, { file: options.file });
    }
    const prng = derivePrng(core.seed, 'flipAtRest', core.flips++);
    const events: FaultEvent[] = [];
    for (let i = 0; i < count; i++) {
      const candidates =
        options.file !== undefined
          ? [options.file]
          : [...core.dir.current.keys()].sort().filter((n) => (core.modelOf(n)?.volatile.size ?? 0) > 0);
      const name = candidates.length > 0 ? prng.pick(candidates) : undefined;
      const model = name === undefined ? undefined : core.modelOf(name);
      if (name === undefined || model === undefined || model.volatile.size === 0) {
        throw new InvalidArgumentError(`flipBits: ${options.file ?? 'no file'} has no bytes to flip`);
      }
      const offset = prng.below(model.volatile.size);
      const bit = prng.below(8);
      model.flipAtRest(offset, 1 << bit);
      const handle = await core.inner.open(name);
      try {
        await handle.write([Uint8Array.of(model.volatile.byteAt(offset))], offset);
      } finally {
        await handle.close();
      }
      events.push(
        core.record({
          opIndex: core.opIndex,
          op: 'flipBits',
          kind: 'flipAtRest',
          path: name,
          rule: undefined,
          detail: `bit ${bit} at offset ${offset}`,
        }),
      );
    }
    return events;
  }

  /**
   * What a power loss now would leave (file name → bytes), without crashing:
   * a pure function of the model, the seed and how many images were taken
   * before (so repeated calls give different, replayable images).
   */
  async crashImage(policy: CrashPolicy = 'mixed'): Promise<Map<string, Uint8Array>> {
    const core = this.#core;
    await core.adopt();
    const ordinal = core.crashes++;
    const result = computeCrash({ seed: core.seed, ordinal, pageSize: core.pageSize, files: core.files, dir: core.dir, policy });
    const name = typeof policy === 'string' ? policy : `{ data: ${policy.data}, dir: ${policy.dir} }`;
    core.record({
      opIndex: core.opIndex,
      op: 'crash',
      kind: 'crash',
      path: '',
      rule: undefined,
      detail: `image #${ordinal}, policy ${name}: ${result.files.size} file(s)`,
    });
    for (const note of result.notes) {
      core.record({ opIndex: core.opIndex, op: 'crash', kind: 'crash', path: note.path, rule: undefined, detail: note.detail });
    }
    return result.files;
  }

  /**
   * Simulates a power loss: this FaultFs dies at once (every later or
   * in-flight operation rejects with IO), and the result is a fresh MemFs
   * holding what the crash left, ready for a new engine. Without a policy, a
   * seeded mix of the policies.
   */
  async crash(policy: CrashPolicy = 'mixed'): Promise<MemFs> {
    this.#core.kill();
    return MemFs.fromSnapshot(await this.crashImage(policy));
  }

  /** The seed, the rules and the fault log, printable in a failing test. */
  describe(): string {
    const core = this.#core;
    const lines = [
      `FaultFs seed=${core.seed} (replay: SEED=${core.seed}), ops=${core.opIndex}, state=${core.life}` +
        (core.freezeIndex === undefined ? '' : `, freeze after op ${core.freezeIndex}`),
    ];
    if (core.rules.length > 0) lines.push('rules:', ...core.rules.map((rule) => `  ${rule.describe()}`));
    const events = core.log.events;
    lines.push(`fault log (${events.length} event(s)):`, ...events.map((event) => `  ${formatEvent(event)}`));
    return lines.join('\n');
  }

  // ---- FileSystem -------------------------------------------------------

  init(): Promise<void> {
    return this.#core.run('init', '', async (index) => {
      this.#core.check({ index, kind: 'init', paths: [''] });
      await this.#core.inner.init();
    });
  }

  list(): Promise<string[]> {
    return this.#core.run('list', '', async (index) => {
      this.#core.check({ index, kind: 'list', paths: [''] });
      return this.#core.inner.list();
    });
  }

  exists(name: string): Promise<boolean> {
    return this.#core.run('exists', name, async (index) => {
      checkName(name, 'exists');
      this.#core.check({ index, kind: 'exists', paths: [name] });
      return this.#core.inner.exists(name);
    });
  }

  open(name: string, options: OpenOptions = {}): Promise<FileHandle> {
    const core = this.#core;
    return core.run('open', name, async (index) => {
      checkName(name, 'open');
      core.check({ index, kind: 'open', paths: [name] });
      await core.ensureKnown(name);
      const inner = await core.inner.open(name, options);
      try {
        let model = core.modelOf(name);
        core.mutate(index, 'open', name, () => {
          if (model !== undefined) return;
          // Not known before the open succeeded: this open created it.
          const created = core.newFile(name, new Uint8Array(0), false);
          core.dirOp({ seq: core.nextSeq(), kind: 'create', name, id: created.id });
          model = created;
        });
        if (model === undefined) throw new NotFoundError(`open ${name}: file vanished`, { file: name });
        return new FaultHandle(core, name, inner, model);
      } catch (error) {
        await inner.close();
        throw error;
      }
    });
  }

  remove(name: string): Promise<void> {
    const core = this.#core;
    return core.run('remove', name, async (index) => {
      checkName(name, 'remove');
      core.check({ index, kind: 'remove', paths: [name] });
      await core.ensureKnown(name);
      await core.inner.remove(name);
      core.mutate(index, 'remove', name, () => {
        const id = core.dir.current.get(name);
        if (id !== undefined) core.dirOp({ seq: core.nextSeq(), kind: 'remove', name, id });
      });
    });
  }

  rename(from: string, to: string): Promise<void> {
    const core = this.#core;
    return core.run('rename', from, async (index) => {
      checkName(from, 'rename');
      checkName(to, 'rename');
      core.check({ index, kind: 'rename', paths: [from, to] });
      await core.ensureKnown(from);
      await core.ensureKnown(to);
      await core.inner.rename(from, to);
      core.mutate(index, 'rename', from, () => this.#recordRename(from, to));
    });
  }

  reuse(from: string, to: string): Promise<FileHandle> {
    const core = this.#core;
    return core.run('reuse', from, async (index) => {
      checkName(from, 'reuse');
      checkName(to, 'reuse');
      core.check({ index, kind: 'reuse', alsoKinds: ['rename', 'open'], paths: [from, to] });
      await core.ensureKnown(from);
      await core.ensureKnown(to);
      const inner = await core.inner.reuse(from, to);
      try {
        core.mutate(index, 'reuse', from, () => this.#recordRename(from, to));
        const model = core.modelOf(to);
        if (model === undefined) throw new NotFoundError(`reuse ${from}: file vanished`, { file: from });
        return new FaultHandle(core, to, inner, model);
      } catch (error) {
        await inner.close();
        throw error;
      }
    });
  }

  syncDir(): Promise<void> {
    const core = this.#core;
    return core.run('syncDir', '', async (index) => {
      // A failed directory barrier leaves the operations pending: they may or
      // may not survive a crash, and a later successful syncDir covers them.
      core.check({ index, kind: 'syncDir', paths: [''] });
      await core.inner.syncDir();
      core.mutate(index, 'syncDir', '', () => core.dir.sync());
    });
  }

  lock(name: string): Promise<DirectoryLock> {
    const core = this.#core;
    return core.run('lock', name, async (index) => {
      checkName(name, 'lock');
      core.check({ index, kind: 'lock', paths: [name] });
      const inner = await core.inner.lock(name);
      return {
        // Not a counted operation, but the inner lock is always released so
        // the inner FS is left clean; after a crash the caller still learns
        // that the FaultFs is dead.
        release: async () => {
          await inner.release();
          if (core.life === 'dead') {
            throw new IoError(`injected power loss: the FaultFs has crashed; lock ${name} release rejected`, { errno: 'EIO' });
          }
        },
      };
    });
  }

  close(): Promise<void> {
    return this.#core.run('closeFs', '', async (index) => {
      this.#core.check({ index, kind: 'closeFs', paths: [''] });
      await this.#core.inner.close();
    });
  }

  #recordRename(from: string, to: string): void {
    const core = this.#core;
    if (from === to) return; // POSIX: renaming a file onto itself does nothing
    const id = core.dir.current.get(from);
    if (id !== undefined) core.dirOp({ seq: core.nextSeq(), kind: 'rename', from, to, id });
  }
}
