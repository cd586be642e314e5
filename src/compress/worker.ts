/**
 * The compression worker: runs batches (jobs.ts) posted by the pool (pool.ts) and posts results.
 * Buffers travel both ways without copies: the batch's input goes back with the result for the
 * pool to reuse, and the pool sends spent output buffers along with later batches.
 */
import { parentPort } from 'node:worker_threads';
import { BufferStash } from './buffers.js';
import { type Job, runJob, transferables } from './jobs.js';

const port = parentPort;
if (!port) throw new Error('compress/worker.js must run as a worker thread');
const stash = new BufferStash();
port.on('message', (msg: { id: number; job: Job; spares: ArrayBuffer[] }) => {
  for (const b of msg.spares) stash.give(b);
  const result = runJob(msg.job, (n) => stash.take(n));
  const returned = msg.job.input.buffer as ArrayBuffer;
  port.postMessage({ id: msg.id, result, returned }, [...transferables(result), returned]);
});
