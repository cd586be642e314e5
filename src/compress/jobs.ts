/**
 * Batches of cluster (de)compression, as pure functions of plain data, so that the same code runs
 * on a worker thread (worker.ts) and inline on the calling thread (codec.ts). A batch is the unit
 * of work handed to a worker: one message per batch, not per cluster, keeps the per-message cost
 * (structured clone, wake-up) small next to the work.
 */
import { Qcow2Error, type Qcow2ErrorCode } from '../errors.js';
import { type CompressionType, compressCluster, decompressCluster } from './index.js';

/** One compressed cluster inside a batch's input: bytes [at, at + length) of it, from `hostOffset`. */
export interface CompressedItem {
  at: number;
  length: number;
  hostOffset: number;
}

export interface DecompressJob {
  op: 'decompress';
  type: CompressionType;
  clusterSize: number;
  /** Host bytes holding every item (usually one contiguous read of packed clusters). */
  input: Uint8Array;
  items: CompressedItem[];
}

export interface CompressJob {
  op: 'compress';
  type: CompressionType;
  clusterSize: number;
  /** Whole clusters, one after another. */
  input: Uint8Array;
}

export type Job = DecompressJob | CompressJob;

/** An error as it crosses a thread boundary. */
export interface ErrorRecord {
  code: Qcow2ErrorCode | 'internal';
  message: string;
  offset?: number | bigint;
  field?: string;
}

export type JobResult =
  /** decompress: items.length clusters, one after another. */
  | { ok: true; op: 'decompress'; output: Uint8Array }
  /** compress: the packed clusters one after another; lengths[i] is -1 where a cluster does not fit. */
  | { ok: true; op: 'compress'; output: Uint8Array; lengths: Int32Array }
  | { ok: false; error: ErrorRecord };

/** Where a batch's output buffer comes from (a stash of reused buffers, on a worker). */
export type Alloc = (n: number) => Uint8Array;

const fresh: Alloc = (n) => new Uint8Array(n);

export function runJob(job: Job, alloc: Alloc = fresh): JobResult {
  try {
    return job.op === 'decompress' ? decompressBatch(job, alloc) : compressBatch(job, alloc);
  } catch (err) {
    return { ok: false, error: toRecord(err) };
  }
}

function decompressBatch(job: DecompressJob, alloc: Alloc): JobResult {
  const C = job.clusterSize;
  const output = alloc(job.items.length * C);
  job.items.forEach((item, i) => {
    const input = job.input.subarray(item.at, item.at + item.length);
    output.set(decompressCluster(job.type, input, C, item.hostOffset), i * C);
  });
  return { ok: true, op: 'decompress', output };
}

function compressBatch(job: CompressJob, alloc: Alloc): JobResult {
  const C = job.clusterSize;
  const count = job.input.byteLength / C;
  const lengths = new Int32Array(count);
  const packed: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const p = compressCluster(job.type, job.input.subarray(i * C, (i + 1) * C));
    lengths[i] = p ? p.byteLength : -1;
    if (p) {
      packed.push(p);
      total += p.byteLength;
    }
  }
  const output = alloc(total);
  let at = 0;
  for (const p of packed) {
    output.set(p, at);
    at += p.byteLength;
  }
  return { ok: true, op: 'compress', output, lengths };
}

export function toRecord(err: unknown): ErrorRecord {
  if (err instanceof Qcow2Error) {
    return {
      code: err.code,
      message: err.message,
      ...(err.offset !== undefined ? { offset: err.offset } : {}),
      ...(err.field !== undefined ? { field: err.field } : {}),
    };
  }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}

/** The Qcow2Error a record stands for ('internal' failures become 'io': the codec itself failed). */
export function fromRecord(r: ErrorRecord): Qcow2Error {
  const code: Qcow2ErrorCode = r.code === 'internal' ? 'io' : r.code;
  const message = r.code === 'internal' ? `compression worker failed: ${r.message}` : r.message;
  return new Qcow2Error(code, message, {
    ...(r.offset !== undefined ? { offset: r.offset } : {}),
    ...(r.field !== undefined ? { field: r.field } : {}),
  });
}

/** The buffers a result can hand over without a copy. */
export function transferables(r: JobResult): ArrayBuffer[] {
  return r.ok ? [r.output.buffer as ArrayBuffer, ...(r.op === 'compress' ? [r.lengths.buffer as ArrayBuffer] : [])] : [];
}
