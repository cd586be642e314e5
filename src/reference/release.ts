/** Dropping the reference an L2 entry held on its host storage. */
import type { Mapping } from './entries.js';
import { adjustRange, adjustRefcount, allocateClusters } from './refcounts.js';
import type { RefState } from './state.js';

/**
 * True when the mapping owns a host cluster (of the image file or, with a data file, of that).
 * With a data file, host offset 0 is guest cluster 0, allocated when COPIED is set — except for a
 * zero-flagged entry, which QEMU reads as plain zero (it checks the zero flag first).
 */
export function hasHostCluster(st: RefState, m: Mapping): m is Extract<Mapping, { hostOffset: number; copied: boolean }> {
  if (m.kind !== 'normal' && m.kind !== 'zero' && m.kind !== 'subclusters') return false;
  return m.hostOffset !== 0 || (st.features.externalDataFile && m.copied && m.kind !== 'zero');
}

/** Decrements the refcounts of what `m` pointed to (data clusters in a data file have none). */
export async function releaseMapping(st: RefState, m: Mapping): Promise<void> {
  if (m.kind === 'compressed') {
    await adjustRange(st, m.hostOffset, m.length, -1);
    return;
  }
  if (!hasHostCluster(st, m) || st.features.externalDataFile) return;
  await adjustRefcount(st, m.hostOffset / st.geometry.clusterSize, -1);
}

/** Host cluster for new guest data: allocated in the image, or the guest offset in a data file. */
export async function allocateDataCluster(st: RefState, guestClusterStart: number): Promise<number> {
  if (st.features.externalDataFile) return guestClusterStart;
  return allocateClusters(st, 1);
}
