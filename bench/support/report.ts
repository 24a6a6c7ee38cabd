/**
 * What every benchmark prints and saves: the machine it ran on, a table on
 * the terminal, and JSON under bench/results/ (one file per run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  disk: string;
}

export function machineInfo(path = process.cwd()): MachineInfo {
  let disk = 'unknown';
  try {
    const df = execFileSync('df', ['-hT', path], { encoding: 'utf8' }).trim().split('\n')[1]?.split(/\s+/);
    if (df !== undefined) disk = `${df[0]} ${df[1]} (${df[2]} total)`;
  } catch {
    // df is informational; a missing df must not fail a benchmark.
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    disk,
  };
}

export function machineLine(info: MachineInfo): string {
  return `${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Linux ${info.kernel}, Node ${info.node}, disk ${info.disk}`;
}

export type Row = Record<string, string | number>;

export function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined): string => (typeof v === 'number' ? formatNumber(v) : (v ?? ''));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]): string => values.map((v, i) => v.padStart(widths[i]!)).join('  ');
  console.log(line(columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(columns.map((c) => cell(row[c]))));
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3);
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results');

/** Saves `data` with the machine line as bench/results/<name>-<timestamp>.json; returns the path. */
export function saveResults(name: string, data: unknown, machine: MachineInfo = machineInfo()): string {
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(RESULTS, `${name}-${stamp}.json`);
  writeFileSync(path, JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine, results: data }, null, 2));
  return path;
}
