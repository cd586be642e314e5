/**
 * Refcounts of the reference engine: read entry by entry through the generated parsers, written
 * through at once. Allocation finds a run of clusters whose refcount is 0, first making sure the
 * refcount blocks (and table) that will describe them exist; new refcount blocks describe
 * themselves, and a grown refcount table is placed in a fresh self-describing area past the end of
 * everything in use, so growth never recurses.
 */
import { corrupt, unsupported } from '../errors.js';
import { view } from '../format/bytes.js';
import { encodeRefcountTableEntry, maxRefcount, writeRefcount } from '../format/refcount.js';
import { MAX_REFCOUNT_TABLE_BYTES } from '../format/constants.js';
import { parseRefcountBlock, parseRefcountTable, refcountValues } from '../spec/kaitai.js';
import { type RefState, writeHeader } from './state.js';

const TWO_32 = 0x1_0000_0000;

function entriesPerBlock(st: RefState): number {
  return st.geometry.refcountBlockEntries;
}

export function refcountTableEntries(st: RefState): number {
  return (st.header.refcountTableClusters * st.geometry.clusterSize) / 8;
}

/** Offset of refcount block `index`, 0 when it does not exist. */
export async function readRefcountTableEntry(st: RefState, index: number): Promise<number> {
  if (index >= refcountTableEntries(st)) return 0;
  const at = Number(st.header.refcountTableOffset) + index * 8;
  const e = parseRefcountTable(await st.file.read(at, 8), 1).entries[0]!;
  if (e.offsetHi > 0x1f_ffff) throw corrupt(`refcount block ${index} offset is beyond 2^53`, { offset: at });
  const offset = e.offsetHi * TWO_32 + e.offsetLo * 512;
  if (offset % st.geometry.clusterSize !== 0) {
    throw corrupt(`refcount block ${index} at unaligned offset 0x${offset.toString(16)}`, { offset: at });
  }
  return offset;
}

async function writeRefcountTableEntry(st: RefState, tableOffset: number, index: number, blockOffset: number): Promise<void> {
  const bytes = new Uint8Array(8);
  encodeRefcountTableEntry(view(bytes), 0, { blockOffset, offsetHighBits: 0, reserved: 0 });
  await st.file.write(tableOffset + index * 8, bytes, 'refcount-table');
}

/** Where refcount `index` of a block sits: the bytes to read and the entry's place among them. */
function entryBytes(order: number, index: number): { byte: number; length: number; within: number; count: number } {
  if (order < 3) {
    const perByte = 8 >> order;
    return { byte: Math.floor(index / perByte), length: 1, within: index % perByte, count: perByte };
  }
  const width = (1 << order) / 8;
  return { byte: index * width, length: width, within: 0, count: 1 };
}

export async function getRefcount(st: RefState, cluster: number): Promise<number> {
  const E = entriesPerBlock(st);
  const block = await readRefcountTableEntry(st, Math.floor(cluster / E));
  if (block === 0) return 0;
  const order = st.geometry.refcountOrder;
  const where = entryBytes(order, cluster % E);
  const bytes = await st.file.read(block + where.byte, where.length);
  if (bytes.byteLength < where.length) throw corrupt('refcount block lies past the end of the file', { offset: block });
  const value = refcountValues(parseRefcountBlock(bytes, order, where.count))[where.within]!;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`refcount of cluster ${cluster} exceeds 2^53 - 1`);
  return Number(value);
}

/** Sets a refcount whose block exists. */
async function putRefcount(st: RefState, block: number, cluster: number, value: number): Promise<void> {
  const order = st.geometry.refcountOrder;
  const where = entryBytes(order, cluster % entriesPerBlock(st));
  const bytes = await st.file.read(block + where.byte, where.length);
  const buf = new Uint8Array(where.length);
  buf.set(bytes);
  writeRefcount(buf, where.within, order, value);
  await st.file.write(block + where.byte, buf, 'refcount-block');
}

/** Adds `delta` to a cluster's refcount, creating its refcount block if needed. */
export async function adjustRefcount(st: RefState, cluster: number, delta: number): Promise<number> {
  const old = await getRefcount(st, cluster);
  const value = old + delta;
  if (value < 0) throw corrupt(`refcount of cluster ${cluster} (offset 0x${(cluster * st.geometry.clusterSize).toString(16)}) would drop below 0`);
  if (BigInt(value) > maxRefcount(st.geometry.refcountOrder)) {
    throw unsupported(`refcount of cluster ${cluster} would exceed the ${1 << st.geometry.refcountOrder}-bit maximum`);
  }
  await ensureBlock(st, Math.floor(cluster / entriesPerBlock(st)));
  const block = await readRefcountTableEntry(st, Math.floor(cluster / entriesPerBlock(st)));
  await putRefcount(st, block, cluster, value);
  if (value === 0 && cluster < st.freeHint) st.freeHint = cluster;
  return value;
}

/** Adds `delta` to the refcount of every cluster touched by the byte range. */
export async function adjustRange(st: RefState, offset: number, length: number, delta: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const first = Math.floor(offset / C);
  const last = Math.floor((offset + length - 1) / C);
  for (let c = first; c <= last; c++) await adjustRefcount(st, c, delta);
}

/**
 * Makes sure refcount block `index` exists. A new block describes itself: it is placed at the
 * first cluster of the range it covers (all free, since no block counted them).
 * Returns true when something was created.
 */
async function ensureBlock(st: RefState, index: number): Promise<boolean> {
  let changed = false;
  if (index >= refcountTableEntries(st)) {
    await growRefcountTable(st, index + 1);
    changed = true;
  }
  if ((await readRefcountTableEntry(st, index)) !== 0) return changed;
  const E = entriesPerBlock(st);
  const C = st.geometry.clusterSize;
  const blockCluster = index * E;
  const block = new Uint8Array(C);
  writeRefcount(block, 0, st.geometry.refcountOrder, 1);
  await st.file.write(blockCluster * C, block, 'refcount-block');
  await writeRefcountTableEntry(st, Number(st.header.refcountTableOffset), index, blockCluster * C);
  return true;
}

/** Largest cluster index in use + 1, looking at refcounts and the file size. */
async function endOfUse(st: RefState): Promise<number> {
  const C = st.geometry.clusterSize;
  const E = entriesPerBlock(st);
  let end = Math.ceil((await st.file.size()) / C);
  for (let i = refcountTableEntries(st) - 1; i >= 0; i--) {
    const block = await readRefcountTableEntry(st, i);
    if (block === 0) continue;
    const order = st.geometry.refcountOrder;
    const values = refcountValues(parseRefcountBlock(await st.file.read(block, C), order, E));
    for (let j = E - 1; j >= 0; j--) {
      if (values[j] !== 0n) return Math.max(end, i * E + j + 1);
    }
  }
  return end;
}

/**
 * Replaces the refcount table by one with at least `neededEntries` entries, placed with any new
 * refcount blocks it needs in an area past everything in use; the new blocks cover that area.
 */
async function growRefcountTable(st: RefState, neededEntries: number): Promise<void> {
  const C = st.geometry.clusterSize;
  const E = entriesPerBlock(st);
  const oldEntries = refcountTableEntries(st);
  const oldOffset = Number(st.header.refcountTableOffset);
  const oldClusters = st.header.refcountTableClusters;
  const start = await endOfUse(st);
  let entries = Math.max(neededEntries, oldEntries + Math.ceil(oldEntries / 2));
  let newBlocks: number[] = [];
  let tableClusters = 0;
  for (;;) {
    tableClusters = Math.ceil((entries * 8) / C);
    // Blocks needed for the area [start, start + newBlocks + tableClusters): iterate to a fixpoint.
    let count = 0;
    for (;;) {
      const areaEnd = start + count + tableClusters;
      const needed: number[] = [];
      for (let i = Math.floor(start / E); i <= Math.floor((areaEnd - 1) / E); i++) {
        if (i >= oldEntries || (await readRefcountTableEntry(st, i)) === 0) needed.push(i);
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

  // New table: the old entries, then the new blocks.
  const table = new Uint8Array(tableClusters * C);
  table.set(await st.file.read(oldOffset, oldEntries * 8));
  const tableView = view(table);
  newBlocks.forEach((index, k) => {
    encodeRefcountTableEntry(tableView, index * 8, { blockOffset: (start + k) * C, offsetHighBits: 0, reserved: 0 });
  });
  // New blocks count the area clusters in their range.
  for (const [k, index] of newBlocks.entries()) {
    const block = new Uint8Array(C);
    for (let c = Math.max(start, index * E); c < Math.min(areaEnd, (index + 1) * E); c++) writeRefcount(block, c - index * E, order, 1);
    await st.file.write((start + k) * C, block, 'refcount-block');
  }
  // Area clusters in ranges whose blocks already exist are counted there.
  for (let c = start; c < areaEnd; c++) {
    const index = Math.floor(c / E);
    if (newBlocks.includes(index)) continue;
    await putRefcount(st, await readRefcountTableEntry(st, index), c, 1);
  }
  await st.file.write(tableStart * C, table, 'refcount-table');
  await st.file.flush();
  st.header.refcountTableOffset = BigInt(tableStart * C);
  st.header.refcountTableClusters = tableClusters;
  await writeHeader(st);
  await st.file.flush();
  await adjustRange(st, oldOffset, oldClusters * C, -1);
}

/**
 * Finds `count` contiguous clusters with refcount 0, from the free hint on; also returns the first
 * free cluster seen, the next search's starting point.
 */
async function findFreeRun(st: RefState, count: number): Promise<{ start: number; firstFree: number }> {
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

/** Allocates `count` contiguous clusters (refcount 1 each) and returns the host offset of the first. */
export async function allocateClusters(st: RefState, count: number): Promise<number> {
  const E = entriesPerBlock(st);
  for (;;) {
    const { start, firstFree } = await findFreeRun(st, count);
    let created = false;
    for (let i = Math.floor(start / E); i <= Math.floor((start + count - 1) / E); i++) {
      if (await ensureBlock(st, i)) created = true;
    }
    if (created) continue; // a new block or table may have taken some of these clusters
    for (let c = start; c < start + count; c++) await adjustRefcount(st, c, 1);
    st.freeHint = firstFree === start ? start + count : firstFree;
    return start * st.geometry.clusterSize;
  }
}
