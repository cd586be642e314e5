/**
 * How QEMU's commit job (the mirror job, block/mirror.c) turns "what is held above BASE" into
 * writes to BASE, so that BASE ends up allocated as QEMU leaves it, not only reading the same:
 *  - the job works in chunks of its granularity: BASE's cluster size, at least 4 KiB and at most
 *    64 KiB (64 KiB for a raw BASE); every chunk touching a range held above BASE is dirty;
 *  - from the start of a dirty run, the chain's status (the layer that answers first, as
 *    bdrv_block_status_above says it) decides: data is copied, in whole chunks; a run of zeros
 *    covering at least one whole chunk becomes a zero write of its whole chunks; a shorter one is
 *    copied as one chunk (the job then writes what the guest reads there, zeros and all).
 */
import { type BlockDevice, isQcow2 } from '../engine/types.js';
import type { Range } from './above-base.js';

export interface Step {
  start: number;
  length: number;
  /** copy: read through the top, write to BASE; zero: a zero write (that may unmap) to BASE. */
  method: 'copy' | 'zero';
}

const MIN_GRANULARITY = 4096;
const MAX_GRANULARITY = 65536;

/** The job's chunk size for writing into `base` (bdrv_get_default_bitmap_granularity). */
export function mirrorGranularity(base: BlockDevice): number {
  if (!isQcow2(base)) return MAX_GRANULARITY;
  return Math.min(MAX_GRANULARITY, Math.max(MIN_GRANULARITY, base.clusterSize));
}

/** The dirty runs: `ranges` widened to whole chunks, merged, cut at `size`. */
export function dirtyRuns(ranges: readonly Range[], granularity: number, size: number): Range[] {
  const runs: Range[] = [];
  for (const r of ranges) {
    const start = Math.floor(r.start / granularity) * granularity;
    const end = Math.min(size, Math.ceil((r.start + r.length) / granularity) * granularity);
    const last = runs[runs.length - 1];
    if (last && start <= last.start + last.length) last.length = Math.max(last.length, end - last.start);
    else runs.push({ start, length: end - start });
  }
  return runs;
}

/**
 * What the chain below `top` says from `offset` on, for at most `length` bytes: the first layer
 * that has the range allocated answers, for as long as its own run goes; past the end of a lower
 * layer, the rest reads as zeros; unallocated everywhere, zeros.
 */
export async function chainRun(top: BlockDevice, offset: number, length: number): Promise<{ length: number; data: boolean }> {
  let bytes = length;
  for (let layer: BlockDevice | undefined = top; layer !== undefined; layer = layer.backing) {
    if (offset >= layer.virtualSize) return { length: bytes, data: false };
    const [first] = await layer.mapExtents(offset, Math.min(bytes, layer.virtualSize - offset));
    if (first === undefined) return { length: bytes, data: false };
    if (first.kind !== 'unallocated') return { length: first.length, data: first.kind !== 'zero' };
    bytes = first.length;
  }
  return { length: bytes, data: false };
}

/** The job's writes for one dirty run, in order. */
export async function* runSteps(top: BlockDevice, run: Range, granularity: number): AsyncGenerator<Step> {
  const end = run.start + run.length;
  for (let offset = run.start; offset < end; ) {
    const status = await chainRun(top, offset, end - offset);
    const whole = status.length - (status.length % granularity);
    const method = status.data || whole === 0 ? 'copy' : 'zero';
    const length = Math.min(Math.max(whole, granularity), end - offset);
    yield { start: offset, length, method };
    offset += length;
  }
}
