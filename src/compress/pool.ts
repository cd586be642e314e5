/**
 * A small pool of worker threads running compression batches (jobs.ts). Workers start on first
 * use and keep the process alive only while they have work. One pool is shared by every image of
 * the process (sharedPool), sized to the machine's parallelism (at most 4, as QEMU's qcow2 thread
 * pool); a worker that dies fails its batches with a typed error and is replaced on next use.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ioError } from '../errors.js';
import { BufferStash } from './buffers.js';
import type { Codec, OkResult } from './codec.js';
import { fromRecord, type Job, type JobResult } from './jobs.js';

interface Pending {
  resolve: (r: OkResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** The worker's compiled file. Under the test runner this module is the .ts source; dist/ holds the worker. */
function workerPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return fileURLToPath(new URL('./worker.js', import.meta.url));
  return here.replace(/([\\/])src([\\/]compress[\\/])pool\.ts$/, '$1dist$2worker.js');
}

export class WorkerPool implements Codec {
  private readonly slots: (Slot | undefined)[];
  private nextId = 1;
  /** Inputs that came back from the workers. */
  private readonly stash = new BufferStash();
  /** Spent outputs, to travel back to a worker with the next batch. */
  private spares: ArrayBuffer[] = [];

  constructor(readonly parallelism: number) {
    if (!Number.isInteger(parallelism) || parallelism < 1) throw new RangeError(`worker pool size must be at least 1, not ${parallelism}`);
    this.slots = new Array<Slot | undefined>(parallelism).fill(undefined);
  }

  run(job: Job, owned: boolean): Promise<OkResult> {
    const slot = this.pick();
    const id = this.nextId++;
    let input = job.input;
    if (!owned || input.buffer instanceof SharedArrayBuffer) {
      input = this.stash.take(job.input.byteLength);
      input.set(job.input);
    }
    const spares = this.spares.splice(0, 2);
    return new Promise<OkResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, job: { ...job, input }, spares }, [input.buffer as ArrayBuffer, ...spares]);
    });
  }

  buffer(n: number): Uint8Array {
    return this.stash.take(n);
  }

  recycle(output: Uint8Array): void {
    if (this.spares.length < 8 && output.buffer instanceof ArrayBuffer) this.spares.push(output.buffer);
  }

  /** Stops every worker (pending batches fail). */
  async close(): Promise<void> {
    const live = this.slots.filter((s): s is Slot => s !== undefined);
    this.slots.fill(undefined);
    await Promise.all(live.map((s) => s.worker.terminate()));
  }

  /** The least busy worker, starting one where a slot is empty and every live one is busy. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (!s) {
        if (!best || best.pending.size > 0) return this.start(i);
        continue;
      }
      if (!best || s.pending.size < best.pending.size) best = s;
    }
    return best as Slot;
  }

  private start(index: number): Slot {
    const worker = new Worker(workerPath());
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    this.slots[index] = slot;
    worker.on('message', (msg: { id: number; result: JobResult; returned: ArrayBuffer }) => {
      this.stash.give(msg.returned);
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if (msg.result.ok) p.resolve(msg.result);
      else p.reject(fromRecord(msg.result.error));
    });
    const fail = (err: unknown) => {
      if (this.slots[index] === slot) this.slots[index] = undefined;
      const error = ioError(`compression worker stopped: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      for (const p of slot.pending.values()) p.reject(error);
      slot.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return slot;
  }
}

let shared: WorkerPool | undefined;

/** The process-wide pool. */
export function sharedPool(): WorkerPool {
  shared ??= new WorkerPool(Math.max(1, Math.min(4, availableParallelism())));
  return shared;
}
