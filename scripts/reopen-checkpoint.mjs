#!/usr/bin/env node
/**
 * W4-style reopen, index checkpoint on and off: loads MiB of 4 KiB entries
 * over 1,000 regions into a PosixFs directory, closes cleanly, then reopens
 * in fresh processes (page cache warm) and reads every region's last entry.
 * Each "on" reopen loads the checkpoint the previous clean close wrote; each
 * "off" reopen replays the whole log. Needs `npx tsc -p tsconfig.json` first.
 *
 *   node scripts/reopen-checkpoint.mjs [MiB=256] [rounds=3]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const { Engine } = await import(new URL('src/engine.js', dist).href);
const { LogBatch } = await import(new URL('src/log-batch.js', dist).href);
const { PosixFs } = await import(new URL('backends/posix.js', dist).href);
const { REGIONS, machineInfo, median, reopenAndReadLast } = await import(new URL('reopen-measure.mjs', import.meta.url).href);

const ENTRY = 4096;
const BATCH = 16;

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await reopenAndReadLast(process.argv[3], process.argv[4] === 'on', { close: true })));
  process.exit(0);
}

const mib = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'raftlog-reopen-'));
try {
  const engine = new Engine({ fs: new PosixFs(dir) });
  await engine.open();
  const entries = Math.floor((mib << 20) / ENTRY);
  const next = new Array(REGIONS + 1).fill(1);
  const data = new Uint8Array(ENTRY).map((_, i) => (i * 131) & 0xff);
  const loadBegan = performance.now();
  for (let written = 0, turn = 0; written < entries; turn++) {
    const region = 1 + (turn % REGIONS);
    const count = Math.min(BATCH, entries - written);
    const batch = new LogBatch();
    batch.addEntries(
      region,
      Array.from({ length: count }, (_, i) => ({ index: next[region] + i, term: 1, data })),
    );
    await engine.write(batch);
    next[region] += count;
    written += count;
  }
  await engine.close();
  console.error(`loaded ${mib} MiB in ${((performance.now() - loadBegan) / 1000).toFixed(1)} s into ${dir}`);
  const child = (mode) => {
    const run = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', dir, mode], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(run.stderr);
    return JSON.parse(run.stdout);
  };
  const results = [];
  // Warm the page cache (and write the checkpoint) once before measuring.
  child('on');
  for (let r = 0; r < rounds; r++) {
    results.push(child('on'));
    results.push(child('off'));
    // The "off" open removed the checkpoint; this close writes it again.
    child('on');
  }
  for (const mode of [true, false]) {
    const runs = results.filter((x) => x.indexCheckpoint === mode);
    console.log(
      `${mode ? 'checkpoint on ' : 'checkpoint off'}: open ${median(runs, 'openMs').toFixed(1)} ms, read last entries ${median(runs, 'readLastMs').toFixed(1)} ms, RSS ${median(runs, 'rssMiB').toFixed(0)} MiB ` +
        `(median of ${runs.length}; used: ${JSON.stringify(runs[0].checkpoint)}, records replayed ${runs[0].records}, regions found ${runs[0].regionsFound})`,
    );
  }
  const machine = machineInfo();
  console.log(`machine: ${JSON.stringify(machine)}`);
  console.log(JSON.stringify({ mib, rounds, machine, results }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
