/**
 * FaultFs tests. Randomized tests take their seed from SEED (default below);
 * every failure message carries the seed and `fault.describe()`, so a
 * failing run can be replayed with `SEED=<n> node --test dist/test/fault.test.js`.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CrashPolicy, FaultFs, FaultRule, OpKind } from '../backends/fault.js';
import { MemFs } from '../backends/memfs.js';
import { RaftlogError } from '../src/errors.js';
import { runConformance } from './conformance/suite.js';
import type { FileHandle, FileSystem } from '../src/filesystem.js';
import { Random } from './support/random.js';

const SEED = process.env.SEED === undefined ? 0x5eed : Number(process.env.SEED);

/** Runs `body`; on failure rethrows with the seed and the fault log of every FaultFs involved. */
async function withReport<T>(seed: number, faults: readonly FaultFs[], body: () => Promise<T> | T): Promise<T> {
  try {
    return await body();
  } catch (error) {
    const report = faults.map((f) => f.describe()).join('\n');
    const message = error instanceof Error ? error.message : String(error);
    const wrapped = new Error(`[seed=${seed}] ${message}\n${report}`);
    wrapped.cause = error;
    throw wrapped;
  }
}

/** Deterministic test content: byte i of a chunk tagged `tag` (never all-zero, so holes show). */
function chunk(length: number, tag: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 31 + tag * 17) % 251) + 1;
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function readAll(fs: FileSystem, name: string): Promise<Uint8Array> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const size = await handle.size();
    const out = new Uint8Array(size);
    const n = await handle.read(out, 0, size, 0);
    assert.equal(n, size, `read all of ${name}`);
    return out;
  } finally {
    await handle.close();
  }
}

async function readHandle(handle: FileHandle, length: number, position = 0): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const n = await handle.read(out, 0, length, position);
  return out.subarray(0, n);
}

/** Asserts the promise rejects with an injected RaftlogError of `code`. */
async function rejectsInjected(promise: Promise<unknown>, code: 'IO' | 'NO_SPACE'): Promise<RaftlogError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RaftlogError, `expected a RaftlogError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.errno, code === 'IO' ? 'EIO' : 'ENOSPC');
    assert.match(error.message, /injected/);
    return error;
  }
  assert.fail(`expected an injected ${code} rejection`);
}

function isPrefixOf(short: Uint8Array, long: Uint8Array): boolean {
  return short.length <= long.length && Buffer.from(long.subarray(0, short.length)).equals(Buffer.from(short));
}

function bitDistance(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let bits = 0;
  for (let i = 0; i < a.length; i++) {
    let x = (a[i] ?? 0) ^ (b[i] ?? 0);
    while (x !== 0) {
      bits += x & 1;
      x >>= 1;
    }
  }
  return bits;
}

// ---------------------------------------------------------------------------

test('forwards operations, capabilities and counts every operation', async () => {
  const inner = new MemFs();
  const fault = new FaultFs(inner, { seed: SEED });
  await withReport(SEED, [fault], async () => {
    assert.equal(fault.capabilities.backend, 'fault');
    assert.equal(fault.capabilities.writeAlignment, inner.capabilities.writeAlignment);
    assert.equal(fault.unwrap(), inner);
    assert.equal(fault.opIndex, 0);
    await fault.init();
    const h = await fault.open('a.log', { create: true });
    await h.write([chunk(10, 1), chunk(5, 2)], 0);
    assert.deepEqual(await readHandle(h, 15), concat([chunk(10, 1), chunk(5, 2)]));
    assert.equal(await h.size(), 15);
    await h.truncate(12);
    await h.preallocate(0, 100);
    assert.equal(await h.size(), 100);
    await h.sync();
    await h.close();
    await fault.rename('a.log', 'b.log');
    assert.deepEqual(await fault.list(), ['b.log']);
    assert.equal(await fault.exists('a.log'), false);
    await fault.syncDir();
    const r = await fault.reuse('b.log', 'c.log');
    await r.close();
    await fault.remove('c.log');
    // init, open, write, read, size, truncate, preallocate, size, sync, close,
    // rename, list, exists, syncDir, reuse, close, remove
    assert.equal(fault.opIndex, 17);
    assert.equal(fault.log.length, 0);
    await assert.rejects(fault.open('missing'), (e: unknown) => e instanceof RaftlogError && e.code === 'NOT_FOUND');
  });
});

test('files already in the inner FS count as durable', async () => {
  const inner = MemFs.fromSnapshot(new Map([['old.log', chunk(300, 9)]]));
  const fault = new FaultFs(inner, { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const h = await fault.open('old.log');
    await h.write([chunk(50, 3)], 300);
    const image = await fault.crashImage('dropUnsynced');
    assert.deepEqual([...image.keys()], ['old.log']);
    assert.deepEqual(image.get('old.log'), chunk(300, 9));
  });
});

// ---------------------------------------------------------------------------
// Crash policies

const POLICIES: readonly CrashPolicy[] = [
  'dropUnsynced',
  'keepPrefix',
  'keepPages',
  'tornZeros',
  'tornOld',
  'tornGarbage',
  'loseDirEntries',
  'mixed',
  { data: 'pages', dir: 'keepAll', keepProbability: 0.25 },
];

interface Workload {
  readonly synced: Uint8Array;
  readonly written: Uint8Array;
  readonly other: Uint8Array;
}

/**
 * A durable log with a synced prefix and an unsynced tail of several writes
 * of uneven sizes (some cross page boundaries), plus a fully synced second
 * file. Directory entries are synced.
 */
async function appendWorkload(fault: FaultFs, tailWrites: number): Promise<Workload> {
  await fault.init();
  const log = await fault.open('wal.log', { create: true });
  const other = await fault.open('meta', { create: true });
  await fault.syncDir();
  const parts: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < 3; i++) {
    const c = chunk(1000 + i * 1500, i);
    await log.write([c], at);
    parts.push(c);
    at += c.length;
  }
  await log.sync();
  const synced = concat(parts);
  for (let i = 0; i < tailWrites; i++) {
    const c = chunk(700 + ((i * 2311) % 5000), 10 + i);
    await log.write([c], at);
    parts.push(c);
    at += c.length;
  }
  const otherBytes = chunk(5000, 99);
  await other.write([otherBytes], 0, { sync: true });
  await other.write([chunk(100, 98)], 5000); // unsynced tail on the other file too
  return { synced, written: concat(parts), other: otherBytes };
}

function policyName(policy: CrashPolicy): string {
  return typeof policy === 'string' ? policy : JSON.stringify(policy);
}

for (const policy of POLICIES) {
  test(`crash policy ${policyName(policy)} keeps synced data byte-for-byte and can drop unsynced data`, async () => {
    let dropped = 0;
    let keptSome = 0;
    const runs = 40;
    for (let s = 0; s < runs; s++) {
      const seed = SEED + s;
      const fault = new FaultFs(new MemFs(), { seed });
      await withReport(seed, [fault], async () => {
        const w = await appendWorkload(fault, 5);
        const restarted = await fault.crash(policy);
        const wal = await readAll(restarted, 'wal.log');
        const meta = await readAll(restarted, 'meta');
        assert.ok(wal.length >= w.synced.length, `wal.log shorter (${wal.length}) than its synced ${w.synced.length} bytes`);
        assert.deepEqual(wal.subarray(0, w.synced.length), w.synced, 'synced prefix of wal.log changed');
        assert.deepEqual(meta.subarray(0, w.other.length), w.other, 'synced content of meta changed');
        assert.ok(wal.length <= w.written.length + 4096, 'crash image longer than anything written plus one torn page');
        const named = typeof policy === 'string' ? policy : 'pages';
        if (named === 'dropUnsynced') assert.deepEqual(wal, w.synced);
        if (named === 'loseDirEntries') assert.deepEqual(wal, w.written);
        if (named === 'keepPrefix') assert.ok(isPrefixOf(wal, w.written), 'not a prefix of the writes');
        if (named === 'tornOld' || named === 'tornZeros') {
          // A prefix of the writes, then (in the torn page past the old end of file) zeros.
          let match = 0;
          while (match < wal.length && wal[match] === w.written[match]) match++;
          assert.ok(
            wal.subarray(match).every((b) => b === 0),
            `non-zero byte after the cut at ${match}`,
          );
        }
        if (named === 'keepPages') {
          // Every byte is what was written or a zero-filled hole of a lost page.
          for (let i = w.synced.length; i < wal.length; i++) {
            if (wal[i] !== 0 && wal[i] !== w.written[i]) assert.fail(`byte ${i} is neither written nor a hole`);
          }
        }
        const lost = wal.length < w.written.length || !Buffer.from(wal).equals(Buffer.from(w.written));
        if (lost) dropped++;
        if (wal.length > w.synced.length) keptSome++;
      });
    }
    const named = typeof policy === 'string' ? policy : 'pages';
    if (named !== 'loseDirEntries') assert.ok(dropped > 0, `[seed=${SEED}] ${named}: no run lost unsynced data`);
    if (named !== 'dropUnsynced') assert.ok(keptSome > 0, `[seed=${SEED}] ${named}: no run kept unsynced data`);
  });
}

test('torn pages are filled with zeros or garbage past the cut', async () => {
  let zeroFilled = 0;
  let garbage = 0;
  for (let s = 0; s < 60; s++) {
    for (const policy of ['tornZeros', 'tornGarbage'] as const) {
      const seed = SEED + s;
      const fault = new FaultFs(new MemFs(), { seed });
      await withReport(seed, [fault], async () => {
        const w = await appendWorkload(fault, 3);
        const wal = (await fault.crashImage(policy)).get('wal.log');
        assert.ok(wal !== undefined);
        assert.deepEqual(wal.subarray(0, w.synced.length), w.synced);
        // Past the last byte that matches the writes, the torn page is filled.
        let match = 0;
        while (match < wal.length && wal[match] === w.written[match]) match++;
        const fill = wal.subarray(match);
        if (fill.length > 0 && fill.every((b) => b === 0) && policy === 'tornZeros') zeroFilled++;
        if (fill.length > 8 && policy === 'tornGarbage' && fill.some((b, i) => b !== 0 && b !== w.written[match + i])) garbage++;
      });
    }
  }
  assert.ok(zeroFilled > 0, `[seed=${SEED}] no zero-filled torn page seen`);
  assert.ok(garbage > 0, `[seed=${SEED}] no garbage-filled torn page seen`);
});

test('unsynced truncate and preallocate are undone by dropUnsynced, kept after a barrier', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const h = await fault.open('f', { create: true });
    await fault.syncDir();
    await h.write([chunk(9000, 1)], 0, { sync: true });
    await h.truncate(100);
    await h.preallocate(0, 20_000);
    assert.equal(await h.size(), 20_000);
    assert.deepEqual((await fault.crashImage('dropUnsynced')).get('f'), chunk(9000, 1));
    await h.sync();
    const after = (await fault.crashImage('dropUnsynced')).get('f');
    assert.equal(after?.length, 20_000);
    assert.deepEqual(after?.subarray(0, 100), chunk(100, 1));
    assert.ok(after?.subarray(100).every((b) => b === 0));
  });
});

test('same seed gives the same crash image and fault log; another seed differs', async () => {
  const rules: FaultRule[] = [
    { ops: ['write'], when: { probability: 0.3 }, error: 'short' },
    { ops: ['read'], when: { probability: 0.2 }, error: 'flip' },
    { ops: ['write'], path: 'wal.*', when: { probability: 0.1 }, error: 'EIO' },
  ];
  async function run(seed: number): Promise<{ image: Map<string, Uint8Array>; log: string[]; fault: FaultFs }> {
    const fault = new FaultFs(new MemFs(), { seed });
    for (const rule of rules) fault.inject(rule);
    const wal = await fault.open('wal.1', { create: true });
    const other = await fault.open('other', { create: true });
    await fault.syncDir();
    let at = 0;
    for (let i = 0; i < 30; i++) {
      const c = chunk(200 + i * 97, i);
      try {
        await wal.write([c], at, { sync: i % 7 === 0 });
        at += c.length;
      } catch {
        // injected EIO: the test only compares what happened
      }
      await other.write([c], i * 50);
      await readHandle(wal, 64, Math.max(0, at - 64));
    }
    const image = await fault.crashImage();
    return { image, log: fault.log.map((e) => JSON.stringify(e)), fault };
  }
  const a = await run(SEED);
  const b = await run(SEED);
  await withReport(SEED, [a.fault, b.fault], () => {
    assert.deepEqual([...a.image.keys()], [...b.image.keys()]);
    for (const [name, bytes] of a.image) assert.deepEqual(b.image.get(name), bytes, `image of ${name} differs`);
    assert.deepEqual(a.log, b.log);
    assert.ok(a.log.length > 5, 'expected faults to fire');
  });
  const others = await Promise.all([1, 2, 3].map((d) => run(SEED + d)));
  const differs = others.some(
    (o) =>
      JSON.stringify(o.log) !== JSON.stringify(a.log) ||
      [...o.image].some(([n, bytes]) => !Buffer.from(bytes).equals(Buffer.from(a.image.get(n) ?? []))),
  );
  assert.ok(differs, `[seed=${SEED}] seeds ${SEED + 1}..${SEED + 3} replayed seed ${SEED} exactly`);
});

// ---------------------------------------------------------------------------
// Directory entries

test('lose unsynced dir entries: create lost, rename reverted, remove resurrected', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    for (const name of ['renamed-from', 'removed', 'replaced', 'replacer']) {
      const h = await fault.open(name, { create: true });
      await h.write([chunk(100, name.length)], 0, { sync: true });
      await h.close();
    }
    await fault.syncDir();
    const created = await fault.open('created', { create: true });
    await created.write([chunk(50, 1)], 0, { sync: true }); // data synced, entry not
    await fault.rename('renamed-from', 'renamed-to');
    await fault.remove('removed');
    await fault.rename('replacer', 'replaced');
    assert.deepEqual((await fault.list()).sort(), ['created', 'renamed-to', 'replaced']);

    const keep = await fault.crashImage({ data: 'keepAll', dir: 'keepAll' });
    assert.deepEqual([...keep.keys()], ['created', 'renamed-to', 'replaced']);
    assert.deepEqual(keep.get('replaced'), chunk(100, 'replacer'.length));

    const restarted = await fault.crash('loseDirEntries');
    const names = (await restarted.list()).sort();
    assert.deepEqual(names, ['removed', 'renamed-from', 'replaced', 'replacer']);
    assert.deepEqual(await readAll(restarted, 'removed'), chunk(100, 'removed'.length), 'resurrected with its durable content');
    assert.deepEqual(await readAll(restarted, 'renamed-from'), chunk(100, 'renamed-from'.length));
    assert.deepEqual(await readAll(restarted, 'replaced'), chunk(100, 'replaced'.length), 'rename over it reverted');
    const lost = fault.log.filter((e) => e.kind === 'crash' && /lost create created/.test(e.detail));
    assert.equal(lost.length, 1, 'the crash log names the lost create');
  });
});

test('syncDir makes creates, renames and removes survive every policy', async () => {
  for (const policy of POLICIES) {
    const fault = new FaultFs(new MemFs(), { seed: SEED });
    await withReport(SEED, [fault], async () => {
      const a = await fault.open('a', { create: true });
      await a.write([chunk(10, 1)], 0, { sync: true });
      const b = await fault.open('b', { create: true });
      await b.write([chunk(10, 2)], 0, { sync: true });
      await fault.syncDir();
      await fault.rename('a', 'a2');
      await fault.remove('b');
      const c = await fault.open('c', { create: true });
      await c.sync();
      await fault.syncDir();
      const image = await fault.crashImage(policy);
      assert.deepEqual([...image.keys()], ['a2', 'c'], policyName(policy));
      assert.deepEqual(image.get('a2'), chunk(10, 1));
    });
  }
});

test('dir mode subset keeps a later rename while dropping an earlier create (never duplicates)', async () => {
  let sawOnlyLater = false;
  for (let s = 0; s < 40; s++) {
    const seed = SEED + s;
    const fault = new FaultFs(new MemFs(), { seed });
    await withReport(seed, [fault], async () => {
      const d = await fault.open('durable', { create: true });
      await d.write([chunk(10, 1)], 0, { sync: true });
      await fault.syncDir();
      const n = await fault.open('new', { create: true });
      await n.write([chunk(10, 2)], 0, { sync: true });
      await fault.rename('durable', 'moved');
      const names = [...(await fault.crashImage({ data: 'keepAll', dir: 'subset' })).keys()];
      assert.ok(names.includes('durable') !== names.includes('moved'), `rename not atomic: ${names.join(',')}`);
      if (names.includes('moved') && !names.includes('new')) sawOnlyLater = true;
    });
  }
  assert.ok(sawOnlyLater, `[seed=${SEED}] never kept the rename without the create`);
});

test('dir mode subset applies a kept rename only to the file it renamed', async () => {
  // a → b (replacing b), then b → c. If the first rename is lost and the
  // second kept, c must not appear holding the old b.
  const seen = new Set<string>();
  for (let s = 0; s < 40; s++) {
    const seed = SEED + s;
    const fault = new FaultFs(new MemFs(), { seed });
    await withReport(seed, [fault], async () => {
      for (const [name, tag] of [
        ['a', 1],
        ['b', 2],
      ] as const) {
        const h = await fault.open(name, { create: true });
        await h.write([chunk(20, tag)], 0, { sync: true });
      }
      await fault.syncDir();
      await fault.rename('a', 'b');
      await fault.rename('b', 'c');
      const image = await fault.crashImage({ data: 'keepAll', dir: 'subset' });
      const names = [...image.keys()].join(',');
      seen.add(names);
      if (image.has('c')) assert.deepEqual(image.get('c'), chunk(20, 1), `c holds the wrong file (${names})`);
      assert.ok(['a,b', 'b', 'c'].includes(names), `impossible directory ${names}`);
    });
  }
  assert.ok(seen.size >= 2, `[seed=${SEED}] only saw ${[...seen].join(' | ')}`);
});

// ---------------------------------------------------------------------------
// fsync failure (Linux)

test('a failed barrier drops pending writes for good; the next barrier reports success', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const h = await fault.open('wal', { create: true });
    await fault.syncDir();
    const A = chunk(1000, 1);
    const B = chunk(1000, 2);
    const C = chunk(1000, 3);
    await h.write([A], 0, { sync: true });
    await h.write([B], 1000);
    const rule = fault.inject({ ops: ['sync'], path: 'wal', when: { script: 'fail' }, error: 'EIO' });
    await rejectsInjected(h.sync(), 'IO');
    assert.equal(rule.fired, 1);
    await h.sync(); // Linux: the retry "succeeds"
    assert.deepEqual(await readHandle(h, 2000), concat([A, B]), 'reads still see B (the page cache keeps it)');
    await h.write([C], 2000);
    await h.sync();
    const image = (await fault.crashImage({ data: 'keepAll', dir: 'keepAll' })).get('wal');
    // B is not durable although two barriers succeeded after it: its range is a hole.
    assert.deepEqual(image, concat([A, new Uint8Array(1000), C]));
    assert.ok(fault.log.some((e) => e.kind === 'barrierLost' && e.path === 'wal'));

    // The same through write-with-sync: the write lands, the barrier half fails.
    const D = chunk(500, 4);
    fault.inject({ ops: ['sync'], when: { index: fault.opIndex }, error: 'EIO' });
    await rejectsInjected(h.write([D], 3000, { sync: true }), 'IO');
    assert.deepEqual(await readHandle(h, 500, 3000), D);
    await h.sync();
    const after = (await fault.crashImage({ data: 'keepAll', dir: 'keepAll' })).get('wal');
    assert.deepEqual(after, concat([A, new Uint8Array(1000), C]), 'D was dropped with the failed barrier');
  });
});

test('control: without the injected failure the same writes survive', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const h = await fault.open('wal', { create: true });
    await fault.syncDir();
    await h.write([chunk(1000, 1)], 0, { sync: true });
    await h.write([chunk(1000, 2)], 1000);
    await h.sync();
    assert.deepEqual((await fault.crashImage('dropUnsynced')).get('wal'), concat([chunk(1000, 1), chunk(1000, 2)]));
  });
});

// ---------------------------------------------------------------------------
// Injectors

type Setup = (fault: FaultFs) => Promise<() => Promise<unknown>>;

const PER_KIND: ReadonlyArray<[OpKind, Setup]> = [
  ['open', async (f) => () => f.open('x', { create: true })],
  [
    'read',
    async (f) => {
      const h = await f.open('x', { create: true });
      return () => h.read(new Uint8Array(4), 0, 4, 0);
    },
  ],
  [
    'write',
    async (f) => {
      const h = await f.open('x', { create: true });
      return () => h.write([chunk(4, 1)], 0);
    },
  ],
  [
    'sync',
    async (f) => {
      const h = await f.open('x', { create: true });
      return () => h.sync();
    },
  ],
  ['syncDir', async (f) => () => f.syncDir()],
  [
    'rename',
    async (f) => {
      await (await f.open('x', { create: true })).close();
      return () => f.rename('x', 'y');
    },
  ],
  [
    'remove',
    async (f) => {
      await (await f.open('x', { create: true })).close();
      return () => f.remove('x');
    },
  ],
  [
    'truncate',
    async (f) => {
      const h = await f.open('x', { create: true });
      return () => h.truncate(10);
    },
  ],
  [
    'preallocate',
    async (f) => {
      const h = await f.open('x', { create: true });
      return () => h.preallocate(0, 10);
    },
  ],
];

for (const [kind, setup] of PER_KIND) {
  for (const error of ['EIO', 'ENOSPC'] as const) {
    test(`${error} on ${kind} by op index fires once and is logged`, async () => {
      const fault = new FaultFs(new MemFs(), { seed: SEED });
      await withReport(SEED, [fault], async () => {
        const op = await setup(fault);
        const index = fault.opIndex;
        const rule = fault.inject({ ops: [kind], when: { index }, error });
        await rejectsInjected(op(), error === 'EIO' ? 'IO' : 'NO_SPACE');
        assert.equal(rule.fired, 1);
        const last = fault.log.find((e) => e.rule === rule.id);
        assert.equal(last?.kind, error);
        assert.equal(last?.op, kind);
        assert.equal(last?.opIndex, index);
        assert.equal(last?.rule, rule.id);
        assert.match(fault.describe(), new RegExp(`seed=${SEED}`));
        await op(); // index passed: the same operation now succeeds
        assert.equal(rule.fired, 1);
      });
    });
  }
}

test('path patterns: glob and RegExp select files', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const wal = await fault.open('000001.wal', { create: true });
    const meta = await fault.open('MANIFEST', { create: true });
    const glob = fault.inject({ ops: ['write'], path: '*.wal', when: { probability: 1 }, error: 'EIO' });
    const re = fault.inject({ ops: ['sync'], path: /^MANI/, when: { probability: 1 }, error: 'EIO' });
    await rejectsInjected(wal.write([chunk(4, 1)], 0), 'IO');
    await meta.write([chunk(4, 1)], 0);
    await wal.sync();
    await rejectsInjected(meta.sync(), 'IO');
    assert.equal(glob.fired, 1);
    assert.equal(re.fired, 1);
    glob.remove();
    await wal.write([chunk(4, 1)], 0);
    assert.equal(glob.fired, 1);
  });
});

test('probability rules fire at about the rate, and per-path streams ignore interleaving', async () => {
  async function outcomes(seed: number, interleave: boolean): Promise<{ a: boolean[]; fired: number; fault: FaultFs }> {
    const fault = new FaultFs(new MemFs(), { seed });
    const a = await fault.open('a', { create: true });
    const b = await fault.open('b', { create: true });
    await a.write([chunk(16, 1)], 0);
    await b.write([chunk(16, 1)], 0);
    const rule = fault.inject({ ops: ['read'], when: { probability: 0.5 }, error: 'EIO' });
    const result: boolean[] = [];
    for (let i = 0; i < 200; i++) {
      result.push(
        await a.read(new Uint8Array(4), 0, 4, 0).then(
          () => true,
          () => false,
        ),
      );
      if (interleave && i % 3 === 0) await b.read(new Uint8Array(4), 0, 4, 0).catch(() => undefined);
    }
    return { a: result, fired: rule.fired, fault };
  }
  const plain = await outcomes(SEED, false);
  const mixed = await outcomes(SEED, true);
  await withReport(SEED, [plain.fault, mixed.fault], () => {
    const failures = plain.a.filter((ok) => !ok).length;
    assert.equal(failures, plain.fired);
    assert.ok(failures > 50 && failures < 150, `p=0.5 over 200 reads fired ${failures} times`);
    assert.deepEqual(mixed.a, plain.a, 'reads of b changed the outcomes for a');
  });
  const never = new FaultFs(new MemFs(), { seed: SEED });
  const h = await never.open('a', { create: true });
  const zero = never.inject({ ops: 'any', when: { probability: 0 }, error: 'EIO' });
  for (let i = 0; i < 50; i++) await h.write([chunk(4, i)], i * 4);
  assert.equal(zero.fired, 0);
});

test('script schedules: pass once, fail once, then pass', async () => {
  const cases: Array<[string, boolean[]]> = [
    ['pass,fail,pass*', [true, false, true, true, true]],
    ['2*pass,fail*', [true, true, false, false, false]],
    ['fail', [false, true, true, true]],
    ['1*pass->1*fail->pass', [true, false, true, true]],
  ];
  for (const [script, expected] of cases) {
    const fault = new FaultFs(new MemFs(), { seed: SEED });
    await withReport(SEED, [fault], async () => {
      const h = await fault.open('f', { create: true });
      const rule = fault.inject({ ops: ['sync'], when: { script }, error: 'EIO' });
      const got: boolean[] = [];
      for (let i = 0; i < expected.length; i++) {
        await h.write([chunk(3, i)], 0); // not a sync: does not advance the script
        got.push(
          await h.sync().then(
            () => true,
            () => false,
          ),
        );
      }
      assert.deepEqual(got, expected, script);
      assert.equal(rule.fired, expected.filter((ok) => !ok).length);
    });
  }
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  for (const bad of ['', 'pass,maybe', 'fail*,pass', '3*pass*']) {
    assert.throws(
      () => fault.inject({ ops: ['sync'], when: { script: bad }, error: 'EIO' }),
      (e: unknown) => e instanceof RaftlogError && e.code === 'INVALID_ARGUMENT',
      bad,
    );
  }
});

test('reuse is seen as reuse, rename and open, one script step per call', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    for (const name of ['1.log', '2.log']) await (await fault.open(name, { create: true })).close();
    const rule = fault.inject({ ops: ['rename', 'open'], when: { script: 'pass,fail' }, error: 'EIO' });
    const recycled = await fault.reuse('1.log', '3.log'); // step 1: pass
    await recycled.close();
    await rejectsInjected(fault.reuse('2.log', '4.log'), 'IO'); // step 2: fail
    assert.equal(rule.fired, 1);
    assert.deepEqual((await fault.list()).sort(), ['2.log', '3.log']);
    assert.equal(fault.log.find((e) => e.rule === rule.id)?.op, 'reuse');
  });
});

test('ENOSPC after a byte budget, whole and partial', async () => {
  for (const partial of [false, true]) {
    const fault = new FaultFs(new MemFs(), { seed: SEED });
    await withReport(SEED, [fault], async () => {
      const h = await fault.open('f', { create: true });
      const rule = fault.inject({ ops: ['write', 'preallocate'], when: { afterBytes: 10_000, partial }, error: 'ENOSPC' });
      await h.write([chunk(4096, 1)], 0);
      await h.write([chunk(4096, 2)], 4096);
      await h.write([chunk(100, 3)], 0); // an overwrite needs no space
      await rejectsInjected(h.write([chunk(4096, 4)], 8192), 'NO_SPACE');
      assert.equal(rule.fired, 1);
      const expectedSize = partial ? 10_000 : 8192;
      assert.equal(await h.size(), expectedSize);
      if (partial) assert.deepEqual(await readHandle(h, 10_000 - 8192, 8192), chunk(4096, 4).subarray(0, 10_000 - 8192));
      await rejectsInjected(h.preallocate(0, 20_000), 'NO_SPACE');
      await h.preallocate(0, 5000); // inside the file: no growth
      assert.match(fault.log.find((e) => e.kind === 'ENOSPC')?.detail ?? '', partial ? /partial: 1808 byte/ : /write 4096@8192$/);
    });
  }
});

test('short reads and short writes still deliver every byte', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const shortWrite = fault.inject({ ops: ['write'], when: { probability: 1 }, error: 'short' });
    const shortRead = fault.inject({ ops: ['read'], when: { probability: 1 }, error: 'short' });
    const h = await fault.open('f', { create: true });
    await fault.syncDir();
    const parts = [chunk(3000, 1), chunk(1, 2), chunk(7000, 3)];
    await h.write(parts, 10, { sync: true });
    const whole = concat(parts);
    assert.deepEqual(await readHandle(h, whole.length, 10), whole);
    const out = new Uint8Array(20_000);
    assert.equal(await h.read(out, 5, 20_000 - 5, 0), whole.length + 10, 'short read at EOF returns the true count');
    assert.deepEqual(out.subarray(15, 15 + whole.length), whole);
    assert.equal(shortWrite.fired, 1);
    assert.equal(shortRead.fired, 2);
    const split = fault.log.find((e) => e.kind === 'short' && e.op === 'write');
    const pieces = Number(/as (\d+) inner write/.exec(split?.detail ?? '')?.[1]);
    assert.ok(pieces >= 2, `write was not split: ${split?.detail}`);
    assert.deepEqual((await fault.crashImage('dropUnsynced')).get('f')?.subarray(10), whole, 'all pieces were synced');
  });
});

test('bit flips at rest reach reads and crash images; flips on read are transient', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const original = chunk(8192, 5);
    const h = await fault.open('data', { create: true });
    await fault.syncDir();
    await h.write([original], 0, { sync: true });

    const onRead = fault.inject({ ops: ['read'], when: { probability: 1 }, error: 'flip' });
    assert.equal(bitDistance(await readHandle(h, 8192), original), 1, 'read returned the flipped bit');
    onRead.remove();
    assert.deepEqual(await readHandle(h, 8192), original, 'flip on read did not stick');

    const events = await fault.flipBits({ file: 'data', count: 3 });
    assert.equal(events.length, 3);
    const now = await readHandle(h, 8192);
    const distance = bitDistance(now, original);
    assert.ok(distance >= 1 && distance <= 3, `${distance} bits differ`);
    const image = (await fault.crashImage('dropUnsynced')).get('data');
    assert.deepEqual(image, now, 'durable bytes carry the flips');
    assert.equal(fault.log.filter((e) => e.kind === 'flipAtRest').length, 3);

    const onWrite = fault.inject({ ops: ['write'], when: { index: fault.opIndex }, error: 'flip' });
    const fresh = chunk(100, 6);
    await h.write([fresh], 0);
    assert.equal(bitDistance(await readHandle(h, 100), fresh), 1, 'write stored a flipped bit');
    assert.equal(onWrite.fired, 1);
    assert.equal(bitDistance(fresh, chunk(100, 6)), 0, "caller's buffer untouched");
  });
});

test('a misdirected write lands elsewhere and the target keeps its old bytes', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const page = 4096;
    const pages = 8;
    const old = chunk(page * pages, 1);
    const h = await fault.open('blocks', { create: true });
    await h.write([old], 0, { sync: true });
    const rule = fault.inject({ ops: ['write'], path: 'blocks', when: { index: fault.opIndex + 1 }, error: 'misdirect' });
    await h.write([chunk(10, 2)], 0); // op before the chosen index: lands where asked
    const fresh = chunk(page, 3);
    await h.write([fresh], 3 * page);
    assert.equal(rule.fired, 1);
    const event = fault.log.find((e) => e.kind === 'misdirect');
    const landed = Number(/landed at (\d+)/.exec(event?.detail ?? '')?.[1]);
    assert.ok(Number.isInteger(landed) && landed !== 3 * page && landed % page === 0, event?.detail);
    const now = await readHandle(h, page * pages);
    assert.deepEqual(now.subarray(3 * page, 4 * page), old.subarray(3 * page, 4 * page), 'target kept old bytes');
    assert.deepEqual(now.subarray(landed, landed + page), fresh, 'the data is at the wrong place');
    assert.equal(now.length, page * pages, 'stayed inside the file');
  });
});

// ---------------------------------------------------------------------------
// Crash life cycle and sweeps

test('after crash() the FaultFs is dead and the new FileSystem is independent', async () => {
  const fault = new FaultFs(new MemFs(), { seed: SEED });
  await withReport(SEED, [fault], async () => {
    const h = await fault.open('f', { create: true });
    await fault.syncDir();
    await h.write([chunk(10, 1)], 0, { sync: true });
    const inflight = h.write([chunk(10, 2)], 10, { sync: true }); // in flight at the power cut
    const restarted = await fault.crash('dropUnsynced');
    await rejectsInjected(inflight, 'IO');
    for (const op of [
      () => fault.list(),
      () => h.sync(),
      () => h.read(new Uint8Array(1), 0, 1, 0),
      () => fault.open('g', { create: true }),
      () => h.close(),
    ]) {
      await rejectsInjected(op(), 'IO');
    }
    assert.equal(fault.crashed, true);
    const r = await restarted.open('f');
    assert.deepEqual(await readHandle(r, 100), chunk(10, 1));
    await r.write([chunk(5, 9)], 0);
    assert.deepEqual(fault.log.filter((e) => e.kind === 'crash').length >= 1, true);
    assert.ok(restarted instanceof MemFs);
  });
});

test('freezeAt sweep: every synced acknowledgement survives a crash at every op index', async () => {
  const records = 6;
  const record = (i: number): Uint8Array => chunk(300 + i * 211, i);
  async function workload(fs: FileSystem, acked: { synced: number }): Promise<void> {
    const h = await fs.open('wal', { create: true });
    await fs.syncDir();
    let at = 0;
    for (let i = 0; i < records; i++) {
      const r = record(i);
      await h.write([r], at, { sync: i % 2 === 1 });
      at += r.length;
      if (i % 2 === 1) acked.synced = i + 1;
    }
    await h.sync();
    acked.synced = records;
    await h.close();
  }
  const reference = new FaultFs(new MemFs(), { seed: SEED });
  await workload(reference, { synced: 0 });
  const totalOps = reference.opIndex;
  assert.equal(totalOps, 2 + records + 2); // open, syncDir, writes, sync, close
  for (let k = 0; k < totalOps; k++) {
    for (const policy of ['dropUnsynced', 'keepPrefix', 'keepPages', 'mixed'] as const) {
      const seed = SEED + k;
      const fault = new FaultFs(new MemFs(), { seed });
      fault.freezeAt(k);
      await withReport(seed, [fault], async () => {
        const acked = { synced: 0 };
        const outcome = await workload(fault, acked).then(
          () => 'done',
          (e: unknown) => e,
        );
        if (k < totalOps - 1) {
          assert.ok(
            outcome instanceof RaftlogError && outcome.code === 'IO' && /injected power loss/.test(outcome.message),
            `k=${k}: ${String(outcome)}`,
          );
        }
        assert.equal(fault.frozen, true);
        const image = await fault.crashImage(policy);
        const wal = image.get('wal');
        // The wal entry is durable once op 1 (syncDir) ran.
        if (k >= 1) assert.ok(wal !== undefined, `k=${k}: wal missing`);
        const mustHave = concat(Array.from({ length: acked.synced }, (_, i) => record(i)));
        assert.ok(wal === undefined ? mustHave.length === 0 : isPrefixOf(mustHave, wal), `k=${k} ${policy}: acknowledged records lost`);
      });
    }
  }
});

test('model stays equal to the inner FS under a random workload with every shaping fault', async () => {
  for (let s = 0; s < 25; s++) {
    const seed = SEED + s;
    const inner = new MemFs();
    const fault = new FaultFs(inner, { seed });
    const rng = Random.derive(seed, 'test-workload');
    fault.inject({ ops: ['write'], when: { probability: 0.3 }, error: 'short' });
    fault.inject({ ops: ['write'], when: { probability: 0.1 }, error: 'misdirect' });
    fault.inject({ ops: ['write', 'read'], when: { probability: 0.1 }, error: 'flip' });
    fault.inject({ ops: ['write', 'truncate', 'rename', 'open'], when: { probability: 0.05 }, error: 'EIO' });
    fault.inject({ ops: 'any', when: { afterBytes: 200_000, partial: true }, error: 'ENOSPC' });
    await withReport(seed, [fault], async () => {
      const names = ['a', 'b', 'c', 'd'];
      const handles = new Map<string, FileHandle>();
      for (let i = 0; i < 150; i++) {
        const name = rng.pick(names);
        const other = rng.pick(names);
        const choice = rng.below(10);
        const h = handles.get(name);
        const attempt = async (): Promise<void> => {
          if (h === undefined || choice === 0) {
            handles.set(name, await fault.open(name, { create: true }));
          } else if (choice <= 4) {
            const size = await h.size();
            await h.write([chunk(rng.between(1, 6000), i), chunk(rng.below(50), i + 1)], rng.below(size + 100), { sync: rng.chance(0.2) });
          } else if (choice === 5) {
            await h.truncate(rng.below(20_000));
          } else if (choice === 6) {
            await h.preallocate(rng.below(10_000), rng.below(10_000));
          } else if (choice === 7 && name !== other) {
            await fault.rename(name, other);
            handles.delete(other);
            handles.delete(name);
          } else if (choice === 8) {
            await fault.remove(name);
            handles.delete(name);
          } else {
            await fault.syncDir();
          }
        };
        await attempt().catch((e: unknown) => {
          if (!(e instanceof RaftlogError) || !/injected/.test(e.message)) throw e;
        });
      }
      // No barrier failed (sync faults are off), so "everything persists"
      // must be exactly what the inner FS holds.
      const image = await fault.crashImage({ data: 'keepAll', dir: 'keepAll' });
      const actual = inner.snapshot();
      assert.deepEqual([...image.keys()], [...actual.keys()].sort());
      for (const [name, bytes] of actual) assert.deepEqual(image.get(name), bytes, `model of ${name} drifted from the inner FS`);
      assert.ok(fault.log.length > 10);
    });
  }
});

// ---------------------------------------------------------------------------
// The shared FileSystem contract, with FaultFs (no rules) over MemFs: a
// wrapper with no faults injected must be indistinguishable from its inner
// backend, and its crashes must keep what every policy promises.

for (const policy of ['mixed', 'dropUnsynced', 'keepPages', 'tornGarbage'] as const) {
  runConformance<FaultFs>({
    name: `fault(memfs), crash ${policy}`,
    async make() {
      const fs = new FaultFs(new MemFs(), { seed: SEED });
      return {
        fs,
        reopen: async () => MemFs.fromSnapshot((fs.unwrap() as MemFs).snapshot()),
        cleanup: () => fs.close().catch(() => undefined),
      };
    },
    crash: (fs) => fs.crash(policy),
  });
}
