/**
 * Shared by the index checkpoint tests: small engine options that rotate,
 * purge and compress often, random histories of every kind of operation, a
 * digest of everything a reader sees, and the comparison of an open that
 * loads the checkpoint with a full replay of the same image.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemFs } from '../../backends/memfs.js';
import { Engine, type EngineOptions } from '../../src/engine.js';
import { LogBatch } from '../../src/log-batch.js';
import type { FileSystem } from '../../src/filesystem.js';
import { Random } from './random.js';

export type Image = Map<string, Uint8Array>;

/** Small files (rotation), a low purge threshold (GC rewrites) and a low compression threshold (lz4 records). */
export const OPTIONS = {
  targetFileSize: 4096,
  preallocateBytes: 4096,
  purgeThreshold: 3 * 4096,
  rewriteMaxEntries: 12,
  compressionThreshold: 200,
} satisfies Partial<EngineOptions>;

export async function open(fs: FileSystem, extra: Partial<EngineOptions> = {}): Promise<Engine> {
  const engine = new Engine({ fs, seed: 11, ...OPTIONS, ...extra });
  await engine.open();
  return engine;
}

export const enc = new TextEncoder();
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Everything a reader can see: per region its range, every entry, every key, and where its entries live. */
export async function snapshot(engine: Engine): Promise<string> {
  const regions = [];
  for (const region of engine.raftGroups()) {
    const first = engine.firstIndex(region);
    const last = engine.lastIndex(region);
    const entries =
      first === undefined ? [] : (await engine.fetchEntriesTo(region, first, last! + 1)).map((e) => `${e.index}:${e.term}:${hex(e.data)}`);
    const keys = engine.scan(region).map((kv) => `${hex(kv.key)}=${hex(kv.value)}`);
    regions.push({ region, first, last, entries, keys, span: engine.fileSpan(region) });
  }
  return JSON.stringify(regions);
}

export type Op =
  | { kind: 'append'; region: number; back: number; count: number; term: number; size: number; key: boolean }
  | { kind: 'compact'; region: number; ahead: number }
  | { kind: 'clean'; region: number }
  | { kind: 'put'; region: number; key: number; size: number }
  | { kind: 'delete'; region: number; key: number }
  | { kind: 'purge'; compact: boolean }
  | { kind: 'restart' };

export const regionArb = fc.integer({ min: 1, max: 5 });
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      region: regionArb,
      back: fc.nat(3),
      count: fc.integer({ min: 1, max: 5 }),
      term: fc.integer({ min: 1, max: 4 }),
      size: fc.integer({ min: 0, max: 400 }),
      key: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), region: regionArb, ahead: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clean' as const), region: regionArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('put' as const), region: regionArb, key: fc.nat(3), size: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), region: regionArb, key: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('purge' as const), compact: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

/** Entry data: a repeating pattern (compressible, so larger batches become lz4 records) salted by its position. */
export function data(region: number, index: number, term: number, size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i % 7 === 0 ? (region * 31 + index * 7 + term) & 0xff : i & 0x0f));
}

/** Applies one operation other than a restart. */
export async function applyOp(engine: Engine, o: Exclude<Op, { kind: 'restart' }>): Promise<void> {
  switch (o.kind) {
    case 'append': {
      const last = engine.lastIndex(o.region);
      const first = engine.firstIndex(o.region);
      const start = last === undefined ? 5 : Math.max(first!, last + 1 - o.back);
      const batch = new LogBatch();
      batch.addEntries(
        o.region,
        Array.from({ length: o.count }, (_, i) => ({ index: start + i, term: o.term, data: data(o.region, start + i, o.term, o.size) })),
      );
      if (o.key) batch.put(o.region, 'applied', enc.encode(String(start + o.count - 1)));
      await engine.write(batch);
      break;
    }
    case 'compact': {
      const first = engine.firstIndex(o.region);
      if (first !== undefined) await engine.compactTo(o.region, first + o.ahead);
      break;
    }
    case 'clean':
      await engine.clean(o.region);
      break;
    case 'put': {
      const batch = new LogBatch();
      batch.put(o.region, `k${o.key}`, new Uint8Array(o.size).fill(o.key + 1));
      await engine.write(batch);
      break;
    }
    case 'delete': {
      const batch = new LogBatch();
      batch.delete(o.region, `k${o.key}`);
      await engine.write(batch);
      break;
    }
    case 'purge': {
      const blocking = await engine.purgeExpiredFiles();
      if (o.compact) for (const region of blocking) await engine.compactTo(region, (engine.lastIndex(region) ?? 0) + 1);
      break;
    }
  }
}

/** Runs `ops` against the engine on `fs`; a restart is a clean close and an open (which loads the checkpoint). */
export async function run(fs: FileSystem, ops: readonly Op[], extra: Partial<EngineOptions> = {}): Promise<Engine> {
  let engine = await open(fs, extra);
  for (const o of ops) {
    if (o.kind !== 'restart') {
      await applyOp(engine, o);
      continue;
    }
    await engine.close();
    // A log without a file yet has nothing to replay and gets no checkpoint.
    const hasLog = await holdsLog(fs);
    engine = await open(fs, extra);
    const expected = { used: hasLog, detail: hasLog ? 'loaded' : 'absent' };
    assert.deepEqual(use(engine.recoveryReport), expected, `restart: ${JSON.stringify(engine.recoveryReport)}`);
    assert.equal(engine.recoveryReport?.records, 0, 'a clean close leaves no tail');
  }
  return engine;
}

/** Whether the open used the checkpoint, and why (the position and tail counts aside). */
export function use(report: Engine['recoveryReport']): { used: boolean; detail: string } | undefined {
  const checkpoint = report?.indexCheckpoint;
  return checkpoint === undefined ? undefined : { used: checkpoint.used, detail: checkpoint.detail };
}

export async function holdsLog(fs: FileSystem): Promise<boolean> {
  return (await fs.list()).some((name) => name.endsWith('.raftlog'));
}

/** Opens a copy of `image` with the checkpoint and one without; both must give `expected`. Returns the first's report. */
export async function assertBothOpens(image: Image, expected: string, context: string): Promise<Engine['recoveryReport']> {
  const fromCheckpoint = await open(MemFs.fromSnapshot(image));
  const report = fromCheckpoint.recoveryReport;
  assert.equal(
    await snapshot(fromCheckpoint),
    expected,
    `${context}: open with the checkpoint (${JSON.stringify(report?.indexCheckpoint)})`,
  );
  await fromCheckpoint.close();
  const replayed = await open(MemFs.fromSnapshot(image), { indexCheckpoint: false });
  assert.deepEqual(replayed.recoveryReport?.indexCheckpoint, { used: false, detail: 'disabled' });
  assert.equal(await snapshot(replayed), expected, `${context}: full replay`);
  await replayed.close();
  return report;
}

/** A history with every kind of operation, closed cleanly: its image, and the state the engine had at close. */
export async function closedHistory(seed: number, steps = 300): Promise<{ image: Image; expected: string }> {
  const rng = new Random(seed);
  const ops: Op[] = [];
  for (let i = 0; i < steps; i++) {
    const region = 1 + rng.below(5);
    const roll = rng.below(20);
    if (roll < 11)
      ops.push({
        kind: 'append',
        region,
        back: rng.below(3),
        count: 1 + rng.below(5),
        term: 1 + rng.below(4),
        size: rng.below(400),
        key: rng.below(2) === 0,
      });
    else if (roll < 13) ops.push({ kind: 'compact', region, ahead: rng.below(6) });
    else if (roll < 14) ops.push({ kind: 'clean', region });
    else if (roll < 16) ops.push({ kind: 'put', region, key: rng.below(3), size: rng.below(40) });
    else if (roll < 17) ops.push({ kind: 'delete', region, key: rng.below(3) });
    else if (roll < 19) ops.push({ kind: 'purge', compact: rng.below(2) === 0 });
    else ops.push({ kind: 'restart' });
  }
  // End on a GC pass, so the image holds a rewrite file whatever the history did before.
  ops.push({ kind: 'purge', compact: false });
  const fs = new MemFs();
  const engine = await run(fs, ops);
  const expected = await snapshot(engine);
  await engine.close();
  return { image: fs.snapshot(), expected };
}
