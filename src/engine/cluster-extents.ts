/** Turning decoded L2 entries into this layer's extents (mapExtents), shared by both engines. */
import type { Mapping } from './mapping.js';
import type { Extent } from './types.js';

export interface ClusterShape {
  clusterSize: number;
  subclusterSize: number;
  /** Where host offsets point: the image itself or its external data file. */
  file: 'image' | 'data-file';
  /** Whether the mapping owns a host cluster (the engines' hasHostCluster). */
  hasHost: (m: Mapping) => boolean;
}

/** The extents of one whole cluster. */
export function clusterExtents(m: Mapping, clusterStart: number, shape: ClusterShape): Extent[] {
  const { clusterSize: C, file } = shape;
  switch (m.kind) {
    case 'unallocated':
      return [{ start: clusterStart, length: C, kind: 'unallocated' }];
    case 'compressed':
      return [{ start: clusterStart, length: C, kind: 'compressed' }];
    case 'normal':
      return [{ start: clusterStart, length: C, kind: 'data', hostOffset: m.hostOffset, file }];
    case 'zero':
      return [
        shape.hasHost(m)
          ? { start: clusterStart, length: C, kind: 'zero', hostOffset: m.hostOffset, file }
          : { start: clusterStart, length: C, kind: 'zero' },
      ];
    case 'subclusters': {
      const S = shape.subclusterSize;
      const out: Extent[] = [];
      for (let sc = 0; sc < 32; sc++) {
        const start = clusterStart + sc * S;
        const host = shape.hasHost(m) ? { hostOffset: m.hostOffset + sc * S, file } : {};
        if ((m.alloc >>> sc) & 1) out.push({ start, length: S, kind: 'data', ...host });
        else if ((m.zero >>> sc) & 1) out.push({ start, length: S, kind: 'zero', ...host });
        else out.push({ start, length: S, kind: 'unallocated', ...host });
      }
      return out;
    }
    case 'invalid':
      return [];
  }
}

/** Appends the parts of `pieces` inside [from, to), merging with what continues exactly. */
export function appendClipped(out: Extent[], pieces: readonly Extent[], from: number, to: number): void {
  for (const piece of pieces) {
    const start = Math.max(piece.start, from);
    const end = Math.min(piece.start + piece.length, to);
    if (start >= end) continue;
    const hostOffset = piece.hostOffset === undefined ? undefined : piece.hostOffset + (start - piece.start);
    appendExtent(out, { ...piece, start, length: end - start, ...(hostOffset === undefined ? {} : { hostOffset }) });
  }
}

/** Appends, merging with the previous extent when it continues it exactly. */
export function appendExtent(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  const contiguousHost =
    last !== undefined &&
    (last.hostOffset === undefined
      ? e.hostOffset === undefined
      : e.hostOffset !== undefined && last.hostOffset + last.length === e.hostOffset && last.file === e.file);
  if (last && last.kind === e.kind && last.start + last.length === e.start && contiguousHost) {
    last.length += e.length;
    return;
  }
  out.push({ ...e });
}
