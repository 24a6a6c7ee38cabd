#!/usr/bin/env node
/**
 * The write-queue stall of taking a periodic index checkpoint: writes small
 * entries over 1,000 regions into a MemFs with a checkpoint due every
 * `interval` MiB, and prints, per checkpoint, how long the snapshot (the
 * position and the copy of the index columns) held the write queue, with the
 * index size at that point; then the slowest synced write. Needs
 * `npx tsc -p tsconfig.json` first.
 *
 *   node scripts/checkpoint-stall.mjs [entries=1000000] [entryBytes=64] [intervalMiB=8]
 */
import { loadavg } from 'node:os';

const dist = new URL('../dist/', import.meta.url);
const { Engine } = await import(new URL('src/engine.js', dist).href);
const { LogBatch } = await import(new URL('src/log-batch.js', dist).href);
const { MemFs } = await import(new URL('backends/memfs.js', dist).href);

const entries = Number(process.argv[2] ?? 1_000_000);
const entryBytes = Number(process.argv[3] ?? 64);
const intervalMiB = Number(process.argv[4] ?? 8);
const REGIONS = 1000;
const BATCH = 64;
const engine = new Engine({
  fs: new MemFs(),
  compressionThreshold: 1 << 30,
  targetFileSize: 64 << 20,
  indexCheckpointInterval: intervalMiB << 20,
});
await engine.open();
const data = new Uint8Array(entryBytes).fill(7);
const next = new Array(REGIONS + 1).fill(1);
let seen = 0;
let slowest = 0;
const rows = [];
for (let written = 0, turn = 0; written < entries; turn++) {
  const region = 1 + (turn % REGIONS);
  const batch = new LogBatch();
  batch.addEntries(
    region,
    Array.from({ length: BATCH }, (_, i) => ({ index: next[region] + i, term: 1, data })),
  );
  next[region] += BATCH;
  written += BATCH;
  const began = performance.now();
  await engine.write(batch, { sync: turn % 16 === 0 });
  slowest = Math.max(slowest, performance.now() - began);
  const stats = engine.stats();
  // One checkpoint in flight at a time: the stall recorded is that of the one just written.
  if (stats.indexCheckpoints.written > seen) {
    seen = stats.indexCheckpoints.written;
    rows.push({
      entries: stats.entries,
      indexMiB: +(stats.memtableIndexBytes / 2 ** 20).toFixed(2),
      stallMicros: Math.round(stats.indexCheckpoints.lastStallMicros),
      checkpointBytes: stats.indexCheckpoints.lastBytes,
    });
  }
}
await engine.close();
console.log(
  JSON.stringify({ loadavg: loadavg(), entries, entryBytes, intervalMiB, slowestWriteMs: +slowest.toFixed(2), checkpoints: rows }, null, 1),
);
