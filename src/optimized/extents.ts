/** This layer's map of a guest range, as the reference engine reports it. */
import { appendClipped, appendExtent, type ClusterShape, clusterExtents } from '../engine/cluster-extents.js';
import type { Extent } from '../engine/types.js';
import { hasHostCluster } from './entries.js';
import { l2TableOf, mappingOf } from './l2.js';
import type { OptState } from './state.js';

export async function mapExtents(st: OptState, offset: number, length: number): Promise<Extent[]> {
  const C = st.geometry.clusterSize;
  const l1Span = C * st.geometry.l2Entries;
  const out: Extent[] = [];
  const shape = shapeOf(st);
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const clusterStart = pos - (pos % C);
    const inL1 = Math.floor(clusterStart / l1Span) < st.header.l1Size;
    if (!inL1 || l2TableOf(st, clusterStart) === 0) {
      const to = Math.min(clusterStart + l1Span - (clusterStart % l1Span), end);
      appendExtent(out, { start: pos, length: to - pos, kind: 'unallocated' });
      pos = to;
      continue;
    }
    const { mapping } = await mappingOf(st, clusterStart);
    appendClipped(out, clusterExtents(mapping, clusterStart, shape), pos, end);
    pos = Math.min(clusterStart + C, end);
  }
  return out;
}

function shapeOf(st: OptState): ClusterShape {
  return {
    clusterSize: st.geometry.clusterSize,
    subclusterSize: st.geometry.subclusterSize,
    file: st.dataFile ? 'data-file' : 'image',
    hasHost: (m) => hasHostCluster(st, m),
  };
}
