/**
 * Builds what a power loss would leave, from the model (see model.ts). Pure:
 * it reads the models and returns new bytes, so the crashed FaultFs and the
 * image never share memory.
 *
 * Invariant every policy keeps: each byte of a surviving file is its durable
 * byte or a byte some pending operation put there (or, in a torn page past
 * the synced size, the torn fill). Synced data that the caller did not
 * overwrite or truncate afterwards is never lost, provided the file's
 * directory entry is durable.
 */

import { ByteImage, DirModel, FileModel, PendingOp, applyDirOp, applyPending, describeDirOp } from './model.js';
import { PMEM_WORD_BYTES, crashPmem } from './pmem.js';
import { Prng, derivePrng } from './prng.js';
import { CrashPolicy, CrashPolicySpec, DataCrashMode, DirCrashMode } from './types.js';

/** The modes `mixed` picks from. Its order and length are what seeds replay: append nothing here. */
const DATA_MODES: readonly DataCrashMode[] = ['drop', 'keepAll', 'prefix', 'pages', 'torn-zeros', 'torn-old', 'torn-garbage'];
/** Every mode a spec may name. */
const ALL_DATA_MODES: readonly DataCrashMode[] = [...DATA_MODES, 'pmem'];
const DIR_MODES: readonly DirCrashMode[] = ['drop', 'keepAll', 'prefix', 'subset'];

const NAMED: Record<Exclude<CrashPolicy, CrashPolicySpec | 'mixed'>, CrashPolicySpec> = {
  dropUnsynced: { data: 'drop', dir: 'drop' },
  keepPrefix: { data: 'prefix', dir: 'prefix' },
  keepPages: { data: 'pages', dir: 'subset' },
  tornZeros: { data: 'torn-zeros', dir: 'prefix' },
  tornOld: { data: 'torn-old', dir: 'prefix' },
  tornGarbage: { data: 'torn-garbage', dir: 'prefix' },
  loseDirEntries: { data: 'keepAll', dir: 'drop' },
  pmem: { data: 'pmem', dir: 'prefix' },
};

interface ResolvedPolicy {
  readonly data: DataCrashMode | 'mixed';
  readonly dir: DirCrashMode | 'mixed';
  readonly keepProbability: number;
  readonly lineSize: number;
  readonly tornProbability: number;
}

export function resolvePolicy(policy: CrashPolicy): ResolvedPolicy {
  if (policy === 'mixed') return { data: 'mixed', dir: 'mixed', keepProbability: 0.5, lineSize: 64, tornProbability: 0.25 };
  const spec = typeof policy === 'string' ? NAMED[policy] : policy;
  if (spec === undefined || !ALL_DATA_MODES.includes(spec.data) || !DIR_MODES.includes(spec.dir)) {
    throw new RangeError(`unknown crash policy ${JSON.stringify(policy)}`);
  }
  const p = spec.keepProbability ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`keepProbability must be in [0, 1], got ${p}`);
  const lineSize = spec.lineSize ?? 64;
  if (!Number.isSafeInteger(lineSize) || lineSize < PMEM_WORD_BYTES || lineSize > 4096 || (lineSize & (lineSize - 1)) !== 0) {
    throw new RangeError(`lineSize must be a power of two from ${PMEM_WORD_BYTES} to 4096, got ${lineSize}`);
  }
  const torn = spec.tornProbability ?? 0.25;
  if (!(torn >= 0 && torn <= 1)) throw new RangeError(`tornProbability must be in [0, 1], got ${torn}`);
  return { data: spec.data, dir: spec.dir, keepProbability: p, lineSize, tornProbability: torn };
}

export interface CrashNote {
  readonly path: string;
  readonly detail: string;
}

export interface CrashResult {
  /** File name → content, names sorted. */
  readonly files: Map<string, Uint8Array>;
  /** What the crash decided, for the fault log. */
  readonly notes: CrashNote[];
}

export interface CrashInput {
  readonly seed: number;
  /** Which crash of this FaultFs (keys the PRNG so repeated images differ but replay). */
  readonly ordinal: number;
  readonly pageSize: number;
  readonly files: ReadonlyMap<number, FileModel>;
  readonly dir: DirModel;
  readonly policy: CrashPolicy;
}

export function computeCrash(input: CrashInput): CrashResult {
  const policy = resolvePolicy(input.policy);
  const notes: CrashNote[] = [];
  const dirMode = policy.dir === 'mixed' ? derivePrng(input.seed, 'crash', input.ordinal, 'dir-mode').pick(DIR_MODES) : policy.dir;
  const entries = crashDir(input.dir, dirMode, derivePrng(input.seed, 'crash', input.ordinal, 'dir'), policy.keepProbability, notes);

  const contents = new Map<number, Uint8Array>();
  const files = new Map<string, Uint8Array>();
  for (const name of [...entries.keys()].sort()) {
    const id = entries.get(name);
    const model = id === undefined ? undefined : input.files.get(id);
    if (id === undefined || model === undefined) continue;
    let content = contents.get(id);
    if (content === undefined) {
      const mode =
        policy.data === 'mixed' ? derivePrng(input.seed, 'crash', input.ordinal, 'mode', model.key).pick(DATA_MODES) : policy.data;
      const prng = derivePrng(input.seed, 'crash', input.ordinal, 'file', model.key);
      const outcome = crashFile(model, mode, prng, input.pageSize, policy);
      content = outcome.content;
      contents.set(id, content);
      if (model.pending.length > 0) notes.push({ path: name, detail: `data ${mode}: ${outcome.detail}` });
    } else {
      content = content.slice();
    }
    files.set(name, content);
  }
  return { files, notes };
}

function crashDir(dir: DirModel, mode: DirCrashMode, prng: Prng, keepP: number, notes: CrashNote[]): Map<string, number> {
  const entries = new Map(dir.durable);
  const ops = dir.pending;
  let kept: boolean[];
  switch (mode) {
    case 'drop':
      kept = ops.map(() => false);
      break;
    case 'keepAll':
      kept = ops.map(() => true);
      break;
    case 'prefix': {
      const k = prng.between(0, ops.length);
      kept = ops.map((_, i) => i < k);
      break;
    }
    case 'subset':
      kept = ops.map(() => prng.chance(keepP));
      break;
  }
  const parts: string[] = [];
  ops.forEach((op, i) => {
    const applied = kept[i] === true && applyDirOp(entries, op);
    parts.push(`${applied ? 'kept' : 'lost'} ${describeDirOp(op)}`);
  });
  if (ops.length > 0) notes.push({ path: '', detail: `dir ${mode}: ${parts.join(', ')}` });
  return entries;
}

interface FileOutcome {
  readonly content: Uint8Array;
  readonly detail: string;
}

function crashFile(model: FileModel, mode: DataCrashMode, prng: Prng, pageSize: number, policy: ResolvedPolicy): FileOutcome {
  const pending = model.pending;
  const keepP = policy.keepProbability;
  switch (mode) {
    case 'drop':
      return { content: model.durable.view().slice(), detail: `dropped ${pending.length} pending op(s)` };
    case 'keepAll':
      return { content: model.future().view().slice(), detail: `kept ${pending.length} pending op(s)` };
    case 'prefix':
    case 'torn-zeros':
    case 'torn-old':
    case 'torn-garbage':
      return crashPrefix(model, mode, prng, pageSize);
    case 'pages':
      return crashPages(model, prng, pageSize, keepP);
    case 'pmem':
      return crashPmem(model, prng, { lineSize: policy.lineSize, keepProbability: keepP, tornProbability: policy.tornProbability });
  }
}

/** Keeps pending operations [0, k) and cuts the last kept write at a random byte. */
function crashPrefix(model: FileModel, mode: DataCrashMode, prng: Prng, pageSize: number): FileOutcome {
  const pending = model.pending;
  const k = prng.between(0, pending.length);
  const image = model.durable.clone();
  for (let i = 0; i < k - 1; i++) applyPending(image, pending[i] as PendingOp);
  let detail = `kept ${k}/${pending.length} pending op(s)`;
  const last = k > 0 ? pending[k - 1] : undefined;
  if (last === undefined) return { content: image.view().slice(), detail };
  if (last.kind !== 'write') {
    applyPending(image, last);
    return { content: image.view().slice(), detail };
  }
  const cut = prng.between(0, last.bytes.length);
  image.write(last.offset, last.bytes.subarray(0, cut));
  detail += `, cut write@${last.offset} at ${cut}/${last.bytes.length}`;
  if (mode === 'prefix' || cut === last.bytes.length) return { content: image.view().slice(), detail };

  // The torn page: from the cut to the end of its page (within the write).
  // Bytes below the synced size keep their old value whatever the fill, so a
  // torn overwrite never destroys synced data.
  const tornStart = last.offset + cut;
  const pageEnd = (Math.floor(tornStart / pageSize) + 1) * pageSize;
  const fillEnd = Math.min(pageEnd, last.offset + last.bytes.length);
  const fillStart = Math.max(tornStart, model.durable.size);
  if (fillEnd > image.size) image.setSize(fillEnd);
  if (fillStart < fillEnd) {
    const fill = new Uint8Array(fillEnd - fillStart);
    if (mode === 'torn-garbage') prng.fill(fill);
    if (mode === 'torn-old') {
      for (let i = 0; i < fill.length; i++) fill[i] = image.byteAt(fillStart + i);
    }
    image.write(fillStart, fill);
  }
  detail += `, torn page [${tornStart}, ${fillEnd}) filled ${mode.slice(5)}`;
  return { content: image.view().slice(), detail };
}

/** Pages (of `pageSize`) touched by pending operations, in increasing order. */
function touchedPages(model: FileModel, pageSize: number): number[] {
  const pages = new Set<number>();
  const touch = (start: number, end: number): void => {
    for (let p = Math.floor(start / pageSize); p * pageSize < end; p++) pages.add(p);
  };
  let size = model.durable.size;
  for (const op of model.pending) {
    switch (op.kind) {
      case 'write': {
        const end = op.offset + op.bytes.length;
        touch(op.offset, end);
        size = Math.max(size, end);
        break;
      }
      case 'truncate':
        touch(Math.min(op.size, size), Math.max(op.size, size));
        size = op.size;
        break;
      case 'preallocate': {
        const end = op.offset + op.length;
        if (end > size) {
          touch(size, end);
          size = end;
        }
        break;
      }
    }
  }
  return [...pages].sort((a, b) => a - b);
}

/** Each touched page independently comes back as in the future image or as durable. */
function crashPages(model: FileModel, prng: Prng, pageSize: number, keepP: number): FileOutcome {
  const future = model.future();
  const durableSize = model.durable.size;
  const futureSize = future.size;
  const image: ByteImage = model.durable.clone();
  // Whether a net shrink reached the disk is a metadata decision of its own.
  const shrinkKept = futureSize >= durableSize || prng.chance(keepP);
  const pages = touchedPages(model, pageSize);
  let keptPages = 0;
  let highestKeptEnd = 0;
  for (const page of pages) {
    if (!prng.chance(keepP)) continue;
    keptPages++;
    const start = page * pageSize;
    const end = Math.min(start + pageSize, futureSize);
    highestKeptEnd = Math.max(highestKeptEnd, start + pageSize);
    if (end > start) image.write(start, future.view().subarray(start, end));
  }
  let size: number;
  if (futureSize >= durableSize) size = Math.max(durableSize, Math.min(futureSize, highestKeptEnd));
  else size = shrinkKept ? futureSize : durableSize;
  image.setSize(size);
  const detail =
    `kept ${keptPages}/${pages.length} page(s), size ${size} (synced ${durableSize}, written ${futureSize})` +
    (futureSize < durableSize ? `, shrink ${shrinkKept ? 'kept' : 'lost'}` : '');
  return { content: image.view().slice(), detail };
}
