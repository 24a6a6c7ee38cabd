/**
 * Payload lz4, per call: the addon's codec (hardware/lz4.cc, allocation-free,
 * into caller memory) against lz4-napi's compressSync/uncompressSync, on
 * half-random/half-zero input (the typical Raft batch's shape) and fully
 * random input, at 1, 4, 16, 64 KiB and 1 MiB. Compression is measured as
 * seal() calls it: output only when smaller than the input (dstLimit = input
 * length), so the addon gives up on random input; lz4-napi always compresses
 * whole (above 64 KiB src/format/compression.ts samples first, shown in its
 * own row). Each cell: the median of 7 timed runs of about 50 ms, cells
 * interleaved run by run, since the machine is shared. Last, LogBatch.seal()
 * of the typical Raft batch (4 × 1 KiB entries, half random, and a hard
 * state) at a 4 KiB threshold, with each codec and without compressing.
 *
 * Usage: node dist/bench/lz4.js [--runs 7]
 */
import { parseArgs } from 'node:util';
import { compressSync, uncompressSync } from 'lz4-napi';
import { loadNativeLz4 } from '../hardware/native.js';
import { installCompression, portableLz4, type Lz4Codec } from '../src/format/compression.js';
import { LogBatch } from '../src/log-batch.js';
import { benchRandom } from './support/random.js';
import { machineInfo, machineLine, printTable, saveResults, type Row } from './support/report.js';
import { median } from './support/stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(values.runs);
const native = loadNativeLz4();
if (native === undefined) throw new Error('the native addon is not built: npm run build:native');

const SIZES = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 1 << 20];
const prng = benchRandom('lz4');

function inputOf(kind: 'half' | 'random', size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(prng.bytes(kind === 'half' ? size >> 1 : size));
  return out;
}

/** Microseconds per call of `fn`, over about 50 ms. */
function time(fn: () => unknown): number {
  let calls = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn();
    const ns = Number(process.hrtime.bigint() - start);
    if (ns > 50e6) return ns / calls / 1000;
    calls *= ns < 5e6 ? 10 : 2;
  }
}

interface Cell {
  size: number;
  kind: 'half' | 'random';
  label: string;
  fn: () => unknown;
  samples: number[];
  /** Bytes out (prefix included), 0 when the codec declined; for seal(), the stored payload. */
  output: number;
}

const cells: Cell[] = [];
for (const size of SIZES) {
  for (const kind of ['half', 'random'] as const) {
    const src = inputOf(kind, size);
    const dst = new Uint8Array(size + (size >> 7) + 64);
    const napiBlock = compressSync(Buffer.from(src));
    const back = new Uint8Array(size);
    const add = (label: string, fn: () => unknown, output: number): void => {
      cells.push({ size, kind, label, fn, samples: [], output });
    };
    add('compress, addon', () => native.compress(src, 0, size, dst, 0, size), native.compress(src, 0, size, dst, 0, size));
    add('compress, lz4-napi', () => compressSync(Buffer.from(src.buffer, 0, size)), napiBlock.length);
    if (size > 64 << 10) {
      add(
        'compress, portable (sampled)',
        () => portableLz4.compress(src, 0, size, dst, 0, size),
        portableLz4.compress(src, 0, size, dst, 0, size),
      );
    }
    add('decompress, addon', () => native.decompress(napiBlock, 0, napiBlock.length, back, 0, size), size);
    add('decompress, lz4-napi', () => uncompressSync(napiBlock), size);
  }
}

/** The typical batch, sealed again and again; each record settles at once, so the batch reuses its memory. */
function sealCell(label: string, codec: Lz4Codec | undefined, threshold: number): void {
  const batch = new LogBatch();
  batch.addEntries(
    1,
    Array.from({ length: 4 }, (_, i) => ({ index: i + 1, term: 1, data: inputOf('half', 1024) })),
  );
  batch.put(1, 'hard_state', prng.bytes(16));
  const seal = (): number => {
    installCompression(codec);
    const record = batch.seal(threshold);
    record.settled = true;
    return record.payloadLength;
  };
  cells.push({ size: batch.approximateSize(), kind: 'half', label, fn: seal, samples: [], output: seal() });
}
sealCell('seal(), not compressed', undefined, 1 << 30);
sealCell('seal(), addon lz4', native, 4 << 10);
sealCell('seal(), lz4-napi', undefined, 4 << 10);

for (let run = 0; run < runs; run++) for (const cell of cells) cell.samples.push(time(cell.fn));

const rows: Row[] = cells.map((cell) => ({
  input: cell.size % 1024 === 0 ? `${cell.size >> 10} KiB ${cell.kind}` : `${cell.size} B ${cell.kind}`,
  call: cell.label,
  'us/call': median(cell.samples),
  'min us': Math.min(...cell.samples),
  'bytes out': cell.output,
}));
const machine = machineInfo();
console.log(machineLine(machine));
printTable(`lz4 per call, median of ${runs} runs (compress: only when smaller than the input)`, rows);
console.log(`\nsaved ${saveResults('lz4', { runs, rows }, machine)}`);
