/**
 * Finds every on-disk structure of an image: header, extensions area, L1 tables (active and
 * snapshots'), the L2 tables they point to, the refcount table and blocks, the snapshot table, the
 * bitmap directory and bitmap tables. Each comes with its bytes and the parameters a decoder needs,
 * so both decoders (hand-written and Kaitai) can be run over the same bytes.
 */
import { decodeBitmapTable } from '../../format/bitmap.js';
import { decodeL1Table } from '../../format/l1.js';
import { decodeRefcountTable } from '../../format/refcount.js';
import type { ImageMetadata } from '../../image/metadata.js';
import type { BlockFile } from '../../io/block-file.js';

export type Structure =
  | { kind: 'header'; offset: 0; bytes: Uint8Array }
  | { kind: 'l1-table'; offset: number; bytes: Uint8Array; entries: number }
  | { kind: 'l2-table'; offset: number; bytes: Uint8Array; entries: number; extendedL2: boolean; clusterBits: number }
  | { kind: 'refcount-table'; offset: number; bytes: Uint8Array; entries: number }
  | { kind: 'refcount-block'; offset: number; bytes: Uint8Array; entries: number; refcountOrder: number }
  | { kind: 'snapshot-table'; offset: number; bytes: Uint8Array; entries: number }
  | { kind: 'bitmap-directory'; offset: number; bytes: Uint8Array; entries: number }
  | { kind: 'bitmap-table'; offset: number; bytes: Uint8Array; entries: number }
  | { kind: 'luks-header'; offset: number; bytes: Uint8Array };

export async function collectStructures(file: BlockFile, meta: ImageMetadata): Promise<Structure[]> {
  const { layout } = meta;
  const g = layout.geometry;
  const out: Structure[] = [];
  out.push({ kind: 'header', offset: 0, bytes: await file.read(0, g.clusterSize) });

  const l1Tables = [{ offset: layout.l1TableOffset, entries: layout.l1Size }];
  for (const s of meta.snapshots) l1Tables.push({ offset: Number(s.l1TableOffset), entries: s.l1Size });
  const seenL2 = new Set<number>();
  for (const t of l1Tables) {
    const bytes = await file.read(t.offset, t.entries * 8);
    out.push({ kind: 'l1-table', offset: t.offset, bytes, entries: t.entries });
    for (const e of decodeL1Table(bytes, t.entries)) {
      if (e.l2Offset === 0 || seenL2.has(e.l2Offset)) continue;
      seenL2.add(e.l2Offset);
      out.push({
        kind: 'l2-table',
        offset: e.l2Offset,
        bytes: await file.read(e.l2Offset, g.clusterSize),
        entries: g.l2Entries,
        extendedL2: g.extendedL2,
        clusterBits: g.clusterBits,
      });
    }
  }

  const rtEntries = (layout.refcountTableClusters * g.clusterSize) / 8;
  const rtBytes = await file.read(layout.refcountTableOffset, rtEntries * 8);
  out.push({ kind: 'refcount-table', offset: layout.refcountTableOffset, bytes: rtBytes, entries: rtEntries });
  for (const e of decodeRefcountTable(rtBytes, rtEntries)) {
    if (e.blockOffset === 0) continue;
    out.push({
      kind: 'refcount-block',
      offset: e.blockOffset,
      bytes: await file.read(e.blockOffset, g.clusterSize),
      entries: g.refcountBlockEntries,
      refcountOrder: g.refcountOrder,
    });
  }

  if (layout.nbSnapshots > 0) {
    // The padding after the last entry may lie past the end of the file.
    const bytes = new Uint8Array(meta.snapshotTableSize);
    bytes.set(await file.read(layout.snapshotsOffset, meta.snapshotTableSize));
    out.push({
      kind: 'snapshot-table',
      offset: layout.snapshotsOffset,
      bytes,
      entries: layout.nbSnapshots,
    });
  }
  if (meta.bitmapsExtension) {
    const offset = Number(meta.bitmapsExtension.directoryOffset);
    const bytes = await file.read(offset, Number(meta.bitmapsExtension.directorySize));
    out.push({ kind: 'bitmap-directory', offset, bytes, entries: meta.bitmapsExtension.nbBitmaps });
    for (const b of meta.bitmaps) {
      const tableOffset = Number(b.bitmapTableOffset);
      const tableBytes = await file.read(tableOffset, b.bitmapTableSize * 8);
      out.push({ kind: 'bitmap-table', offset: tableOffset, bytes: tableBytes, entries: b.bitmapTableSize });
      // Bitmap data clusters are raw bits, not structures; decodeBitmapTable just checks they parse.
      decodeBitmapTable(tableBytes, b.bitmapTableSize);
    }
  }
  if (meta.cryptoHeader && meta.luks) {
    const offset = Number(meta.cryptoHeader.offset);
    out.push({ kind: 'luks-header', offset, bytes: await file.read(offset, 592) });
  }
  return out;
}
