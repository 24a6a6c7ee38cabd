/**
 * Shared state of one FaultFs and its handles: the op counter, the model, the
 * rules, the log, and the life cycle (live → frozen → dead). Not exported
 * from the package; FaultFs and FaultHandle are its only users.
 */

import { ErrorCode, IoError, NoSpaceError, RaftlogError, fromSystemError } from '../../src/errors.js';
import { FileSystem } from '../../src/filesystem.js';
import { FaultLog } from './log.js';
import { DirModel, DirOp, FileModel } from './model.js';
import { Decision, OpFacts, Rule } from './injectors.js';
import { FaultErrorKind, FaultEvent, FaultEventKind, OpKind } from './types.js';

type Life = 'live' | 'frozen' | 'dead';

/** A rule that fired and the decision it made. */
export interface Hit {
  readonly rule: Rule;
  readonly decision: Decision & { readonly fire: true };
}

const ERROR_FAULTS: ReadonlySet<FaultErrorKind> = new Set(['EIO', 'ENOSPC']);

export class FaultCore {
  readonly seed: number;
  readonly pageSize: number;
  readonly inner: FileSystem;
  readonly log = new FaultLog();
  readonly rules: Rule[] = [];
  readonly files = new Map<number, FileModel>();
  readonly dir = new DirModel();
  /** Index the next operation gets. */
  opIndex = 0;
  crashes = 0;
  flips = 0;
  nextRuleId = 1;
  #seq = 0;
  #nextInode = 1;
  readonly #createCounts = new Map<string, number>();
  #life: Life = 'live';
  #freezeAt: number | undefined;
  #adopting: Promise<void> | undefined;
  #adopted = false;

  constructor(inner: FileSystem, seed: number, pageSize: number) {
    this.inner = inner;
    this.seed = seed;
    this.pageSize = pageSize;
  }

  get life(): Life {
    return this.#life;
  }

  get freezeIndex(): number | undefined {
    return this.#freezeAt;
  }

  /** Next sequence number for the model's pending logs (orders writes across files). */
  nextSeq(): number {
    return this.#seq++;
  }

  record(event: Omit<FaultEvent, 'seq'>): FaultEvent {
    return this.log.append(event);
  }

  // ---- life cycle -------------------------------------------------------

  /** Arms a freeze: operation `index` is the last one that takes effect. */
  armFreeze(index: number): void {
    this.#freezeAt = index;
  }

  /** Stops all mutation now; later operations and in-flight ones reject. */
  freezeNow(reason: string): void {
    if (this.#life !== 'live') return;
    this.#life = 'frozen';
    this.#freezeAt ??= this.opIndex - 1;
    this.record({ opIndex: this.#freezeAt, op: 'freeze', kind: 'freeze', path: '', rule: undefined, detail: reason });
  }

  kill(): void {
    this.#life = 'dead';
  }

  #powerLost(index: number, kind: OpKind, path: string): RaftlogError {
    const why = this.#life === 'dead' ? 'the FaultFs has crashed' : `the FaultFs is frozen after op ${String(this.#freezeAt)}`;
    return new IoError(`injected power loss: ${why}; op ${index} (${kind}${path === '' ? '' : ` ${path}`}) rejected`, {
      errno: 'EIO',
      file: path === '' ? undefined : path,
    });
  }

  /**
   * Runs one counted operation. The index is taken synchronously, at call
   * time, so concurrent callers get indexes in call order. An operation
   * started after a freeze or crash rejects at once; one that settles after
   * the power cut rejects too (its effect did not reach the model), so
   * nothing is ever acknowledged after the cut.
   */
  async run<T>(kind: OpKind, path: string, body: (index: number) => Promise<T>): Promise<T> {
    const index = this.opIndex++;
    if (this.#life !== 'live' || (this.#freezeAt !== undefined && index > this.#freezeAt)) {
      throw this.#powerLost(index, kind, path);
    }
    try {
      await this.adopt();
      const result = await body(index);
      if (this.#life !== 'live') throw this.#powerLost(index, kind, path);
      return result;
    } catch (error) {
      throw fromSystemError(error, kind, path === '' ? undefined : path);
    } finally {
      if (index === this.#freezeAt) this.freezeNow(`power cut after op ${index} (${kind}${path === '' ? '' : ` ${path}`})`);
    }
  }

  /** Changes the model on behalf of operation `index`, unless the power is already cut. */
  mutate(index: number, kind: OpKind, path: string, change: () => void): void {
    if (this.#life !== 'live') throw this.#powerLost(index, kind, path);
    change();
  }

  // ---- model ------------------------------------------------------------

  /**
   * Learns the files the inner FS already holds, once. They count as durable,
   * data and directory entries alike: FaultFs cannot know their history, and
   * a FaultFs over a crash image must treat that image as the disk.
   */
  adopt(): Promise<void> {
    if (this.#adopted) return Promise.resolve();
    this.#adopting ??= this.#readInner().then(
      () => {
        this.#adopted = true;
      },
      (error: unknown) => {
        // Not adopted: the next operation retries (the root may not exist
        // before init(); any other failure is reported to this operation).
        this.#adopting = undefined;
        if (!(error instanceof RaftlogError && error.code === ErrorCode.NOT_FOUND)) throw error;
      },
    );
    return this.#adopting;
  }

  async #readInner(): Promise<void> {
    const names = (await this.inner.list()).sort();
    for (const name of names) await this.#adoptFile(name);
  }

  async #adoptFile(name: string): Promise<void> {
    if (this.dir.current.has(name)) return;
    const handle = await this.inner.open(name, { readOnly: true });
    try {
      const size = await handle.size();
      const content = new Uint8Array(size);
      let done = 0;
      while (done < size) {
        const n = await handle.read(content, done, size - done, done);
        if (n === 0) break;
        done += n;
      }
      if (this.dir.current.has(name)) return; // adopted meanwhile by a concurrent caller
      const model = this.newFile(name, content.subarray(0, done), true);
      this.dir.adopt(name, model.id);
    } finally {
      await handle.close();
    }
  }

  /**
   * Adopts `name` if the inner FS has it but the model does not: a file that
   * appeared behind FaultFs's back (the inner backend's own lock file, for
   * one). Like files found at start, it counts as durable.
   */
  async ensureKnown(name: string): Promise<void> {
    if (this.dir.current.has(name)) return;
    if (await this.inner.exists(name)) await this.#adoptFile(name);
  }

  newFile(name: string, content: Uint8Array, durable: boolean): FileModel {
    const generation = this.#createCounts.get(name) ?? 0;
    this.#createCounts.set(name, generation + 1);
    const model = new FileModel(this.#nextInode++, `${name}#${generation}`, content, durable);
    this.files.set(model.id, model);
    return model;
  }

  modelOf(name: string): FileModel | undefined {
    const id = this.dir.current.get(name);
    return id === undefined ? undefined : this.files.get(id);
  }

  dirOp(op: DirOp): void {
    this.dir.apply(op);
  }

  // ---- rules ------------------------------------------------------------

  /** The first EIO/ENOSPC rule that fires for this operation phase, if any. */
  firstError(facts: OpFacts): Hit | undefined {
    for (const rule of this.rules) {
      if (!ERROR_FAULTS.has(rule.spec.error) || !rule.matches(facts)) continue;
      const decision = rule.decide(facts);
      if (decision.fire) return { rule, decision };
    }
    return undefined;
  }

  /** Every shaping rule (short, flip, misdirect) that fires for this operation. */
  shapers(facts: OpFacts): Rule[] {
    const fired: Rule[] = [];
    for (const rule of this.rules) {
      if (ERROR_FAULTS.has(rule.spec.error) || !rule.matches(facts)) continue;
      if (rule.decide(facts).fire) fired.push(rule);
    }
    return fired;
  }

  /** Counts and logs a fault that fired. */
  note(rule: Rule | undefined, facts: OpFacts, kind: FaultEventKind, detail: string): void {
    if (rule !== undefined) rule.fired++;
    this.record({ opIndex: facts.index, op: facts.kind, kind, path: facts.paths.join('->'), rule: rule?.id, detail });
  }

  /** Logs the injected error and returns it for the caller to throw. */
  fail(hit: Hit, facts: OpFacts, detail: string): RaftlogError {
    const kind = hit.rule.spec.error === 'ENOSPC' ? 'ENOSPC' : 'EIO';
    this.note(hit.rule, facts, kind, detail);
    const path = facts.paths.join('->');
    const message = `injected ${kind} on ${facts.kind}${path === '' ? '' : ` ${path}`} (op ${facts.index}, rule ${hit.rule.id})${detail === '' ? '' : `: ${detail}`}`;
    const file = facts.paths[0] === '' ? undefined : facts.paths[0];
    return kind === 'ENOSPC' ? new NoSpaceError(message, { errno: 'ENOSPC', file }) : new IoError(message, { errno: 'EIO', file });
  }

  /** Throws if an error rule fires for a phase with nothing else to undo. */
  check(facts: OpFacts): void {
    const hit = this.firstError(facts);
    if (hit !== undefined) throw this.fail(hit, facts, '');
  }
}
