/**
 * Issue 6's comparison, in one run: W1 (one writer, one synced entry of V
 * bytes) and W2 (1,000 regions, C writers, synced 4 × 1 KiB + hard state) on
 *  - PmemFs over /dev/shm (stands in for a DAX mount; msync or cache-line path),
 *  - PosixFs over /dev/shm (same memory, the POSIX path: writev + fdatasync),
 *  - PosixFs on the disk.
 * With the device nearly free, the /dev/shm rows measure the engine's own cost
 * per synced write. Each case gets a fresh directory, removed afterwards.
 *
 * Usage: node dist/bench/pmem.js [--seconds 2] [--disk-dir DIR]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PmemFs } from '../backends/pmem.js';
import { PosixFs } from '../backends/posix.js';
import { Engine } from '../src/engine.js';
import type { FileSystem } from '../src/filesystem.js';
import { LogBatch } from '../src/log-batch.js';
import { machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    'disk-dir': { type: 'string', default: join(process.cwd(), 'bench', 'results', 'tmp') },
  },
});
const SECONDS = Number(values.seconds);

interface Backend {
  name: string;
  parent: string;
  make(dir: string): FileSystem;
}

const BACKENDS: Backend[] = [
  { name: 'PmemFs /dev/shm', parent: '/dev/shm', make: (dir) => new PmemFs(dir) },
  { name: 'PosixFs /dev/shm', parent: '/dev/shm', make: (dir) => new PosixFs(dir) },
  { name: 'PosixFs disk', parent: values['disk-dir']!, make: (dir) => new PosixFs(dir) },
];

async function withEngine<T>(backend: Backend, body: (engine: Engine) => Promise<T>): Promise<T> {
  await mkdir(backend.parent, { recursive: true });
  const dir = await mkdtemp(join(backend.parent, 'raftlog-pmem-bench-'));
  try {
    const fs = backend.make(dir);
    const engine = new Engine({ fs });
    await engine.open();
    try {
      return await body(engine);
    } finally {
      await engine.close();
      await fs.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Runs `op` in a closed loop on `writers` writers for SECONDS after a short warm-up; returns latencies in µs. */
async function closedLoop(
  writers: number,
  op: (writer: number, k: number) => Promise<void>,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let k = 0; !stop; k++) {
      const start = process.hrtime.bigint();
      await op(w, k);
      if (measuring) latencies.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  return { latencies: latencies.sort((a, b) => a - b), seconds };
}

async function w1(backend: Backend, size: number): Promise<Row> {
  return withEngine(backend, async (engine) => {
    const data = new Uint8Array(size).map((_, i) => (i * 7919) & 0xff);
    let index = 1;
    const { latencies, seconds } = await closedLoop(1, async () => {
      const batch = new LogBatch();
      batch.addEntries(1, [{ index: index++, term: 1, data }]);
      await engine.write(batch, { sync: true });
    });
    const mean = (seconds * 1e6) / latencies.length;
    return {
      workload: `W1 ${size >= 1024 ? `${size / 1024}K` : size}`,
      backend: backend.name,
      'µs/op': mean,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      'ops/s': 1e6 / mean,
    };
  });
}

async function w2(backend: Backend, writers: number): Promise<Row> {
  return withEngine(backend, async (engine) => {
    const data = new Uint8Array(1024);
    for (let i = 0; i < 512; i++) data[i] = (i * 7919) & 0xff;
    const hardState = new Uint8Array(32);
    const next = new Array<number>(1000).fill(1);
    const perWriter = Math.floor(1000 / writers);
    const { latencies, seconds } = await closedLoop(writers, async (w, k) => {
      const region = w + writers * (k % perWriter);
      const first = next[region]!;
      next[region] = first + 4;
      const batch = new LogBatch();
      batch.addEntries(
        region + 1,
        [0, 1, 2, 3].map((i) => ({ index: first + i, term: 1, data })),
      );
      batch.put(region + 1, 'hard_state', hardState);
      await engine.write(batch, { sync: true });
    });
    const ops = latencies.length / seconds;
    return {
      workload: `W2 C=${writers}`,
      backend: backend.name,
      'µs/op': 1e6 / ops,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      'ops/s': ops,
    };
  });
}

const rows: Row[] = [];
for (const size of [1024, 4096, 16384, 65536, 262144, 1048576]) for (const backend of BACKENDS) rows.push(await w1(backend, size));
for (const writers of [1, 8, 64]) for (const backend of BACKENDS) rows.push(await w2(backend, writers));
const machine = machineInfo(values['disk-dir']);
printTable(`PmemFs vs PosixFs (/dev/shm and disk), ${SECONDS} s per case; µs/op = 1 / throughput`, rows);
console.log(`\nmachine: ${machineLine(machine)}`);
console.log(`saved: ${saveResults('pmem', rows, machine)}`);
