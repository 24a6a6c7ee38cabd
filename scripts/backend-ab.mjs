/**
 * Synced writes through the public Engine API on two or more variants, a
 * fresh directory per round and the variants alternated (the order reversed
 * every other round), so they see the same disk and the same load; prints the
 * median over rounds. A variant is `label=ROOT:BACKEND`, where ROOT is a
 * checkout or copy holding a compiled dist/ (and hardware/build/ for the
 * addon) and BACKEND is posix or uring; comparing a change against the code
 * before it means a copy of the old dist/ and hardware/build/ (with a
 * package.json and node_modules next to them).
 *
 * Usage: node scripts/backend-ab.mjs w1 VALUE_BYTES ROUNDS OPS_PER_ROUND VARIANT...
 *        node scripts/backend-ab.mjs w2 WRITERS ROUNDS SECONDS_PER_ROUND VARIANT...
 * w1: one writer, one synced entry of VALUE_BYTES random bytes per write (mean us per write).
 * w2: WRITERS concurrent writers over 1,000 regions, 4 x 1 KiB entries + a 32-byte hard state (ops/s).
 * DIR=... puts the data directories elsewhere (default: the OS temp directory).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [mode, sizeArg, roundsArg, amountArg, ...variantArgs] = process.argv.slice(2);
if ((mode !== 'w1' && mode !== 'w2') || variantArgs.length === 0) {
  console.error('usage: backend-ab.mjs w1|w2 VALUE_BYTES|WRITERS ROUNDS OPS|SECONDS label=ROOT:posix|uring ...');
  process.exit(2);
}
const size = Number(sizeArg);
const rounds = Number(roundsArg);
const amount = Number(amountArg);
const variants = variantArgs.map((arg) => {
  const [label, spec] = arg.split('=');
  const at = spec.lastIndexOf(':');
  return { label, root: resolve(spec.slice(0, at)), backend: spec.slice(at + 1), results: [] };
});
const modules = new Map();
for (const v of variants) {
  if (!modules.has(v.root)) modules.set(v.root, await import(pathToFileURL(join(v.root, 'dist/index.js')).href));
}
const base = process.env.DIR ?? tmpdir();

async function withEngine(v, body) {
  const m = modules.get(v.root);
  const dir = mkdtempSync(join(base, 'raftlog-ab-'));
  const fs = v.backend === 'uring' ? new m.UringFs(dir) : new m.PosixFs(dir);
  const engine = new m.Engine({ fs });
  await engine.open();
  try {
    return await body(engine, m);
  } finally {
    await engine.close();
    await fs.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const W1_WARMUP = 50;
const pool = randomBytes(size * 64 + 4096);

/** Mean us per synced single-entry write, after a warm-up. */
function w1(engine, m) {
  const batch = new m.LogBatch();
  return (async () => {
    let started = 0;
    for (let i = 0; i < W1_WARMUP + amount; i++) {
      if (i === W1_WARMUP) started = performance.now();
      const at = (i % 64) * size;
      batch.addEntries(1, [{ index: i + 1, term: 1, data: pool.subarray(at, at + size) }]);
      await engine.write(batch, { sync: true });
      batch.clear();
    }
    return ((performance.now() - started) * 1000) / amount;
  })();
}

const REGIONS = 1000;
const entrySets = Array.from({ length: 64 }, () =>
  Array.from({ length: 4 }, (_, i) => (i % 2 === 0 ? randomBytes(1024) : new Uint8Array(1024))),
);

/** Synced W2 ops per second over `amount` seconds, after half a second of warm-up. */
async function w2(engine, m) {
  const next = new Float64Array(REGIONS + 1).fill(1);
  const busy = new Uint8Array(REGIONS + 1);
  const measureFrom = performance.now() + 500;
  const deadline = measureFrom + amount * 1000;
  let cursor = 0;
  let ops = 0;
  const writer = async () => {
    const batch = new m.LogBatch();
    for (;;) {
      const now = performance.now();
      if (now >= deadline) return;
      let region;
      do region = 1 + Math.floor(Math.random() * REGIONS);
      while (busy[region] === 1);
      busy[region] = 1;
      const first = next[region];
      const entries = entrySets[cursor++ % entrySets.length];
      batch.addEntries(
        region,
        entries.map((data, i) => ({ index: first + i, term: 1, data })),
      );
      batch.put(region, 'hard_state', new Uint8Array(32).fill(region & 0xff));
      await engine.write(batch, { sync: true });
      batch.clear();
      next[region] = first + entries.length;
      busy[region] = 0;
      if (now >= measureFrom) ops++;
    }
  };
  await Promise.all(Array.from({ length: size }, writer));
  return ops / ((performance.now() - measureFrom) / 1000);
}

const load = [loadavg()[0]];
for (let round = 0; round < rounds; round++) {
  for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
    v.results.push(await withEngine(v, mode === 'w1' ? w1 : w2));
  }
  load.push(loadavg()[0]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const unit = mode === 'w1' ? 'us/write (mean per round)' : 'ops/s';
console.log(
  `${mode} ${mode === 'w1' ? `V=${size}` : `C=${size}`}, ${rounds} rounds, load average ${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}`,
);
for (const v of variants) {
  console.log(
    `  ${v.label.padEnd(16)} median ${median(v.results).toFixed(0).padStart(6)} ${unit}  [${v.results.map((x) => x.toFixed(0)).join(' ')}]`,
  );
}
