/**
 * Rebuilds the refcount structure from the counted references (QEMU 7.1+'s
 * rebuild_refcount_structure): every refcount block that has a nonzero count is written, as a slice
 * of the in-memory counts, to a newly allocated free cluster; then a new refcount table is
 * allocated (which changes counts, so the blocks covering it are written again, and again while the
 * table keeps growing), written, and entered into the header. The old structure becomes leaked
 * clusters, which the caller frees.
 */
import { checkedFileLength } from './read.js';
import { corrupt } from '../errors.js';
import { view } from '../format/bytes.js';
import { writeRefcount } from '../format/refcount.js';
import type { CheckContext } from './context.js';
import type { InMemoryRefcounts } from './imrt.js';
import { overlapsMetadata } from './overlap.js';
import type { RefcountTableEntryRaw } from './refcount-store.js';

interface NewTable {
  entries: number[];
}

async function writeRefblocks(
  ctx: CheckContext,
  imrt: InMemoryRefcounts,
  firstCluster: number,
  endCluster: number,
  table: NewTable,
): Promise<boolean> {
  const C = ctx.clusterSize;
  const perBlock = ctx.store.blockEntries;
  const firstFree = { value: 0 };
  let grown = false;
  for (let cluster = firstCluster; cluster < endCluster; cluster++) {
    if (imrt.get(cluster) === 0) continue;
    const index = Math.floor(cluster / perBlock);
    const start = index * perBlock;
    let blockOffset = table.entries[index] ?? 0;
    if (blockOffset === 0) {
      // Never place a block inside a range of blocks already written.
      if (firstFree.value < start) firstFree.value = start;
      const blockCluster = imrt.allocate(1, firstFree);
      blockOffset = blockCluster * C;
      if (blockCluster >= endCluster) endCluster = blockCluster + 1; // its own refcount must be written too
      if (table.entries.length <= index) {
        const perTableCluster = C / 8;
        const size = Math.ceil((index + 1) / perTableCluster) * perTableCluster;
        while (table.entries.length < size) table.entries.push(0);
        grown = true;
      }
      table.entries[index] = blockOffset;
    }
    const clash = overlapsMetadata(ctx, blockOffset, C, 'none');
    if (clash) throw corrupt(`ERROR writing refblock: overlaps with ${clash}`, { offset: blockOffset });
    const block = new Uint8Array(C);
    for (let i = 0; i < perBlock; i++) {
      const n = imrt.get(start + i);
      if (n !== 0) writeRefcount(block, i, ctx.store.refcountOrder, BigInt(n));
    }
    await ctx.file.write(blockOffset, block, 'refcount-block');
    cluster = start + perBlock - 1;
  }
  return grown;
}

export async function rebuildRefcountStructure(ctx: CheckContext, imrt: InMemoryRefcounts): Promise<void> {
  const C = ctx.clusterSize;
  // The old blocks and table stop counting as metadata for the overlap checks.
  await ctx.store.reset([]);
  const oldTable = { offset: ctx.refcountTableOffset, clusters: ctx.refcountTableClusters };
  ctx.refcountTableOffset = 0;
  ctx.refcountTableClusters = 0;
  const table: NewTable = { entries: [] };
  await writeRefblocks(ctx, imrt, 0, imrt.size, table);
  let tableOffset = -1;
  let tableClusters = 0;
  let grown = true;
  while (grown) {
    tableClusters = Math.ceil((table.entries.length * 8) / C);
    const start = imrt.allocate(tableClusters, { value: 0 });
    tableOffset = start * C;
    grown = await writeRefblocks(ctx, imrt, start, start + tableClusters, table);
  }
  const bytes = new Uint8Array(tableClusters * C);
  const dv = view(bytes);
  table.entries.forEach((offset, i) => dv.setBigUint64(i * 8, BigInt(offset), false));
  const clash = overlapsMetadata(ctx, tableOffset, bytes.byteLength, 'none');
  if (clash) {
    ctx.refcountTableOffset = oldTable.offset;
    ctx.refcountTableClusters = oldTable.clusters;
    throw corrupt(`ERROR writing reftable: overlaps with ${clash}`, { offset: tableOffset });
  }
  await ctx.file.write(tableOffset, bytes, 'refcount-table');
  await ctx.file.flush();
  const header = new Uint8Array(12);
  const hv = view(header);
  hv.setBigUint64(0, BigInt(tableOffset), false);
  hv.setUint32(8, tableClusters, false);
  await ctx.file.write(48, header, 'header');
  await ctx.file.flush();
  ctx.fileSize = await checkedFileLength(ctx.file);
  ctx.refcountTableOffset = tableOffset;
  ctx.refcountTableClusters = tableClusters;
  const entries: RefcountTableEntryRaw[] = [];
  for (let i = 0; i < tableClusters * (C / 8); i++) {
    const offset = table.entries[i] ?? 0;
    entries.push({ offset, hi: Math.floor(offset / 0x1_0000_0000), low: offset % 0x1_0000_0000, reserved: 0 });
  }
  await ctx.store.reset(entries);
}
