/**
 * Spec rules that every entry of a well-formed image obeys: reserved bits zero, offsets aligned and
 * inside the file, subcluster bitmaps consistent. Read with the hand-written codecs; reports every
 * violation with the entry's file offset.
 */
import { decodeBitmapDirectory, decodeBitmapTable } from '../../format/bitmap.js';
import { view } from '../../format/bytes.js';
import { compressedSpan, decodeCompressedDescriptor } from '../../format/compressed.js';
import { BITMAP_TYPE_DIRTY_TRACKING, SNAPSHOT_EXTRA_V3_MIN } from '../../format/constants.js';
import { decodeL1Table } from '../../format/l1.js';
import { decodeL2Entry, decodeStandardDescriptor } from '../../format/l2.js';
import { decodeRefcountTable } from '../../format/refcount.js';
import { decodeSnapshotTable } from '../../format/snapshot.js';
import type { ImageMetadata } from '../../image/metadata.js';
import type { Structure } from './structures.js';

export interface Violation {
  structure: Structure['kind'];
  /** File offset of the offending entry. */
  offset: number;
  message: string;
}

export function checkInvariants(s: Structure, meta: ImageMetadata): Violation[] {
  const out: Violation[] = [];
  const report = (offset: number, message: string) => out.push({ structure: s.kind, offset, message });
  const { clusterSize } = meta.layout.geometry;
  const inFile = (offset: number, length: number) => offset + length <= meta.fileSize;
  const aligned = (offset: number) => offset % clusterSize === 0;
  switch (s.kind) {
    case 'l1-table':
      decodeL1Table(s.bytes, s.entries).forEach((e, i) => {
        const at = s.offset + i * 8;
        if (e.reservedLow || e.reservedHigh) report(at, 'reserved bits are set');
        if (e.l2Offset !== 0 && (!aligned(e.l2Offset) || !inFile(e.l2Offset, clusterSize))) {
          report(at, `L2 offset 0x${e.l2Offset.toString(16)} is unaligned or past the end of the file`);
        }
      });
      break;
    case 'l2-table':
      checkL2Table(s, meta, report);
      break;
    case 'refcount-table':
      decodeRefcountTable(s.bytes, s.entries).forEach((e, i) => {
        const at = s.offset + i * 8;
        if (e.reserved) report(at, 'reserved bits are set');
        if (e.offsetHighBits) report(at, 'refcount block offset is beyond 2^56');
        if (e.blockOffset !== 0 && (!aligned(e.blockOffset) || !inFile(e.blockOffset, clusterSize))) {
          report(at, `refcount block offset 0x${e.blockOffset.toString(16)} is unaligned or past the end of the file`);
        }
      });
      break;
    case 'snapshot-table':
      for (const e of decodeSnapshotTable(s.bytes, s.entries, s.offset).entries) {
        if (!aligned(Number(e.l1TableOffset))) report(s.offset, `snapshot '${e.id}' has an unaligned L1 table`);
        if (meta.header.version === 3 && e.extraData.byteLength < SNAPSHOT_EXTRA_V3_MIN) {
          report(s.offset, `snapshot '${e.id}' has ${e.extraData.byteLength} bytes of extra data; v3 needs 16`);
        }
      }
      break;
    case 'bitmap-directory':
      for (const e of decodeBitmapDirectory(s.bytes, s.entries, s.offset).entries) {
        if (e.flags & ~0b111) report(s.offset, `bitmap '${e.name}' has reserved flags set`);
        if (e.type !== BITMAP_TYPE_DIRTY_TRACKING) report(s.offset, `bitmap '${e.name}' has type ${e.type}`);
        if (e.name.length === 0) report(s.offset, 'a bitmap has an empty name');
        if (!aligned(Number(e.bitmapTableOffset))) report(s.offset, `bitmap '${e.name}' has an unaligned table`);
      }
      break;
    case 'bitmap-table':
      decodeBitmapTable(s.bytes, s.entries).forEach((e, i) => {
        const at = s.offset + i * 8;
        if (e.reservedLow || e.reservedHigh || (e.hostOffset !== 0 && e.allOnes)) report(at, 'reserved bits are set');
        if (e.hostOffset !== 0 && (!aligned(e.hostOffset) || !inFile(e.hostOffset, clusterSize))) {
          report(at, 'bitmap data offset is unaligned or past the end of the file');
        }
      });
      break;
    case 'header':
    case 'refcount-block':
    case 'luks-header':
      break;
  }
  return out;
}

function checkL2Table(
  s: Extract<Structure, { kind: 'l2-table' }>,
  meta: ImageMetadata,
  report: (offset: number, message: string) => void,
): void {
  const { clusterSize } = meta.layout.geometry;
  const external = meta.layout.features.externalDataFile;
  const dv = view(s.bytes);
  const size = s.extendedL2 ? 16 : 8;
  for (let i = 0; i < s.entries; i++) {
    const at = s.offset + i * size;
    const e = decodeL2Entry(dv, i * size, s.extendedL2);
    if (e.compressed) {
      const c = decodeCompressedDescriptor(e, s.clusterBits);
      const span = compressedSpan(c);
      if (external) report(at, 'compressed cluster in an image with an external data file');
      if (c.offsetHighBits) report(at, 'compressed offset is beyond 2^53');
      if (span.start + span.length > meta.fileSize + 511) report(at, 'compressed data runs past the end of the file');
      if (e.copied) report(at, 'compressed cluster has COPIED set');
      if (s.extendedL2 && (e.allocBitmap || e.zeroBitmap)) report(at, 'compressed cluster has a subcluster bitmap');
      continue;
    }
    const d = decodeStandardDescriptor(e);
    if (d.reservedLow || d.reservedHigh) report(at, 'reserved bits are set');
    if (d.zero && (meta.header.version === 2 || s.extendedL2)) report(at, 'zero flag in a v2 or extended-L2 image');
    if (d.hostOffset % clusterSize !== 0) report(at, `host offset 0x${d.hostOffset.toString(16)} is not cluster aligned`);
    // A cluster may end past the end of the file (QEMU writes only the subclusters it needs), but
    // it starts inside it.
    if (!external && d.hostOffset !== 0 && d.hostOffset >= meta.fileSize) {
      report(at, `host offset 0x${d.hostOffset.toString(16)} is past the end of the file`);
    }
    if (s.extendedL2 && (e.allocBitmap & e.zeroBitmap) !== 0) report(at, 'a subcluster is both allocated and zero');
  }
}
