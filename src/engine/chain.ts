/**
 * What a device reads as, through its backing chain: data (must be copied) or zero (may be left
 * out), in order and without gaps. Used to skip empty space quickly (convert, compare).
 */
import type { BlockDevice } from './types.js';

export interface ContentExtent {
  start: number;
  length: number;
  zero: boolean;
}

function backingOf(dev: BlockDevice): BlockDevice | undefined {
  return 'backing' in dev ? (dev as { backing: BlockDevice | undefined }).backing : undefined;
}

export async function contentExtents(dev: BlockDevice, offset: number, length: number): Promise<ContentExtent[]> {
  const out: ContentExtent[] = [];
  const push = (start: number, len: number, zero: boolean) => {
    if (len <= 0) return;
    const last = out[out.length - 1];
    if (last && last.zero === zero && last.start + last.length === start) last.length += len;
    else out.push({ start, length: len, zero });
  };
  for (const e of await dev.mapExtents(offset, length)) {
    if (e.kind === 'data' || e.kind === 'compressed') push(e.start, e.length, false);
    else if (e.kind === 'zero') push(e.start, e.length, true);
    else {
      const below = backingOf(dev);
      const covered = below ? Math.max(0, Math.min(e.start + e.length, below.virtualSize) - e.start) : 0;
      if (below && covered > 0) for (const x of await contentExtents(below, e.start, covered)) push(x.start, x.length, x.zero);
      push(e.start + covered, e.length - covered, true);
    }
  }
  return out;
}
