/**
 * How many bytes of real records a recovery problem drops. Recovery reports
 * the span it cuts or skips (`bytesDropped`), which for a cut or a skip to
 * the end of a file runs to the end of the file: through the zeros of the
 * preallocated tail, which never held a record. Reported as they are, a torn
 * 40-byte write in a preallocated 1 MiB file reads as "1 MiB dropped".
 *
 * Here the span is trimmed to its last non-zero byte, rounded up to the
 * record alignment (records are padded with zeros to 8 bytes). Zeros inside
 * the span before that byte still count: they are part of what was written.
 */
import type { FileSystem } from '../filesystem.js';
import { RECORD_ALIGNMENT, isAllZero, roundUp } from '../format/layout.js';
import { readFully } from '../read-fully.js';
import type { RecoveryProblem } from './recovery.js';

/** Read from the end of the span backwards, this much at a time: a preallocated tail is mostly one or two chunks. */
const CHUNK_BYTES = 1 << 20;

/**
 * `problems` with `bytesDropped` counting real bytes only (see above). A
 * 'reported' problem names bytes that are missing from the file (a file
 * shorter than its successor records), so there is nothing to read and its
 * count is kept. Reads through `fs`; changes nothing.
 */
export async function measureDroppedBytes(fs: FileSystem, problems: readonly RecoveryProblem[]): Promise<RecoveryProblem[]> {
  const measured: RecoveryProblem[] = [];
  for (const problem of problems) {
    if (problem.action === 'reported' || problem.bytesDropped === 0) {
      measured.push(problem);
      continue;
    }
    measured.push({ ...problem, bytesDropped: await writtenBytes(fs, problem.file, problem.offset, problem.bytesDropped) });
  }
  return measured;
}

/** Bytes of `[offset, offset + length)` up to its last non-zero byte, aligned up; 0 when all of it is zero. */
async function writtenBytes(fs: FileSystem, name: string, offset: number, length: number): Promise<number> {
  const handle = await fs.open(name, { readOnly: true });
  try {
    const end = Math.min(offset + length, await handle.size());
    const buffer = new Uint8Array(Math.min(CHUNK_BYTES, Math.max(end - offset, 0)));
    for (let chunkEnd = end; chunkEnd > offset; ) {
      const chunkStart = Math.max(offset, chunkEnd - CHUNK_BYTES);
      const bytes = buffer.subarray(0, chunkEnd - chunkStart);
      const read = await readFully(handle, bytes, 0, bytes.length, chunkStart);
      const filled = bytes.subarray(0, read);
      if (!isAllZero(filled)) {
        let last = filled.length - 1;
        while (filled[last] === 0) last--;
        return Math.min(roundUp(chunkStart + last + 1 - offset, RECORD_ALIGNMENT), length);
      }
      chunkEnd = chunkStart;
    }
    return 0;
  } finally {
    await handle.close();
  }
}
