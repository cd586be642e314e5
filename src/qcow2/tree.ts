/** Whole trees of tables (snapshots, rebuild): refcounts of a tree, and the COPIED flags. */
import { hasHostCluster } from './mapping.js';
import { unsupported } from '../errors.js';
import { maxRefcount } from '../format/refcount.js';
import { adjustRefcount } from './refcounts.js';
import type { Qcow2State } from './state.js';
import { checkL2Offset } from './tables.js';

/** Refcount changes by cluster index, gathered before any is made. */
export type RefcountDeltas = Map<number, number>;

/**
 * Adds `delta` per reference the tree holds (its L2 tables and every cluster they map, a compressed
 * range counting once per cluster it touches) into `into`, changing nothing on disk.
 */
export async function countTree(st: Qcow2State, l2Offsets: readonly number[], delta: number, into: RefcountDeltas = new Map()): Promise<RefcountDeltas> {
  const C = st.geometry.clusterSize;
  const add = (cluster: number) => into.set(cluster, (into.get(cluster) ?? 0) + delta);
  for (const l2 of l2Offsets) {
    if (l2 === 0) continue;
    for (const m of await st.store.l2Table(l2)) {
      if (m.kind === 'compressed') {
        for (let c = Math.floor(m.hostOffset / C); c <= Math.floor((m.hostOffset + m.length - 1) / C); c++) add(c);
      } else if (hasHostCluster(st, m) && !st.features.externalDataFile) add(m.hostOffset / C);
    }
    add(l2 / C);
  }
  return into;
}

/** Refuses, before anything changes, when a gathered increase would overflow a refcount. */
export async function refuseOverflow(st: Qcow2State, deltas: RefcountDeltas, what: string): Promise<void> {
  const max = maxRefcount(st.geometry.refcountOrder);
  for (const [cluster, delta] of deltas) {
    if (delta > 0 && BigInt((await st.store.getRefcount(cluster)) + delta) > max) {
      throw unsupported(`${what} needs more references to clusters whose ${1 << st.geometry.refcountOrder}-bit refcounts are at their maximum`);
    }
  }
}

/** Makes the gathered increases (`sign` +1) or decreases (`sign` -1); changes of the other sign wait. */
export async function applyDeltas(st: Qcow2State, deltas: RefcountDeltas, sign: 1 | -1): Promise<void> {
  for (const [cluster, delta] of deltas) if (Math.sign(delta) === sign) await adjustRefcount(st, cluster, delta);
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
