/** This layer's map of a guest range (what qemu-img map and block status build on), cluster by cluster. */
import type { Extent } from '../engine/types.js';
import { hasHostCluster, lookedUp, type Mapping } from './mapping.js';
import type { Qcow2State } from './state.js';
import { l1Span, l2IndexOf, l2TableFor, validMapping } from './tables.js';

export async function mapExtents(st: Qcow2State, offset: number, length: number): Promise<Extent[]> {
  const C = st.geometry.clusterSize;
  const span = l1Span(st);
  const out: Extent[] = [];
  const shape = shapeOf(st);
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    // One L2 table's part of the range at a time: its entries are fetched in one call.
    const clusterStart = pos - (pos % C);
    const tableEnd = Math.min(clusterStart - (clusterStart % span) + span, end);
    const l2 = await l2TableFor(st, clusterStart);
    if (l2 === 0) {
      // No L2 table: the rest of the L1 entry's range is unallocated, in one extent.
      appendExtent(out, { start: pos, length: tableEnd - pos, kind: 'unallocated' });
      pos = tableEnd;
      continue;
    }
    const first = l2IndexOf(st, clusterStart);
    const count = Math.ceil((tableEnd - clusterStart) / C);
    const entries = await st.store.l2Entries(l2, first, count, true);
    for (let k = 0; k < count; k++) {
      const start = clusterStart + k * C;
      const to = Math.min(start + C, end);
      const entry = entries[k]!;
      if (entry.kind === 'unallocated') {
        appendRun(out, pos, to - pos, 'unallocated', undefined, undefined);
        pos = to;
        continue;
      }
      const at = l2 + (first + k) * st.geometry.l2EntryBytes;
      const mapping = validMapping(lookedUp(st, entry, start, at), start, at);
      if (mapping.kind === 'subclusters') appendClipped(out, clusterExtents(mapping, start, shape), pos, end);
      else {
        // One piece for the whole cluster: appended directly, without the general path's garbage.
        const piece = clusterExtents(mapping, start, shape)[0]!;
        const hostOffset = piece.hostOffset === undefined ? undefined : piece.hostOffset + (pos - start);
        appendRun(out, pos, to - pos, piece.kind, hostOffset, piece.file);
      }
      pos = to;
    }
  }
  return out;
}

interface ClusterShape {
  clusterSize: number;
  subclusterSize: number;
  /** Where host offsets point: the image itself or its external data file. */
  file: 'image' | 'data-file';
  /** Whether the mapping owns a host cluster. */
  hasHost: (m: Mapping) => boolean;
}

function shapeOf(st: Qcow2State): ClusterShape {
  return {
    clusterSize: st.geometry.clusterSize,
    subclusterSize: st.geometry.subclusterSize,
    file: st.dataFile ? 'data-file' : 'image',
    hasHost: (m) => hasHostCluster(st, m),
  };
}

/** The extents of one whole cluster. */
function clusterExtents(m: Mapping, clusterStart: number, shape: ClusterShape): Extent[] {
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
function appendClipped(out: Extent[], pieces: readonly Extent[], from: number, to: number): void {
  for (const piece of pieces) {
    const start = Math.max(piece.start, from);
    const end = Math.min(piece.start + piece.length, to);
    if (start >= end) continue;
    const hostOffset = piece.hostOffset === undefined ? undefined : piece.hostOffset + (start - piece.start);
    appendExtent(out, { ...piece, start, length: end - start, ...(hostOffset === undefined ? {} : { hostOffset }) });
  }
}

/**
 * Appends the extent these fields make, merging it with the previous one when it continues it
 * exactly (same kind, contiguous, and contiguous on the host when it has an offset); the object is
 * only built when it does not merge.
 */
function appendRun(out: Extent[], start: number, length: number, kind: Extent['kind'], hostOffset: number | undefined, file: Extent['file']): void {
  const last = out[out.length - 1];
  if (
    last !== undefined &&
    last.kind === kind &&
    last.start + last.length === start &&
    (last.hostOffset === undefined ? hostOffset === undefined : hostOffset !== undefined && last.hostOffset + last.length === hostOffset && last.file === file)
  ) {
    last.length += length;
    return;
  }
  const e: Extent = { start, length, kind };
  if (hostOffset !== undefined) e.hostOffset = hostOffset;
  if (file !== undefined && hostOffset !== undefined) e.file = file;
  out.push(e);
}

/** Appends, merging with the previous extent when it continues it exactly (appendRun's rule). */
export function appendExtent(out: Extent[], e: Extent): void {
  appendRun(out, e.start, e.length, e.kind, e.hostOffset, e.file);
}
