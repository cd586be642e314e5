/** This layer's map of a guest range, as the reference engine reports it. */
import type { Extent } from '../engine/types.js';
import { hasHostCluster, type Mapping } from './entries.js';
import { l2TableOf, mappingOf } from './l2.js';
import type { OptState } from './state.js';

export async function mapExtents(st: OptState, offset: number, length: number): Promise<Extent[]> {
  const C = st.geometry.clusterSize;
  const l1Span = C * st.geometry.l2Entries;
  const out: Extent[] = [];
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const clusterStart = pos - (pos % C);
    const inL1 = Math.floor(clusterStart / l1Span) < st.header.l1Size;
    if (!inL1 || l2TableOf(st, clusterStart) === 0) {
      const to = Math.min(clusterStart + l1Span - (clusterStart % l1Span), end);
      push(out, { start: pos, length: to - pos, kind: 'unallocated' });
      pos = to;
      continue;
    }
    const { mapping } = await mappingOf(st, clusterStart);
    for (const piece of pieces(st, mapping, clusterStart)) {
      const from = Math.max(piece.start, pos);
      const to = Math.min(piece.start + piece.length, end);
      if (from >= to) continue;
      const hostOffset = piece.hostOffset === undefined ? undefined : piece.hostOffset + (from - piece.start);
      push(out, { ...piece, start: from, length: to - from, ...(hostOffset === undefined ? {} : { hostOffset }) });
    }
    pos = Math.min(clusterStart + C, end);
  }
  return out;
}

function pieces(st: OptState, m: Mapping, clusterStart: number): Extent[] {
  const C = st.geometry.clusterSize;
  const file = st.dataFile ? ('data-file' as const) : ('image' as const);
  switch (m.kind) {
    case 'unallocated':
      return [{ start: clusterStart, length: C, kind: 'unallocated' }];
    case 'compressed':
      return [{ start: clusterStart, length: C, kind: 'compressed' }];
    case 'normal':
      return [{ start: clusterStart, length: C, kind: 'data', hostOffset: m.hostOffset, file }];
    case 'zero':
      return [
        hasHostCluster(st, m)
          ? { start: clusterStart, length: C, kind: 'zero', hostOffset: m.hostOffset, file }
          : { start: clusterStart, length: C, kind: 'zero' },
      ];
    case 'subclusters': {
      const S = st.geometry.subclusterSize;
      const out: Extent[] = [];
      for (let sc = 0; sc < 32; sc++) {
        const start = clusterStart + sc * S;
        const host = hasHostCluster(st, m) ? { hostOffset: m.hostOffset + sc * S, file } : {};
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

function push(out: Extent[], e: Extent): void {
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
