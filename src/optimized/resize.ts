/** Growing the virtual disk, and the L1 table with it. Whole device locked, metadata mutex held. */
import { unsupported, usage } from '../errors.js';
import { l1EntriesFor } from '../format/geometry.js';
import { writeHeader } from './header.js';
import { encodeActiveL1 } from './l2.js';
import { adjustRange, allocateClusters } from './refcounts.js';
import type { OptState } from './state.js';
import { writeZeroes } from './zero-discard.js';

export async function setVirtualSize(st: OptState, newSize: number): Promise<void> {
  const needed = l1EntriesFor(newSize, st.geometry);
  if (needed > st.header.l1Size) await growL1(st, needed);
  st.header.size = BigInt(newSize);
  st.geometry = { ...st.geometry, virtualSize: newSize };
  await writeHeader(st);
  if (st.dataFile && (await st.dataFile.size()) < newSize) await st.dataFile.truncate(newSize);
}

export async function resize(st: OptState, newSize: number): Promise<void> {
  if (!Number.isSafeInteger(newSize) || newSize < 0 || newSize % 512 !== 0) {
    throw usage(`new size ${newSize} is not a multiple of 512 bytes`);
  }
  const oldSize = st.geometry.virtualSize;
  if (newSize < oldSize) throw unsupported('shrinking an image is not supported');
  await setVirtualSize(st, newSize);
  const backingEnd = Math.min(newSize, st.backing?.virtualSize ?? 0);
  if (backingEnd > oldSize) await writeZeroes(st, oldSize, backingEnd - oldSize);
}

export async function growL1(st: OptState, entries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const oldOffset = Number(st.header.l1TableOffset);
  const oldBytes = st.header.l1Size * 8;
  const table = encodeActiveL1(st, Math.ceil((entries * 8) / C) * C);
  const offset = await allocateClusters(st, table.byteLength / C);
  await st.order.writeThrough(offset, table, 'l1');
  await st.file.flush();
  st.header.l1TableOffset = BigInt(offset);
  st.header.l1Size = entries;
  while (st.l1Offsets.length < entries) {
    st.l1Offsets.push(0);
    st.l1Copied.push(false);
  }
  await writeHeader(st);
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}
