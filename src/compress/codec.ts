/**
 * Where cluster (de)compression runs. The optimized engine hands batches to a Codec: the shared
 * worker pool (pool.ts) by default, so that inflate and deflate use every core while the calling
 * thread does I/O; or the inline codec (threads: 0), which runs them on the calling thread.
 */
import { type CompressionType } from './index.js';
import { type CompressedItem, fromRecord, type Job, type JobResult, runJob } from './jobs.js';

export type OkResult = Extract<JobResult, { ok: true }>;

export interface Codec {
  /** How many batches can run at once; callers split work into about this many. */
  readonly parallelism: number;
  /**
   * Runs one batch; a failure is thrown as the Qcow2Error it stands for. `owned`: the job's input
   * (its whole underlying buffer) may be handed over; otherwise it is copied first.
   */
  run(job: Job, owned: boolean): Promise<OkResult>;
  /** A buffer for a batch's input (reused when it can be); it is handed over with the batch. */
  buffer(n: number): Uint8Array;
  /** Gives a result's output back for reuse, once its bytes have been copied out. */
  recycle(output: Uint8Array): void;
}

export const inlineCodec: Codec = {
  parallelism: 1,
  buffer: (n) => new Uint8Array(n),
  recycle: () => {},
  async run(job: Job): Promise<OkResult> {
    const r = runJob(job);
    if (!r.ok) throw fromRecord(r.error);
    return r;
  },
};

/**
 * Decompresses `items` (clusters packed in `input`, which the codec may take over) into one buffer
 * of items.length clusters.
 */
export async function decompressItems(
  codec: Codec,
  type: CompressionType,
  clusterSize: number,
  input: Uint8Array,
  items: CompressedItem[],
): Promise<Uint8Array> {
  const r = await codec.run({ op: 'decompress', type, clusterSize, input, items }, true);
  return r.output;
}

/**
 * Compresses whole clusters (data.byteLength a multiple of clusterSize), split over the codec's
 * parallelism; undefined where QEMU would store the cluster uncompressed. `data` is not taken over.
 */
export async function compressClusters(
  codec: Codec,
  type: CompressionType,
  clusterSize: number,
  data: Uint8Array,
): Promise<(Uint8Array | undefined)[]> {
  const count = data.byteLength / clusterSize;
  const per = Math.max(1, Math.ceil(count / codec.parallelism));
  const batches: Promise<OkResult>[] = [];
  for (let first = 0; first < count; first += per) {
    const input = data.subarray(first * clusterSize, Math.min(count, first + per) * clusterSize);
    batches.push(codec.run({ op: 'compress', type, clusterSize, input }, false));
  }
  const out: (Uint8Array | undefined)[] = [];
  for (const r of await Promise.all(batches)) {
    if (r.op !== 'compress') throw new Error('codec answered a compress batch with another kind');
    let at = 0;
    for (const n of r.lengths) {
      if (n < 0) out.push(undefined);
      else {
        out.push(r.output.subarray(at, at + n));
        at += n;
      }
    }
  }
  return out;
}
