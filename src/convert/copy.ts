/**
 * Copying a device's guest contents into another device, as `qemu-img convert` does: the one copy
 * loop behind `qcow2 convert` (src/cli/convert.ts) and the library's `convertImage`/`copyContents`
 * (src/index.ts).
 *
 * The source is taken in qemu-img's pieces (src/convert/status.ts says what each is): data is
 * read and looked through for zeros in 512-byte sectors as qemu-img does (-S, src/convert/sparse.ts);
 * what is not data is not read. Zeros are left out where the target reads as zeros (a new image),
 * else written as zeros (-n, -B); ranges left to the target's backing file (-B) are not touched.
 * With -S 0 everything is written as data. A bounded number of chunks is in the air: reads go
 * ahead while earlier chunks are being written (and, compressing, compressed on the worker
 * threads). A chunk's writes start once the previous chunk's are done (compressing: issued), so
 * the output's layout does not depend on timing, and is qemu-img's (convert without -W).
 */
import { RateLimiter } from '../io/rate-limiter.js';
import { createImage } from '../create/create.js';
import type { CreateOptions } from '../create/options.js';
import { openImage, openQcow2, type ImageFormat } from '../device/open.js';
import { RawDevice } from '../engine/raw.js';
import { type BlockDevice, isQcow2, type Qcow2Device } from '../engine/types.js';
import { unsupported, usage } from '../errors.js';
import { isZero } from '../format/bytes.js';
import { NodeFile } from '../io/node-file.js';
import { SECTOR, sparseRuns } from './sparse.js';
import { type SourceStatus, StatusCursor } from './status.js';

/** Guest bytes read (and looked through for zeros) at once: qemu-img convert's buffer (4096 sectors). */
const BUFFER = 2 * 1024 * 1024;
/** Chunks in the air by default: read ahead of the one being written. */
const DEFAULT_DEPTH = 4;
/** The largest uncompressed write: data goes out in 64 KiB pieces (see issueWrites). */
const PLAIN_UNIT = 65536;
/** qemu-img convert's default sparse size (-S): 4 KiB. */
export const DEFAULT_SPARSE_SIZE = 4096;
/** The largest sparse size qemu-img takes: its buffer's, 16 MiB. */
export const MAX_SPARSE_SIZE = 16 * 1024 * 1024;

export interface CopyOptions {
  /**
   * Write compressed clusters (qemu-img convert -c): the target must take compressed writes
   * (a qcow2 device: `capabilities.compressedWrites`).
   */
  compress?: boolean;
  /** Flush the target after each chunk is written (the `writethrough` cache mode). */
  flushEachChunk?: boolean;
  /** Chunks (of up to 2 MiB) read or being written at once; default 4. */
  chunksInFlight?: number;
  /**
   * The shortest run of zero bytes inside data that is not written as data (qemu-img convert -S):
   * a multiple of 512 up to 16 MiB, 4096 by default. 0 writes everything as data, zeros included
   * (a fully allocated target).
   */
  sparseSize?: number;
  /**
   * The target reads as zeros wherever it is not written (a new image, or -n --target-is-zero):
   * zeros are left out. When false (-n into an image that may hold data), zeros are written as
   * zeros (deallocating where the target can). Default true; ignored with `targetBacking`.
   */
  targetIsZero?: boolean;
  /**
   * The target has a backing file (qemu-img convert -B): only what the source's top layer holds is
   * copied, zeros are written as zeros, and the rest is left to the target's backing file. `size`:
   * the backing file's size, for a new target (zeros past it are left out too).
   */
  targetBacking?: { size?: number };
  /**
   * Data is written as it was read, not looked through for zeros (qemu-img convert -C, copy
   * offloading: QEMU copies the source's data ranges without reading them into a buffer). Ranges
   * the source calls zero are still zeros.
   */
  copyRange?: boolean;
  /**
   * A chunk's writes may start before the previous chunk's are done (qemu-img convert -W): the
   * output's layout then depends on timing, its contents do not.
   */
  outOfOrder?: boolean;
  /**
   * At most this many bytes written a second, as qemu-img convert -r (QEMU's throttling of the
   * output's writes, zeros included: a leaky bucket of a tenth of a second's bytes).
   */
  rateLimit?: number;
  /**
   * Read errors do not stop the copy (qemu-img convert --salvage): a chunk that cannot be read is
   * read again sector by sector, and each sector that fails is copied as zeros and reported here.
   */
  onReadError?: (offset: number, err: unknown) => void;
  /**
   * Called as chunks are written: `done` is the guest offset the copy has reached (skipped zero
   * areas count as copied), never decreasing, and reaches `total` (the source's virtual size) once
   * everything is written. Not called after a failure.
   */
  onProgress?: (done: number, total: number) => void;
}

/** How a copy treats what it writes, decided once from its options. */
interface Plan {
  compress: boolean;
  /** -S in sectors; 0: write everything as data. */
  minSectors: number;
  /** Zeros need not be written (the target reads as zeros). */
  skipZeros: boolean;
  /** Compressed writes are of whole clusters of this size. */
  clusterSize: number;
  /** Data is written as read (-C). */
  copyRange: boolean;
  /** -r: every piece's writes wait for it. */
  limiter: RateLimiter | undefined;
}

/**
 * Copies the guest contents of `source` (through its backing chain) to the same offsets of
 * `target`, which must be at least as large, as qemu-img convert does (module comment; the options
 * say what the target is). Neither device is flushed at the end nor closed.
 */
export async function copyContents(source: BlockDevice, target: BlockDevice, opts: CopyOptions = {}): Promise<void> {
  const compress = opts.compress === true;
  if (compress && !target.capabilities.compressedWrites) throw unsupported('copy: the target does not take compressed writes (a qcow2 image does)');
  if (target.virtualSize < source.virtualSize) throw usage(`copy: the target (${target.virtualSize} bytes) is smaller than the source (${source.virtualSize} bytes)`);
  const depth = opts.chunksInFlight ?? DEFAULT_DEPTH;
  if (!Number.isSafeInteger(depth) || depth < 1) throw usage(`copy: chunksInFlight must be a whole number of at least 1, not ${depth}`);
  const sparse = opts.sparseSize ?? DEFAULT_SPARSE_SIZE;
  if (!Number.isSafeInteger(sparse) || sparse < 0 || sparse % SECTOR !== 0 || sparse > MAX_SPARSE_SIZE) {
    throw usage(`copy: sparseSize must be a multiple of ${SECTOR} up to ${MAX_SPARSE_SIZE}, not ${sparse}`);
  }
  const rate = opts.rateLimit;
  if (rate !== undefined && (!Number.isSafeInteger(rate) || rate < 0)) throw usage(`copy: rateLimit must be a whole number of bytes a second, not ${rate}`);
  const plan: Plan = {
    compress,
    minSectors: sparse / SECTOR,
    skipZeros: opts.targetIsZero !== false && opts.targetBacking === undefined,
    clusterSize: compress ? (target as Qcow2Device).clusterSize : 0,
    copyRange: opts.copyRange === true,
    limiter: opts.rateLimit === undefined || opts.rateLimit === 0 ? undefined : new RateLimiter(opts.rateLimit),
  };

  const size = source.virtualSize;
  const inFlight: Promise<void>[] = [];
  // One buffer per chunk in the air, reused once its chunk is written.
  const buffers: Uint8Array[] = [];
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
  const statusPlan = { targetHasBacking: opts.targetBacking !== undefined, targetBackingSize: opts.targetBacking?.size };
  try {
    for await (const piece of piecesOf(source, new StatusCursor(source, statusPlan), plan)) {
      if (inFlight.length >= depth) await inFlight.shift();
      let full: Uint8Array | undefined;
      let data: Promise<Uint8Array | undefined> = Promise.resolve(undefined);
      // --salvage: the sectors that could not be read, reported in the order the writes go out.
      const unreadable: [number, unknown][] = [];
      if (piece.status === 'data') {
        full = buffers.pop() ?? new Uint8Array(BUFFER);
        const buffer = full.subarray(0, piece.n);
        // Awaited below only while every earlier chunk's writes were issued; the tracking handles
        // its failure otherwise.
        const salvage = opts.onReadError && ((offset: number, err: unknown) => unreadable.push([offset, err]));
        data = track(readPiece(source, piece.pos, buffer, salvage).then(() => buffer));
      }
      // Writes are issued once the previous chunk's are done — compressing, once they are issued, for
      // the compression workers to have several chunks at once. Uncompressed, a chunk's writes
      // racing the previous chunk's would let the target allocate its clusters out of order;
      // waited for, the output's layout is qemu-img's.
      const writes = (opts.outOfOrder ? Promise.resolve() : issued).then(async () => {
        const bytes = await data;
        for (const [offset, err] of unreadable) opts.onReadError?.(offset, err);
        return issueWrites(target, piece, bytes, plan);
      });
      issued = plan.compress ? writes : track(writes.then((w) => w.done));
      const done = track(
        writes.then(async (w) => {
          await w.done;
          if (opts.flushEachChunk) await target.flush();
          if (full) buffers.push(full);
          progress(piece.pos + piece.n);
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

interface Piece {
  pos: number;
  n: number;
  status: SourceStatus;
}

/**
 * The source in the pieces qemu-img convert handles one at a time (convert_iteration_sectors): a
 * run of one status, cut to the source's clusters, data to the buffer's size; compressing, whole
 * clusters (a shorter run takes its whole cluster as data).
 */
async function* piecesOf(source: BlockDevice, cursor: StatusCursor, plan: Plan): AsyncGenerator<Piece> {
  const size = source.virtualSize;
  const sourceAlignment = isQcow2(source) ? source.clusterSize : 1;
  for (let pos = 0; pos < size; ) {
    const at = await cursor.at(pos);
    let status = at.status;
    let n = at.end - pos;
    // Not cut in the middle of a source cluster where it can be helped.
    const tail = (pos + n) % sourceAlignment;
    if (n > tail) n -= tail;
    if (status === 'data' || (plan.minSectors === 0 && status === 'zero')) n = Math.min(n, BUFFER);
    if (plan.compress) {
      if (n < plan.clusterSize) {
        n = Math.min(plan.clusterSize, size - pos);
        status = 'data';
      } else n -= n % plan.clusterSize;
    }
    yield { pos, n, status };
    pos += n;
  }
}

/**
 * Reads a chunk; with `onReadError` (--salvage), a chunk that fails is read again sector by sector,
 * and what still fails reads as zeros, as qemu-img convert --salvage does.
 */
async function readPiece(source: BlockDevice, pos: number, buffer: Uint8Array, onReadError: CopyOptions['onReadError']): Promise<void> {
  try {
    await source.readInto(pos, buffer);
  } catch (err) {
    if (onReadError === undefined) throw err;
    for (let at = 0; at < buffer.byteLength; at += SECTOR) {
      const sector = buffer.subarray(at, Math.min(buffer.byteLength, at + SECTOR));
      try {
        await source.readInto(pos + at, sector);
      } catch (sectorErr) {
        sector.fill(0);
        onReadError(pos + at, sectorErr);
      }
    }
  }
}

/** A range of zeros, written as data: a fully allocated target (-S 0). */
const ZERO_UNIT = new Uint8Array(PLAIN_UNIT);

/** Starts the writes of one piece; `done` settles when they have. */
function issueWrites(target: BlockDevice, piece: Piece, data: Uint8Array | undefined, plan: Plan): { done: Promise<unknown> } {
  // The writes, started together once the rate limit (-r) lets the piece's bytes through.
  const starts: (() => Promise<void>)[] = [];
  let bytesWritten = 0;
  const writes = {
    push(start: () => Promise<void>, n: number) {
      starts.push(start);
      bytesWritten += n;
    },
  };
  const writeData = (pos: number, bytes: Uint8Array) => {
    if (plan.compress) {
      writes.push(() => (target as Qcow2Device).writeCompressed(pos, bytes), bytes.byteLength);
      return;
    }
    // Uncompressed data goes out in 64 KiB writes, as qemu-img writes it: on this machine's ext4,
    // 1 MiB pwrites into a new file spent every other run twice as long in the kernel's
    // page-cache copy (2.7 s against 1.2 s for a 1 GiB convert); 64 KiB ones never did.
    for (let at = 0; at < bytes.byteLength; ) {
      const end = Math.min(bytes.byteLength, (Math.floor((pos + at) / PLAIN_UNIT) + 1) * PLAIN_UNIT - pos);
      const [where, part] = [pos + at, bytes.subarray(at, end)];
      writes.push(() => target.write(where, part), part.byteLength);
      at = end;
    }
  };
  const writeZeros = (pos: number, n: number) => {
    if (!plan.skipZeros) writes.push(() => target.writeZeroes(pos, n, { unmap: true }), n);
  };
  const { pos, n, status } = piece;
  if (status === 'zero') {
    if (plan.minSectors > 0) writeZeros(pos, n);
    else if (plan.compress) writeData(pos, new Uint8Array(n));
    else for (let at = 0; at < n; at += PLAIN_UNIT) writeData(pos + at, ZERO_UNIT.subarray(0, Math.min(PLAIN_UNIT, n - at)));
  } else if (status === 'data' && data !== undefined) {
    if (plan.minSectors === 0 || plan.copyRange) writeData(pos, data);
    else if (plan.compress) {
      // A compressed cluster is written as a whole, or not at all when it is all zeros (in runs
      // of clusters alike, for the compression workers to share).
      const C = plan.clusterSize;
      let runStart = 0;
      let runData = false;
      const bytes = data;
      const flushRun = (end: number) => {
        if (end > runStart && runData) writeData(pos + runStart, bytes.subarray(runStart, end));
        else if (end > runStart) writeZeros(pos + runStart, end - runStart);
        runStart = end;
      };
      for (let at = 0; at < n; at += C) {
        const isData = !isZero(data.subarray(at, Math.min(n, at + C)));
        if (isData !== runData) flushRun(at);
        runData = isData;
      }
      flushRun(n);
    } else {
      let at = 0;
      for (const run of sparseRuns(data, pos / SECTOR, plan.minSectors)) {
        if (run.data) writeData(pos + at, data.subarray(at, at + run.length));
        else writeZeros(pos + at, run.length);
        at += run.length;
      }
    }
  }
  // Settles once every write has (a failed one does not leave the others running unseen).
  const settle = (started: Promise<void>[]) =>
    Promise.allSettled(started).then((results) => {
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    });
  const startAll = () => starts.map((start) => start());
  if (plan.limiter === undefined || bytesWritten === 0) return { done: settle(startAll()) };
  return { done: plan.limiter.take(bytesWritten).then(() => settle(startAll())) };
}

/** The block QEMU writes first into a new file: 4 KiB (512 bytes into a smaller file). */
const FIRST_BLOCK = 4096;

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
    // As QEMU's file driver creates a file (allocate_first_block): its first block is written, with
    // zeros, for its alignment to be probed; qemu-img map shows it as data.
    if (size > 0) await file.write(0, new Uint8Array(Math.min(size, size < FIRST_BLOCK ? SECTOR : FIRST_BLOCK)));
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

export interface ConvertOptions extends Pick<CopyOptions, 'compress' | 'chunksInFlight' | 'onProgress' | 'sparseSize'> {
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
        ...(opts.sparseSize !== undefined ? { sparseSize: opts.sparseSize } : {}),
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
