/**
 * Text output helpers: aligned tables, human units, and a buffered writer for
 * commands that print one line per record (dump), where a write(2) per line
 * would cost more than the scan.
 */
import { writeSync } from 'node:fs';

export type Cell = string | number;

/**
 * Renders rows as aligned columns. Cells after the first column that look
 * numeric are right-aligned so magnitudes line up; the first row is the
 * header and gets an underline.
 */
export function table(rows: readonly (readonly Cell[])[], align: 'auto' | 'left' = 'auto'): string {
  if (rows.length === 0) return '';
  const text = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)));
  const columns = Math.max(...text.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(...text.map((row) => (row[c] ?? '').length)));
  // Per cell, not per column: a metric table mixes "1,234" with "n/a (…)", and the numbers should still line up.
  const looksNumeric = (cell: string): boolean => /^[-+]?[\d,.]+(\s?[^\s\d]+)?$/.test(cell);
  const render = (row: readonly string[], header: boolean): string =>
    row
      .map((cell, c) => (!header && align === 'auto' && c > 0 && looksNumeric(cell) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const lines = [render(text[0]!, true), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of text.slice(1)) lines.push(render(row, false));
  return lines.join('\n') + '\n';
}

/** 1234567.8 -> "1,234,568"; small values keep up to 2 decimals. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

/** Nanoseconds to the unit that keeps 3 significant digits readable. */
export function formatDuration(ns: number): string {
  if (ns < 1_000) return `${ns.toFixed(0)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 2 : 1)} µs`;
  if (ns < 1_000_000_000) return `${(ns / 1_000_000).toFixed(ns < 10_000_000 ? 2 : 1)} ms`;
  return `${(ns / 1_000_000_000).toFixed(2)} s`;
}

/**
 * Line output to a file descriptor, flushed in 64 KiB chunks with
 * synchronous writes: the scan that produces the lines is synchronous per
 * record, and a synchronous write keeps memory flat however large the dump.
 * EPIPE (`raftlog dump | head`) ends output quietly.
 */
export class LineWriter {
  #chunks: string[] = [];
  #size = 0;
  #closed = false;

  constructor(readonly fd: number = 1) {}

  line(text: string): void {
    this.write(text + '\n');
  }

  write(text: string): void {
    if (this.#closed) return;
    this.#chunks.push(text);
    this.#size += text.length;
    if (this.#size >= 64 * 1024) this.flush();
  }

  /** True once the reader went away; producers may stop early. */
  get closed(): boolean {
    return this.#closed;
  }

  flush(): void {
    if (this.#chunks.length === 0 || this.#closed) return;
    const data = Buffer.from(this.#chunks.join(''));
    this.#chunks = [];
    this.#size = 0;
    let at = 0;
    while (at < data.length) {
      try {
        at += writeSync(this.fd, data, at);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EAGAIN') continue; // non-blocking pipe momentarily full
        if (code === 'EPIPE') {
          this.#closed = true;
          return;
        }
        throw error;
      }
    }
  }
}
