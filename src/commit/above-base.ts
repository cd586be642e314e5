/**
 * What the images above BASE hold, as QEMU's bdrv_is_allocated_above(top, base) says it: a guest
 * range is above BASE when one of the layers above it maps it (data, zero or compressed), or lies
 * past the end of an intermediate layer (the guest reads zeros there, whatever BASE holds).
 */
import type { BlockDevice } from '../engine/types.js';

export interface Range {
  start: number;
  length: number;
}

/** The ranges of [0, size) that `above` (top first, BASE excluded) holds, sorted and merged. */
export async function rangesAboveBase(above: readonly BlockDevice[], size: number): Promise<Range[]> {
  const found: Range[] = [];
  above.forEach((layer, i) => {
    if (i > 0 && layer.virtualSize < size) found.push({ start: layer.virtualSize, length: size - layer.virtualSize });
  });
  for (const layer of above) {
    const end = Math.min(layer.virtualSize, size);
    if (end === 0) continue;
    for (const e of await layer.mapExtents(0, end)) if (e.kind !== 'unallocated') found.push({ start: e.start, length: e.length });
  }
  found.sort((a, b) => a.start - b.start);
  const merged: Range[] = [];
  for (const r of found) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.start + last.length) last.length = Math.max(last.length, r.start + r.length - last.start);
    else merged.push({ ...r });
  }
  return merged;
}
