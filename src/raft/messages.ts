/**
 * Typed Raft state: `Entry`, `HardState`, `ConfState` and `SnapshotMetadata`
 * as plain TypeScript types with `number` fields, each with a codec of the
 * same name (`HardState.encode`, `HardState.decode`, `HardState.create`) that
 * reads and writes the eraftpb wire format.
 *
 * Why hand-written codecs rather than protobufjs static modules or
 * @bufbuild/protobuf: the four messages are small and frozen (raft-rs and
 * etcd/raft have not changed them in years), the Entry codec on the hot path
 * was already hand-written (src/format/entry-codec.ts), and hand-written
 * decoders give plain numbers with a range check instead of Long or bigint,
 * with no generated files, no protoc in the build and no new dependency.
 * test/raft-messages.test.ts checks bytes and values against protobufjs both
 * ways, so the wire format stays eraftpb's.
 *
 * Range: uint64 fields hold safe integers (at most 2^53 - 1). `encode` refuses
 * anything else with INVALID_ARGUMENT naming the field. `decode` reports bytes
 * that are not a valid message of the type, including integers beyond
 * 2^53 - 1, as CORRUPTION: the typed encoders never write them, so such bytes
 * are not what raftlog stored under that key.
 *
 * Bytes: defaults are omitted and repeated fields are written unpacked, as
 * the protobufjs types in src/protos.ts write them (and etcd/raft, whose
 * raftpb is proto2); decoders read packed (raft-rs) and unpacked alike and
 * skip unknown fields, as protobuf requires.
 */
import { CorruptionError, InvalidArgumentError } from '../errors.js';
import {
  EntryDecodeError,
  decodeEntry,
  encodeEntry,
  encodedEntrySize,
  normalizeEntry,
  varintSize,
  writeVarint,
} from '../format/entry-codec.js';
import type { Entry as EntryFields, ProtobufMessage, StoredEntry } from '../protos.js';

/** Encodes, decodes and builds one message type. */
export interface MessageCodec<T, Init = T> {
  /** The protobuf type name, e.g. `eraftpb.HardState`. */
  readonly typeName: string;
  /** A message with every field present: defaults, overridden by `init`. */
  create(init?: Init): T;
  /** The message's wire bytes; INVALID_ARGUMENT naming the field on a bad value. */
  encode(message: Init): Uint8Array;
  /** The message in `bytes`; CORRUPTION when they are not one. */
  decode(bytes: Uint8Array): T;
}

/**
 * eraftpb.EntryType. `Entry.entryType` stays a `number`: proto3 enums are
 * open, so an entry written by a newer Raft with another type round-trips.
 */
export const EntryType = { EntryNormal: 0, EntryConfChange: 1, EntryConfChangeV2: 2 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** A Raft log entry as `addEntries` takes it (eraftpb.Entry; `sync_log` is not stored). */
export type Entry = EntryFields;

/** eraftpb.HardState: the Raft state that must be durable before a node answers. */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

/** eraftpb.ConfState: the voters and learners of a group (joint consensus included). */
export interface ConfState {
  voters: number[];
  learners: number[];
  votersOutgoing: number[];
  learnersNext: number[];
  autoLeave: boolean;
}

/** eraftpb.SnapshotMetadata: the index and term a snapshot covers, and its configuration. */
export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

/** What `ConfState.encode`/`create` take: any field may be left out (proto3 default). */
export interface ConfStateInit {
  voters?: readonly number[];
  learners?: readonly number[];
  votersOutgoing?: readonly number[];
  learnersNext?: readonly number[];
  autoLeave?: boolean;
}

export interface SnapshotMetadataInit {
  confState?: ConfStateInit;
  index?: number;
  term?: number;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}

function checkU64(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${field} must be a non-negative safe integer (at most 2^53 - 1), got ${describe(value)}`);
  }
  return value;
}

function checkU64List(value: unknown, field: string): readonly number[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${field} must be an array of non-negative safe integers`);
  for (let i = 0; i < value.length; i++) checkU64(value[i], `${field}[${i}]`);
  return value as readonly number[];
}

function checkObject(value: unknown, typeName: string, fields?: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(`${typeName} must be an object, got ${describe(value)}`);
  // A misspelled field would otherwise be stored as the default (`trem: 1` as term 0).
  if (fields !== undefined) {
    for (const key of Object.keys(value)) {
      if (!fields.includes(key))
        throw new InvalidArgumentError(`${typeName} has no field ${JSON.stringify(key)} (fields: ${fields.join(', ')})`);
    }
  }
  return value as Record<string, unknown>;
}

/** Field-by-field writer: sizes first, then one allocation. */
class Writer {
  readonly bytes: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  /** A proto3 scalar: left out when it holds the default, 0. */
  optionalVarint(field: number, value: number): void {
    if (value !== 0) this.varintField(field, value);
  }
  varintField(field: number, value: number): void {
    this.pos = writeVarint(this.bytes, this.pos, field * 8 + WIRE_VARINT);
    this.pos = writeVarint(this.bytes, this.pos, value);
  }
  /** The bytes, once exactly the size computed up front is written. */
  finish(): Uint8Array {
    if (this.pos !== this.bytes.length) throw new Error(`message codec invariant: sized ${this.bytes.length} bytes, wrote ${this.pos}`);
    return this.bytes;
  }
  /** The tag and length of a length-delimited field; its `length` bytes follow. */
  lengthDelimited(field: number, length: number): void {
    this.pos = writeVarint(this.bytes, this.pos, field * 8 + WIRE_BYTES);
    this.pos = writeVarint(this.bytes, this.pos, length);
  }
}

const varintFieldSize = (field: number, value: number): number => varintSize(field * 8) + varintSize(value);
const optionalVarintSize = (field: number, value: number): number => (value === 0 ? 0 : varintFieldSize(field, value));

/** Reads one message's fields; every malformation is a CorruptionError naming the type. */
class Reader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly typeName: string,
    readonly end = bytes.length,
  ) {}

  fail(why: string): never {
    throw new CorruptionError(`${this.typeName}: ${why}`);
  }

  more(): boolean {
    return this.pos < this.end;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const byte = this.bytes[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  u64(field: string): number {
    const value = this.varint();
    if (value > Number.MAX_SAFE_INTEGER) this.fail(`${field} is beyond 2^53 - 1`);
    return value;
  }

  /** The extent of a length-delimited field. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) this.fail('length-delimited field overruns the message');
    this.pos = start + length;
    return [start, this.pos];
  }

  /** A repeated uint64 field, packed or not, appended to `into`. */
  u64List(wireType: number, into: number[], field: string): void {
    if (wireType === WIRE_VARINT) {
      into.push(this.u64(field));
      return;
    }
    if (wireType !== WIRE_BYTES) this.fail(`${field} has wire type ${wireType}`);
    const [start, end] = this.span();
    const packed = new Reader(this.bytes, this.typeName, end);
    packed.pos = start;
    while (packed.more()) into.push(packed.u64(field));
  }

  skip(wireType: number): void {
    if (wireType === WIRE_VARINT) this.varint();
    else if (wireType === WIRE_BYTES) this.span();
    else if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
      this.pos += wireType === WIRE_FIXED64 ? 8 : 4;
      if (this.pos > this.end) this.fail('truncated fixed-width field');
    } else this.fail(`unsupported wire type ${wireType}`);
  }

  /** Next field's number and wire type. */
  tag(): [number, number] {
    const tag = this.varint();
    return [Math.floor(tag / 8), tag & 7];
  }

  /** A singular uint64 field's value. */
  u64Field(wireType: number, field: string): number {
    this.expect(WIRE_VARINT, wireType, field);
    return this.u64(field);
  }

  boolField(wireType: number, field: string): boolean {
    this.expect(WIRE_VARINT, wireType, field);
    return this.varint() !== 0;
  }

  expect(wireType: number, actual: number, field: string): void {
    if (wireType !== actual) this.fail(`${field} has wire type ${actual}, expected ${wireType}`);
  }
}

function checkBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError('bytes to decode must be a Uint8Array');
  return value;
}

// ---------------------------------------------------------------- HardState

function hardStateFields(message: Partial<HardState>): HardState {
  const m = checkObject(message, 'HardState', ['term', 'vote', 'commit']);
  return {
    term: checkU64(m.term === undefined ? 0 : m.term, 'HardState.term'),
    vote: checkU64(m.vote === undefined ? 0 : m.vote, 'HardState.vote'),
    commit: checkU64(m.commit === undefined ? 0 : m.commit, 'HardState.commit'),
  };
}

export const HardState: MessageCodec<HardState, Partial<HardState>> = {
  typeName: 'eraftpb.HardState',
  create: (init = {}) => hardStateFields(init),
  encode(message) {
    const { term, vote, commit } = hardStateFields(message);
    const w = new Writer(optionalVarintSize(1, term) + optionalVarintSize(2, vote) + optionalVarintSize(3, commit));
    w.optionalVarint(1, term);
    w.optionalVarint(2, vote);
    w.optionalVarint(3, commit);
    return w.finish();
  },
  decode(bytes) {
    const r = new Reader(checkBytes(bytes), 'eraftpb.HardState');
    const out: HardState = { term: 0, vote: 0, commit: 0 };
    while (r.more()) {
      const [field, wireType] = r.tag();
      if (field === 1) out.term = r.u64Field(wireType, 'term');
      else if (field === 2) out.vote = r.u64Field(wireType, 'vote');
      else if (field === 3) out.commit = r.u64Field(wireType, 'commit');
      else r.skip(wireType);
    }
    return out;
  },
};

// ---------------------------------------------------------------- ConfState

const CONF_LISTS = [
  [1, 'voters'],
  [2, 'learners'],
  [3, 'votersOutgoing'],
  [4, 'learnersNext'],
] as const;

function confStateFields(message: ConfStateInit, typeName = 'ConfState'): ConfState {
  const m = checkObject(message, typeName, ['voters', 'learners', 'votersOutgoing', 'learnersNext', 'autoLeave']);
  const autoLeave = m.autoLeave === undefined ? false : m.autoLeave;
  if (typeof autoLeave !== 'boolean') throw new InvalidArgumentError(`${typeName}.autoLeave must be a boolean, got ${describe(autoLeave)}`);
  return {
    voters: [...checkU64List(m.voters, `${typeName}.voters`)],
    learners: [...checkU64List(m.learners, `${typeName}.learners`)],
    votersOutgoing: [...checkU64List(m.votersOutgoing, `${typeName}.votersOutgoing`)],
    learnersNext: [...checkU64List(m.learnersNext, `${typeName}.learnersNext`)],
    autoLeave,
  };
}

function confStateSize(c: ConfState): number {
  let size = c.autoLeave ? 2 : 0;
  for (const [field, name] of CONF_LISTS) for (const value of c[name]) size += varintFieldSize(field, value);
  return size;
}

function writeConfState(w: Writer, c: ConfState): void {
  for (const [field, name] of CONF_LISTS) for (const value of c[name]) w.varintField(field, value);
  if (c.autoLeave) w.varintField(5, 1);
}

function readConfState(r: Reader, out: ConfState): ConfState {
  while (r.more()) {
    const [field, wireType] = r.tag();
    if (field >= 1 && field <= 4) r.u64List(wireType, out[CONF_LISTS[field - 1]![1]], CONF_LISTS[field - 1]![1]);
    else if (field === 5) out.autoLeave = r.boolField(wireType, 'autoLeave');
    else r.skip(wireType);
  }
  return out;
}

const emptyConfState = (): ConfState => ({ voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });

export const ConfState: MessageCodec<ConfState, ConfStateInit> = {
  typeName: 'eraftpb.ConfState',
  create: (init = {}) => confStateFields(init),
  encode(message) {
    const c = confStateFields(message);
    const w = new Writer(confStateSize(c));
    writeConfState(w, c);
    return w.finish();
  },
  decode: (bytes) => readConfState(new Reader(checkBytes(bytes), 'eraftpb.ConfState'), emptyConfState()),
};

// --------------------------------------------------------- SnapshotMetadata

function snapshotFields(message: SnapshotMetadataInit): SnapshotMetadata {
  const m = checkObject(message, 'SnapshotMetadata', ['confState', 'index', 'term']);
  return {
    confState: confStateFields((m.confState === undefined ? {} : m.confState) as ConfStateInit, 'SnapshotMetadata.confState'),
    index: checkU64(m.index === undefined ? 0 : m.index, 'SnapshotMetadata.index'),
    term: checkU64(m.term === undefined ? 0 : m.term, 'SnapshotMetadata.term'),
  };
}

export const SnapshotMetadata: MessageCodec<SnapshotMetadata, SnapshotMetadataInit> = {
  typeName: 'eraftpb.SnapshotMetadata',
  create: (init = {}) => snapshotFields(init),
  encode(message) {
    const { confState, index, term } = snapshotFields(message);
    // An empty configuration is left out like any default (a message field
    // that is absent reads back as the empty message).
    const confSize = confStateSize(confState);
    const confFieldSize = confSize === 0 ? 0 : varintSize(1 * 8 + WIRE_BYTES) + varintSize(confSize) + confSize;
    const w = new Writer(confFieldSize + optionalVarintSize(2, index) + optionalVarintSize(3, term));
    if (confSize !== 0) {
      w.lengthDelimited(1, confSize);
      writeConfState(w, confState);
    }
    w.optionalVarint(2, index);
    w.optionalVarint(3, term);
    return w.finish();
  },
  decode(bytes) {
    const r = new Reader(checkBytes(bytes), 'eraftpb.SnapshotMetadata');
    const out: SnapshotMetadata = { confState: emptyConfState(), index: 0, term: 0 };
    while (r.more()) {
      const [field, wireType] = r.tag();
      if (field === 1) {
        r.expect(WIRE_BYTES, wireType, 'confState');
        const [start, end] = r.span();
        // A message field seen twice merges, as protobuf requires.
        const nested = new Reader(r.bytes, 'eraftpb.SnapshotMetadata.confState', end);
        nested.pos = start;
        readConfState(nested, out.confState);
      } else if (field === 2) out.index = r.u64Field(wireType, 'index');
      else if (field === 3) out.term = r.u64Field(wireType, 'term');
      else r.skip(wireType);
    }
    return out;
  },
};

// -------------------------------------------------------------------- Entry

/** The Entry codec: the one the log uses (src/format/entry-codec.ts), as a typed value. */
export const Entry: MessageCodec<StoredEntry, Entry> = {
  typeName: 'eraftpb.Entry',
  create(init) {
    const fields = normalizeEntry(checkObject(init, 'Entry') as unknown as Entry);
    return { entryType: fields.entryType, term: fields.term, index: fields.index, data: fields.data, context: fields.context };
  },
  encode(message) {
    const fields = normalizeEntry(message);
    const out = new Uint8Array(encodedEntrySize(fields));
    encodeEntry(out, 0, fields);
    return out;
  },
  decode(bytes) {
    try {
      return decodeEntry(checkBytes(bytes));
    } catch (error) {
      if (error instanceof EntryDecodeError) throw new CorruptionError(`eraftpb.Entry: ${error.message}`, { cause: error });
      throw error;
    }
  },
};

/** The bytes `LogBatch.putMessage` stores: a typed codec's encoding, or a protobufjs message's. */
export function encodeMessage<T, Init>(codecOrMessage: MessageCodec<T, Init> | ProtobufMessage, message: Init | undefined): Uint8Array {
  if (typeof codecOrMessage !== 'object' || codecOrMessage === null) {
    throw new InvalidArgumentError('putMessage needs a codec such as HardState, or a protobufjs message instance (with $type)');
  }
  if ('$type' in codecOrMessage) {
    if (typeof codecOrMessage.$type?.encode !== 'function') throw new InvalidArgumentError('putMessage: $type is not a protobufjs type');
    return codecOrMessage.$type.encode(codecOrMessage).finish();
  }
  if (typeof codecOrMessage.encode !== 'function') {
    throw new InvalidArgumentError('putMessage needs a codec such as HardState, or a protobufjs message instance (with $type)');
  }
  const bytes: unknown = codecOrMessage.encode(message as Init);
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('putMessage: the codec did not encode to a Uint8Array');
  return bytes;
}
