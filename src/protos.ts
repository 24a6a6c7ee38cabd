/**
 * The eraftpb messages raftlog stores, defined with protobufjs from the same
 * schema raft-rs and etcd/raft use, so entries written by raftlog decode in
 * any of them.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto3";
package eraftpb;
enum EntryType { EntryNormal = 0; EntryConfChange = 1; EntryConfChangeV2 = 2; }
message Entry {
  EntryType entry_type = 1;
  uint64 term = 2;
  uint64 index = 3;
  bytes data = 4;
  bytes context = 6;
  bool sync_log = 5;
}
message HardState { uint64 term = 1; uint64 vote = 2; uint64 commit = 3; }
message ConfState {
  repeated uint64 voters = 1;
  repeated uint64 learners = 2;
  repeated uint64 voters_outgoing = 3;
  repeated uint64 learners_next = 4;
  bool auto_leave = 5;
}
message SnapshotMetadata { ConfState conf_state = 1; uint64 index = 2; uint64 term = 3; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: false }).root;

/**
 * protobufjs reflection types for eraftpb, kept for callers that pass
 * protobufjs messages to `putMessage`. Their integers decode as Long; the
 * typed codecs in src/raft/messages.ts (`HardState`, …) give plain numbers on
 * the same wire format and are the documented path.
 */
export const eraftpb = {
  Entry: root.lookupType('eraftpb.Entry'),
  HardState: root.lookupType('eraftpb.HardState'),
  ConfState: root.lookupType('eraftpb.ConfState'),
  SnapshotMetadata: root.lookupType('eraftpb.SnapshotMetadata'),
  EntryType: { EntryNormal: 0, EntryConfChange: 1, EntryConfChangeV2: 2 } as const,
};

/** The fields of an `eraftpb.Entry` that raftlog reads and writes. */
export interface Entry {
  index: number;
  term: number;
  data: Uint8Array;
  /** eraftpb.EntryType; 0 (EntryNormal) when omitted. */
  entryType?: number;
  context?: Uint8Array;
}

/** A decoded entry as returned by reads: every field present. */
export interface StoredEntry extends Entry {
  entryType: number;
  context: Uint8Array;
}

/** Anything protobufjs can encode: a message instance with its `$type`. */
export interface ProtobufMessage {
  readonly $type: protobuf.Type;
}

/** A protobufjs type used to decode what `putMessage` stored. */
export type MessageType<T> = { decode(bytes: Uint8Array): T };
