/** This layer's map of a guest range (what qemu-img map builds on), cluster by cluster. */
import { appendClipped, appendExtent, type ClusterShape, clusterExtents } from '../engine/cluster-extents.js';
import type { Extent } from '../engine/types.js';
import { mappingOf, spanOf } from './lookup.js';
import { hasHostCluster } from './release.js';
import type { RefState } from './state.js';

export async function mapExtents(st: RefState, offset: number, length: number): Promise<Extent[]> {
  const C = st.geometry.clusterSize;
  const out: Extent[] = [];
  const shape = shapeOf(st);
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const clusterStart = pos - (pos % C);
    const located = await mappingOf(st, clusterStart);
    if (located.l2 === undefined) {
      const to = Math.min(clusterStart + spanOf(st, located, clusterStart), end);
      appendExtent(out, { start: pos, length: to - pos, kind: 'unallocated' });
      pos = to;
      continue;
    }
    const { mapping } = located;
    appendClipped(out, clusterExtents(mapping, clusterStart, shape), pos, end);
    pos = Math.min(clusterStart + C, end);
  }
  return out;
}

function shapeOf(st: RefState): ClusterShape {
  return {
    clusterSize: st.geometry.clusterSize,
    subclusterSize: st.geometry.subclusterSize,
    file: st.dataFile ? 'data-file' : 'image',
    hasHost: (m) => hasHostCluster(st, m),
  };
}
