/** Whole-tree walks (snapshots, rebuild): L1 tables, refcounts of trees, COPIED flags. */
import { decodeL1Table } from '../format/l1.js';
import { decodeMapping, hasHostCluster, type Mapping } from './entries.js';
import { setEntry, writeL1Entry } from './l2.js';
import { adjustRange, adjustRefcount, getRefcount } from './refcounts.js';
import type { OptState } from './state.js';

/** L2 offsets of an L1 table on disk (0 where unallocated). */
export async function readL1Table(st: OptState, offset: number, entries: number): Promise<number[]> {
  if (entries === 0) return [];
  const bytes = new Uint8Array(entries * 8);
  bytes.set(await st.file.read(offset, entries * 8));
  return decodeL1Table(bytes, entries).map((e) => e.l2Offset);
}

/** Every entry of an L2 table (through the cache). */
export async function readL2Table(st: OptState, l2: number): Promise<Mapping[]> {
  const table = await st.l2Cache.readTable(l2);
  const out: Mapping[] = [];
  for (let i = 0; i < st.geometry.l2Entries; i++) out.push(decodeMapping(st, table, i, l2));
  return out;
}

export async function adjustTree(st: OptState, l2Offsets: readonly number[], delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  for (const l2 of l2Offsets) {
    if (l2 === 0) continue;
    for (const m of await readL2Table(st, l2)) {
      if (m.kind === 'compressed') await adjustRange(st, m.hostOffset, m.length, delta);
      else if (hasHostCluster(st, m) && !st.features.externalDataFile) await adjustRefcount(st, m.hostOffset / C, delta);
    }
    await adjustRefcount(st, l2 / C, delta);
  }
}

/** Sets COPIED in the active L1 and L2 tables exactly where the refcount is 1. */
export async function recomputeCopied(st: OptState): Promise<void> {
  const C = st.geometry.clusterSize;
  for (let i = 0; i < st.header.l1Size; i++) {
    const l2 = st.l1Offsets[i] ?? 0;
    if (l2 === 0) continue;
    const tableCopied = (await getRefcount(st, l2 / C)) === 1;
    if (tableCopied !== st.l1Copied[i]) await writeL1Entry(st, i, l2, tableCopied);
    const entries = await readL2Table(st, l2);
    for (const [index, m] of entries.entries()) {
      if (m.kind !== 'normal' && m.kind !== 'zero' && m.kind !== 'subclusters') continue;
      if (!hasHostCluster(st, m)) continue;
      const copied = st.features.externalDataFile || (await getRefcount(st, m.hostOffset / C)) === 1;
      if (copied !== m.copied) await setEntry(st, l2, index, { ...m, copied });
    }
  }
}
