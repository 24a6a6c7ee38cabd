/**
 * What every benchmark prints and saves: the machine it ran on, a table on
 * the terminal, and JSON under bench/results/ (one file per run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  disk: string;
  /** The block device under `disk`, from sysfs: driver, rotational or not, write cache, scheduler. */
  diskDevice?: string;
}

export function machineInfo(path = process.cwd()): MachineInfo {
  let disk = 'unknown';
  let device: string | undefined;
  try {
    const df = execFileSync('df', ['-hT', path], { encoding: 'utf8' }).trim().split('\n')[1]?.split(/\s+/);
    if (df !== undefined) {
      disk = `${df[0]} ${df[1]} (${df[2]} total)`;
      device = df[0];
    }
  } catch {
    // df is informational; a missing df must not fail a benchmark.
  }
  const info: MachineInfo = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    disk,
  };
  const detail = device === undefined ? undefined : blockDeviceDetail(device);
  if (detail !== undefined) info.diskDevice = detail;
  return info;
}

/**
 * What sysfs says about the device behind `/dev/NAME` (a partition's parent
 * for partitions): the disk's kind matters more to sync latency than its size.
 */
function blockDeviceDetail(devicePath: string): string | undefined {
  if (!devicePath.startsWith('/dev/')) return undefined;
  let name = basename(devicePath);
  if (!existsSync(`/sys/block/${name}`)) {
    const parent = /^(nvme\d+n\d+|mmcblk\d+|[a-z]+?)(p?\d+)$/.exec(name)?.[1];
    if (parent === undefined || !existsSync(`/sys/block/${parent}`)) return undefined;
    name = parent;
  }
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(`/sys/block/${name}/${file}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const driver = read('device/uevent')?.match(/^DRIVER=(.*)$/m)?.[1];
  const model = read('device/model');
  const rotational = read('queue/rotational');
  const cache = read('queue/write_cache') ?? read('cache_type');
  const scheduler = read('queue/scheduler')?.match(/\[(.*?)\]/)?.[1];
  const parts = [
    name,
    model ?? driver,
    rotational === undefined ? undefined : rotational === '1' ? 'rotational' : 'non-rotational',
    cache === undefined ? undefined : `${cache} cache`,
    scheduler === undefined ? undefined : `scheduler ${scheduler}`,
  ].filter((p): p is string => p !== undefined && p !== '');
  return parts.join(', ');
}

export function machineLine(info: MachineInfo): string {
  const device = info.diskDevice === undefined ? '' : ` [${info.diskDevice}]`;
  return `${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Linux ${info.kernel}, Node ${info.node}, disk ${info.disk}${device}`;
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

/** The same rows as a GitHub Markdown table (numbers right-aligned), for docs/benchmarks.md. */
export function markdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined): string => (typeof v === 'number' ? formatNumber(v) : (v ?? '')).replace(/\|/g, '\\|');
  const numeric = columns.map((c) => rows.every((r) => typeof r[c] === 'number' || /^[-+~]?[\d.,]+/.test(String(r[c] ?? ''))));
  const lines = [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map((_, i) => (numeric[i] ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`),
  ];
  return lines.join('\n');
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3);
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results');
/** bench/results/ in the source tree (this file runs from dist/bench/support/). */
export const RESULTS_DIR = RESULTS;

/** Saves `data` with the machine line as <dir>/<name>-<timestamp>.json (default dir: bench/results/); returns the path. */
export function saveResults(name: string, data: unknown, machine: MachineInfo = machineInfo(), dir: string = RESULTS): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${name}-${stamp}.json`);
  writeFileSync(path, JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine, results: data }, null, 2));
  return path;
}
