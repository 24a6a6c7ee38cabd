/**
 * Injection rules: which operation a rule matches (kind, path), when it fires
 * (index, probability, script, byte budget) and its per-rule state. The
 * FaultFs decides what firing means for the operation at hand.
 */

import { InvalidArgumentError } from '../../src/errors.js';
import { Prng, derivePrng } from './prng.js';
import { FaultErrorKind, FaultRule, FaultTrigger, OP_KINDS, OpKind } from './types.js';

/** Which operation kinds each fault can act on; a rule never fires elsewhere. */
const APPLIES: Record<FaultErrorKind, readonly OpKind[] | 'any'> = {
  EIO: 'any',
  ENOSPC: 'any',
  short: ['read', 'write'],
  flip: ['read', 'write'],
  misdirect: ['write'],
};

const ERRORS: readonly FaultErrorKind[] = ['EIO', 'ENOSPC', 'short', 'flip', 'misdirect'];

/** A glob over a file name: `*` any run, `?` one character, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

interface ScriptStep {
  readonly fail: boolean;
  /** Times this step applies; Infinity for a trailing `*`. */
  readonly times: number;
}

/**
 * Parses `pass,fail,pass*`: steps separated by `,` or `->` (raft-engine's
 * failpoint schedules read `1*off->1*return->off`, hence the arrow).
 */
export function parseScript(script: string): ScriptStep[] {
  const tokens = script
    .split(/,|->/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0) throw new InvalidArgumentError(`fault script is empty: ${JSON.stringify(script)}`);
  return tokens.map((token, i) => {
    const m = /^(?:(\d+)\*)?(pass|fail)(\*)?$/.exec(token);
    if (m === null) throw new InvalidArgumentError(`bad fault script step ${JSON.stringify(token)} in ${JSON.stringify(script)}`);
    const forever = m[3] === '*';
    if (forever && (m[1] !== undefined || i !== tokens.length - 1)) {
      throw new InvalidArgumentError(`only the last fault script step may repeat forever: ${JSON.stringify(script)}`);
    }
    return { fail: m[2] === 'fail', times: forever ? Infinity : Number(m[1] ?? 1) };
  });
}

function validateTrigger(when: FaultTrigger): void {
  if ('index' in when) {
    if (!Number.isSafeInteger(when.index) || when.index < 0) throw new InvalidArgumentError(`bad fault index ${when.index}`);
  } else if ('probability' in when) {
    if (!(when.probability >= 0 && when.probability <= 1)) {
      throw new InvalidArgumentError(`fault probability must be in [0, 1], got ${when.probability}`);
    }
  } else if ('afterBytes' in when) {
    if (!Number.isSafeInteger(when.afterBytes) || when.afterBytes < 0) {
      throw new InvalidArgumentError(`bad fault byte budget ${when.afterBytes}`);
    }
  } else if (!('script' in when)) {
    throw new InvalidArgumentError('fault rule needs when: index, probability, script or afterBytes');
  }
}

/** What the operation tells a rule about itself. */
export interface OpFacts {
  readonly index: number;
  readonly kind: OpKind;
  /**
   * Further kinds the same call also is (`reuse` is a rename and an open).
   * A rule matching any of them is consulted once, so a script advances one
   * step per call.
   */
  readonly alsoKinds?: readonly OpKind[];
  /** File names involved ('' for none); rename has two. */
  readonly paths: readonly string[];
  /** For growth operations: by how many bytes the file size would grow. */
  readonly growth?: number;
}

export type Decision =
  | { readonly fire: false }
  /** `allowedGrowth`: for a byte-budget rule with `partial`, how much growth still fits. */
  | { readonly fire: true; readonly allowedGrowth?: number };

const PASS: Decision = { fire: false };
const FIRE: Decision = { fire: true };

export class Rule {
  readonly id: number;
  readonly spec: FaultRule;
  fired = 0;
  removed = false;
  readonly #seed: number;
  readonly #kinds: ReadonlySet<OpKind>;
  readonly #path: RegExp | undefined;
  readonly #script: ScriptStep[] | undefined;
  #step = 0;
  #stepUsed = 0;
  #bytesUsed = 0;
  readonly #whenPrngs = new Map<string, Prng>();
  readonly #howPrngs = new Map<string, Prng>();

  constructor(id: number, spec: FaultRule, seed: number) {
    if (!ERRORS.includes(spec.error)) throw new InvalidArgumentError(`unknown fault ${String(spec.error)}`);
    validateTrigger(spec.when);
    const requested = spec.ops === 'any' ? OP_KINDS : spec.ops;
    for (const kind of requested) {
      if (!OP_KINDS.includes(kind)) throw new InvalidArgumentError(`unknown operation kind ${String(kind)}`);
    }
    const applies = APPLIES[spec.error];
    this.#kinds = new Set(applies === 'any' ? requested : requested.filter((k) => applies.includes(k)));
    this.id = id;
    this.spec = spec;
    this.#seed = seed;
    this.#path = spec.path === undefined ? undefined : typeof spec.path === 'string' ? globToRegExp(spec.path) : spec.path;
    this.#script = 'script' in spec.when ? parseScript(spec.when.script) : undefined;
  }

  /** Whether the rule is consulted for this operation at all. */
  matches(facts: OpFacts): boolean {
    if (this.removed) return false;
    if (!this.#kinds.has(facts.kind) && !(facts.alsoKinds ?? []).some((kind) => this.#kinds.has(kind))) return false;
    const path = this.#path;
    if (path === undefined) return true;
    return facts.paths.some((p) => {
      path.lastIndex = 0; // a /g or /y RegExp is stateful; make every test start fresh
      return path.test(p);
    });
  }

  /** The PRNG that shapes a fault of this rule on this path (split points, bit, offset). */
  how(path: string): Prng {
    let prng = this.#howPrngs.get(path);
    if (prng === undefined) {
      prng = derivePrng(this.#seed, 'rule', this.id, 'how', path);
      this.#howPrngs.set(path, prng);
    }
    return prng;
  }

  /** Consults the trigger (advancing its state) for a matching operation. */
  decide(facts: OpFacts): Decision {
    const when = this.spec.when;
    if ('index' in when) return facts.index === when.index ? FIRE : PASS;
    if ('probability' in when) {
      const key = facts.paths[0] ?? '';
      let prng = this.#whenPrngs.get(key);
      if (prng === undefined) {
        prng = derivePrng(this.#seed, 'rule', this.id, 'when', key);
        this.#whenPrngs.set(key, prng);
      }
      return prng.chance(when.probability) ? FIRE : PASS;
    }
    if ('afterBytes' in when) {
      const growth = facts.growth ?? 0;
      if (growth <= 0) return PASS;
      const remaining = when.afterBytes - this.#bytesUsed;
      if (growth <= remaining) {
        this.#bytesUsed += growth;
        return PASS;
      }
      this.#bytesUsed = when.afterBytes;
      return when.partial === true ? { fire: true, allowedGrowth: remaining } : FIRE;
    }
    return this.#nextScriptStep() ? FIRE : PASS;
  }

  #nextScriptStep(): boolean {
    const script = this.#script ?? [];
    const step = script[this.#step];
    if (step === undefined) return false;
    this.#stepUsed++;
    if (this.#stepUsed >= step.times) {
      this.#step++;
      this.#stepUsed = 0;
    }
    return step.fail;
  }

  describe(): string {
    const when = this.spec.when;
    const trigger =
      'index' in when
        ? `index ${when.index}`
        : 'probability' in when
          ? `p=${when.probability}`
          : 'script' in when
            ? `script "${when.script}"`
            : `after ${when.afterBytes} bytes${when.partial === true ? ' (partial)' : ''}`;
    const ops = this.spec.ops === 'any' ? 'any' : this.spec.ops.join('|');
    const path = this.spec.path === undefined ? '' : ` path ${String(this.spec.path)}`;
    return `rule ${this.id}: ${this.spec.error} on ${ops}${path} at ${trigger}${this.removed ? ' (removed)' : ''}, fired ${this.fired}`;
  }
}
