/**
 * Group commit (src/write-queue.ts) on its own, with a commit function that
 * records what it was handed: which writes share a group, in what order
 * groups run, how sync and errors reach each writer, and how exclusive tasks
 * sit between groups.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SealedRecord } from '../src/log-batch.js';
import { LogBatch } from '../src/log-batch.js';
import { WriteQueue, type QueuedWrite } from '../src/write-queue.js';

/** A real sealed record whose payload names it, so a group can be read back as labels. */
function record(label: string): SealedRecord {
  const batch = new LogBatch();
  batch.put(1, 'label', new TextEncoder().encode(label));
  return batch.seal(Number.POSITIVE_INFINITY);
}

function labelOf(member: QueuedWrite): string {
  // A member without a record is a barrier when it asks for sync, else an ordering point.
  if (member.record === undefined) return member.sync ? 'barrier' : '?';
  const item = member.record.items.items[0]!;
  const value = member.record.payload.subarray(item.valueOffset, item.valueOffset + item.valueLength);
  return new TextDecoder().decode(value);
}

/** A deferred: a commit the test releases when it chooses. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Records every group (as labels) and every task run, in order, in one log. */
class Recorder {
  readonly log: string[][] = [];
  readonly syncs: boolean[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** When set, the next commit waits for this before finishing. */
  gate: Promise<void> | undefined;
  fail: ((group: string[]) => unknown) | undefined;

  readonly commit = async (group: QueuedWrite[]): Promise<void> => {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const labels = group.map(labelOf);
    this.log.push(labels);
    this.syncs.push(group.some((member) => member.sync));
    group.forEach((member, i) => (member.result = i + 1));
    const gate = this.gate;
    this.gate = undefined;
    try {
      if (gate !== undefined) await gate;
      const error = this.fail?.(labels);
      if (error !== undefined) throw error;
    } finally {
      this.inFlight--;
    }
  };

  task(label: string, result = 0): () => Promise<number> {
    return async () => {
      assert.equal(this.inFlight, 0, `task ${label} runs while a group is in flight`);
      this.log.push([`task:${label}`]);
      return result;
    };
  }
}

/** One line of a grouping script: a write (label, sync), a barrier, or an exclusive task. */
type Step = { write: string; sync?: boolean } | { barrier: true } | { task: string };

function run(queue: WriteQueue, recorder: Recorder, steps: Step[]): Promise<unknown>[] {
  return steps.map((step) => {
    if ('write' in step) return queue.submit(record(step.write), step.sync === true);
    if ('barrier' in step) return queue.submit(undefined, true);
    return queue.runExclusive(recorder.task(step.task));
  });
}

const W = (write: string, sync = false): Step => ({ write, sync });
const T = (task: string): Step => ({ task });
const BARRIER: Step = { barrier: true };

// Everything in one script is submitted in the same turn of the event loop.
const groupings: { name: string; steps: Step[]; groups: string[][]; syncs: boolean[] }[] = [
  { name: 'one write is a group of one', steps: [W('a')], groups: [['a']], syncs: [false] },
  {
    name: 'writes in one turn share a group, in submission order',
    steps: [W('a'), W('b'), W('c')],
    groups: [['a', 'b', 'c']],
    syncs: [false],
  },
  {
    name: 'one member asking for sync makes the group sync',
    steps: [W('a'), W('b', true), W('c')],
    groups: [['a', 'b', 'c']],
    syncs: [true],
  },
  {
    name: 'a barrier joins the group and makes it sync',
    steps: [W('a'), BARRIER],
    groups: [['a', 'barrier']],
    syncs: [true],
  },
  { name: 'a barrier alone is a group', steps: [BARRIER], groups: [['barrier']], syncs: [true] },
  {
    name: 'a task splits the writes around it',
    steps: [W('a'), T('gc'), W('b')],
    groups: [['a'], ['task:gc'], ['b']],
    syncs: [false, false],
  },
  {
    name: 'a task first runs before any write',
    steps: [T('gc'), W('a'), W('b')],
    groups: [['task:gc'], ['a', 'b']],
    syncs: [false],
  },
  {
    name: 'consecutive tasks run one by one',
    steps: [T('x'), T('y'), W('a')],
    groups: [['task:x'], ['task:y'], ['a']],
    syncs: [false],
  },
  {
    name: 'sync does not cross a task',
    steps: [W('a'), T('gc'), W('b', true)],
    groups: [['a'], ['task:gc'], ['b']],
    syncs: [false, true],
  },
];

describe('write queue', () => {
  for (const c of groupings) {
    it(c.name, async () => {
      const recorder = new Recorder();
      const queue = new WriteQueue(recorder.commit);
      await Promise.all(run(queue, recorder, c.steps));
      assert.deepEqual(recorder.log, c.groups);
      assert.deepEqual(recorder.syncs, c.syncs);
      assert.equal(recorder.maxInFlight, 1);
    });
  }

  it('writes queued while a group is in flight form the next group, which starts only after it', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    const gate = deferred();
    recorder.gate = gate.promise;
    const first = queue.submit(record('a'), false);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(recorder.log, [['a']]);
    assert.equal(queue.hasPending, false);
    const later = [queue.submit(record('b'), false), queue.submit(record('c'), true)];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(queue.hasPending, true);
    assert.deepEqual(recorder.log, [['a']], 'the next group waits for the one in flight');
    gate.resolve();
    await Promise.all([first, ...later]);
    assert.deepEqual(recorder.log, [['a'], ['b', 'c']]);
    assert.deepEqual(recorder.syncs, [false, true]);
    assert.equal(recorder.maxInFlight, 1);
  });

  it('each writer gets the result commit set for it', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    const results = await Promise.all(run(queue, recorder, [W('a'), W('b'), W('c')]));
    assert.deepEqual(results, [1, 2, 3]);
  });

  it('a failed commit fails every member of its group, and only that group', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    const failure = new Error('disk on fire');
    recorder.fail = (group) => (group.includes('b') ? failure : undefined);
    const [a, b, task, c] = run(queue, recorder, [W('a'), W('b', true), T('gc'), W('c')]).map((p) =>
      p.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
    );
    assert.deepEqual(await a, { error: failure });
    assert.deepEqual(await b, { error: failure });
    assert.deepEqual(await task, { value: 0 });
    assert.deepEqual(await c, { value: 1 });
  });

  it('a task gets its own result or error, and the queue goes on', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    const failure = new Error('task failed');
    const ok = queue.runExclusive(async () => 42);
    const bad = queue.runExclusive(async () => {
      throw failure;
    });
    const after = queue.submit(record('a'), false);
    assert.equal(await ok, 42);
    await assert.rejects(bad, (error: unknown) => error === failure);
    assert.equal(await after, 1);
  });

  it('counts groups and members, and reports each group size', async () => {
    const sizes: number[] = [];
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit, (size) => sizes.push(size));
    await Promise.all(run(queue, recorder, [W('a'), W('b'), T('gc'), W('c')]));
    await Promise.all(run(queue, recorder, [BARRIER]));
    assert.deepEqual(sizes, [2, 1, 1]);
    assert.equal(queue.groups, 3);
    assert.equal(queue.members, 4);
  });

  it('idle() resolves at once when nothing is queued, and after the last group otherwise', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    assert.equal(queue.busy, false);
    await queue.idle();
    const gate = deferred();
    recorder.gate = gate.promise;
    const write = queue.submit(record('a'), false);
    assert.equal(queue.busy, true);
    let idle = false;
    const waiting = queue.idle().then(() => (idle = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(idle, false);
    gate.resolve();
    await write;
    await waiting;
    assert.equal(queue.busy, false);
  });

  it('a member with no record and no sync is an ordering point: it settles after the writes before it', async () => {
    const recorder = new Recorder();
    const queue = new WriteQueue(recorder.commit);
    const gate = deferred();
    recorder.gate = gate.promise;
    const write = queue.submit(record('a'), false);
    await new Promise((resolve) => setImmediate(resolve));
    let passed = false;
    const point = queue.submit(undefined, false).then(() => (passed = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(passed, false);
    gate.resolve();
    await Promise.all([write, point]);
    assert.deepEqual(recorder.log, [['a'], ['?']]);
    assert.deepEqual(recorder.syncs, [false, false]);
  });
});
