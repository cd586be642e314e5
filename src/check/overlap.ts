/**
 * Before a repair writes metadata, QEMU checks the target does not overlap other metadata
 * (qcow2_check_metadata_overlap); the repair is refused if it does. This covers the header, the
 * active L1 table and its L2 tables, the refcount table and blocks, the snapshot table and the
 * snapshots' L1 tables (not the snapshots' L2 tables, which QEMU skips by default too).
 */
import { decodeL1Entry } from '../format/l1.js';
import { view } from '../format/bytes.js';
import type { CheckContext } from './context.js';

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
    const dv = view(ctx.l1);
    for (let i = 0; i < layout.l1Size; i++) {
      const l2 = decodeL1Entry(dv, i * 8).l2Offset;
      if (l2 !== 0 && hits(l2, C)) return 'active L2 table';
    }
  }
  for (const e of ctx.store.table) {
    if (e.offset !== 0 && hits(e.offset, C)) return 'refcount block';
  }
  return undefined;
}
