/**
 * `raftlog dump DIR`: the log as recovery reads it — every record with its
 * items (entry runs, key puts and deletes, compactions, cleans), optionally
 * every entry, then the files, the regions an engine would rebuild, and any
 * problems. Read-only; output streams, so a multi-GiB log dumps in constant
 * memory (apart from the region index the summary needs).
 *
 * JSON is one document (records as an array, then the summary), written
 * incrementally, one record per line.
 */
import { ItemKind, type BatchItem } from '../src/format/batch-codec.js';
import { decodeEntry } from '../src/format/entry-codec.js';
import { logFileName, parseLogFileName } from '../src/file-names.js';
import { Queue, RECORD_FLAG_LZ4 } from '../src/format/layout.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import type { ScannedRecord } from '../src/recovery/scanner.js';
import { inspectionFileSystem } from './backends.js';
import { readRaftlogDirectory } from './directory.js';
import { CliError, ExitCode } from './errors.js';
import { LineWriter, formatBytes, table } from './output.js';
import { dryRecover } from './scan.js';

export interface DumpOptions {
  json: boolean;
  /** Only items of these regions (all when empty). */
  regions: number[];
  /** Only records of these files, by name or sequence number (all when empty). */
  files: string[];
  /** Print each entry, not just each run. */
  entries: boolean;
  /** List each region's keys in the summary. */
  keys: boolean;
  /** Summary only, no records. */
  summaryOnly: boolean;
  /** At most this many records (0: no limit). */
  limit: number;
  mode: RecoveryMode;
}

const PREVIEW_BYTES = 16;

function hex(bytes: Uint8Array, max = PREVIEW_BYTES): string {
  const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, max)).toString('hex');
  return bytes.length > max ? `${shown}…` : shown;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A key in JSON: the key itself as a string when its bytes are UTF-8 (no
 * quoting added: the JSON string is the key), else null; `keyHex` always
 * carries the exact bytes.
 */
function keyText(bytes: Uint8Array): string | null {
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/** A key in text output: quoted (so spaces and empty keys show) when it is UTF-8 text, else 0x-hex. */
function showKey(key: string | null, keyHex: string): string {
  return key === null ? `0x${keyHex}` : JSON.stringify(key);
}

interface JsonEntry {
  index: number;
  term: number;
  entryType: number;
  bytes: number;
  dataBytes: number;
  dataHex: string;
}

interface JsonItem {
  /** 'other': an item kind this dump does not know (a newer format); `code` says which. */
  kind: 'entries' | 'put' | 'delete' | 'compact' | 'clean' | 'other';
  code?: number;
  region: number;
  first?: number;
  last?: number;
  count?: number;
  index?: number;
  /** The key as a UTF-8 string, or null when its bytes are not UTF-8 (then see keyHex). */
  key?: string | null;
  keyHex?: string;
  valueBytes?: number;
  valueHex?: string;
  entries?: JsonEntry[];
}

function itemJson(item: BatchItem, record: ScannedRecord, withEntries: boolean): JsonItem {
  const payload = record.payload;
  switch (item.kind) {
    case ItemKind.Entries: {
      const out: JsonItem = { kind: 'entries', region: item.region, first: item.index, last: item.index + item.count - 1, count: item.count };
      if (withEntries) {
        out.entries = [];
        for (let i = 0; i < item.count; i++) {
          const at = record.items.entryOffsets[item.entryStart + i]!;
          const length = record.items.entryLengths[item.entryStart + i]!;
          const entry = decodeEntry(payload.subarray(at, at + length));
          out.entries.push({ index: entry.index, term: entry.term, entryType: entry.entryType, bytes: length, dataBytes: entry.data.length, dataHex: hex(entry.data) });
        }
      }
      return out;
    }
    case ItemKind.Put:
    case ItemKind.Delete: {
      const key = payload.subarray(item.keyOffset, item.keyOffset + item.keyLength);
      const out: JsonItem = { kind: item.kind === ItemKind.Put ? 'put' : 'delete', region: item.region, key: keyText(key), keyHex: Buffer.from(key).toString('hex') };
      if (item.kind === ItemKind.Put) {
        out.valueBytes = item.valueLength;
        out.valueHex = hex(payload.subarray(item.valueOffset, item.valueOffset + item.valueLength));
      }
      return out;
    }
    case ItemKind.Compact:
      return { kind: 'compact', region: item.region, index: item.index };
    case ItemKind.Clean:
      return { kind: 'clean', region: item.region };
    default:
      // The scanner verified it, so it is a kind newer than this dump: show its code and index word.
      return { kind: 'other', code: item.kind as number, region: item.region, index: item.index };
  }
}

function itemText(item: JsonItem): string {
  switch (item.kind) {
    case 'entries':
      return `entries r${item.region} ${item.first}..${item.last} (${item.count})`;
    case 'put':
      return `put r${item.region} ${showKey(item.key ?? null, item.keyHex ?? '')} = ${item.valueBytes} B`;
    case 'delete':
      return `delete r${item.region} ${showKey(item.key ?? null, item.keyHex ?? '')}`;
    case 'compact':
      return `compact r${item.region} to ${item.index}`;
    case 'clean':
      return `clean r${item.region}`;
    case 'other':
      return `item kind ${item.code} r${item.region} index ${item.index}`;
  }
}

function resolveFiles(wanted: string[], present: string[]): Set<string> | undefined {
  if (wanted.length === 0) return undefined;
  const names = new Set<string>();
  for (const name of wanted) {
    const resolved = /^\d+$/.test(name) ? logFileName(Queue.Append, Number(name)) : name;
    if (parseLogFileName(resolved) === undefined || !present.includes(resolved)) {
      throw new CliError(`--file ${name}: no such log file in the directory`, ExitCode.USAGE);
    }
    names.add(resolved);
  }
  return names;
}

export interface DumpNotes {
  note(text: string): void;
}

export async function runDump(dir: string, options: DumpOptions, io: DumpNotes, out = new LineWriter(1)): Promise<number> {
  const info = await readRaftlogDirectory(dir);
  if (info.lockHolder !== undefined) {
    io.note(`${dir} is in use (${info.lockHolder}); reading anyway: its last file may change underneath, so its tail can look torn`);
  }
  const files = resolveFiles(options.files, info.logFiles);
  const regions = options.regions.length === 0 ? undefined : new Set(options.regions);
  let printed = 0;
  let first = true;
  if (options.json) out.write(`{"directory":${JSON.stringify(info.path)},"mode":${JSON.stringify(options.mode)},"records":[`);
  let currentFile = '';

  const visit = (record: ScannedRecord, file: string): void => {
    if (options.summaryOnly || out.closed) return;
    if (options.limit > 0 && printed >= options.limit) return;
    if (files !== undefined && !files.has(file)) return;
    const items = record.items.items.filter((item) => regions === undefined || regions.has(item.region));
    // An empty record is the seal a clean close writes: shown unless filtering by region.
    if (items.length === 0 && (regions !== undefined || record.items.items.length > 0)) return;
    printed++;
    const json = items.map((item) => itemJson(item, record, options.entries));
    const compressed = (record.header.flags & RECORD_FLAG_LZ4) !== 0;
    if (options.json) {
      const value = { file, offset: record.offset, payloadBytes: record.header.payloadLength, compressed, syncedThrough: record.header.syncedThrough, items: json };
      out.write(`${first ? '\n' : ',\n'}${JSON.stringify(value)}`);
      first = false;
      return;
    }
    if (file !== currentFile) {
      currentFile = file;
      out.line(`${file}:`);
    }
    const flags = compressed ? ' lz4' : '';
    const described = json.length === 0 ? 'seal (empty record of a clean close)' : json.map(itemText).join('; ');
    out.line(`  @${record.offset} ${record.header.payloadLength} B${flags} synced-through ${record.header.syncedThrough}: ${described}`);
    if (options.entries) {
      for (const item of json) {
        for (const e of item.entries ?? []) {
          out.line(`      r${item.region} #${e.index} term ${e.term} type ${e.entryType} data ${e.dataBytes} B ${e.dataHex}`);
        }
      }
    }
  };

  const { make } = await inspectionFileSystem(info.path, info.logFiles);
  const result = await dryRecover(info.path, make, options.mode, visit);
  const regionRows = [...result.memtables.entries()]
    .filter(([region]) => regions === undefined || regions.has(region))
    .sort(([a], [b]) => a - b)
    .map(([region, memtable]) => ({
      region,
      firstIndex: memtable.firstIndex() ?? null,
      lastIndex: memtable.lastIndex() ?? null,
      entries: memtable.entryCount,
      keys: memtable.kv.size,
      ...(options.keys
        ? {
            keyList: [...memtable.kv.entries()]
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([key, value]) => {
                const bytes = Buffer.from(key, 'latin1');
                return { key: keyText(bytes), keyHex: bytes.toString('hex'), valueBytes: value.value.length };
              }),
          }
        : {}),
    }));
  const fileRows = result.files.map((f) => ({ name: f.name, seq: f.seq, salt: `0x${f.salt.toString(16).padStart(8, '0')}`, validBytes: f.end, sizeBytes: f.size }));
  const problems = result.report.problems;

  if (options.json) {
    out.write(
      `${first ? '' : '\n'}],\n"files":${JSON.stringify(fileRows)},\n"regions":${JSON.stringify(regionRows)},\n` +
        `"checkpoint":${JSON.stringify(result.checkpoint ?? null)},\n"superseded":${JSON.stringify(result.superseded)},\n` +
        `"problems":${JSON.stringify(problems)},\n"totals":${JSON.stringify({ records: result.report.records, recordsShown: printed, entries: result.entries, regions: result.memtables.size })}}\n`,
    );
    out.flush();
    return ExitCode.OK;
  }
  if (!options.summaryOnly) out.line('');
  out.write(table([['file', 'seq', 'salt', 'valid bytes', 'size'], ...fileRows.map((f) => [f.name, f.seq, f.salt, f.validBytes, formatBytes(f.sizeBytes)])]));
  out.line('');
  out.write(
    table([
      ['region', 'first index', 'last index', 'entries', 'keys'],
      ...regionRows.map((r) => [String(r.region), r.firstIndex === null ? '-' : r.firstIndex, r.lastIndex === null ? '-' : r.lastIndex, r.entries, r.keys]),
    ]),
  );
  if (options.keys) {
    for (const r of regionRows) {
      for (const k of r.keyList ?? []) out.line(`  r${r.region} ${showKey(k.key, k.keyHex)} = ${k.valueBytes} B`);
    }
  }
  if (result.checkpoint !== undefined) {
    out.line(`GC checkpoint ${result.checkpoint.name}: replayed first; it holds everything live below append file ${result.checkpoint.watermark}`);
  }
  if (result.superseded.length > 0) out.line(`superseded by the checkpoint, not replayed (the next purge removes them): ${result.superseded.join(', ')}`);
  for (const p of problems) out.line(`problem: ${p.file} offset ${p.offset}: ${p.detail} (${p.action}, ${formatBytes(p.bytesDropped)})`);
  out.line(
    `${result.report.records} records (${printed} shown), ${result.entries} entries, ${result.memtables.size} regions, ${result.files.length} files` +
      (result.report.problems.length > 0 ? `, ${problems.length} problem(s): run raftlog check` : ''),
  );
  out.flush();
  return ExitCode.OK;
}
