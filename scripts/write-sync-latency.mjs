// A synced 4 KiB overwrite, alternately through the addon's one-job writeSync and node:fs
// writev + datasync on the same file, so both see the same disk and load.
// Usage: node scripts/write-sync-latency.mjs [pairs]
import * as fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
const native = createRequire(import.meta.url)('../hardware/build/Release/raftlog_native.node');
const path = `${process.env.TMPDIR ?? '/tmp'}/raftlog-write-sync-${process.pid}`;
const h = await fsp.open(path, 'w+');
const N = Number(process.argv[2] ?? 600);
const buf = new Uint8Array(4096).fill(1);
await h.write(new Uint8Array(2 * N * 4096), 0);
await h.datasync();
const a = [],
  b = [];
for (let i = 0; i < N; i++) {
  let t = performance.now();
  await native.writeSync(h.fd, [buf], 2 * i * 4096, true);
  a.push((performance.now() - t) * 1000);
  t = performance.now();
  await h.writev([buf], (2 * i + 1) * 4096);
  await h.datasync();
  b.push((performance.now() - t) * 1000);
}
const q = (x, p) =>
  x
    .slice()
    .sort((m, n) => m - n)
    [Math.floor(p * x.length)].toFixed(0);
console.log(
  `one job (addon): p25 ${q(a, 0.25)} p50 ${q(a, 0.5)} p75 ${q(a, 0.75)} us | node:fs writev+datasync: p25 ${q(b, 0.25)} p50 ${q(b, 0.5)} p75 ${q(b, 0.75)} us`,
);
await h.close();
(await import('node:fs')).rmSync(path);
