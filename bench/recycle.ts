/**
 * Single-writer synced 4 KiB appends, three ways, side by side in one run:
 *  - append: no preallocation, no recycling: every fdatasync also commits a
 *    file-size change (a journal commit on ext4);
 *  - preallocate: the default, zero-filled chunks reserved ahead;
 *  - recycled: files prefilled with zeros (what recycling gives once files
 *    have been purged): every append overwrites written blocks.
 * Rounds are interleaved so disk noise hits every configuration alike.
 *
 * Usage: node dist/bench/recycle.js [--ops 2000] [--rounds 3] [--dir /path/on/the/disk]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PosixFs } from '../backends/posix.js';
import { Engine, type EngineOptions } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: join(process.cwd(), 'bench', 'results', 'tmp') },
  },
});
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const TARGET = 32 << 20;

const CONFIGS: { name: string; options: Partial<EngineOptions> }[] = [
  { name: 'append (no preallocation, no recycling)', options: { preallocateBytes: 0, recycleFiles: 0 } },
  { name: 'preallocate 8 MiB chunks (default)', options: { recycleFiles: 0 } },
  { name: 'recycled / prefilled files', options: { preallocateBytes: 0, prefillFiles: 1 } },
];

async function run(options: Partial<EngineOptions>): Promise<number[]> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(values.dir!, { recursive: true });
  const dir = await mkdtemp(join(values.dir!, 'recycle-'));
  try {
    const engine = new Engine({ fs: new PosixFs(dir), targetFileSize: TARGET, ...options });
    await engine.open();
    const data = new Uint8Array(4096 - 64).fill(7);
    const latencies: number[] = [];
    for (let i = 1; i <= ops + 100; i++) {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: i, term: 1, data }]);
      const start = process.hrtime.bigint();
      await engine.write(batch, { sync: true });
      if (i > 100) latencies.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    await engine.close();
    return latencies;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const samples = new Map<string, number[][]>(CONFIGS.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const config of CONFIGS) samples.get(config.name)!.push(await run(config.options));
}
const rows: Row[] = CONFIGS.map((config) => {
  const perRound = samples
    .get(config.name)!
    .map((l) => l.reduce((a, b) => a + b, 0) / l.length)
    .sort((a, b) => a - b);
  const all = samples
    .get(config.name)!
    .flat()
    .sort((a, b) => a - b);
  return {
    config: config.name,
    'µs/op (median of rounds)': perRound[Math.floor(perRound.length / 2)]!,
    'µs/op per round': perRound.map((v) => v.toFixed(0)).join(' / '),
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    'ops/s': 1e6 / perRound[Math.floor(perRound.length / 2)]!,
  };
});
const machine = machineInfo(values.dir);
printTable(`Single-writer synced 4 KiB appends, ${ops} ops × ${rounds} interleaved rounds (PosixFs, ${values.dir})`, rows);
console.log(`\nmachine: ${machineLine(machine)}`);
console.log(`saved: ${saveResults('recycle', rows, machine)}`);
