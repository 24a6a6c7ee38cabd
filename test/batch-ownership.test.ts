/**
 * A write owns its batch (issue 16, case 1): from the moment `write()` is
 * called, nothing the caller does to the LogBatch (writing it again,
 * `clear()`, adding items) changes what is stored or read. Each case runs
 * uncompressed and compressed, since the two paths hand different memory to
 * the writer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeLz4 } from '../hardware/native.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { installCompression, type Lz4Codec } from '../src/format/compression.js';
import { LogBatch } from '../src/log-batch.js';
import type { FileSystem } from '../src/filesystem.js';
import type { Entry } from '../src/protos.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { memTarget, posixTarget } from './support/engines.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Entries big enough (and repetitive enough) to be compressed when the threshold is low. */
function entries(first: number, count: number, tag: string): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: first + i, term: 1, data: enc.encode(`${tag}-${first + i}-`.repeat(20)) }));
}

const nativeLz4 = loadNativeLz4();

/** `codec`: the lz4 installed for the variant (lz4-napi when undefined); the addon's compresses into memory the batch reuses. */
const VARIANTS: { name: string; options: Partial<EngineOptions>; codec?: Lz4Codec }[] = [
  { name: 'uncompressed', options: { compressionThreshold: 1 << 20 } },
  { name: 'compressed', options: { compressionThreshold: 64 } },
  ...(nativeLz4 === undefined ? [] : [{ name: 'compressed, addon lz4', options: { compressionThreshold: 64 }, codec: nativeLz4 }]),
];

async function openEngine(fs: FileSystem, options: Partial<EngineOptions>): Promise<Engine> {
  const engine = new Engine({ fs, seed: 7, ...options });
  await engine.open();
  return engine;
}

async function expectEntries(engine: Engine, region: number, first: number, last: number, tagOf: (index: number) => string): Promise<void> {
  assert.equal(engine.firstIndex(region), first);
  assert.equal(engine.lastIndex(region), last);
  const read = await engine.fetchEntriesTo(region, first, last + 1);
  assert.equal(read.length, last - first + 1);
  for (const entry of read) assert.equal(dec.decode(entry.data), `${tagOf(entry.index)}-${entry.index}-`.repeat(20));
}

for (const target of [memTarget, posixTarget]) {
  for (const variant of VARIANTS) {
    describe(`a write owns its batch (${target.name}, ${variant.name})`, () => {
      before(() => installCompression(variant.codec));
      after(() => installCompression(undefined));
      for (const mode of Object.values(RecoveryMode)) {
        it(`concurrent double write of one batch, then 100 synced writes, reopens intact in ${mode}`, async () => {
          const disk = await target.make();
          try {
            const engine = await openEngine(disk.fs, variant.options);
            const batch = new LogBatch();
            batch.addEntries(1, entries(1, 3, 'a'));
            batch.put(1, 'k', enc.encode('v'));
            const [first, second] = await Promise.all([engine.write(batch, { sync: true }), engine.write(batch, { sync: true })]);
            assert.equal(first, second, 'both writes store the same record size');
            for (let i = 0; i < 100; i++) {
              const next = new LogBatch();
              next.addEntries(1, entries(4 + i, 1, 'a'));
              await engine.write(next, { sync: true });
            }
            await expectEntries(engine, 1, 1, 103, () => 'a');
            await engine.close();
            const reopened = await openEngine(disk.reopen(), { ...variant.options, recoveryMode: mode });
            try {
              assert.deepEqual(reopened.recoveryReport?.problems, []);
              await expectEntries(reopened, 1, 1, 103, () => 'a');
              assert.equal(dec.decode(reopened.get(1, 'k')!), 'v');
            } finally {
              await reopened.close();
            }
          } finally {
            await disk.cleanup();
          }
        });
      }

      it('clear() and reuse while the write is in flight change neither the stored nor the read batch', async () => {
        const disk = await target.make();
        try {
          const engine = await openEngine(disk.fs, variant.options);
          const batch = new LogBatch();
          batch.addEntries(1, entries(1, 5, 'a'));
          batch.put(1, 'k', enc.encode('first'));
          const pending = engine.write(batch, { sync: true });
          batch.clear();
          batch.addEntries(2, entries(1, 5, 'b'));
          batch.put(2, 'k', enc.encode('second'));
          await pending;
          await expectEntries(engine, 1, 1, 5, () => 'a');
          assert.equal(engine.lastIndex(2), undefined, 'the items added after clear() were not written by the first write');
          assert.equal(dec.decode(engine.get(1, 'k')!), 'first');
          await engine.write(batch, { sync: true });
          await expectEntries(engine, 2, 1, 5, () => 'b');
          assert.equal(engine.lastIndex(1), 5, 'the cleared items are not written again');
          await engine.close();
          const reopened = await openEngine(disk.reopen(), { ...variant.options, recoveryMode: RecoveryMode.AbsoluteConsistency });
          try {
            await expectEntries(reopened, 1, 1, 5, () => 'a');
            await expectEntries(reopened, 2, 1, 5, () => 'b');
            assert.equal(dec.decode(reopened.get(2, 'k')!), 'second');
          } finally {
            await reopened.close();
          }
        } finally {
          await disk.cleanup();
        }
      });

      it('the batch cleared, refilled and written again while its first write is in flight: both writes store their own items', async () => {
        const disk = await target.make();
        try {
          const engine = await openEngine(disk.fs, variant.options);
          const batch = new LogBatch();
          batch.addEntries(1, entries(1, 5, 'a'));
          const first = engine.write(batch, { sync: true });
          batch.clear();
          batch.addEntries(2, entries(1, 5, 'b'));
          const second = engine.write(batch, { sync: true });
          await Promise.all([first, second]);
          await expectEntries(engine, 1, 1, 5, () => 'a');
          await expectEntries(engine, 2, 1, 5, () => 'b');
          await engine.close();
          const reopened = await openEngine(disk.reopen(), { ...variant.options, recoveryMode: RecoveryMode.AbsoluteConsistency });
          try {
            await expectEntries(reopened, 1, 1, 5, () => 'a');
            await expectEntries(reopened, 2, 1, 5, () => 'b');
          } finally {
            await reopened.close();
          }
        } finally {
          await disk.cleanup();
        }
      });

      it('items added while the write is in flight go only into later writes of the batch', async () => {
        const disk = await target.make();
        try {
          const engine = await openEngine(disk.fs, variant.options);
          const batch = new LogBatch();
          batch.addEntries(1, entries(1, 5, 'a'));
          const pending = engine.write(batch, { sync: true });
          batch.addEntries(1, entries(6, 5, 'a'));
          batch.put(1, 'late', enc.encode('x'));
          await pending;
          await expectEntries(engine, 1, 1, 5, () => 'a');
          assert.equal(engine.get(1, 'late'), undefined);
          // Written again, the batch holds everything added so far (RocksDB's WriteBatch semantics).
          await engine.write(batch, { sync: true });
          await expectEntries(engine, 1, 1, 10, () => 'a');
          assert.equal(dec.decode(engine.get(1, 'late')!), 'x');
          await engine.close();
          const reopened = await openEngine(disk.reopen(), { ...variant.options, recoveryMode: RecoveryMode.AbsoluteConsistency });
          try {
            await expectEntries(reopened, 1, 1, 10, () => 'a');
          } finally {
            await reopened.close();
          }
        } finally {
          await disk.cleanup();
        }
      });

      it('a batch reused after its write resolves is written as its new content (live reads and replay)', async () => {
        const disk = await target.make();
        try {
          const engine = await openEngine(disk.fs, variant.options);
          const batch = new LogBatch();
          for (let round = 0; round < 20; round++) {
            batch.clear();
            batch.addEntries(1, entries(round * 3 + 1, 3, `r${round}`));
            await engine.write(batch, { sync: round % 2 === 0 });
          }
          const tagOf = (index: number): string => `r${Math.floor((index - 1) / 3)}`;
          await expectEntries(engine, 1, 1, 60, tagOf);
          await engine.close();
          const reopened = await openEngine(disk.reopen(), { ...variant.options, recoveryMode: RecoveryMode.AbsoluteConsistency });
          try {
            await expectEntries(reopened, 1, 1, 60, tagOf);
          } finally {
            await reopened.close();
          }
        } finally {
          await disk.cleanup();
        }
      });
    });
  }
}
