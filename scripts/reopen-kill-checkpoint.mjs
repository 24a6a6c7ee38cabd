#!/usr/bin/env node
/**
 * Reopen after a kill, periodic index checkpoint + tail vs a full replay: a
 * child process writes MiB of entries over 1,000 regions into a PosixFs
 * directory with `indexCheckpointInterval` set so that its last periodic
 * checkpoint covers all but the last `tail` MiB, then kills itself (no
 * close). Fresh processes then open the directory (page cache warm) with the
 * checkpoint (it loads and replays the tail), then without (full replay),
 * and read every region's last entry. The writer prints the periodic
 * checkpoints' stats (size, the write-queue stall of taking each). Also, in
 * fresh processes, a raw scan of the tail: the bytes after the checkpoint's
 * position read in 4 MiB chunks, walking record headers by their length and
 * checking nothing (what the raw-file store's reopen does), to set the open
 * against raw scan + the checkpoint's load time (recoveryReport). Needs
 * `npx tsc -p tsconfig.json` first.
 *
 *   node scripts/reopen-kill-checkpoint.mjs [MiB=256] [tailMiB=64] [entryBytes=4096] [rounds=3]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const { Engine } = await import(new URL('src/engine.js', dist).href);
const { LogBatch } = await import(new URL('src/log-batch.js', dist).href);
const { PosixFs } = await import(new URL('backends/posix.js', dist).href);
const { REGIONS, machineInfo, median, reopenAndReadLast } = await import(new URL('reopen-measure.mjs', import.meta.url).href);

async function write(dir, mib, tailMib, entryBytes) {
  // Uncompressed records, so the MiB written are the MiB replayed.
  const engine = new Engine({ fs: new PosixFs(dir), indexCheckpointInterval: (mib - tailMib) << 20, compressionThreshold: 1 << 30 });
  await engine.open();
  const entries = Math.floor((mib << 20) / entryBytes);
  const batchEntries = Math.max(1, Math.floor(65536 / entryBytes));
  const next = new Array(REGIONS + 1).fill(1);
  const data = new Uint8Array(entryBytes).map((_, i) => (i * 131) & 0xff);
  const began = performance.now();
  let slowest = 0;
  for (let written = 0, turn = 0; written < entries; turn++) {
    const region = 1 + (turn % REGIONS);
    const count = Math.min(batchEntries, entries - written);
    const batch = new LogBatch();
    batch.addEntries(
      region,
      Array.from({ length: count }, (_, i) => ({ index: next[region] + i, term: 1, data })),
    );
    const t = performance.now();
    // A synced write every 4 MiB: a periodic checkpoint is taken at the end of a synced group.
    await engine.write(batch, {
      sync: Math.floor(((written + count) * entryBytes) / (4 << 20)) > Math.floor((written * entryBytes) / (4 << 20)),
    });
    slowest = Math.max(slowest, performance.now() - t);
    next[region] += count;
    written += count;
  }
  await engine.sync();
  while (engine.stats().indexCheckpoints.written === 0 && mib > tailMib) await new Promise((resolve) => setTimeout(resolve, 10));
  const stats = engine.stats();
  console.log(
    JSON.stringify({
      writeSeconds: (performance.now() - began) / 1000,
      entries: stats.entries,
      indexBytes: stats.memtableIndexBytes,
      checkpoints: stats.indexCheckpoints,
      slowestWriteMs: slowest,
    }),
  );
  // A kill: no close, no close checkpoint.
  process.kill(process.pid, 'SIGKILL');
}

/** Reads the log from `offset` of append file `seq` to its end, in 4 MiB chunks, walking record headers; returns ms and bytes. */
function rawScan(dir, seq, offset) {
  const began = performance.now();
  const chunk = Buffer.allocUnsafe(4 << 20);
  let bytes = 0;
  let records = 0;
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.raftlog') && Number(name.slice(0, 16)) >= seq)
    .sort();
  for (const name of files) {
    const fd = openSync(join(dir, name), 'r');
    let position = Number(name.slice(0, 16)) === seq ? offset : 32;
    try {
      for (;;) {
        const read = readSync(fd, chunk, 0, chunk.length, position);
        let at = 0;
        // A record: 24-byte header (payload length at +4), payload, padding to 8.
        while (at + 24 <= read) {
          const length = chunk.readUInt32LE(at + 4);
          if (chunk.readUInt32LE(at) === 0 && length === 0) break;
          const size = (24 + length + 7) & ~7;
          if (at + size > read) break;
          at += size;
          records++;
        }
        bytes += at;
        position += at;
        if (at === 0 || read < chunk.length) break;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { scanMs: performance.now() - began, bytes, records };
}

if (process.argv[2] === '--write') {
  await write(process.argv[3], Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]));
} else if (process.argv[2] === '--reopen') {
  // No close: the next reopen finds the directory as the kill left it.
  console.log(JSON.stringify(await reopenAndReadLast(process.argv[3], process.argv[4] === 'on', { close: false })));
  process.exit(0);
} else if (process.argv[2] === '--rawscan') {
  console.log(JSON.stringify(rawScan(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))));
  process.exit(0);
} else {
  const mib = Number(process.argv[2] ?? 256);
  const tailMib = Number(process.argv[3] ?? 64);
  const entryBytes = Number(process.argv[4] ?? 4096);
  const rounds = Number(process.argv[5] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-kill-'));
  const self = new URL(import.meta.url).pathname;
  try {
    const writer = spawnSync(process.execPath, [self, '--write', dir, String(mib), String(tailMib), String(entryBytes)], {
      encoding: 'utf8',
    });
    if (writer.signal !== 'SIGKILL') throw new Error(`writer: ${writer.status} ${writer.stderr}`);
    const written = JSON.parse(writer.stdout);
    const child = (mode) => {
      const run = spawnSync(process.execPath, [self, '--reopen', dir, mode], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      return JSON.parse(run.stdout);
    };
    // Warm the page cache once. "on" first: an "off" open invalidates the checkpoint it does not use.
    child('on');
    const on = Array.from({ length: rounds }, () => child('on'));
    const covered = on[0].checkpoint.coveredThrough;
    const scans = Array.from({ length: rounds }, () => {
      const run = spawnSync(process.execPath, [self, '--rawscan', dir, String(covered.seq), String(covered.offset)], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      return JSON.parse(run.stdout);
    });
    const off = Array.from({ length: rounds }, () => child('off'));
    const loadMs = on.map((r) => r.checkpoint.loadMillis).sort((a, b) => a - b)[Math.floor(rounds / 2)];
    console.log(
      JSON.stringify(
        {
          machine: machineInfo(),
          mib,
          tailMib,
          entryBytes,
          written,
          medianOpenMs: { checkpointAndTail: median(on, 'openMs'), fullReplay: median(off, 'openMs') },
          // The target: open after a kill ≤ a raw scan of the tail + the checkpoint's load.
          target: {
            openMs: median(on, 'openMs'),
            rawScanOfTailMs: median(scans, 'scanMs'),
            checkpointLoadMs: loadMs,
            ratio: median(on, 'openMs') / (median(scans, 'scanMs') + loadMs),
            tailBytes: scans[0].bytes,
          },
          medianRssMiB: { checkpointAndTail: median(on, 'rssMiB'), fullReplay: median(off, 'rssMiB') },
          on,
          off,
          scans,
        },
        null,
        2,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
