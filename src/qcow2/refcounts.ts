/**
 * Refcount changes and the allocation policy, for both engines. Allocation finds a run of clusters
 * whose refcount is 0 from the free hint on, first making sure the refcount blocks (and table) that
 * will describe them exist. A new refcount block describes itself (it sits at the first cluster of
 * the range it covers, all free since no block counted them), and a grown refcount table is placed
 * with its new blocks in a fresh self-describing area past the end of everything in use, so growth
 * never recurses.
 */
import { corrupt, unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeRefcountTableEntry, maxRefcount, refcountMetadataClusters, writeRefcount } from '../format/refcount.js';
import { MAX_ALLOCATION_ROUNDS, MAX_REFCOUNT_TABLE_BYTES } from '../limits.js';
import { writeHeader } from './header.js';
import { hasHostCluster, type Mapping } from './mapping.js';
import type { Qcow2State } from './state.js';

/** Adds `delta` to a cluster's refcount, creating its refcount block if needed; returns the new value. */
export async function adjustRefcount(st: Qcow2State, cluster: number, delta: number): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  const old = await st.store.getRefcount(cluster);
  const value = old + delta;
  if (value < 0) throw corrupt(`refcount of cluster ${cluster} (offset 0x${(cluster * st.geometry.clusterSize).toString(16)}) would drop below 0`);
  if (BigInt(value) > maxRefcount(st.geometry.refcountOrder)) {
    throw unsupported(`refcount of cluster ${cluster} would exceed the ${1 << st.geometry.refcountOrder}-bit maximum`);
  }
  await ensureBlock(st, Math.floor(cluster / E));
  await st.store.beforeRefcountChange(delta);
  await st.store.putRefcount(await st.store.refcountBlock(Math.floor(cluster / E)), cluster, value);
  if (value === 0 && cluster < st.freeHint) st.freeHint = cluster;
  st.store.afterRefcountChange(cluster, old, value);
  return value;
}

/** Adds `delta` to the refcount of every cluster touched by the byte range. */
export async function adjustRange(st: Qcow2State, offset: number, length: number, delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const first = Math.floor(offset / C);
  const last = Math.floor((offset + length - 1) / C);
  for (let c = first; c <= last; c++) await adjustRefcount(st, c, delta);
}

/** Makes sure refcount block `index` exists (self-describing when new); true when anything was created. */
export async function ensureBlock(st: Qcow2State, index: number): Promise<boolean> {
  let changed = false;
  if (index >= st.store.refcountTableEntries()) {
    await growRefcountTable(st, index + 1);
    changed = true;
  }
  if ((await st.store.refcountBlock(index)) !== 0) return changed;
  const C = st.geometry.clusterSize;
  const blockOffset = index * st.geometry.refcountBlockEntries * C;
  const there = st.store.knownMetadataAt?.(blockOffset);
  if (there !== undefined) {
    throw corrupt(`refcount block ${index} is missing, yet the cluster a new one would take (0x${blockOffset.toString(16)}) holds ${there}`, { offset: blockOffset });
  }
  const block = new Uint8Array(C);
  writeRefcount(block, 0, st.geometry.refcountOrder, 1);
  await st.store.newRefcountBlock(blockOffset, block);
  await st.store.setRefcountTableEntry(index, blockOffset);
  return true;
}

/** The last cluster with a reference, from the refcount blocks (-1 when none has one). */
export async function lastReferencedCluster(st: Qcow2State): Promise<number> {
  const E = st.geometry.refcountBlockEntries;
  for (let i = st.store.refcountTableEntries() - 1; i >= 0; i--) {
    const block = await st.store.refcountBlock(i);
    if (block === 0) continue;
    const last = await st.store.lastUsedInBlock(block);
    if (last >= 0) return i * E + last;
  }
  return -1;
}

/** Largest cluster index in use + 1, from the refcounts and the file size. */
async function endOfUse(st: Qcow2State): Promise<number> {
  const end = Math.ceil((await st.file.size()) / st.geometry.clusterSize);
  return Math.max(end, (await lastReferencedCluster(st)) + 1);
}

/**
 * Replaces the refcount table by one with at least `neededEntries` entries, placed with any new
 * refcount blocks it needs in an area past everything in use; the new blocks cover that area.
 * Order: the new blocks and table, then the header, then the old table's clusters are freed.
 */
async function growRefcountTable(st: Qcow2State, neededEntries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const oldEntries = st.store.refcountTableEntries();
  const offsets: number[] = [];
  for (let i = 0; i < oldEntries; i++) offsets.push(await st.store.refcountBlock(i));
  const start = await endOfUse(st);
  let entries = Math.max(neededEntries, oldEntries + Math.ceil(oldEntries / 2));
  let newBlocks: number[] = [];
  let tableClusters = 0;
  for (;;) {
    tableClusters = Math.ceil((entries * 8) / C);
    // Refused before the blocks for it are counted (for a table past the limit that count alone
    // would take minutes and gigabytes: an entry pointing near 2^53 asks for such a table).
    if (tableClusters * C > MAX_REFCOUNT_TABLE_BYTES) {
      throw unsupported(`the refcount table would exceed the ${MAX_REFCOUNT_TABLE_BYTES >> 20} MiB limit (${tableClusters * C} bytes)`);
    }
    // Blocks needed for the area [start, start + newBlocks + tableClusters): iterate to a fixpoint.
    let count = 0;
    for (;;) {
      const areaEnd = start + count + tableClusters;
      const needed: number[] = [];
      for (let i = Math.floor(start / E); i <= Math.floor((areaEnd - 1) / E); i++) if ((offsets[i] ?? 0) === 0) needed.push(i);
      newBlocks = needed;
      if (needed.length === count) break;
      count = needed.length;
    }
    const lastIndex = Math.floor((start + newBlocks.length + tableClusters - 1) / E);
    if (lastIndex + 1 <= entries) break;
    entries = lastIndex + 1;
  }
  await writeRefcountArea(st, start, newBlocks, tableClusters, offsets);
}

/**
 * Writes a refcount area at cluster `start`: the refcount blocks of table indexes `newBlocks`
 * (in that order from `start`), then a new table of `tableClusters` clusters (the old entries
 * `offsets` and the new blocks), every cluster of the area counted once; then the header points
 * at the new table and the old table's clusters are freed. Returns the cluster after the area.
 */
async function writeRefcountArea(st: Qcow2State, start: number, newBlocks: number[], tableClusters: number, offsets: number[]): Promise<number> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const oldOffset = Number(st.header.refcountTableOffset);
  const oldClusters = st.header.refcountTableClusters;
  const tableStart = start + newBlocks.length;
  const areaEnd = tableStart + tableClusters;
  const order = st.geometry.refcountOrder;
  // The new table: the old entries, then the new blocks.
  const table = new Uint8Array(tableClusters * C);
  const tableView = view(table);
  const next = new Array<number>((tableClusters * C) / 8).fill(0);
  offsets.forEach((b, i) => (next[i] = b));
  newBlocks.forEach((index, k) => (next[index] = (start + k) * C));
  next.forEach((b, i) => {
    if (b !== 0) encodeRefcountTableEntry(tableView, i * 8, { blockOffset: b, offsetHighBits: 0, reserved: 0 });
  });
  // New blocks count the area's clusters in their range.
  for (const [k, index] of newBlocks.entries()) {
    const block = new Uint8Array(C);
    for (let c = Math.max(start, index * E); c < Math.min(areaEnd, (index + 1) * E); c++) writeRefcount(block, c - index * E, order, 1);
    await st.store.newRefcountBlock((start + k) * C, block);
  }
  // Area clusters in ranges whose blocks already exist are counted there.
  for (let c = start; c < areaEnd; c++) {
    const index = Math.floor(c / E);
    if (!newBlocks.includes(index)) await st.store.putRefcount(offsets[index]!, c, 1);
  }
  await st.store.writeThrough(tableStart * C, table, 'refcount-table');
  await st.file.flush();
  st.header.refcountTableOffset = BigInt(tableStart * C);
  st.header.refcountTableClusters = tableClusters;
  st.store.refcountTableReplaced(next);
  await writeHeader(st);
  await adjustRange(st, oldOffset, oldClusters * C, -1);
  return areaEnd;
}

/**
 * QEMU's refcount area for a preallocation (qcow2_refcount_area with exact size, as
 * qcow2_co_truncate calls it for falloc and full): from cluster `start`, refcount blocks for every
 * cluster up to `start + additional` that has none, then a new refcount table of exactly the
 * entries they need. Returns the first cluster after the area (where the preallocated data goes).
 */
export async function refcountArea(st: Qcow2State, start: number, additional: number): Promise<number> {
  const C = st.geometry.clusterSize;
  const E = st.geometry.refcountBlockEntries;
  const total = Number(refcountMetadataClusters(BigInt(start + additional), C, st.geometry.refcountOrder, false).blocks);
  const tableClusters = Math.ceil((total * 8) / C);
  if (tableClusters * C > MAX_REFCOUNT_TABLE_BYTES) {
    throw unsupported(`the refcount table would exceed the ${MAX_REFCOUNT_TABLE_BYTES >> 20} MiB limit (${tableClusters * C} bytes)`);
  }
  const offsets: number[] = [];
  for (let i = 0; i < Math.min(st.store.refcountTableEntries(), (tableClusters * C) / 8); i++) offsets.push(await st.store.refcountBlock(i));
  const newBlocks: number[] = [];
  for (let i = Math.floor(start / E); i < total; i++) if ((offsets[i] ?? 0) === 0) newBlocks.push(i);
  return writeRefcountArea(st, start, newBlocks, tableClusters, offsets);
}

/**
 * Finds `count` contiguous clusters with refcount 0, from the free hint on; also returns the first
 * free cluster seen, the next search's starting point.
 */
async function findFreeRun(st: Qcow2State, count: number): Promise<{ start: number; firstFree: number }> {
  let run = 0;
  let firstFree = -1;
  let c = st.freeHint;
  const C = st.geometry.clusterSize;
  while (run < count) {
    if ((await st.store.getRefcount(c)) === 0) {
      const what = st.store.knownMetadataAt?.(c * C);
      if (what !== undefined) throw corrupt(`cluster 0x${(c * C).toString(16)} holds ${what}, yet its refcount is 0`, { offset: c * C });
      run++;
      if (firstFree < 0) firstFree = c;
    } else run = 0;
    c++;
  }
  return { start: c - count, firstFree };
}

/** Makes the refcount blocks of clusters [first, first + count) exist; true when any was created. */
export async function ensureBlocksFor(st: Qcow2State, first: number, count: number): Promise<boolean> {
  const E = st.geometry.refcountBlockEntries;
  let created = false;
  for (let i = Math.floor(first / E); i <= Math.floor((first + count - 1) / E); i++) {
    if (await ensureBlock(st, i)) created = true;
  }
  return created;
}

/** Allocates `count` contiguous clusters (refcount 1 each) and returns the host offset of the first. */
export async function allocateClusters(st: Qcow2State, count: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const { start, firstFree } = await findFreeRun(st, count);
    // A new block or table may have taken some of these clusters: look again. Each round creates
    // what the run needs, so a second round finds them; more means the refcount structure does not
    // hold what was just written to it.
    if (await ensureBlocksFor(st, start, count)) {
      if (attempt >= MAX_ALLOCATION_ROUNDS) throw corrupt(`allocating ${count} cluster(s): the refcount structure does not keep the blocks written to it (cluster 0x${(start * st.geometry.clusterSize).toString(16)})`, { offset: start * st.geometry.clusterSize });
      continue;
    }
    for (let c = start; c < start + count; c++) await adjustRefcount(st, c, 1);
    st.freeHint = firstFree === start ? start + count : firstFree;
    return start * st.geometry.clusterSize;
  }
}

/** Host cluster for new guest data: allocated in the image, or the guest offset in a data file. */
export async function allocateDataCluster(st: Qcow2State, guestClusterStart: number): Promise<number> {
  if (st.features.externalDataFile) return guestClusterStart;
  return allocateClusters(st, 1);
}

/** Drops the reference an L2 entry held on its host storage (data clusters in a data file have none). */
export async function releaseMapping(st: Qcow2State, m: Mapping): Promise<void> {
  if (m.kind === 'compressed') {
    await adjustRange(st, m.hostOffset, m.length, -1);
    return;
  }
  if (!hasHostCluster(st, m) || st.features.externalDataFile) return;
  await adjustRefcount(st, m.hostOffset / st.geometry.clusterSize, -1);
}
