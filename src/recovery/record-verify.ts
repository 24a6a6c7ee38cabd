/**
 * The checks a record's payload must pass, after its header verified: the
 * payload CRC, lz4 decompression, and decoding. One function, so the serial
 * scanner and the replay workers (replay-chunk.ts) accept exactly the same
 * records.
 */
import { assert } from '../assert.js';
import { crc32c } from '../format/checksum.js';
import { decompress, Lz4FormatError } from '../format/compression.js';
import { decodePayload, PayloadDecodeError, type BatchItems } from '../format/batch-codec.js';
import { RECORD_ALIGNMENT, RECORD_FLAG_LZ4, nextRecordOffset, type RecordHeader } from '../format/layout.js';
import type { ScannedRecord, StopReason } from './scanner.js';

/** `payloadBytes` are the header's `payloadLength` bytes after the header at `offset`. */
export function verifyPayload(
  offset: number,
  header: RecordHeader,
  payloadBytes: Uint8Array,
): ScannedRecord | Extract<StopReason, { kind: 'damage' }> {
  if (crc32c(payloadBytes) !== header.payloadCrc) return { kind: 'damage', detail: 'payload checksum mismatch' };
  let payload = payloadBytes;
  if ((header.flags & RECORD_FLAG_LZ4) !== 0) {
    try {
      payload = decompress(payloadBytes);
    } catch (error) {
      if (!(error instanceof Lz4FormatError)) throw error;
      return { kind: 'damage', detail: `lz4 payload does not decompress: ${error.message}` };
    }
  }
  let items: BatchItems;
  try {
    // The payload CRC above covers every entry's bytes.
    items = decodePayload(payload, false);
  } catch (error) {
    if (error instanceof PayloadDecodeError) return { kind: 'damage', detail: `payload: ${error.message}` };
    throw error;
  }
  const end = nextRecordOffset(offset, header.payloadLength);
  // Pair of writeRecordHeader's checks, on what was just read and verified.
  assert(payloadBytes.length === header.payloadLength, 'scanner: the payload read is the length the header says');
  assert(end > offset, 'scanner: the next record starts after this one');
  assert(end % RECORD_ALIGNMENT === 0, 'scanner: the next record starts 8-byte aligned');
  return { offset, header, payload, items, end };
}
