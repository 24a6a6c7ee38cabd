/**
 * Replay of a whole log at open, serial against parallel (recoveryThreads):
 * W4's log (4 KiB random entries over 1,000 regions, batches of 16) with
 * index checkpoints disabled, so every open re-reads, verifies and applies
 * every record. Each open runs in a fresh process (worker start-up is part of
 * a restart), page cache warm, configurations interleaved round by round so
 * the machine's load hits them alike; the load average is recorded at each
 * open. Every open reads the last entry of every region as a check.
 *
 * On a shared, loaded machine the wall time says more about the scheduler
 * than about replay, so each open also records the CPU time of its main
 * thread (which applies every record, in order, and so bounds replay when
 * the workers have cores of their own) and of the whole process (what the
 * workers add).
 *
 * Usage: node dist/bench/replay.js [--mib 256] [--rounds 5] [--threads 0,1,2] [--dir /path/on/the/disk]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PosixFs } from '../backends/posix.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { prescanCounters } from '../src/recovery/prescan.js';
import { DataPool } from './support/driver.js';
import { machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';

const REGIONS = 1000;
const ENTRY_BYTES = 4096;
const BATCH = 16;

interface Sample {
  threads: number;
  openMs: number;
  /** CPU time of the main thread during open: what bounds replay once the workers have cores of their own. */
  mainCpuMs: number;
  /** CPU time of the whole process (every thread) during open. */
  processCpuMs: number;
  rssMiB: number;
  records: number;
  workerChunks: number;
  mainChunks: number;
  load1: number;
}

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '0,1,2' },
    dir: { type: 'string', default: join(process.cwd(), 'bench', 'results', 'tmp') },
    child: { type: 'string' },
  },
});

/** CPU milliseconds (user + system) of the main thread, from /proc (clock ticks of 10 ms). */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function openOnce(dir: string, threads: number): Promise<Sample> {
  const load1 = loadavg()[0]!;
  const mainBefore = mainThreadCpuMs();
  const processBefore = process.cpuUsage();
  const began = performance.now();
  const engine = new Engine({ fs: new PosixFs(dir), indexCheckpoint: false, recoveryThreads: threads });
  await engine.open();
  const openMs = performance.now() - began;
  const mainCpuMs = mainThreadCpuMs() - mainBefore;
  const used = process.cpuUsage(processBefore);
  const processCpuMs = (used.user + used.system) / 1000;
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  for (let region = 1; region <= REGIONS; region++) {
    const last = engine.lastIndex(region);
    const entry = last === undefined ? undefined : await engine.getEntry(region, last);
    if (entry?.data.byteLength !== ENTRY_BYTES) throw new Error(`region ${region}: last entry missing after replay`);
  }
  const records = engine.recoveryReport?.records ?? 0;
  await engine.close();
  return {
    threads,
    openMs,
    mainCpuMs,
    processCpuMs,
    rssMiB,
    records,
    workerChunks: prescanCounters.workerChunks,
    mainChunks: prescanCounters.mainChunks,
    load1,
  };
}

if (values.child !== undefined) {
  const [dir, threads] = values.child.split('#');
  console.log(JSON.stringify(await openOnce(dir!, Number(threads))));
  process.exit(0);
}

const mib = Number(values.mib);
const rounds = Number(values.rounds);
const configs = values.threads.split(',').map(Number);
await mkdir(values.dir, { recursive: true });
const dir = await mkdtemp(join(values.dir, 'replay-'));
try {
  const engine = new Engine({ fs: new PosixFs(dir), indexCheckpoint: false });
  await engine.open();
  const pool = new DataPool(ENTRY_BYTES * BATCH);
  const next = new Array<number>(REGIONS + 1).fill(1);
  const total = Math.floor((mib << 20) / ENTRY_BYTES);
  for (let written = 0, turn = 0; written < total; turn++) {
    const region = 1 + (turn % REGIONS);
    const count = Math.min(BATCH, total - written);
    const batch = new LogBatch();
    batch.addEntries(
      region,
      Array.from({ length: count }, (_, i) => ({ index: next[region]! + i, term: 1, data: pool.next(ENTRY_BYTES) })),
    );
    await engine.write(batch);
    next[region]! += count;
    written += count;
  }
  await engine.close();
  const child = (threads: number): Sample => {
    const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', `${dir}#${threads}`], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(run.stderr);
    return JSON.parse(run.stdout) as Sample;
  };
  // Warm the page cache before measuring.
  child(0);
  const samples: Sample[] = [];
  for (let round = 0; round < rounds; round++) for (const threads of configs) samples.push(child(threads));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const serial = median(samples.filter((s) => s.threads === 0).map((s) => s.openMs));
  const rows: Row[] = configs.map((threads) => {
    const runs = samples.filter((s) => s.threads === threads);
    const open = runs.map((s) => s.openMs);
    return {
      recoveryThreads: threads === 0 ? '0 (serial)' : threads,
      'open ms (median)': median(open),
      'open ms per round': open.map((v) => v.toFixed(0)).join(' / '),
      'speed-up vs serial': Number.isFinite(serial) ? (serial / median(open)).toFixed(2) : '-',
      'main-thread CPU ms (median)': median(runs.map((s) => s.mainCpuMs)),
      'process CPU ms (median)': median(runs.map((s) => s.processCpuMs)),
      'RSS MiB': median(runs.map((s) => s.rssMiB)),
      'chunks by workers / main': `${median(runs.map((s) => s.workerChunks))} / ${median(runs.map((s) => s.mainChunks))}`,
      'load avg (1 min) per round': runs.map((s) => s.load1.toFixed(1)).join(' / '),
    };
  });
  const machine = machineInfo(values.dir);
  const title = `Replay at open of ${mib} MiB (${samples[0]?.records ?? 0} records of ${BATCH} × 4 KiB entries, ${REGIONS} regions), indexCheckpoint: false, warm cache, fresh process per open, ${rounds} interleaved rounds`;
  printTable(title, rows);
  console.log(
    `\nmachine: ${machineLine(machine)}; load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`saved: ${saveResults('replay', { mib, rounds, rows, samples, loadAverageAtEnd: loadavg() }, machine)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
