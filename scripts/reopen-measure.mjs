/**
 * What scripts/reopen-checkpoint.mjs and scripts/reopen-kill-checkpoint.mjs
 * measure in their child processes: open a directory (index checkpoint on or
 * off), read every region's last entry, note times, RSS and what recovery
 * reported. Needs `npx tsc -p tsconfig.json` first.
 */
import { cpus, loadavg, release, totalmem, type } from 'node:os';

const dist = new URL('../dist/', import.meta.url);
const { Engine } = await import(new URL('src/engine.js', dist).href);
const { PosixFs } = await import(new URL('backends/posix.js', dist).href);

export const REGIONS = 1000;

/**
 * `close: false` leaves the directory as the open found it for the next
 * reopen (a clean close would write a new checkpoint); the caller's process
 * then exits without closing.
 */
export async function reopenAndReadLast(dir, indexCheckpoint, { close }) {
  const rssBefore = process.memoryUsage().rss;
  const began = performance.now();
  const engine = new Engine({ fs: new PosixFs(dir), indexCheckpoint });
  await engine.open();
  const opened = performance.now();
  let found = 0;
  for (let region = 1; region <= REGIONS; region++) {
    const last = engine.lastIndex(region);
    if (last !== undefined && (await engine.getEntry(region, last)) !== undefined) found++;
  }
  const read = performance.now();
  const rss = process.memoryUsage().rss;
  const report = engine.recoveryReport;
  if (close) await engine.close();
  return {
    indexCheckpoint,
    openMs: opened - began,
    readLastMs: read - opened,
    rssMiB: rss / 2 ** 20,
    rssBeforeMiB: rssBefore / 2 ** 20,
    regionsFound: found,
    checkpoint: report?.indexCheckpoint,
    records: report?.records,
    bytesScanned: report?.bytesScanned,
  };
}

export function median(runs, key) {
  return runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
}

export function machineInfo() {
  return {
    type: type(),
    release: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    totalMemGiB: totalmem() / 2 ** 30,
    node: process.version,
    loadavg: loadavg(),
  };
}
