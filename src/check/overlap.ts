/**
 * Before a repair writes metadata, QEMU checks the target does not overlap other metadata
 * (qcow2_check_metadata_overlap); the repair is refused if it does. This covers the header, the
 * active L1 table and its L2 tables, the refcount table and blocks, the snapshot table and the
 * snapshots' L1 tables (not the snapshots' L2 tables, which QEMU skips by default too).
 */
import { decodeL1Entry } from '../format/l1.js';
import { view } from '../format/bytes.js';
import type { CheckContext } from './context.js';
import { type RefcountTableEntryRaw, refblockAligned } from './refcount-store.js';

export type OverlapIgnore = 'active-l2' | 'inactive-l2' | 'none';

export function overlapsMetadata(ctx: CheckContext, offset: number, size: number, ignore: OverlapIgnore): string | undefined {
  if (size === 0) return undefined;
  const C = ctx.clusterSize;
  if (offset < C) return 'qcow2_header';
  const start = offset - (offset % C);
  const end = Math.ceil((offset + size) / C) * C;
  const hits = (o: number, len: number) => len > 0 && o < end && start < o + len;
  const { layout } = ctx.meta;
  if (hits(layout.l1TableOffset, layout.l1Size * 8)) return 'active L1 table';
  if (hits(ctx.refcountTableOffset, ctx.refcountTableClusters * C)) return 'refcount table';
  if (hits(layout.snapshotsOffset, ctx.meta.snapshotTableSize)) return 'snapshot table';
  for (const s of ctx.meta.snapshots) {
    if (hits(Number(s.l1TableOffset), s.l1Size * 8)) return 'inactive L1 table';
  }
  if (ignore !== 'active-l2') {
    const l2Clusters = activeL2Clusters(ctx);
    for (let c = start / C; c < end / C; c++) if (l2Clusters.has(c)) return 'active L2 table';
  }
  const blocks = refcountBlockClusters(ctx);
  for (let c = start / C; c < end / C; c++) if (blocks.has(c)) return 'refcount block';
  return undefined;
}

/**
 * The clusters of the active L2 tables, by L1 table. A repair only flips the L1 entries' COPIED
 * bit, never their offsets, so the set is made once per check pass (a repair of many entries on a
 * large L1 table otherwise walks the whole table for each one).
 */
const l2ClustersByL1 = new WeakMap<Uint8Array, Set<number>>();

function activeL2Clusters(ctx: CheckContext): Set<number> {
  let set = l2ClustersByL1.get(ctx.l1);
  if (!set) {
    set = new Set();
    const dv = view(ctx.l1);
    for (let i = 0; i < ctx.meta.layout.l1Size; i++) {
      const l2 = decodeL1Entry(dv, i * 8).l2Offset;
      if (l2 === 0) continue;
      // A misaligned table (a corrupt entry) spans two clusters.
      set.add(Math.floor(l2 / ctx.clusterSize));
      if (l2 % ctx.clusterSize !== 0) set.add(Math.floor(l2 / ctx.clusterSize) + 1);
    }
    l2ClustersByL1.set(ctx.l1, set);
  }
  return set;
}

/** The clusters of the refcount blocks, by refcount table (a rebuild replaces the table, never edits it). */
const blockClustersByTable = new WeakMap<readonly RefcountTableEntryRaw[], Set<number>>();

function refcountBlockClusters(ctx: CheckContext): Set<number> {
  let set = blockClustersByTable.get(ctx.store.table);
  if (!set) {
    set = new Set();
    for (const e of ctx.store.table) {
      if (e.offset === 0) continue;
      set.add(Math.floor(e.offset / ctx.clusterSize));
      if (!refblockAligned(e, ctx.clusterSize)) set.add(Math.floor(e.offset / ctx.clusterSize) + 1);
    }
    blockClustersByTable.set(ctx.store.table, set);
  }
  return set;
}
