/**
 * The bitmap rule for one crash state, judged by QEMU: every bitmap the image was made with is
 * still there (`qemu-img info`); one marked in_use is inconsistent and says so (QEMU and we then
 * refuse its bits); an enabled one stored clean holds every granule a request begun before the
 * crash touched as dirty (`qemu-nbd -B NAME`, socket-activated by `nbdinfo --map`). So a bitmap
 * never silently loses a bit.
 */
import { type DirtyRange, qemuBitmaps, qemuDirtyRanges, type QemuBitmap } from '../qemu-bitmaps.js';
import type { Expectation } from './types.js';

/** The problems with the bitmaps of `image.qcow2` in `dir` (none: the rule holds). */
export async function bitmapProblems(dir: string, expected: Expectation): Promise<string[]> {
  if (!expected.bitmaps?.length) return [];
  const problems: string[] = [];
  let listed: QemuBitmap[];
  try {
    listed = await qemuBitmaps('image.qcow2', dir);
  } catch (err) {
    return [(err as Error).message];
  }
  for (const b of expected.bitmaps) {
    const found = listed.find((x) => x.name === b.name);
    if (!found) {
      problems.push(`bitmap '${b.name}' is gone`);
      continue;
    }
    if (found.flags.includes('in-use') || b.disabled) continue;
    let dirty: DirtyRange[];
    try {
      dirty = await qemuDirtyRanges('image.qcow2', b.name, dir);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    for (const [from, to] of expected.touched ?? []) {
      const clean = firstUncovered(dirty, from, to);
      if (clean !== undefined) {
        problems.push(`bitmap '${b.name}' is stored clean (not in_use) but guest byte ${clean}, written by a request begun before the crash, is not dirty in it`);
        break;
      }
    }
  }
  return problems;
}

/** The first byte of [from, to) the merged, ordered ranges do not cover, or undefined. */
function firstUncovered(ranges: readonly DirtyRange[], from: number, to: number): number | undefined {
  let at = from;
  for (const [a, b] of ranges) {
    if (a > at) break;
    at = Math.max(at, b);
    if (at >= to) return undefined;
  }
  return at < to ? at : undefined;
}
