/**
 * Refcounts through the refcount-block cache, the refcount table held in memory and written
 * through; and packed allocation of compressed clusters. The allocation policy itself is shared
 * (src/qcow2/refcounts.ts).
 */
import { corrupt } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeRefcountTableEntry, maxRefcount, readRefcount, writeRefcount } from '../format/refcount.js';
import { adjustRefcount, allocateClusters, ensureBlocksFor } from '../qcow2/refcounts.js';
import { forgetMetadataMap } from './overlap.js';
import type { OptState } from './state.js';

/** Offset of refcount block `index` (0: none); refuses an entry that was invalid at open. */
export function refcountBlock(st: OptState, index: number): number {
  const block = st.refcountTable[index] ?? 0;
  if (block < 0) throw corrupt(`refcount block ${index} has an invalid offset`, { offset: Number(st.header.refcountTableOffset) + index * 8 });
  return block;
}

export async function getRefcount(st: OptState, cluster: number): Promise<number> {
  const block = refcountBlock(st, Math.floor(cluster / st.geometry.refcountBlockEntries));
  if (block === 0) return 0;
  return onRefcount(st, block, cluster, (bytes, index) => readRefcount(bytes, index, st.geometry.refcountOrder));
}

/** Runs `fn` on the cached slice of a refcount block holding a cluster's refcount, with its index there. */
function onRefcount<T>(st: OptState, block: number, cluster: number, fn: (bytes: Uint8Array, index: number, key: number) => T): Promise<T> {
  const order = st.geometry.refcountOrder;
  const perSlice = (st.refcountCache.sliceBytes * 8) >> order;
  const inBlock = cluster % st.geometry.refcountBlockEntries;
  const first = inBlock - (inBlock % perSlice);
  return st.refcountCache.useSlice(block, (first << order) / 8, (bytes, _at, key) => fn(bytes, inBlock - first, key));
}

export async function putRefcount(st: OptState, block: number, cluster: number, value: number): Promise<void> {
  await onRefcount(st, block, cluster, (bytes, index, key) => {
    writeRefcount(bytes, index, st.geometry.refcountOrder, value);
    st.refcountCache.markDirty(key, bytes);
  });
}

export async function lastUsedInBlock(st: OptState, block: number): Promise<number> {
  const bytes = await st.refcountCache.readTable(block);
  for (let j = st.geometry.refcountBlockEntries - 1; j >= 0; j--) if (readRefcount(bytes, j, st.geometry.refcountOrder) !== 0) return j;
  return -1;
}

export async function writeRefcountTableEntry(st: OptState, index: number, blockOffset: number): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeRefcountTableEntry(view(bytes), 0, { blockOffset, offsetHighBits: 0, reserved: 0 });
  await st.order.writeThrough(Number(st.header.refcountTableOffset) + index * 8, bytes, 'refcount-table');
  st.refcountTable[index] = blockOffset;
  forgetMetadataMap(st);
}

/** Allocates the `count` clusters from `first` on if all of them are free; false if one is not. */
async function allocateAt(st: OptState, first: number, count: number): Promise<boolean> {
  for (;;) {
    for (let c = first; c < first + count; c++) if ((await getRefcount(st, c)) !== 0) return false;
    // A new block may describe (and occupy) one of them: look again.
    if (await ensureBlocksFor(st, first, count)) continue;
    for (let c = first; c < first + count; c++) await adjustRefcount(st, c, 1);
    return true;
  }
}

/**
 * Host bytes for one compressed cluster, packed as QEMU packs them (qcow2_alloc_bytes): right
 * after the previous compressed cluster when its host cluster has room, running on into the
 * following host clusters when they are free, else from the start of fresh clusters. Every host
 * cluster the bytes touch gains one reference.
 */
export async function allocateBytes(st: OptState, n: number): Promise<number> {
  const C = st.geometry.clusterSize;
  let offset = st.compressedCursor;
  if (offset !== 0) {
    const cluster = Math.floor(offset / C);
    const rc = await getRefcount(st, cluster);
    const extra = Math.ceil(Math.max(0, n - (C - (offset % C))) / C);
    const appendable = rc > 0 && BigInt(rc) < maxRefcount(st.geometry.refcountOrder);
    if (appendable && (extra === 0 || (await allocateAt(st, cluster + 1, extra)))) await adjustRefcount(st, cluster, 1);
    else offset = 0;
  }
  if (offset === 0) offset = await allocateClusters(st, Math.ceil(n / C));
  st.compressedCursor = (offset + n) % C === 0 ? 0 : offset + n;
  return offset;
}
