/**
 * Zero clusters made into what a version 2 image can say (QEMU's qcow2_expand_zero_clusters, run
 * by a downgrade to compat=0.10), in every L2 table of the active L1 table and of each snapshot's:
 *  - a zero cluster without a host cluster: unallocated when the image has no backing file (it
 *    then reads as zeros); else a new host cluster filled with zeros;
 *  - a zero cluster with a host cluster only it uses: that cluster filled with zeros, the zero
 *    flag dropped; with a host cluster a snapshot shares: as one without (QEMU 7.2 fills the shared
 *    cluster with zeros in place, which changes the snapshot's content and leaves COPIED set on a
 *    cluster whose refcount is above 1: `qemu-img check` then reports errors).
 * An L2 table shared between L1 tables is changed in place once (the change means the same for
 * each of them), and a new cluster gets as many references as the table has, as QEMU does.
 *
 * Crash safety: per L2 table, the new clusters are allocated and every cluster is zero-filled and
 * flushed before any entry is rewritten; an entry changed alone keeps the guest's content the same
 * (a crash leaves at worst a leaked cluster).
 */
import { corrupt } from '../errors.js';
import type { NewL2Entry } from './mapping.js';
import { adjustRefcount, allocateClusters } from './refcounts.js';
import type { Qcow2State } from './state.js';

export async function expandZeroClusters(st: Qcow2State, onProgress?: (done: number, total: number) => void): Promise<void> {
  const C = st.geometry.clusterSize;
  const tables: { offset: number; entries: number }[] = [{ offset: Number(st.header.l1TableOffset), entries: st.header.l1Size }];
  for (const sn of await st.store.readSnapshots()) tables.push({ offset: Number(sn.l1TableOffset), entries: sn.l1Size });
  const total = tables.reduce((n, t) => n + t.entries, 0);
  let done = 0;
  const seen = new Set<number>();
  for (const t of tables) {
    for (const l2 of await st.store.readL1Table(t.offset, t.entries)) {
      onProgress?.(++done, total);
      if (l2 === 0 || seen.has(l2)) continue;
      seen.add(l2);
      await expandTable(st, l2, C);
    }
  }
}

async function expandTable(st: Qcow2State, l2: number, C: number): Promise<void> {
  if (l2 % C !== 0) throw corrupt(`L2 table offset 0x${l2.toString(16)} is not cluster aligned`, { offset: l2 });
  const tableRefs = await st.store.getRefcount(l2 / C);
  const changes: { index: number; entry: NewL2Entry; release?: number }[] = [];
  for (const [index, m] of (await st.store.l2Table(l2)).entries()) {
    if (m.kind !== 'zero') continue;
    const owned = m.hostOffset !== 0 && (await st.store.getRefcount(m.hostOffset / C)) === 1;
    if (owned) {
      changes.push({ index, entry: { kind: 'normal', hostOffset: m.hostOffset, copied: tableRefs === 1 } });
      continue;
    }
    const release = m.hostOffset !== 0 ? m.hostOffset / C : undefined;
    if (st.backing === undefined) {
      changes.push({ index, entry: { kind: 'unallocated' }, ...(release !== undefined ? { release } : {}) });
      continue;
    }
    const host = await allocateClusters(st, 1);
    if (tableRefs > 1) await adjustRefcount(st, host / C, tableRefs - 1);
    changes.push({ index, entry: { kind: 'normal', hostOffset: host, copied: tableRefs === 1 }, ...(release !== undefined ? { release } : {}) });
  }
  if (changes.length === 0) return;
  // As QEMU (bdrv_pwrite_zeroes): zeroed without writing data where the file can.
  for (const c of changes) if (c.entry.kind === 'normal') await st.file.zeroRange(c.entry.hostOffset, C, 'data');
  // The new clusters' refcounts and zeros on disk before any entry names them.
  await st.store.beforeRefcountRewrite();
  await st.file.flush();
  for (const c of changes) await st.store.setL2Entry(l2, c.index, c.entry);
  for (const c of changes) if (c.release !== undefined) await adjustRefcount(st, c.release, -tableRefs);
}
