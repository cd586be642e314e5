/** Walking L1 tables and their L2 tables: refcount updates for whole trees, and COPIED flags. */
import { parseL1Table } from '../spec/kaitai.js';
import { classify, type Mapping, readL1Entry, writeL1Entry, writeL2Entry } from './entries.js';
import { adjustRange, adjustRefcount, getRefcount } from './refcounts.js';
import { hasHostCluster } from './release.js';
import type { RefState } from './state.js';

/** The L2 table offsets of an L1 table (0 where unallocated). */
export async function readL1Table(st: RefState, offset: number, entries: number): Promise<number[]> {
  if (entries === 0) return [];
  return parseL1Table(await st.file.read(offset, entries * 8), entries).entries.map((e) => e.offset);
}

/** Every entry of an L2 table, classified, with its file offset. */
export async function readL2Table(st: RefState, l2Offset: number): Promise<{ at: number; mapping: Mapping }[]> {
  const g = st.geometry;
  const bytes = await st.file.read(l2Offset, g.clusterSize);
  const out: { at: number; mapping: Mapping }[] = [];
  for (let i = 0; i < g.l2Entries; i++) {
    const at = l2Offset + i * g.l2EntryBytes;
    out.push({ at, mapping: classify(st, bytes.subarray(i * g.l2EntryBytes, (i + 1) * g.l2EntryBytes), at) });
  }
  return out;
}

/** Adds `delta` to the refcount of every L2 table of the tree and every cluster they map. */
export async function adjustTree(st: RefState, l2Offsets: readonly number[], delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  for (const l2 of l2Offsets) {
    if (l2 === 0) continue;
    for (const { mapping } of await readL2Table(st, l2)) {
      if (mapping.kind === 'compressed') await adjustRange(st, mapping.hostOffset, mapping.length, delta);
      else if (hasHostCluster(st, mapping) && !st.features.externalDataFile) await adjustRefcount(st, mapping.hostOffset / C, delta);
    }
    await adjustRefcount(st, l2 / C, delta);
  }
}

/** Sets COPIED in the active L1 and L2 tables exactly where the refcount is 1. */
export async function recomputeCopied(st: RefState): Promise<void> {
  const C = st.geometry.clusterSize;
  for (let i = 0; i < st.header.l1Size; i++) {
    const l1 = await readL1Entry(st, i);
    if (l1.l2Offset === 0) continue;
    const tableCopied = (await getRefcount(st, l1.l2Offset / C)) === 1;
    if (tableCopied !== l1.copied) await writeL1Entry(st, l1.at, l1.l2Offset, tableCopied);
    for (const { at, mapping } of await readL2Table(st, l1.l2Offset)) {
      if (mapping.kind !== 'normal' && mapping.kind !== 'zero' && mapping.kind !== 'subclusters') continue;
      if (!hasHostCluster(st, mapping)) continue;
      const copied = st.features.externalDataFile || (await getRefcount(st, mapping.hostOffset / C)) === 1;
      if (copied !== mapping.copied) await writeL2Entry(st, at, { ...mapping, copied });
    }
  }
}
