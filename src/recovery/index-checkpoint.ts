/**
 * Loading the index checkpoint (`INDEX`, written by a clean close; format in
 * src/format/index-checkpoint.ts) instead of replaying the log.
 *
 * The rule for staleness is the simplest one that is always correct: a
 * checkpoint describes the log exactly as one clean close left it, and the
 * open that finds it invalidates it (zeroes its header in place, durably,
 * before the engine accepts a write; see FileSet.open), used or not. So no checkpoint ever exists while the log
 * holds records it does not cover, and a crash after new writes replays the
 * whole log. Open still checks that the log is the one the checkpoint names,
 * so a checkpoint copied from elsewhere, left by a process that did not remove
 * it, or outlived by a tool that changed the files, is never used:
 *  - the MANIFEST's generation, first and last append file and GC checkpoint
 *    are the ones it recorded (any rotation or purge bumps the generation);
 *  - no append file past the manifest's last one exists;
 *  - every file it covers exists, with the size it had at close, and a header
 *    that verifies with the sequence number, queue and salt it recorded (salts
 *    are random per file: a foreign log never matches);
 *  - the last file's seal record is where it was, verifies, and ends at the
 *    recorded end, and no record verifies there (nothing was appended after
 *    the close).
 * Anything else falls back to a full replay, with the reason in the report.
 * What it does not do: re-read the covered records. Reads verify each entry
 * they read; `consistencyCheck()` and `raftlog check` verify every record.
 */
import type { Memtables } from '../apply.js';
import { INDEX_CHECKPOINT_NAME, logFileName, parseLogFileName } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { CONSUMED, HOST_LITTLE_ENDIAN, decodeIndexCheckpoint, type CoveredFile, type CoveredLog } from '../format/index-checkpoint.js';
import { FILE_HEADER_SIZE, Queue, decodeFileHeader } from '../format/layout.js';
import type { ManifestRead } from '../file-set/manifest.js';
import { RegionMemtable } from '../memtable.js';
import { readFully } from '../read-fully.js';
import type { RecoveredState } from './log.js';
import type { RecoveredFile, RecoveryMode } from './recovery.js';
import { RecordScanner } from './scanner.js';

export type IndexCheckpointLoad = { kind: 'loaded'; state: RecoveredState } | { kind: 'unused'; reason: string };

/** Loads `INDEX` into `memtables` (empty on entry) when it matches the log exactly; never changes a file. */
export async function loadIndexCheckpoint(fs: FileSystem, mode: RecoveryMode, manifest: ManifestRead, memtables: Memtables): Promise<IndexCheckpointLoad> {
  if (!(await fs.exists(INDEX_CHECKPOINT_NAME))) return { kind: 'unused', reason: 'absent' };
  if (!HOST_LITTLE_ENDIAN) return { kind: 'unused', reason: 'big-endian host' };
  if (manifest.kind !== 'ok') return { kind: 'unused', reason: `stale: MANIFEST ${manifest.kind}` };
  const decoded = decodeIndexCheckpoint(await readWhole(fs, INDEX_CHECKPOINT_NAME));
  if (decoded === CONSUMED) return { kind: 'unused', reason: 'stale: an earlier open used or set it aside (the log may have changed since)' };
  if (typeof decoded === 'string') return { kind: 'unused', reason: `damaged: ${decoded}` };
  const { covered } = decoded;
  const state = manifest.state;
  if (covered.manifestGeneration !== manifest.generation) {
    return { kind: 'unused', reason: `stale: covers MANIFEST generation ${covered.manifestGeneration}, found ${manifest.generation}` };
  }
  if (covered.first !== state.first || covered.last !== state.last || covered.rewriteSeq !== (state.checkpoint?.seq ?? 0) || state.last === 0) {
    return { kind: 'unused', reason: 'stale: the MANIFEST lists other files' };
  }
  const expected: CoveredFile[] = [];
  const names = (await fs.list()).map((name) => ({ name, parsed: parseLogFileName(name) }));
  if (names.some((n) => n.parsed?.queue === Queue.Append && n.parsed.seq > state.last)) return { kind: 'unused', reason: 'stale: append files past the MANIFEST' };
  if (covered.files.length !== (state.checkpoint === undefined ? 0 : 1) + state.last - state.first + 1) return { kind: 'unused', reason: 'stale: covers other files' };
  const opened: { file: CoveredFile; name: string; handle: FileHandle }[] = [];
  try {
    for (const file of covered.files) {
      const isLast = file.queue === Queue.Append && file.seq === state.last;
      const listed = file.queue === Queue.Rewrite ? file.seq === state.checkpoint?.seq : file.seq >= state.first && file.seq <= state.last;
      if (!listed || expected.some((e) => e.queue === file.queue && e.seq === file.seq)) return await unused(opened, 'stale: covers other files');
      expected.push(file);
      const name = logFileName(file.queue as Queue, file.seq);
      if (!names.some((n) => n.name === name)) return await unused(opened, `stale: ${name} is missing`);
      const handle = await fs.open(name, { readOnly: !isLast });
      opened.push({ file, name, handle });
      const why = await mismatch(handle, file, isLast ? covered : undefined);
      if (why !== undefined) return await unused(opened, `stale: ${name} ${why}`);
    }
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  for (const region of decoded.regions) memtables.set(region.region, RegionMemtable.fromIndex(region));
  const rewrite = opened.find((o) => o.file.queue === Queue.Rewrite);
  const files: RecoveredFile[] = opened
    .filter((o) => o.file.queue === Queue.Append)
    .sort((a, b) => a.file.seq - b.file.seq)
    .map(({ file, name, handle }) => {
      const end = file.seq === state.last ? covered.lastEnd : file.size;
      return { name, seq: file.seq, salt: file.salt, handle, end, provenEnd: end, sealed: true, sealAt: file.seq === state.last ? covered.sealAt : 0 };
    });
  const rewriteSeqs = names.filter((n) => n.parsed?.queue === Queue.Rewrite).map((n) => n.parsed!.seq);
  return {
    kind: 'loaded',
    state: {
      manifest,
      rewrite: {
        checkpoint:
          rewrite === undefined
            ? undefined
            : { seq: rewrite.file.seq, name: rewrite.name, handle: rewrite.handle, watermark: state.checkpoint!.watermark, bytes: rewrite.file.size },
        stale: names.filter((n) => n.parsed?.queue === Queue.Rewrite && n.parsed.seq !== rewrite?.file.seq).map((n) => n.name),
        maxSeq: Math.max(0, ...rewriteSeqs),
        problems: [],
      },
      log: {
        files,
        writable: files[files.length - 1],
        nextSeq: state.last + 1,
        report: { mode, files: files.length, records: 0, bytesScanned: 0, problems: [], indexCheckpoint: { used: true, detail: 'loaded' } },
        superseded: names.filter((n) => n.parsed?.queue === Queue.Append && n.parsed.seq < state.first).map((n) => n.name),
      },
      deadRunsSkipped: 0,
    },
  };
}

/** Why the file is not the one the checkpoint recorded, or undefined when it is. */
async function mismatch(handle: FileHandle, file: CoveredFile, last: CoveredLog | undefined): Promise<string | undefined> {
  const size = await handle.size();
  if (size !== file.size) return `is ${size} bytes, the checkpoint recorded ${file.size}`;
  const bytes = new Uint8Array(FILE_HEADER_SIZE);
  const header = decodeFileHeader(bytes.subarray(0, await readFully(handle, bytes, 0, FILE_HEADER_SIZE, 0)));
  if (typeof header === 'string') return `header ${header}`;
  if (header.seq !== file.seq || header.queue !== file.queue || header.salt !== file.salt) return 'header is not the one the checkpoint recorded';
  if (last === undefined) return undefined;
  const { lastEnd, sealAt } = last;
  if (lastEnd < FILE_HEADER_SIZE || lastEnd > size) return `recorded end ${lastEnd} lies outside the file`;
  const scanner = new RecordScanner(handle, size, header.salt);
  try {
    if (sealAt === 0 ? lastEnd !== FILE_HEADER_SIZE : sealAt < FILE_HEADER_SIZE || sealAt >= lastEnd) return 'has a recorded end the checkpoint cannot have';
    if (sealAt !== 0) {
      const seal = await scanner.read(sealAt);
      if (!('header' in seal) || seal.header.payloadLength !== 0 || seal.end !== lastEnd) return `holds no seal record ending at ${lastEnd} at ${sealAt}`;
    }
    if ('header' in (await scanner.read(lastEnd))) return `holds a record after the recorded end ${lastEnd}`;
  } finally {
    await scanner.window.idle();
  }
  return undefined;
}

async function readWhole(fs: FileSystem, name: string): Promise<Uint8Array> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const bytes = new Uint8Array(await handle.size());
    return bytes.subarray(0, await readFully(handle, bytes, 0, bytes.length, 0));
  } finally {
    await handle.close();
  }
}

async function unused(opened: { handle: FileHandle }[], reason: string): Promise<IndexCheckpointLoad> {
  await closeAll(opened);
  return { kind: 'unused', reason };
}

async function closeAll(opened: { handle: FileHandle }[]): Promise<void> {
  await Promise.all(opened.map((o) => o.handle.close().catch(() => undefined)));
  opened.length = 0;
}
