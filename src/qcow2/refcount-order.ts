/**
 * Changing the width of the refcounts (`qemu-img amend -o refcount_bits=N`; QEMU's
 * qcow2_change_refcount_order): every cluster keeps the refcount it has (leaks stay leaks, as in
 * QEMU, which copies refcounts rather than recounting references), written into a new refcount
 * structure of the new width.
 *
 * Crash safety: the new refcount blocks and table are placed (rebuild.ts's planRefcounts) on
 * clusters whose refcount is 0 in the old structure, written and flushed; then one header write
 * names the new table and width; then the old table and blocks are no longer counted (the new
 * structure already says so). Before the header write the old structure is whole and the new one
 * lies on free clusters; after it, the new one is whole. No state in between is inconsistent.
 */
import { unsupported, usage } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeRefcountTableEntry, maxRefcount, readRefcountBig, refcountBlockEntries, writeRefcount } from '../format/refcount.js';
import { writeHeader } from './header.js';
import { type Counts, planRefcounts } from './rebuild.js';
import type { Qcow2State } from './state.js';

export async function changeRefcountOrder(st: Qcow2State, order: number, onProgress?: (done: number, total: number) => void): Promise<void> {
  if (order === st.geometry.refcountOrder) return;
  const C = st.geometry.clusterSize;
  const oldOrder = st.geometry.refcountOrder;
  const oldE = st.geometry.refcountBlockEntries;
  const newMax = maxRefcount(order);
  // Everything cached is written back, and no refcount block is read from the cache after this.
  await st.store.beforeRefcountRewrite();

  const counts: Counts = new Map();
  const oldBlocks: number[] = [];
  const tableEntries = st.store.refcountTableEntries();
  const present: { index: number; block: number }[] = [];
  for (let i = 0; i < tableEntries; i++) {
    const block = await st.store.refcountBlock(i);
    if (block !== 0) present.push({ index: i, block });
  }
  // Progress: each old block read, then each new block written (about as many).
  const steps = present.length * 2;
  for (const [k, { index: i, block }] of present.entries()) {
    oldBlocks.push(block);
    const bytes = await st.file.read(block, C);
    for (let j = 0; j < oldE; j++) {
      const value = readRefcountBig(bytes, j, oldOrder);
      if (value === 0n) continue;
      if (value > newMax) {
        throw usage(`Cannot decrease refcount entry width to ${1 << order} bits: Cluster at offset 0x${((i * oldE + j) * C).toString(16)} has a refcount of ${value}`);
      }
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`cluster ${i * oldE + j} has a refcount of ${value}, more than we count`);
      counts.set(i * oldE + j, Number(value));
    }
    onProgress?.(k + 1, steps);
  }

  const newE = refcountBlockEntries(st.header.clusterBits, order);
  // A fresh table (none of the old one is reused): cluster 0 with 0 clusters means "none yet".
  const plan = planRefcounts(counts, new Map(), { cluster: 0, clusters: 0 }, { clusterSize: C, refcountBlockEntries: newE });
  // Once the header names the new structure, the old one is free.
  const oldTable = Number(st.header.refcountTableOffset);
  const free = (cluster: number) => counts.set(cluster, (counts.get(cluster) ?? 1) - 1);
  for (let k = 0; k < st.header.refcountTableClusters; k++) free(oldTable / C + k);
  for (const block of oldBlocks) free(block / C);

  let written = 0;
  for (const [i, b] of plan.blocks) {
    const block = new Uint8Array(C);
    for (let j = 0; j < newE; j++) {
      const n = counts.get(i * newE + j) ?? 0;
      if (n !== 0) writeRefcount(block, j, order, n);
    }
    await st.file.write(b * C, block, 'refcount-block');
    onProgress?.(present.length + Math.floor((++written * present.length) / plan.blocks.size), steps);
  }
  const table = new Uint8Array(plan.tableClusters * C);
  const offsets = new Array<number>((plan.tableClusters * C) / 8).fill(0);
  for (const [i, b] of plan.blocks) {
    encodeRefcountTableEntry(view(table), i * 8, { blockOffset: b * C, offsetHighBits: 0, reserved: 0 });
    offsets[i] = b * C;
  }
  await st.file.write(plan.tableCluster * C, table, 'refcount-table');
  await st.file.flush();

  st.header.refcountOrder = order;
  st.header.refcountTableOffset = BigInt(plan.tableCluster * C);
  st.header.refcountTableClusters = plan.tableClusters;
  st.geometry = { ...st.geometry, refcountOrder: order, refcountBlockEntries: newE };
  st.store.refcountTableReplaced(offsets);
  await writeHeader(st);
  await st.file.flush();
  st.freeHint = 0;
}
