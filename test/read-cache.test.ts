/**
 * Bounded memory for reads (issue 16, case 4): reading one 5-byte entry
 * from each of 16 compressed 32 MiB records pinned about 1 GiB in the
 * decompressed-record cache, which was bounded by record count only. The
 * cache now has a byte budget (EngineOptions.readCacheBytes) with LRU
 * eviction by bytes; its accounting is checked through stats() and
 * metrics(), not process memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { ReadCache } from '../src/read-cache.js';

const MiB = 1 << 20;
const RECORDS = 16;
const BIG = 32 * MiB;

function openEngine(fs: MemFs, options: Partial<EngineOptions>): Promise<Engine> {
  const engine = new Engine({ fs, seed: 5, targetFileSize: 64 * MiB, preallocateBytes: 0, ...options });
  return engine.open().then(() => engine);
}

/** 16 compressed records of 32 MiB each (one big entry and one 5-byte entry per record, region 1). */
async function writeBigRecords(fs: MemFs, records = RECORDS): Promise<Engine> {
  const engine = await openEngine(fs, {});
  const big = new Uint8Array(BIG);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  for (let r = 0; r < records; r++) {
    const batch = new LogBatch();
    batch.addEntries(1, [
      { index: 2 * r + 1, term: 1, data: big },
      { index: 2 * r + 2, term: 1, data: Uint8Array.of(r, 1, 2, 3, 4) },
    ]);
    const bytes = await engine.write(batch);
    assert.ok(bytes < BIG / 8, `record ${r} should be compressed, took ${bytes} bytes`);
  }
  return engine;
}

/** Reads the small entry of every record, checking the cache stays within its budget after each read. */
async function readSmallEntries(engine: Engine, records = RECORDS): Promise<void> {
  for (let r = 0; r < records; r++) {
    const entry = await engine.getEntry(1, 2 * r + 2);
    assert.deepEqual([...entry!.data], [r, 1, 2, 3, 4]);
    const cache = engine.stats().readCache;
    assert.ok(
      cache.bytes <= cache.budgetBytes,
      `after record ${r}: ${cache.bytes} cached bytes exceed the ${cache.budgetBytes}-byte budget`,
    );
    assert.equal(engine.metrics().gauges.readCacheBytes, cache.bytes);
  }
}

describe('read cache byte budget', () => {
  it('one 5-byte entry from each of 16 compressed 32 MiB records keeps the cache within the default 64 MiB budget', async () => {
    const engine = await writeBigRecords(new MemFs());
    try {
      await readSmallEntries(engine);
      const cache = engine.stats().readCache;
      assert.equal(cache.budgetBytes, 64 * MiB);
      assert.ok(cache.records <= 2, `${cache.records} records of 32 MiB held in 64 MiB`);
      assert.equal(cache.misses, RECORDS);
      assert.ok(cache.evictions >= RECORDS - 2);
    } finally {
      await engine.close();
    }
  });

  it('a smaller budget holds fewer records; 0 disables the cache; both still read correctly', async () => {
    // Two records are enough here (each decompression of 32 MiB is slow): the 16-record case is the one above.
    const records = 2;
    const fs = new MemFs();
    await (await writeBigRecords(fs, records)).close();
    for (const [budget, maxRecords] of [
      [40 * MiB, 1],
      [16 * MiB, 0],
      [0, 0],
    ] as const) {
      const engine = await openEngine(fs, { readCacheBytes: budget });
      try {
        await readSmallEntries(engine, records);
        const cache = engine.stats().readCache;
        assert.equal(cache.budgetBytes, budget);
        assert.ok(cache.records <= maxRecords, `budget ${budget}: ${cache.records} records held`);
        // A neighbour read right after hits the cache only when the record fits the budget.
        const hits = cache.hits;
        await engine.fetchEntriesTo(1, 2 * records - 1, 2 * records + 1);
        assert.equal(engine.stats().readCache.hits, maxRecords > 0 ? hits + 1 : hits);
      } finally {
        await engine.close();
      }
    }
  });
});

describe('ReadCache', () => {
  it('evicts least recently used payloads by bytes, never holding more than its budget', () => {
    const cache = new ReadCache();
    cache.setBudget(100);
    cache.set('a', new Uint8Array(40));
    cache.set('b', new Uint8Array(40));
    assert.ok(cache.get('a') !== undefined, 'a is now the most recently used');
    cache.set('c', new Uint8Array(40));
    assert.equal(cache.get('b'), undefined, 'b was the least recently used and went');
    assert.ok(cache.get('a') !== undefined);
    assert.ok(cache.get('c') !== undefined);
    assert.deepEqual(
      { ...cache.stats(), hits: 0, misses: 0 },
      { budgetBytes: 100, bytes: 80, records: 2, hits: 0, misses: 0, evictions: 1 },
    );
    cache.set('huge', new Uint8Array(101));
    assert.equal(cache.get('huge'), undefined, 'a payload larger than the budget is not cached');
    assert.equal(cache.stats().bytes, 80);
    cache.set('a', new Uint8Array(10));
    assert.equal(cache.stats().bytes, 50, 'replacing a key accounts for the old payload');
    cache.forgetPrefix('c');
    assert.equal(cache.stats().bytes, 10);
    cache.setBudget(5);
    assert.deepEqual([cache.stats().bytes, cache.stats().records], [0, 0], 'a smaller budget evicts down to it');
  });
});
