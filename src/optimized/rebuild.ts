/**
 * Rebuilding refcounts from the references (an image left dirty with lazy refcounts), as the
 * reference engine: count, place missing blocks (and a bigger table) on unreferenced clusters,
 * rewrite every block. A repair at open time: its counts map is proportional to the used clusters.
 */
import { unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { MAX_REFCOUNT_TABLE_BYTES } from '../format/constants.js';
import { encodeRefcountTableEntry, maxRefcount, writeRefcount } from '../format/refcount.js';
import { bitmapRanges } from './bitmaps.js';
import { writeHeader } from './header.js';
import { forgetMetadataMap } from './overlap.js';
import { readSnapshots } from './snapshots.js';
import type { OptState } from './state.js';
import { readL1Table, readL2Table, recomputeCopied } from './walk.js';

type Counts = Map<number, number>;

function countRange(st: OptState, counts: Counts, offset: number, length: number): void {
  const C = st.geometry.clusterSize;
  if (length <= 0) return;
  for (let c = Math.floor(offset / C); c <= Math.floor((offset + length - 1) / C); c++) counts.set(c, (counts.get(c) ?? 0) + 1);
}

async function countTree(st: OptState, counts: Counts, l1Offset: number, l1Size: number): Promise<void> {
  const C = st.geometry.clusterSize;
  countRange(st, counts, l1Offset, l1Size * 8);
  for (const l2 of await readL1Table(st, l1Offset, l1Size)) {
    if (l2 === 0) continue;
    countRange(st, counts, l2, C);
    for (const m of await readL2Table(st, l2)) {
      if (m.kind === 'compressed') countRange(st, counts, m.hostOffset, m.length);
      else if ((m.kind === 'normal' || m.kind === 'zero' || m.kind === 'subclusters') && m.hostOffset !== 0 && !st.features.externalDataFile) {
        countRange(st, counts, m.hostOffset, C);
      }
    }
  }
}

async function countReferences(st: OptState): Promise<Counts> {
  const C = st.geometry.clusterSize;
  const counts: Counts = new Map();
  countRange(st, counts, 0, C);
  countRange(st, counts, Number(st.header.refcountTableOffset), st.header.refcountTableClusters * C);
  for (const block of st.refcountTable) if (block !== 0) countRange(st, counts, block, C);
  await countTree(st, counts, Number(st.header.l1TableOffset), st.header.l1Size);
  if (st.header.nbSnapshots > 0) {
    countRange(st, counts, Number(st.header.snapshotsOffset), st.snapshotTableBytes);
    for (const sn of await readSnapshots(st)) await countTree(st, counts, Number(sn.l1TableOffset), sn.l1Size);
  }
  for (const ext of st.extensions) {
    if (ext.kind === 'crypto-header') countRange(st, counts, Number(ext.offset), Number(ext.length));
  }
  for (const r of await bitmapRanges(st)) countRange(st, counts, r.offset, r.length);
  return counts;
}

export async function rebuildRefcounts(st: OptState): Promise<void> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  await st.order.flushCaches();
  const counts = await countReferences(st);
  const max = maxRefcount(st.geometry.refcountOrder);
  for (const [c, n] of counts) {
    if (BigInt(n) > max) throw unsupported(`cluster ${c} has ${n} references, more than refcount_bits can hold`);
  }
  const blocks = new Map<number, number>();
  st.refcountTable.forEach((b, i) => {
    if (b !== 0) blocks.set(i, b / C);
  });
  let tableCluster = Number(st.header.refcountTableOffset) / C;
  let tableClusters = st.header.refcountTableClusters;
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
        for (let k = 0; k < tableClusters; k++) counts.set(tableCluster + k, (counts.get(tableCluster + k) ?? 1) - 1);
      } else {
        for (let k = 0; k < tableClusters; k++) counts.set(tableCluster + k, 0);
      }
      tableClusters = wanted + 1;
      if (tableClusters * C > MAX_REFCOUNT_TABLE_BYTES) throw unsupported('the refcount table would exceed the 8 MiB limit');
      tableCluster = takeFree(tableClusters);
      newTable = true;
    }
  }
  await st.order.flushCaches();
  st.refcountCache.clear();
  const order = st.geometry.refcountOrder;
  for (const [i, b] of blocks) {
    const block = new Uint8Array(C);
    for (let j = 0; j < E; j++) {
      const n = counts.get(i * E + j) ?? 0;
      if (n !== 0) writeRefcount(block, j, order, n);
    }
    await st.file.write(b * C, block, 'refcount-block');
  }
  const table = new Uint8Array(tableClusters * C);
  const tv = view(table);
  const offsets = new Array<number>((tableClusters * C) / 8).fill(0);
  for (const [i, b] of blocks) {
    encodeRefcountTableEntry(tv, i * 8, { blockOffset: b * C, offsetHighBits: 0, reserved: 0 });
    offsets[i] = b * C;
  }
  await st.file.write(tableCluster * C, table, 'refcount-table');
  await st.file.flush();
  st.refcountTable = offsets;
  forgetMetadataMap(st);
  if (newTable) {
    st.header.refcountTableOffset = BigInt(tableCluster * C);
    st.header.refcountTableClusters = tableClusters;
    await writeHeader(st);
  }
  st.freeHint = 0;
  st.compressedCursor = 0;
  await recomputeCopied(st);
}
