/**
 * What a device reads as through its backing chain, from each layer's own extents: block status
 * (zero, data, and which layer answers), and the plainer content extents convert and compare use
 * to skip empty space quickly (data that must be copied, zeros that may be left out).
 */
import type { BlockDevice, StatusExtent } from './types.js';

export async function chainStatus(dev: BlockDevice, offset: number, length: number, depth = 1): Promise<StatusExtent[]> {
  const out: StatusExtent[] = [];
  const push = (e: StatusExtent) => {
    if (e.length <= 0) return;
    const last = out[out.length - 1];
    if (last && last.zero === e.zero && last.data === e.data && last.depth === e.depth && last.start + last.length === e.start) last.length += e.length;
    else out.push({ ...e });
  };
  for (const e of await dev.mapExtents(offset, length)) {
    if (e.kind === 'data' || e.kind === 'compressed') push({ start: e.start, length: e.length, zero: false, data: true, depth });
    else if (e.kind === 'zero') push({ start: e.start, length: e.length, zero: true, data: false, depth });
    else {
      const below = dev.backing;
      const covered = below ? Math.max(0, Math.min(e.start + e.length, below.virtualSize) - e.start) : 0;
      if (below && covered > 0) for (const x of await chainStatus(below, e.start, covered, depth + 1)) push(x);
      // Past the end of the chain: zeros that no layer answers for.
      push({ start: e.start + covered, length: e.length - covered, zero: true, data: false, depth: 0 });
    }
  }
  return out;
}

export interface ContentExtent {
  start: number;
  length: number;
  zero: boolean;
}

export async function contentExtents(dev: BlockDevice, offset: number, length: number): Promise<ContentExtent[]> {
  const out: ContentExtent[] = [];
  for (const e of await chainStatus(dev, offset, length)) {
    const last = out[out.length - 1];
    if (last && last.zero === e.zero && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length, zero: e.zero });
  }
  return out;
}
