/** Dropping the reference an L2 entry held on its host storage (after the entry changed). */
import { hasHostCluster, type Mapping } from './entries.js';
import { adjustRange, adjustRefcount } from './refcounts.js';
import type { OptState } from './state.js';

export async function releaseMapping(st: OptState, m: Mapping): Promise<void> {
  if (m.kind === 'compressed') {
    await adjustRange(st, m.hostOffset, m.length, -1);
    return;
  }
  if (!hasHostCluster(st, m) || st.features.externalDataFile) return;
  await adjustRefcount(st, m.hostOffset / st.geometry.clusterSize, -1);
}
