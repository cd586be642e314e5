/**
 * Copying a device's guest contents into another device, as `qemu-img convert` does: the one copy
 * loop behind `qcow2 convert` (src/cli/convert.ts) and the library's `convertImage`/`copyContents`
 * (src/index.ts).
 *
 * Only what the source chain holds is read: extents its block status calls zero are skipped
 * without reading, and units that read as all zeros are not written, so the output keeps them
 * unallocated. A bounded number of chunks is in the air: reads go ahead while earlier chunks are
 * being written (and, compressing, compressed on the worker threads). Writes are issued in chunk
 * order, so the output's layout does not depend on timing (qemu-img convert without -W).
 */
import { createImage } from '../create/create.js';
import type { CreateOptions } from '../create/options.js';
import { openImage, openQcow2, type ImageFormat } from '../device/open.js';
import { contentExtents } from '../engine/chain.js';
import { RawDevice } from '../engine/raw.js';
import type { BlockDevice, Qcow2Device } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { isZero } from '../format/bytes.js';
import { NodeFile } from '../io/node-file.js';
import { BLOCK_STATUS_CHUNK_BYTES, COPY_CHUNK_BYTES } from '../limits.js';

const CHUNK = COPY_CHUNK_BYTES;
/** Guest bytes whose block status is asked for at once. */
const WINDOW = BLOCK_STATUS_CHUNK_BYTES;
/** Chunks in the air by default: read ahead of the one being written. */
const DEFAULT_DEPTH = 4;
/** The unit of an uncompressed copy: what is skipped when all zero, and the size of each write. */
const PLAIN_UNIT = 65536;

export interface CopyOptions {
  /**
   * Write compressed clusters (qemu-img convert -c): the target must take compressed writes
   * (a qcow2 device: `capabilities.compressedWrites`).
   */
  compress?: boolean;
  /** Flush the target after each chunk is written (the `writethrough` cache mode). */
  flushEachChunk?: boolean;
  /** Chunks (of 1 MiB) read or being written at once; default 4. */
  chunksInFlight?: number;
  /**
   * Called as chunks are written: `done` is the guest offset the copy has reached (skipped zero
   * areas count as copied), never decreasing, and reaches `total` (the source's virtual size) once
   * everything is written. Not called after a failure.
   */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Copies the guest contents of `source` (through its backing chain) to the same offsets of
 * `target`, which must be at least as large and read as zeros where the source does (a new
 * image). Neither device is flushed at the end nor closed.
 */
export async function copyContents(source: BlockDevice, target: BlockDevice, opts: CopyOptions = {}): Promise<void> {
  const compress = opts.compress === true;
  if (compress && !target.capabilities.compressedWrites) throw unsupported('copy: the target does not take compressed writes (a qcow2 image does)');
  if (target.virtualSize < source.virtualSize) throw usage(`copy: the target (${target.virtualSize} bytes) is smaller than the source (${source.virtualSize} bytes)`);
  const depth = opts.chunksInFlight ?? DEFAULT_DEPTH;
  if (!Number.isSafeInteger(depth) || depth < 1) throw usage(`copy: chunksInFlight must be a whole number of at least 1, not ${depth}`);
  const size = source.virtualSize;
  const unit = compress ? (target as Qcow2Device).clusterSize : PLAIN_UNIT;
  const inFlight: Promise<void>[] = [];
  // One buffer per chunk in the air, reused once its chunk is written.
  const buffers: Uint8Array[] = Array.from({ length: depth }, () => new Uint8Array(CHUNK));
  let issued: Promise<unknown> = Promise.resolve();
  let reached = 0;
  const progress = (done: number) => {
    // Chunks finish out of order; what is reported only ever moves forward.
    if (done <= reached && !(done === 0 && size === 0)) return;
    reached = Math.max(reached, done);
    opts.onProgress?.(reached, size);
  };
  // Every read and every chunk's writes still running: after a failure, they are waited for (and
  // their own failures dropped) before it is thrown, so nothing runs on the devices once the caller
  // closes them and no second failure surfaces as an unhandled rejection.
  const running = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    running.add(p);
    p.then(
      () => running.delete(p),
      () => running.delete(p),
    );
    return p;
  };
  try {
    for await (const chunk of chunksOf(source, unit)) {
      if (inFlight.length >= depth) await inFlight.shift();
      const full = buffers.pop() as Uint8Array;
      const buffer = full.subarray(0, chunk.n);
      // Awaited below only while every earlier chunk's writes were issued; the tracking handles
      // its failure otherwise.
      const data = track(source.readInto(chunk.pos, buffer));
      // Writes are issued once the previous chunk's are (not once they are done).
      const writes = issued.then(async () => {
        await data;
        return issueWrites(target, chunk.pos, buffer, unit, compress);
      });
      issued = writes;
      const done = track(
        writes.then(async (w) => {
          await w.done;
          if (opts.flushEachChunk) await target.flush();
          buffers.push(full);
          progress(chunk.pos + chunk.n);
        }),
      );
      inFlight.push(done);
    }
    await Promise.all(inFlight);
  } catch (err) {
    await Promise.allSettled([...running]);
    throw err;
  }
  progress(size);
}

interface Chunk {
  pos: number;
  n: number;
}

/** The chunks (in whole units) holding what the source chain says is not zero, in order. */
async function* chunksOf(source: BlockDevice, unit: number): AsyncGenerator<Chunk> {
  const size = source.virtualSize;
  let done = 0; // everything below has been handed out
  for (let base = 0; base < size; base += WINDOW) {
    for (const e of await contentExtents(source, base, Math.min(WINDOW, size - base))) {
      if (e.zero) continue;
      const from = Math.max(done, Math.floor(e.start / unit) * unit);
      const to = Math.min(size, Math.ceil((e.start + e.length) / unit) * unit);
      for (let pos = from; pos < to; pos += CHUNK) yield { pos, n: Math.min(CHUNK, to - pos) };
      done = Math.max(done, to);
    }
  }
}

/** Starts the writes of one chunk's non-zero runs of units; `done` settles when they have. */
function issueWrites(target: BlockDevice, pos: number, data: Uint8Array, unit: number, compress: boolean): { done: Promise<unknown> } {
  const writes: Promise<void>[] = [];
  let runStart = -1;
  const flushRun = (end: number) => {
    if (runStart < 0) return;
    const bytes = data.subarray(runStart, end);
    writes.push(compress ? (target as Qcow2Device).writeCompressed(pos + runStart, bytes) : target.write(pos + runStart, bytes));
    runStart = -1;
  };
  for (let at = 0; at < data.byteLength; at += unit) {
    const end = Math.min(at + unit, data.byteLength);
    if (isZero(data.subarray(at, end))) flushRun(at);
    else {
      // Uncompressed data goes out one 64 KiB unit per write, as qemu-img writes it: on this
      // machine's ext4, 1 MiB pwrites into a new file spent every other run twice as long in the
      // kernel's page-cache copy (2.7 s against 1.2 s for a 1 GiB convert); 64 KiB ones never did.
      if (!compress && runStart >= 0) flushRun(at);
      if (runStart < 0) runStart = at;
    }
  }
  flushRun(data.byteLength);
  // Settles once every write has (a failed one does not leave the others running unseen).
  const done = Promise.allSettled(writes).then((results) => {
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  });
  return { done };
}

/** What the output of a convert is created with (apart from its size, which is the input's). */
export type OutputCreateOptions = Omit<CreateOptions, 'size'>;

/**
 * A new output image of `size` guest bytes, open for writing: a qcow2 image created with
 * `create` (as `qemu-img create -f qcow2` lays it out), or a raw file (created or truncated to
 * `size`). `noFlush`: its flushes do nothing (the `unsafe` cache mode).
 */
export async function createOutput(
  path: string,
  format: ImageFormat,
  size: number,
  opts: { create?: OutputCreateOptions; noFlush?: boolean; secret?: (id: string) => Uint8Array } = {},
): Promise<BlockDevice> {
  const noFlush = opts.noFlush === true;
  if (format === 'qcow2') {
    await createImage(path, { ...opts.create, size }, opts.secret ? { secret: opts.secret } : {});
    const encrypt = opts.create?.encrypt;
    // An encrypted output (-o encrypt.format=luks,encrypt.key-secret=ID) opens with the same secret.
    const keySecret = encrypt !== undefined && opts.secret ? opts.secret(encrypt.keySecret) : undefined;
    try {
      return await openQcow2(path, { noFlush, ...(keySecret ? { keySecret } : {}) });
    } finally {
      keySecret?.fill(0);
    }
  }
  if (opts.create !== undefined && Object.keys(opts.create).length > 0) throw unsupported('convert: raw output takes no create options');
  const file = await NodeFile.open(path, { create: true, noFlush });
  try {
    await file.truncate(size);
    return await RawDevice.over(file);
  } catch (err) {
    await file.close();
    throw err;
  }
}

/**
 * The output's cache mode, as qemu-img convert's `-t`: `unsafe` (the default, as in qemu-img
 * convert) never flushes the output; `writeback` flushes it once at the end; `writethrough` after
 * every chunk.
 */
export type OutputCache = 'unsafe' | 'writeback' | 'writethrough';

export interface ConvertOptions extends Pick<CopyOptions, 'compress' | 'chunksInFlight' | 'onProgress'> {
  /** The input's format; probed when not given. */
  inputFormat?: ImageFormat;
  /** The output's format; default 'raw', as qemu-img convert. */
  outputFormat?: ImageFormat;
  /** Creation options of a qcow2 output (cluster size, compression type, …). */
  create?: OutputCreateOptions;
  cache?: OutputCache;
}

/**
 * `qemu-img convert`: copies the guest contents of the image at `input` (through its backing
 * chain) into a new image at `output`, leaving all-zero areas unallocated.
 */
export async function convertImage(input: string, output: string, opts: ConvertOptions = {}): Promise<void> {
  const outputFormat = opts.outputFormat ?? 'raw';
  if (opts.compress && outputFormat !== 'qcow2') throw unsupported('convert: compression needs a qcow2 output');
  const cache = opts.cache ?? 'unsafe';
  const source = await openImage(input, { ...(opts.inputFormat ? { format: opts.inputFormat } : {}), readOnly: true });
  try {
    const target = await createOutput(output, outputFormat, source.virtualSize, {
      ...(opts.create ? { create: opts.create } : {}),
      noFlush: cache === 'unsafe',
    });
    try {
      await copyContents(source, target, {
        compress: opts.compress === true,
        flushEachChunk: cache === 'writethrough',
        ...(opts.chunksInFlight !== undefined ? { chunksInFlight: opts.chunksInFlight } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
      await target.flush();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
