/**
 * The assertion helper (src/assert.ts): a failed invariant is a BUG, never
 * the caller's INVALID_ARGUMENT; and the format's encoders assert, before a
 * byte reaches the disk, what the decoders accept after reading it back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assert as invariant, bug, unreachable } from '../src/assert.js';
import { BugError, ErrorCode, RaftlogError, isRaftlogError } from '../src/errors.js';
import {
  FILE_FLAG_RECYCLED,
  FILE_HEADER_SIZE,
  FORMAT_VERSION,
  Queue,
  RECORD_FLAG_LZ4,
  RECORD_HEADER_SIZE,
  decodeFileHeader,
  encodeFileHeader,
  readOffsetTag,
  readRecordHeader,
  readU64,
  writeRecordHeader,
  writeU64,
  type FileHeader,
  type RecordHeader,
} from '../src/format/layout.js';

/** What every failed assertion looks like to a caller. */
function isBug(message: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof BugError, `expected a BugError, got ${String(error)}`);
    assert.ok(error instanceof RaftlogError);
    assert.equal(error.code, ErrorCode.BUG);
    assert.notEqual(error.code, ErrorCode.INVALID_ARGUMENT);
    assert.match(error.message, /^raftlog bug: /);
    assert.match(error.message, message);
    return true;
  };
}

describe('assert', () => {
  it('returns when the condition holds, for every truthy value', () => {
    for (const value of [true, 1, 'x', {}, [], -1]) invariant(value, 'never thrown');
  });

  it('throws a BugError (code BUG) with the message when it fails, for every falsy value', () => {
    for (const value of [false, 0, '', null, undefined, Number.NaN]) {
      assert.throws(() => invariant(value, 'the invariant'), isBug(/the invariant/));
    }
  });

  it('narrows the type of what it checked', () => {
    const value: number | undefined = [7][0];
    invariant(value !== undefined, 'present');
    const doubled: number = value * 2; // compiles only if narrowed
    assert.equal(doubled, 14);
  });

  it('bug() throws with a message built only on the failure path', () => {
    const region = 9;
    assert.throws(() => bug(`region ${region}: broken`), isBug(/region 9: broken/));
  });

  it('unreachable() names the value that got past an exhaustive switch', () => {
    type Shape = 'a' | 'b';
    const describe = (shape: Shape): string => {
      switch (shape) {
        case 'a':
          return 'A';
        case 'b':
          return 'B';
        default:
          return unreachable(shape, 'shape');
      }
    };
    assert.equal(describe('b'), 'B');
    assert.throws(() => describe('c' as Shape), isBug(/unhandled shape: c/));
  });

  it('BUG is one of the public error codes', () => {
    assert.equal(ErrorCode.BUG, 'BUG');
    assert.ok(isRaftlogError(new BugError('x'), 'BUG'));
  });
});

const goodFile: FileHeader = {
  version: FORMAT_VERSION,
  queue: Queue.Append,
  flags: FILE_FLAG_RECYCLED,
  salt: 0xdead_beef,
  seq: 2 ** 40 + 3,
  previousFileLength: 4096,
};

const goodRecord: RecordHeader = {
  payloadLength: 100,
  offset: 64,
  syncedThrough: 64,
  payloadCrc: 0xffff_ffff,
  flags: RECORD_FLAG_LZ4,
};

describe('paired assertions in the format encoders', () => {
  it('a file header the writer accepts reads back field for field', () => {
    const decoded = decodeFileHeader(encodeFileHeader(goodFile));
    assert.deepEqual(decoded, goodFile);
  });

  const badFiles: [string, Partial<FileHeader>, RegExp][] = [
    ['another format version', { version: 2 }, /version/],
    ['an unknown queue', { queue: 2 as Queue }, /queue/],
    ['an unknown flag bit', { flags: 2 }, /flag/],
    ['sequence 0', { seq: 0 }, /sequence/],
    ['an unsafe sequence', { seq: 2 ** 53 }, /safe integer/],
    ['a previous length past 4 GiB', { previousFileLength: 2 ** 32 }, /previous file length/],
    ['a salt wider than 32 bits', { salt: 2 ** 32 }, /salt/],
  ];
  for (const [name, change, message] of badFiles) {
    it(`a file header with ${name} is refused as a bug before it is encoded`, () => {
      assert.throws(() => encodeFileHeader({ ...goodFile, ...change }), isBug(message));
    });
  }

  it('a record header the writer accepts reads back field for field, and its offset tag is its offset', () => {
    const bytes = new Uint8Array(RECORD_HEADER_SIZE);
    writeRecordHeader(bytes, goodRecord, 42);
    assert.deepEqual(readRecordHeader(bytes, goodRecord.offset, 42), goodRecord);
    assert.equal(readOffsetTag(bytes), goodRecord.offset);
  });

  // Each of these wrote a header before: flags were masked to 8 bits (bit 1
  // set made a record no reader accepts), the rest was never checked.
  const badRecords: [string, Partial<RecordHeader>, RegExp][] = [
    ['an unaligned offset', { offset: 68 }, /aligned/],
    ['an offset inside the file header', { offset: FILE_HEADER_SIZE - 8 }, /file header/],
    ['an end past the file size limit', { offset: 0xffff_ff00, payloadLength: 0x1000 }, /size limit/],
    ['synced-through past its own offset', { syncedThrough: 72 }, /synced-through/],
    ['an unknown flag bit', { flags: 2 }, /flag/],
    ['a payload CRC wider than 32 bits', { payloadCrc: 2 ** 32 }, /CRC/],
  ];
  for (const [name, change, message] of badRecords) {
    it(`a record header with ${name} is refused as a bug before it is written`, () => {
      const target = new Uint8Array(RECORD_HEADER_SIZE);
      assert.throws(() => writeRecordHeader(target, { ...goodRecord, ...change }, 1), isBug(message));
    });
  }

  it('u64 fields take every safe non-negative integer and refuse the rest as a bug', () => {
    const view = new DataView(new ArrayBuffer(8));
    for (const value of [0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      writeU64(view, 0, value);
      assert.equal(readU64(view, 0), value);
    }
    for (const value of [-1, 2 ** 53, 1.5, Number.NaN]) {
      assert.throws(() => writeU64(view, 0, value), isBug(/writeU64/));
    }
  });
});
