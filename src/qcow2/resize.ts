/** Growing the virtual disk, and the active L1 table with it. */
import { unsupported, usage } from '../errors.js';
import { l1EntriesFor } from '../format/geometry.js';
import { writeHeader } from './header.js';
import { adjustRange, allocateClusters } from './refcounts.js';
import type { Qcow2State } from './state.js';
import { writeZeroes } from './zero-discard.js';

/** Sets the virtual size (growing the L1 table when it needs more entries) and writes the header. */
export async function setVirtualSize(st: Qcow2State, newSize: number): Promise<void> {
  const needed = l1EntriesFor(newSize, st.geometry);
  if (needed > st.header.l1Size) await growL1(st, needed);
  st.header.size = BigInt(newSize);
  st.geometry = { ...st.geometry, virtualSize: newSize };
  await writeHeader(st);
  if (st.dataFile && (await st.dataFile.size()) < newSize) await st.dataFile.truncate(newSize);
}

export async function resize(st: Qcow2State, newSize: number): Promise<void> {
  if (!Number.isSafeInteger(newSize) || newSize < 0 || newSize % 512 !== 0) {
    throw usage(`new size ${newSize} is not a multiple of 512 bytes`);
  }
  const oldSize = st.geometry.virtualSize;
  if (newSize < oldSize) throw unsupported('shrinking an image is not supported');
  await setVirtualSize(st, newSize);
  // The new area reads as zeros, never as the backing file's data there. As QEMU: when the backing
  // file is longer than the old size (bdrv_co_truncate's BDRV_REQ_ZERO_WRITE), the whole new area,
  // to the new end, is zeroed (qcow2_subcluster_zeroize), not only the part the backing file covers.
  if ((st.backing?.virtualSize ?? 0) > oldSize && newSize > oldSize) await writeZeroes(st, oldSize, newSize - oldSize);
}

/**
 * Moves the active L1 table to new clusters with `entries` entries, the old ones copied: the new
 * table, then the header, then the old table's clusters are freed.
 */
export async function growL1(st: Qcow2State, entries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const oldOffset = Number(st.header.l1TableOffset);
  const oldBytes = st.header.l1Size * 8;
  const table = await st.store.activeL1Bytes(Math.ceil((entries * 8) / C) * C);
  const offset = await allocateClusters(st, table.byteLength / C);
  await st.store.writeThrough(offset, table, 'l1');
  await st.file.flush();
  st.header.l1TableOffset = BigInt(offset);
  st.header.l1Size = entries;
  st.store.activeL1Moved();
  await writeHeader(st);
  if (oldBytes > 0) await adjustRange(st, oldOffset, oldBytes, -1);
}
