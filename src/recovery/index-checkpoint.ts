/**
 * Loading the index checkpoint (`INDEX`; format in
 * src/format/index-checkpoint.ts) instead of replaying the whole log.
 *
 * A checkpoint holds the memtables as they were at one log position (file
 * `covered.last`, offset `covered.lastEnd`, a record boundary): written at a
 * clean close (the position is the seal's end) or periodically while the
 * engine runs (src/file-set/index-checkpointer.ts; the position is the end
 * of a write group, made durable by a barrier before the checkpoint was
 * written). Open loads it and replays only the records after that position
 * (the tail) through the normal recovery code (recoverQueue's `resume`), so
 * recovery modes, torn-tail cuts and corruption reports apply to the tail
 * exactly as in a full replay. Records the engine writes after the position
 * only ever extend the tail: the checkpoint stays valid until a purge.
 *
 * Open checks that the log is the one the checkpoint covers, so a checkpoint
 * copied from elsewhere, outlived by a purge or by a tool that changed the
 * files, is never used:
 *  - the MANIFEST's first append file and GC checkpoint are the ones it
 *    recorded (a purge changes them: the memtables it holds may point into
 *    files the purge removed, so a purge makes it stale), its covered file is
 *    listed, and a clean end recorded in that file is not before its position;
 *  - no append file past the manifest's last one exists;
 *  - every file it covers exists with a header that verifies with the
 *    sequence number, queue and salt it recorded (salts are random per file:
 *    a foreign or recycled file never matches) and, below the covered file,
 *    the size it recorded (they no longer change);
 *  - in the covered file, the last covered record is where it recorded,
 *    verifies, and ends at the recorded position.
 * Anything else falls back to a full replay, with the reason in the report;
 * the open then invalidates the checkpoint (FileSet.open), since recovery may
 * change the log under it. What it does not do: re-read the covered records.
 * Reads verify each entry they read; `consistencyCheck()` and `raftlog
 * check` verify every record.
 */
import type { Memtables } from '../apply.js';
import { INDEX_CHECKPOINT_NAME, logFileName, parseLogFileName } from '../file-names.js';
import type { FileHandle, FileSystem } from '../filesystem.js';
import { CONSUMED, HOST_LITTLE_ENDIAN, decodeIndexCheckpoint, type CoveredFile, type CoveredLog } from '../format/index-checkpoint.js';
import { FILE_HEADER_SIZE, Queue, decodeFileHeader, type FileHeader } from '../format/layout.js';
import type { ManifestRead } from '../file-set/manifest.js';
import { LoadedColumns, RegionMemtable } from '../memtable.js';
import { readFully } from '../read-fully.js';
import type { RewriteQueueState } from './checkpoint.js';
import type { RecoveredFile } from './recovery.js';
import { HEADER_WINDOW, RecordScanner } from './scanner.js';

export type IndexCheckpointLoad =
  | {
      kind: 'loaded';
      /** Append files wholly before the covered one, open read-only (not replayed). */
      files: RecoveredFile[];
      rewrite: RewriteQueueState;
      /** Where replay resumes (see RecoverOptions.resume). */
      resume: { seq: number; offset: number; sealAt: number };
    }
  | { kind: 'unused'; reason: string };

/** Loads `INDEX` into `memtables` (empty on entry) when it covers a prefix of this log; never changes a file. */
export async function loadIndexCheckpoint(fs: FileSystem, manifest: ManifestRead, memtables: Memtables): Promise<IndexCheckpointLoad> {
  if (!(await fs.exists(INDEX_CHECKPOINT_NAME))) return { kind: 'unused', reason: 'absent' };
  if (!HOST_LITTLE_ENDIAN) return { kind: 'unused', reason: 'big-endian host' };
  if (manifest.kind !== 'ok') return { kind: 'unused', reason: `stale: MANIFEST ${manifest.kind}` };
  const decoded = decodeIndexCheckpoint(await readWhole(fs, INDEX_CHECKPOINT_NAME));
  if (decoded === CONSUMED) return { kind: 'unused', reason: 'stale: an earlier open set it aside (the log may have changed since)' };
  if (typeof decoded === 'string') return { kind: 'unused', reason: `damaged: ${decoded}` };
  const { covered } = decoded;
  const state = manifest.state;
  if (covered.first !== state.first || covered.rewriteSeq !== (state.checkpoint?.seq ?? 0)) {
    return { kind: 'unused', reason: 'stale: a purge changed the files since (the MANIFEST lists another first file or GC checkpoint)' };
  }
  const through = covered.last;
  if (state.first === 0 || through < state.first || through > state.last)
    return { kind: 'unused', reason: 'stale: the MANIFEST does not list the file it covers' };
  if (state.cleanEnd !== 0 && through === state.last && state.cleanEnd < covered.lastEnd) {
    return { kind: 'unused', reason: 'stale: the MANIFEST records a clean end before the position it covers' };
  }
  const expected: CoveredFile[] = [];
  const names = (await fs.list()).map((name) => ({ name, parsed: parseLogFileName(name) }));
  if (names.some((n) => n.parsed?.queue === Queue.Append && n.parsed.seq > state.last))
    return { kind: 'unused', reason: 'stale: append files past the MANIFEST' };
  if (covered.files.length !== (state.checkpoint === undefined ? 0 : 1) + through - state.first + 1)
    return { kind: 'unused', reason: 'stale: covers other files' };
  const opened: { file: CoveredFile; name: string; handle: FileHandle; header: FileHeader }[] = [];
  let sealAt = 0;
  try {
    for (const file of covered.files) {
      const isCovered = file.queue === Queue.Append && file.seq === through;
      const listed = file.queue === Queue.Rewrite ? file.seq === state.checkpoint?.seq : file.seq >= state.first && file.seq <= through;
      if (!listed || expected.some((e) => e.queue === file.queue && e.seq === file.seq))
        return await unused(opened, 'stale: covers other files');
      expected.push(file);
      const name = logFileName(file.queue as Queue, file.seq);
      if (!names.some((n) => n.name === name)) return await unused(opened, `stale: ${name} is missing`);
      const handle = await fs.open(name, { readOnly: true });
      const checked = await check(handle, file, isCovered ? covered : undefined);
      if (typeof checked === 'string') {
        await handle.close().catch(() => undefined);
        return await unused(opened, `stale: ${name} ${checked}`);
      }
      // The covered file is replayed from the position on (recoverQueue opens it itself).
      if (isCovered) {
        sealAt = checked.sealAt;
        await handle.close();
      } else {
        opened.push({ file, name, handle, header: checked.header });
      }
    }
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  // Every region's rows are slots of the same seven columns (see ColumnArena).
  const shared = new LoadedColumns(decoded.columns, decoded.columnBytes);
  decoded.forEachRegion((region) => memtables.set(region.region, RegionMemtable.fromLoaded(region, shared)));
  const rewrite = opened.find((o) => o.file.queue === Queue.Rewrite);
  const appends = opened.filter((o) => o.file.queue === Queue.Append).sort((a, b) => a.file.seq - b.file.seq);
  const files: RecoveredFile[] = appends.map(({ file, name, handle }, i) => {
    // Where its records end: the length its successor's header records (the file may be preallocated past it).
    const successor = i + 1 < appends.length ? appends[i + 1]!.header.previousFileLength : 0;
    const end = successor > 0 ? successor : file.size;
    return { name, seq: file.seq, salt: file.salt, handle, end, provenEnd: end, sealed: true, sealAt: 0 };
  });
  const rewriteSeqs = names.filter((n) => n.parsed?.queue === Queue.Rewrite).map((n) => n.parsed!.seq);
  return {
    kind: 'loaded',
    files,
    rewrite: {
      checkpoint:
        rewrite === undefined
          ? undefined
          : {
              seq: rewrite.file.seq,
              name: rewrite.name,
              handle: rewrite.handle,
              watermark: state.checkpoint!.watermark,
              bytes: rewrite.file.size,
            },
      stale: names.filter((n) => n.parsed?.queue === Queue.Rewrite && n.parsed.seq !== rewrite?.file.seq).map((n) => n.name),
      maxSeq: Math.max(0, ...rewriteSeqs),
      problems: [],
    },
    resume: { seq: through, offset: covered.lastEnd, sealAt },
  };
}

/**
 * Why the file is not the one the checkpoint recorded; else its header and,
 * for the covered file (`covered` given), where a seal record ending at the
 * position starts (0 when the last covered record is no seal).
 */
async function check(
  handle: FileHandle,
  file: CoveredFile,
  covered: CoveredLog | undefined,
): Promise<string | { header: FileHeader; sealAt: number }> {
  const size = await handle.size();
  // A file before the covered one is finished; the covered one may have grown since.
  if (covered === undefined && size !== file.size) return `is ${size} bytes, the checkpoint recorded ${file.size}`;
  const bytes = new Uint8Array(FILE_HEADER_SIZE);
  const header = decodeFileHeader(bytes.subarray(0, await readFully(handle, bytes, 0, FILE_HEADER_SIZE, 0)));
  if (typeof header === 'string') return `header ${header}`;
  if (header.seq !== file.seq || header.queue !== file.queue || header.salt !== file.salt)
    return 'header is not the one the checkpoint recorded';
  if (covered === undefined) return { header, sealAt: 0 };
  // `sealAt` in the file: where the last covered record starts (a seal after a clean close).
  const { lastEnd, sealAt: lastAt } = covered;
  if (lastEnd < FILE_HEADER_SIZE || lastEnd > size) return `is ${size} bytes, shorter than the position ${lastEnd} the checkpoint covers`;
  if (lastAt === 0 ? lastEnd !== FILE_HEADER_SIZE : lastAt < FILE_HEADER_SIZE || lastAt >= lastEnd)
    return 'has a recorded position the checkpoint cannot have';
  if (lastAt === 0) return { header, sealAt: 0 };
  // One record: a small window (it still widens to a long record), not the
  // 8 MiB a scan reads ahead, which here would read the preallocated rest.
  const scanner = new RecordScanner(handle, size, header.salt, HEADER_WINDOW);
  try {
    const last = await scanner.read(lastAt);
    if (!('header' in last) || last.end !== lastEnd) return `holds no record ending at ${lastEnd} at ${lastAt}`;
    return { header, sealAt: last.header.payloadLength === 0 ? lastAt : 0 };
  } finally {
    await scanner.window.idle();
  }
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
