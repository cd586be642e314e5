/**
 * Rebuilding refcounts from what the image references (an image left dirty, by lazy refcounts or
 * an update under the dirty bit that stopped half way): count every reference, plan where refcount
 * blocks (and a bigger table) go on unreferenced clusters, then rewrite every refcount block from
 * the counts. The counts map is proportional to the clusters in use.
 */
import { unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { MAX_REFCOUNT_TABLE_BYTES } from '../limits.js';
import { encodeRefcountTableEntry, maxRefcount, writeRefcount } from '../format/refcount.js';
import { bitmapRanges } from './bitmaps.js';
import { writeHeader } from './header.js';
import { hasHostCluster } from './mapping.js';
import { checkedSnapshotTables } from './snapshots.js';
import type { Qcow2State } from './state.js';
import { recomputeCopied } from './tree.js';

/** Reference counts by cluster index. */
export type Counts = Map<number, number>;

function countRange(C: number, counts: Counts, offset: number, length: number): void {
  if (length <= 0) return;
  for (let c = Math.floor(offset / C); c <= Math.floor((offset + length - 1) / C); c++) counts.set(c, (counts.get(c) ?? 0) + 1);
}

async function countTree(st: Qcow2State, counts: Counts, l1Offset: number, l1Size: number): Promise<void> {
  const C = st.geometry.clusterSize;
  countRange(C, counts, l1Offset, l1Size * 8);
  for (const l2 of await st.store.readL1Table(l1Offset, l1Size)) {
    if (l2 === 0) continue;
    countRange(C, counts, l2, C);
    for (const m of await st.store.l2Table(l2)) {
      if (m.kind === 'compressed') countRange(C, counts, m.hostOffset, m.length);
      else if (hasHostCluster(st, m) && m.hostOffset !== 0 && !st.features.externalDataFile) countRange(C, counts, m.hostOffset, C);
    }
  }
}

/** Everything the image references, refcount structures included. */
export async function countReferences(st: Qcow2State): Promise<Counts> {
  const C = st.geometry.clusterSize;
  const counts: Counts = new Map();
  countRange(C, counts, 0, C);
  countRange(C, counts, Number(st.header.refcountTableOffset), st.header.refcountTableClusters * C);
  for (let i = 0; i < st.store.refcountTableEntries(); i++) {
    const block = await st.store.refcountBlock(i);
    if (block !== 0) countRange(C, counts, block, C);
  }
  await countTree(st, counts, Number(st.header.l1TableOffset), st.header.l1Size);
  if (st.header.nbSnapshots > 0) {
    countRange(C, counts, Number(st.header.snapshotsOffset), st.snapshotTableBytes);
    // A snapshot whose L1 table QEMU would not load is refused, not counted (or skipped and its clusters freed).
    for (const { sn, l1Offset } of await checkedSnapshotTables(st)) await countTree(st, counts, l1Offset, sn.l1Size);
  }
  for (const ext of st.extensions) {
    if (ext.kind === 'crypto-header') countRange(C, counts, Number(ext.offset), Number(ext.length));
  }
  for (const r of await bitmapRanges(st)) countRange(C, counts, r.offset, r.length);
  return counts;
}

export interface RefcountPlan {
  /** Refcount block cluster by block index. */
  blocks: Map<number, number>;
  tableCluster: number;
  tableClusters: number;
  /** The table moved (the header must name the new one). */
  newTable: boolean;
}

/**
 * Where the refcount structure goes: existing blocks are kept; missing ones (and, if needed, a new
 * table) are placed on unreferenced clusters. `counts` gains the references the plan adds.
 */
export function planRefcounts(
  counts: Counts,
  existing: Map<number, number>,
  table: { cluster: number; clusters: number },
  g: { clusterSize: number; refcountBlockEntries: number },
): RefcountPlan {
  const C = g.clusterSize;
  const E = g.refcountBlockEntries;
  const blocks = new Map(existing);
  let tableCluster = table.cluster;
  let tableClusters = table.clusters;
  let newTable = false;
  let cursor = 0;
  const takeFree = (n: number): number => {
    for (;;) {
      let ok = true;
      for (let k = 0; k < n; k++) {
        if ((counts.get(cursor + k) ?? 0) !== 0) {
          cursor += k + 1;
          ok = false;
          break;
        }
      }
      if (ok) {
        for (let k = 0; k < n; k++) counts.set(cursor + k, 1);
        cursor += n;
        return cursor - n;
      }
    }
  };
  for (;;) {
    const indexes = new Set<number>();
    for (const [c, n] of counts) if (n > 0) indexes.add(Math.floor(c / E));
    const needed = [...indexes].filter((i) => !blocks.has(i));
    let lastIndex = 0;
    for (const i of [...indexes, ...blocks.keys()]) lastIndex = Math.max(lastIndex, i);
    if (needed.length === 0 && lastIndex < (tableClusters * C) / 8) break;
    for (const i of needed) blocks.set(i, takeFree(1));
    let highest = 0;
    for (const i of blocks.keys()) highest = Math.max(highest, i);
    const wanted = Math.ceil(((highest + 1) * 8) / C);
    if (wanted > tableClusters) {
      if (!newTable) {
        // The old table stops being referenced once the new one is in place.
        for (let k = 0; k < tableClusters; k++) counts.set(tableCluster + k, (counts.get(tableCluster + k) ?? 1) - 1);
      } else {
        for (let k = 0; k < tableClusters; k++) counts.set(tableCluster + k, 0);
      }
      tableClusters = wanted + 1;
      if (tableClusters * C > MAX_REFCOUNT_TABLE_BYTES) throw unsupported(`the refcount table would exceed the ${MAX_REFCOUNT_TABLE_BYTES >> 20} MiB limit`);
      tableCluster = takeFree(tableClusters);
      newTable = true;
    }
  }
  return { blocks, tableCluster, tableClusters, newTable };
}

/**
 * Rewrites all refcounts to match the references: every block from the counts, then the table,
 * then the header if the table moved; COPIED flags follow.
 */
export async function rebuildRefcounts(st: Qcow2State): Promise<void> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const counts = await countReferences(st);
  const max = maxRefcount(st.geometry.refcountOrder);
  for (const [c, n] of counts) {
    if (BigInt(n) > max) throw unsupported(`cluster ${c} has ${n} references, more than refcount_bits can hold`);
  }
  const existing = new Map<number, number>();
  for (let i = 0; i < st.store.refcountTableEntries(); i++) {
    const b = await st.store.refcountBlock(i);
    if (b !== 0) existing.set(i, b / C);
  }
  const table = { cluster: Number(st.header.refcountTableOffset) / C, clusters: st.header.refcountTableClusters };
  const plan = planRefcounts(counts, existing, table, st.geometry);
  await st.store.beforeRefcountRewrite();
  const order = st.geometry.refcountOrder;
  for (const [i, b] of plan.blocks) {
    const block = new Uint8Array(C);
    for (let j = 0; j < E; j++) {
      const n = counts.get(i * E + j) ?? 0;
      if (n !== 0) writeRefcount(block, j, order, n);
    }
    await st.file.write(b * C, block, 'refcount-block');
  }
  const bytes = new Uint8Array(plan.tableClusters * C);
  const tv = view(bytes);
  const offsets = new Array<number>((plan.tableClusters * C) / 8).fill(0);
  for (const [i, b] of plan.blocks) {
    encodeRefcountTableEntry(tv, i * 8, { blockOffset: b * C, offsetHighBits: 0, reserved: 0 });
    offsets[i] = b * C;
  }
  await st.file.write(plan.tableCluster * C, bytes, 'refcount-table');
  await st.file.flush();
  if (plan.newTable) {
    st.header.refcountTableOffset = BigInt(plan.tableCluster * C);
    st.header.refcountTableClusters = plan.tableClusters;
  }
  st.store.refcountTableReplaced(offsets);
  if (plan.newTable) await writeHeader(st);
  st.freeHint = 0;
  await recomputeCopied(st);
}
