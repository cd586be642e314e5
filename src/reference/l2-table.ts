/** Getting an L2 table this image may write to: allocated, or copied away from a snapshot. */
import { usage } from '../errors.js';
import { l1Index, readL1Entry, writeL1Entry } from './entries.js';
import { adjustRefcount, allocateClusters } from './refcounts.js';
import type { RefState } from './state.js';

/** Offset of a writable (refcount 1) L2 table for the guest cluster at `guestOffset`. */
export async function writableL2(st: RefState, guestOffset: number): Promise<number> {
  const C = st.geometry.clusterSize;
  const index = l1Index(st, guestOffset);
  if (index >= st.header.l1Size) throw usage(`guest offset 0x${guestOffset.toString(16)} is beyond the L1 table`);
  const l1 = await readL1Entry(st, index);
  if (l1.l2Offset !== 0 && l1.copied) return l1.l2Offset;
  const fresh = await allocateClusters(st, 1);
  // A new table is empty; a shared one is copied so the snapshot keeps the original.
  const content = l1.l2Offset === 0 ? new Uint8Array(C) : await st.file.read(l1.l2Offset, C);
  const table = new Uint8Array(C);
  table.set(content);
  await st.file.write(fresh, table, 'l2');
  await writeL1Entry(st, l1.at, fresh, true);
  if (l1.l2Offset !== 0) await adjustRefcount(st, l1.l2Offset / C, -1);
  return fresh;
}

export function l2IndexOf(st: RefState, guestOffset: number): number {
  return Math.floor(guestOffset / st.geometry.clusterSize) % st.geometry.l2Entries;
}

export function l2EntryAt(st: RefState, l2Offset: number, guestOffset: number): number {
  return l2Offset + l2IndexOf(st, guestOffset) * st.geometry.l2EntryBytes;
}
