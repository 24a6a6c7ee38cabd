/**
 * Memory per indexed entry. Builds the index for N entries over R regions,
 * appended the way Raft appends (runs of entries per region per batch), and
 * reports two figures per shape:
 *  - index bytes / entry: the typed-array columns' capacity, exactly;
 *  - heap bytes / entry: process heap + ArrayBuffer growth after a forced GC,
 *    which also counts every per-region object and Map.
 * The engine run writes real batches through the engine (on MemFs, so the
 * disk is not what is measured) and reports its stats().
 *
 * Usage: node --expose-gc dist/bench/memtable.js [--entries 1000000] [--regions 1000]
 */
import { parseArgs } from 'node:util';
import { MemFs } from '../backends/memfs.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { RegionMemtable } from '../src/memtable.js';
import { machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    regions: { type: 'string', default: '1000' },
    'engine-entries': { type: 'string', default: '1000000' },
  },
});
const entries = Number(values.entries);
const regions = Number(values.regions);

function heapBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

function buildIndex(runLength: number): Row {
  const offsets = new Uint32Array(runLength).map((_, i) => 64 + i * 1100);
  const lengths = new Uint32Array(runLength).fill(1030);
  const before = heapBytes();
  const tables: RegionMemtable[] = Array.from({ length: regions }, (_, r) => new RegionMemtable(r + 1));
  const perRegion = Math.ceil(entries / regions);
  let indexed = 0;
  for (let next = 1; next <= perRegion; next += runLength) {
    for (const table of tables) {
      const count = Math.min(runLength, perRegion - next + 1);
      table.append(
        next,
        count,
        { fileId: 1 + (next >> 16), recordOffset: next * 64, payloadLength: 4400, compressed: false },
        offsets,
        lengths,
        0,
      );
      indexed += count;
    }
  }
  const heap = heapBytes() - before;
  const index = tables.reduce((sum, t) => sum + t.indexBytes(), 0);
  return {
    shape: `${runLength} entries per region per batch`,
    entries: indexed,
    regions,
    'index B/entry': index / indexed,
    'heap B/entry': heap / indexed,
  };
}

async function engineRun(total: number): Promise<Row> {
  const engine = new Engine({ fs: new MemFs(), preallocateBytes: 0 });
  await engine.open();
  const data = new Uint8Array(16);
  const next = new Array<number>(regions).fill(1);
  let written = 0;
  // W2's shape: each batch appends 4 entries to one region.
  for (let i = 0; written < total; i++) {
    const region = (i * 7919) % regions;
    const batch = new LogBatch();
    batch.addEntries(
      region + 1,
      Array.from({ length: 4 }, (_, k) => ({ index: next[region]! + k, term: 1, data })),
    );
    next[region]! += 4;
    written += 4;
    await engine.write(batch);
  }
  const stats = engine.stats();
  await engine.close();
  return {
    shape: 'engine, W2 batches (4 entries, 1 region)',
    entries: stats.entries,
    regions: stats.regions,
    'index B/entry': stats.indexBytesPerEntry,
    'heap B/entry': Number.NaN,
  };
}

const rows = [buildIndex(1), buildIndex(4), buildIndex(16), await engineRun(Number(values['engine-entries']))];
const machine = machineInfo();
printTable(`Memtable memory per indexed entry (${entries.toLocaleString()} entries over ${regions} regions)`, rows);
console.log(`\nmachine: ${machineLine(machine)}`);
console.log(`saved: ${saveResults('memtable', rows, machine)}`);
