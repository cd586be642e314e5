/**
 * Refcounts through the refcount-block cache; the refcount table is held in memory and written
 * through. Allocation as in the reference engine: a run of free clusters from the free hint on,
 * after making sure the blocks describing them exist; new blocks describe themselves; a grown table
 * goes into a fresh self-describing area past everything in use.
 */
import { corrupt, unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { MAX_REFCOUNT_TABLE_BYTES } from '../format/constants.js';
import { encodeRefcountTableEntry, maxRefcount, readRefcount, writeRefcount } from '../format/refcount.js';
import { beforeLazyIncrement, writeHeader } from './header.js';
import { forgetMetadataMap } from './overlap.js';
import type { OptState } from './state.js';

export async function getRefcount(st: OptState, cluster: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  const block = st.refcountTable[Math.floor(cluster / E)] ?? 0;
  if (block === 0) return 0;
  if (block < 0) throw corrupt(`refcount block ${Math.floor(cluster / E)} has an invalid offset`, { offset: Number(st.header.refcountTableOffset) });
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

async function putRefcount(st: OptState, block: number, cluster: number, value: number): Promise<void> {
  await onRefcount(st, block, cluster, (bytes, index, key) => {
    writeRefcount(bytes, index, st.geometry.refcountOrder, value);
    st.refcountCache.markDirty(key, bytes);
  });
}

/** Adds `delta` to a cluster's refcount, creating its refcount block if needed. */
export async function adjustRefcount(st: OptState, cluster: number, delta: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  const old = await getRefcount(st, cluster);
  const value = old + delta;
  if (value < 0) throw corrupt(`refcount of cluster ${cluster} (offset 0x${(cluster * st.geometry.clusterSize).toString(16)}) would drop below 0`);
  if (BigInt(value) > maxRefcount(st.geometry.refcountOrder)) {
    throw unsupported(`refcount of cluster ${cluster} would exceed the ${1 << st.geometry.refcountOrder}-bit maximum`);
  }
  await ensureBlock(st, Math.floor(cluster / E));
  if (delta < 0) await st.order.afterDecrement();
  else if (!(await beforeLazyIncrement(st))) await st.order.afterIncrement();
  await putRefcount(st, st.refcountTable[Math.floor(cluster / E)]!, cluster, value);
  if (old === 0) st.fileEnd = Math.max(st.fileEnd, (cluster + 1) * st.geometry.clusterSize);
  if (value === 0) {
    // A freed cluster may have been an L2 table: its cached copy must never be written back.
    st.l2Cache.forgetTable(cluster * st.geometry.clusterSize);
    if (cluster < st.freeHint) st.freeHint = cluster;
    // Compressed data may no longer be appended to it: it can be reused for anything now.
    if (Math.floor(st.compressedCursor / st.geometry.clusterSize) === cluster) st.compressedCursor = 0;
  }
  return value;
}

export async function adjustRange(st: OptState, offset: number, length: number, delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const first = Math.floor(offset / C);
  const last = Math.floor((offset + length - 1) / C);
  for (let c = first; c <= last; c++) await adjustRefcount(st, c, delta);
}

async function writeTableEntry(st: OptState, index: number, blockOffset: number): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeRefcountTableEntry(view(bytes), 0, { blockOffset, offsetHighBits: 0, reserved: 0 });
  await st.order.writeThrough(Number(st.header.refcountTableOffset) + index * 8, bytes, 'refcount-table');
  st.refcountTable[index] = blockOffset;
  forgetMetadataMap(st);
}

/** Makes sure refcount block `index` exists (self-describing when new); true if anything changed. */
async function ensureBlock(st: OptState, index: number): Promise<boolean> {
  let changed = false;
  if (index >= st.refcountTable.length) {
    await growRefcountTable(st, index + 1);
    changed = true;
  }
  if ((st.refcountTable[index] ?? 0) !== 0) return changed;
  const C = st.geometry.clusterSize;
  const blockOffset = index * st.geometry.refcountBlockEntries * C;
  const block = new Uint8Array(C);
  writeRefcount(block, 0, st.geometry.refcountOrder, 1);
  await st.order.writeThrough(blockOffset, block, 'refcount-block');
  st.refcountCache.putCleanTable(blockOffset, block);
  await writeTableEntry(st, index, blockOffset);
  return true;
}

async function endOfUse(st: OptState): Promise<number> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const end = Math.ceil((await st.file.size()) / C);
  for (let i = st.refcountTable.length - 1; i >= 0; i--) {
    const block = st.refcountTable[i] ?? 0;
    if (block === 0) continue;
    if (block < 0) throw corrupt(`refcount block ${i} has an invalid offset`);
    const bytes = await st.refcountCache.readTable(block);
    for (let j = E - 1; j >= 0; j--) {
      if (readRefcount(bytes, j, st.geometry.refcountOrder) !== 0) return Math.max(end, i * E + j + 1);
    }
  }
  return end;
}

async function growRefcountTable(st: OptState, neededEntries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const oldEntries = st.refcountTable.length;
  const oldOffset = Number(st.header.refcountTableOffset);
  const oldClusters = st.header.refcountTableClusters;
  const start = await endOfUse(st);
  let entries = Math.max(neededEntries, oldEntries + Math.ceil(oldEntries / 2));
  let newBlocks: number[] = [];
  let tableClusters = 0;
  for (;;) {
    tableClusters = Math.ceil((entries * 8) / C);
    let count = 0;
    for (;;) {
      const areaEnd = start + count + tableClusters;
      const needed: number[] = [];
      for (let i = Math.floor(start / E); i <= Math.floor((areaEnd - 1) / E); i++) {
        if ((st.refcountTable[i] ?? 0) === 0) needed.push(i);
      }
      newBlocks = needed;
      if (needed.length === count) break;
      count = needed.length;
    }
    const lastIndex = Math.floor((start + newBlocks.length + tableClusters - 1) / E);
    if (lastIndex + 1 <= entries) break;
    entries = lastIndex + 1;
  }
  if (tableClusters * C > MAX_REFCOUNT_TABLE_BYTES) {
    throw unsupported(`the refcount table would exceed the 8 MiB limit (${tableClusters * C} bytes)`);
  }
  const tableStart = start + newBlocks.length;
  const areaEnd = tableStart + tableClusters;
  const order = st.geometry.refcountOrder;
  const table = new Uint8Array(tableClusters * C);
  const tableView = view(table);
  const offsets = new Array<number>((tableClusters * C) / 8).fill(0);
  st.refcountTable.forEach((b, i) => {
    offsets[i] = b;
    encodeRefcountTableEntry(tableView, i * 8, { blockOffset: b, offsetHighBits: 0, reserved: 0 });
  });
  newBlocks.forEach((index, k) => {
    offsets[index] = (start + k) * C;
    encodeRefcountTableEntry(tableView, index * 8, { blockOffset: (start + k) * C, offsetHighBits: 0, reserved: 0 });
  });
  for (const [k, index] of newBlocks.entries()) {
    const block = new Uint8Array(C);
    for (let c = Math.max(start, index * E); c < Math.min(areaEnd, (index + 1) * E); c++) writeRefcount(block, c - index * E, order, 1);
    await st.order.writeThrough((start + k) * C, block, 'refcount-block');
    st.refcountCache.putCleanTable((start + k) * C, block);
  }
  for (let c = start; c < areaEnd; c++) {
    const index = Math.floor(c / E);
    if (newBlocks.includes(index)) continue;
    await putRefcount(st, st.refcountTable[index]!, c, 1);
  }
  await st.order.writeThrough(tableStart * C, table, 'refcount-table');
  await st.file.flush();
  st.header.refcountTableOffset = BigInt(tableStart * C);
  st.header.refcountTableClusters = tableClusters;
  st.refcountTable = offsets;
  forgetMetadataMap(st);
  await writeHeader(st);
  await adjustRange(st, oldOffset, oldClusters * C, -1);
}

async function findFreeRun(st: OptState, count: number): Promise<{ start: number; firstFree: number }> {
  let run = 0;
  let firstFree = -1;
  let c = st.freeHint;
  while (run < count) {
    if ((await getRefcount(st, c)) === 0) {
      run++;
      if (firstFree < 0) firstFree = c;
    } else run = 0;
    c++;
  }
  return { start: c - count, firstFree };
}

/** Allocates `count` contiguous clusters (refcount 1 each); returns the host offset of the first. */
export async function allocateClusters(st: OptState, count: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  for (;;) {
    const { start, firstFree } = await findFreeRun(st, count);
    let created = false;
    for (let i = Math.floor(start / E); i <= Math.floor((start + count - 1) / E); i++) {
      if (await ensureBlock(st, i)) created = true;
    }
    if (created) continue;
    for (let c = start; c < start + count; c++) await adjustRefcount(st, c, 1);
    st.freeHint = firstFree === start ? start + count : firstFree;
    return start * st.geometry.clusterSize;
  }
}

/** Allocates the `count` clusters from `first` on if all of them are free; false if one is not. */
async function allocateAt(st: OptState, first: number, count: number): Promise<boolean> {
  const E = st.geometry.refcountBlockEntries;
  for (;;) {
    for (let c = first; c < first + count; c++) if ((await getRefcount(st, c)) !== 0) return false;
    let created = false;
    for (let i = Math.floor(first / E); i <= Math.floor((first + count - 1) / E); i++) {
      if (await ensureBlock(st, i)) created = true;
    }
    if (created) continue; // a new block may describe (and occupy) one of them: look again
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

/** Host cluster for new guest data: allocated, or the guest offset in an external data file. */
export async function allocateDataCluster(st: OptState, guestClusterStart: number): Promise<number> {
  if (st.features.externalDataFile) return guestClusterStart;
  return allocateClusters(st, 1);
}
