/**
 * Applies one batch's items to the memtables. Live writes (after their group
 * is written) and recovery (after a record verifies) both come through here,
 * so a replayed log rebuilds exactly the state the writes built.
 */
import { assert, unreachable } from './assert.js';
import { InvalidArgumentError } from './errors.js';
import { ItemKind, type BatchItems } from './format/batch-codec.js';
import { RegionMemtable, type RecordLocation } from './memtable.js';

export type Memtables = Map<number, RegionMemtable>;

export function keyString(bytes: Uint8Array, offset = 0, length = bytes.length - offset): string {
  // latin1 maps each byte to one UTF-16 unit, so string order is byte order.
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1');
}

export function memtableFor(memtables: Memtables, region: number): RegionMemtable {
  let memtable = memtables.get(region);
  if (memtable === undefined) {
    memtable = new RegionMemtable(region);
    memtables.set(region, memtable);
  }
  return memtable;
}

export interface ApplyResult {
  compacted: number;
  /** Runs after a gap whose region's older entries were dropped ('reset'). */
  gapsReset: number;
  /** Runs after a gap that were skipped as dead ('skip'). */
  gapsSkipped: number;
}

/**
 * What an entry run that starts past `lastIndex + 1` means. Live writes are
 * validated before they are written, so there it cannot happen; replay
 * decides by context (see src/recovery/log.ts). 'error' throws
 * INVALID_ARGUMENT, which replay turns into CORRUPTION of the record: the
 * one policy serves both callers, so it cannot be an assertion until they
 * ask for different ones.
 */
export type GapPolicy = 'error' | 'reset' | 'skip';

export function applyBatch(
  memtables: Memtables,
  batch: BatchItems,
  payload: Uint8Array,
  record: RecordLocation,
  gaps: GapPolicy,
): ApplyResult {
  const result: ApplyResult = { compacted: 0, gapsReset: 0, gapsSkipped: 0 };
  for (const item of batch.items) {
    switch (item.kind) {
      case ItemKind.Entries: {
        // The decoder and the encoder both refuse empty runs and keep runs inside the entry columns.
        assert(item.count > 0, 'apply: an entry run holds at least one entry');
        assert(item.entryStart + item.count <= batch.entryCount, 'apply: an entry run past the entry columns');
        const memtable = memtableFor(memtables, item.region);
        const last = memtable.lastIndex();
        if (last !== undefined && item.index > last + 1) {
          if (gaps === 'error') {
            throw new InvalidArgumentError(`region ${item.region}: entries at ${item.index} leave a gap after ${last}`);
          }
          if (gaps === 'skip') {
            result.gapsSkipped++;
            break;
          }
          memtable.compactTo(last + 1);
          result.gapsReset++;
        }
        memtable.append(item.index, item.count, record, batch.entryOffsets, batch.entryLengths, item.entryStart);
        break;
      }
      case ItemKind.Put:
        memtableFor(memtables, item.region).kv.set(keyString(payload, item.keyOffset, item.keyLength), {
          value: payload.slice(item.valueOffset, item.valueOffset + item.valueLength),
          fileId: record.fileId,
        });
        break;
      case ItemKind.Delete:
        memtables.get(item.region)?.kv.delete(keyString(payload, item.keyOffset, item.keyLength));
        dropIfEmpty(memtables, item.region);
        break;
      case ItemKind.Compact: {
        const memtable = memtables.get(item.region);
        if (memtable !== undefined) result.compacted += memtable.compactTo(item.index);
        dropIfEmpty(memtables, item.region);
        break;
      }
      case ItemKind.Clean:
        memtables.get(item.region)?.clean();
        memtables.delete(item.region);
        break;
      case ItemKind.Checkpoint:
        // Read by recovery to choose which append files to replay; no state.
        break;
      default:
        // decodePayload refuses unknown kinds; LogBatch writes only these.
        unreachable(item.kind, 'item kind');
    }
  }
  return result;
}

function dropIfEmpty(memtables: Memtables, region: number): void {
  const memtable = memtables.get(region);
  if (memtable !== undefined && memtable.entryCount === 0 && memtable.kv.size === 0) memtables.delete(region);
}
