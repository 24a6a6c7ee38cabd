/**
 * Entry of a replay worker thread (started by replay-pool.ts): verifies and
 * decodes the chunks it is sent and posts back what it found. It touches no
 * file: the main thread reads every byte through the FileSystem.
 */
import { parentPort } from 'node:worker_threads';
import { assert } from '../assert.js';
import { scanChunk, type ChunkJob, type ChunkResult, type PoolShare } from './replay-chunk.js';

const port = parentPort;
assert(port !== null, 'replay-worker: runs only as a worker thread');
const slots = new Map<number, SharedArrayBuffer>();
let claims: Int32Array = new Int32Array(0);
const none = new Float64Array(0);
port.on('message', (message: ChunkJob | PoolShare) => {
  if ('share' in message) {
    slots.set(message.share, message.bytes);
    claims = message.claims;
    return;
  }
  const job = message;
  if (Atomics.compareExchange(claims, job.slot, job.id, -job.id) !== job.id) {
    // Another worker or the main thread has it, and answers for it.
    return;
  }
  let result: ChunkResult;
  try {
    const slot = slots.get(job.slot);
    assert(slot !== undefined, 'replay-worker: a job names a slot it was handed');
    result = scanChunk(job, slot);
  } catch (error) {
    result = { id: job.id, records: none, items: none, entries: new Uint32Array(0), inflated: new ArrayBuffer(0), failed: String(error) };
  }
  // The columns are fresh arrays of their own (never views of a shared buffer), so moving them costs nothing.
  const columns = [result.records.buffer, result.items.buffer, result.entries.buffer] as ArrayBuffer[];
  port.postMessage(result, [result.inflated, ...columns]);
});
