/**
 * Group commit. Writers queue up; the first one in line becomes the leader,
 * takes everyone queued behind it as one group, and runs `commit` for the
 * group: one vectored write, one barrier if any member asked for sync. While
 * that I/O is in flight the next group forms, and its leader starts as soon
 * as the previous group is done (groups are strictly ordered: the log is one
 * stream, and a sync covers every earlier write).
 */
import { assert } from './assert.js';
import type { SealedRecord } from './log-batch.js';

export interface QueuedWrite {
  /**
   * Absent for a pure barrier (`engine.sync()`, sync set), an ordering point
   * (GC waiting for the writes queued before it, sync not set) and a task.
   */
  record: SealedRecord | undefined;
  /** Work that must run alone, between groups (garbage collection). */
  task?: () => Promise<number>;
  sync: boolean;
  /** Set by `commit` for the member's caller (entries compacted by the batch). */
  result: number;
  resolve: (result: number) => void;
  reject: (error: unknown) => void;
}

export type CommitGroup = (group: QueuedWrite[]) => Promise<void>;

export class WriteQueue {
  readonly #commit: CommitGroup;
  #pending: QueuedWrite[] = [];
  #leading = false;
  #idleWaiters: (() => void)[] = [];
  groups = 0;
  members = 0;

  readonly #onGroup: ((size: number) => void) | undefined;

  constructor(commit: CommitGroup, onGroup?: (size: number) => void) {
    this.#commit = commit;
    this.#onGroup = onGroup;
  }

  /** Writers queued behind the group in flight. */
  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  get busy(): boolean {
    return this.#leading || this.#pending.length > 0;
  }

  submit(record: SealedRecord | undefined, sync: boolean): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ record, sync, result: 0, resolve, reject });
      this.#wake();
    });
  }

  /**
   * Runs `task` alone: after every write queued before it has committed and
   * before any write queued after it starts.
   */
  runExclusive(task: () => Promise<number>): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ record: undefined, sync: false, task, result: 0, resolve, reject });
      this.#wake();
    });
  }

  /** Resolves once no group is in flight or queued. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Starts a leader unless one is running; it picks up what was just queued. */
  #wake(): void {
    if (this.#leading) return;
    this.#leading = true;
    // Let writers issued in the same turn of the event loop join the group.
    queueMicrotask(() => void this.#lead());
  }

  async #lead(): Promise<void> {
    while (this.#pending.length > 0) {
      const taskAt = this.#pending.findIndex((member) => member.task !== undefined);
      if (taskAt === 0) {
        const member = this.#pending.shift()!;
        try {
          member.resolve(await member.task!());
        } catch (error) {
          member.reject(error);
        }
        continue;
      }
      const group = taskAt < 0 ? this.#pending : this.#pending.slice(0, taskAt);
      this.#pending = taskAt < 0 ? [] : this.#pending.slice(taskAt);
      this.groups++;
      this.members += group.length;
      this.#onGroup?.(group.length);
      try {
        // A group is everything queued up to the next task, and never a task:
        // tasks run alone, between groups. A broken grouping fails the group
        // (with BUG) instead of leaving its writers waiting.
        assert(group.length > 0, 'write queue: a group has at least one member');
        for (const member of group) assert(member.task === undefined, 'write queue: a task inside a group');
        const next = this.#pending[0];
        assert(next === undefined || next.task !== undefined, 'write queue: a group stopped before a write');
        await this.#commit(group);
        for (const member of group) member.resolve(member.result);
      } catch (error) {
        for (const member of group) member.reject(error);
      }
    }
    this.#leading = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
