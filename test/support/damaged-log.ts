/**
 * Small logs written through a real engine on MemFs, as file images the
 * recovery tests damage on purpose (test/recovery.test.ts,
 * test/decision-table.test.ts), and the edits they damage them with.
 */
import assert from 'node:assert/strict';
import { MemFs } from '../../backends/memfs.js';
import { Engine, type EngineOptions } from '../../src/engine.js';
import { MANIFEST_NAME } from '../../src/file-names.js';
import { MANIFEST_SLOT_SIZE, decodeManifestSlot, encodeManifestSlot, type ManifestState } from '../../src/file-set/manifest.js';
import { FILE_HEADER_SIZE, decodeFileHeader } from '../../src/format/layout.js';
import { LogBatch } from '../../src/log-batch.js';
import { RecordScanner } from '../../src/recovery/scanner.js';

export type Files = Map<string, Uint8Array>;

/**
 * Writes `records` synced batches, one region each (regions 1..n), and
 * returns the files a clean close left. No index checkpoint by default:
 * these cases are about replay, and with one open does not re-read the
 * records it covers (test/index-checkpoint.test.ts).
 */
export async function writeLog(records: number, options: Partial<EngineOptions> = {}): Promise<Files> {
  const fs = new MemFs();
  const engine = new Engine({ fs, seed: 9, targetFileSize: 1 << 20, preallocateBytes: 4096, indexCheckpoint: false, ...options });
  await engine.open();
  for (let r = 1; r <= records; r++) {
    const batch = new LogBatch();
    batch.addEntries(r, [{ index: 1, term: 1, data: new Uint8Array(900).map((_, i) => (i * r) & 0xff) }]);
    await engine.write(batch, { sync: true });
  }
  await engine.close();
  const files = fs.snapshot();
  files.delete('LOCK');
  return files;
}

export function logNames(files: Files): string[] {
  return [...files.keys()].filter((n) => n.endsWith('.raftlog')).sort();
}

/** Offsets of the records in a file's bytes. */
export async function recordOffsets(bytes: Uint8Array): Promise<number[]> {
  const header = decodeFileHeader(bytes);
  assert.ok(typeof header === 'object');
  const fs = new MemFs();
  const handle = await fs.open('f', { create: true });
  await handle.write([bytes], 0);
  const scanner = new RecordScanner(handle, bytes.length, header.salt);
  const offsets: number[] = [];
  for (let offset = FILE_HEADER_SIZE; ; ) {
    const result = await scanner.read(offset);
    if (!('header' in result)) break;
    offsets.push(offset);
    offset = result.end;
  }
  return offsets;
}

/** Rewrites both MANIFEST slots (those that verify) with `edit` applied to their state. */
export function editManifest(files: Files, edit: (state: ManifestState) => ManifestState): void {
  const manifest = files.get(MANIFEST_NAME)!;
  for (const at of [0, MANIFEST_SLOT_SIZE]) {
    const slot = decodeManifestSlot(manifest.subarray(at, at + MANIFEST_SLOT_SIZE));
    if (typeof slot === 'object') manifest.set(encodeManifestSlot(edit(slot.state), slot.generation), at);
  }
}

/** As a crash (or an engine's first write) leaves it: the MANIFEST records no clean close. */
export const withoutCleanEnd = (files: Files): void => editManifest(files, (state) => ({ ...state, cleanEnd: 0 }));
