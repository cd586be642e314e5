/**
 * `qemu-img commit` (QEMU 7.2 img_commit, which runs the active commit job): what the images above
 * BASE hold is written into BASE (grown first to the top's size when smaller), the zeros they
 * hold as zero writes that may unmap; then, unless the images are to be dropped (`-d`, implied by
 * `-b`), the top image is emptied (src/qcow2 makeEmpty) so that it reads as its backing file.
 * Neither the top's backing link nor the intermediate images change.
 *
 * Which writes, in which chunks, is QEMU's mirror job's choice (mirror-steps.ts), so that BASE is
 * left allocated as QEMU leaves it.
 *
 * The chain is opened through the composition root, the top writable, and BASE once more for
 * writing. The top's chain reads BASE through its own read-only handle while the other writes it:
 * the chunks go in increasing order and a chunk's clusters are read before they are written, so
 * every entry that handle reads is one not yet changed (new clusters never take the place of
 * clusters still in use).
 */
import { RateLimiter } from '../io/rate-limiter.js';
import { type ImageKeys, openImage, type ImageFormat } from '../device/open.js';
import { type BlockDevice, isQcow2 } from '../engine/types.js';
import { usage } from '../errors.js';
import { COPY_CHUNK_BYTES } from '../limits.js';
import { rangesAboveBase, type Range } from './above-base.js';
import { chainLayers } from './chain-layers.js';
import { findBackingLayer } from './find-base.js';
import { dirtyRuns, mirrorGranularity, runSteps } from './mirror-steps.js';

export interface CommitOptions {
  /** The top image's format; probed when not given. */
  format?: ImageFormat;
  /** The image to commit into, named as `-b` names it; default the top's backing file. */
  base?: string;
  /** Leave the top image as it is (`-d`); `base` implies it, as in qemu-img. */
  drop?: boolean;
  /** Flushes do nothing (`-t unsafe`). */
  noFlush?: boolean;
  /** The passphrases of the top image and its backing chain (QEMU's encrypt.key-secret, backing.encrypt.key-secret, …). */
  keys?: ImageKeys;
  /** Bytes of the ranges to commit done so far, and their total. */
  onProgress?: (done: number, total: number) => void;
  /** `-r`: bytes a second the copy may write (0 or none: no limit). Zero writes do not count, as in QEMU's mirror job. */
  rateLimit?: number;
}

export async function commitImage(path: string, opts: CommitOptions = {}): Promise<void> {
  const driving = opts.noFlush ? { noFlush: true } : {};
  const keys = opts.keys ?? {};
  const top = await openImage(path, { ...(opts.format ? { format: opts.format } : {}), ...driving, ...keys });
  try {
    if (!isQcow2(top) || top.backing === undefined) throw usage('Image does not have a backing file');
    const layers = chainLayers(top, path);
    const index = opts.base === undefined ? 1 : await findBackingLayer(layers, opts.base);
    const baseLayer = index === undefined ? undefined : layers[index];
    if (index === undefined || baseLayer === undefined) throw usage(`Did not find '${opts.base}' in the backing chain of '${path}'`);
    const ranges = await rangesAboveBase(
      layers.slice(0, index).map((l) => l.device),
      top.virtualSize,
    );
    // BASE opened again, writable, with its own passphrase and those below it.
    const [baseKey, ...belowBase] = (keys.backingKeys ?? []).slice(index - 1);
    const base = await openImage(baseLayer.path, {
      format: baseLayer.device.format,
      ...driving,
      ...(baseKey ? { keySecret: baseKey } : {}),
      ...(belowBase.length > 0 ? { backingKeys: belowBase } : {}),
    });
    try {
      if (base.virtualSize < top.virtualSize) await base.resize(top.virtualSize);
      await copyRanges(top, base, ranges, opts.onProgress, opts.rateLimit);
      await base.flush();
    } finally {
      await base.close();
    }
    const drop = opts.drop === true || opts.base !== undefined;
    if (!drop) await top.makeEmpty();
    await top.flush();
  } finally {
    await top.close();
  }
}

/** The job's writes, run by run: zero writes that may unmap, and copies through the top's chain. */
async function copyRanges(
  top: BlockDevice,
  base: BlockDevice,
  ranges: readonly Range[],
  onProgress?: (done: number, total: number) => void,
  rateLimit?: number,
): Promise<void> {
  const limiter = rateLimit ? new RateLimiter(rateLimit) : undefined;
  const granularity = mirrorGranularity(base);
  const runs = dirtyRuns(ranges, granularity, top.virtualSize);
  const total = runs.reduce((n, r) => n + r.length, 0);
  let done = 0;
  onProgress?.(0, total);
  const buffer = new Uint8Array(COPY_CHUNK_BYTES);
  for (const run of runs) {
    for await (const step of runSteps(top, run, granularity)) {
      if (step.method === 'zero') await base.writeZeroes(step.start, step.length, { unmap: true });
      else {
        for (let pos = step.start; pos < step.start + step.length; pos += buffer.byteLength) {
          const chunk = buffer.subarray(0, Math.min(buffer.byteLength, step.start + step.length - pos));
          await top.readInto(pos, chunk);
          await base.write(pos, chunk);
          // As QEMU's job: the bytes just copied are paid for before the next copy (and the end).
          await limiter?.take(chunk.byteLength);
        }
      }
      done += step.length;
      onProgress?.(done, total);
    }
  }
  await limiter?.take(0);
}
