/** Whole trees of tables (snapshots, rebuild): refcounts of a tree, and the COPIED flags. */
import { hasHostCluster } from './mapping.js';
import { adjustRange, adjustRefcount } from './refcounts.js';
import type { Qcow2State } from './state.js';
import { checkL2Offset } from './tables.js';

/** Adds `delta` to the refcount of every L2 table of the tree and every cluster they map. */
export async function adjustTree(st: Qcow2State, l2Offsets: readonly number[], delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  for (const l2 of l2Offsets) {
    if (l2 === 0) continue;
    for (const m of await st.store.l2Table(l2)) {
      if (m.kind === 'compressed') await adjustRange(st, m.hostOffset, m.length, delta);
      else if (hasHostCluster(st, m) && !st.features.externalDataFile) await adjustRefcount(st, m.hostOffset / C, delta);
    }
    await adjustRefcount(st, l2 / C, delta);
  }
}

/** Sets COPIED in the active L1 and L2 tables exactly where the refcount is 1. */
export async function recomputeCopied(st: Qcow2State): Promise<void> {
  const C = st.geometry.clusterSize;
  for (let i = 0; i < st.header.l1Size; i++) {
    const l1 = await st.store.l1Entry(i);
    const l2 = checkL2Offset(st, i, l1.l2Offset);
    if (l2 === 0) continue;
    const tableCopied = (await st.store.getRefcount(l2 / C)) === 1;
    if (tableCopied !== l1.copied) await st.store.setL1Entry(i, l2, tableCopied);
    const entries = await st.store.l2Table(l2);
    for (const [index, m] of entries.entries()) {
      if (!hasHostCluster(st, m)) continue;
      const copied = st.features.externalDataFile || (await st.store.getRefcount(m.hostOffset / C)) === 1;
      if (copied !== m.copied) await st.store.setL2Entry(l2, index, { ...m, copied });
    }
  }
}
