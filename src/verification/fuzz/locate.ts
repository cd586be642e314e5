/**
 * Where each structure of spec/*.ksy sits in a seed image: the header, its extensions, the backing
 * file name, the active and snapshot L1 tables, the L2 tables and their compressed descriptors, the
 * refcount table and blocks, the snapshot table, the bitmap directory and tables, and the LUKS
 * header. Found once per seed with the project's codecs (src/format/), on a valid image built by
 * QEMU; the mutators then aim at these positions. Large tables contribute every non-zero entry and
 * a few zero ones, up to a cap, so a mutation mostly lands where the engine will look.
 */
import { readMetadata } from '../../image/metadata.js';
import { decodeExtensions } from '../../format/extensions.js';
import { decodeL1Table } from '../../format/l1.js';
import { decodeL2Entry, decodeStandardDescriptor, l2EntrySize } from '../../format/l2.js';
import { decodeRefcountTable, refcountBlockEntries } from '../../format/refcount.js';
import { decodeSnapshotTable, snapshotEntrySize } from '../../format/snapshot.js';
import { bitmapEntrySize, decodeBitmapDirectory } from '../../format/bitmap.js';
import {
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO_HEADER,
  EXT_DATA_FILE,
  EXT_FEATURE_TABLE,
  FEATURE_TABLE_ENTRY_SIZE,
  SNAPSHOT_ENTRY_FIXED,
} from '../../format/constants.js';
import { LUKS_HEADER_SIZE } from '../../format/luks.js';
import { MemoryFile } from '../../io/memory-file.js';

/** A structure of spec/: `ksy id/type id`, e.g. `qcow2_l2_table/l2_entry`. */
export type StructName = string;

export interface Instance {
  struct: StructName;
  /** Absolute offset of the structure (of its entry, for table entries) in the seed. */
  base: number;
  /** Its length in bytes (for a table: the table's). */
  length: number;
  /** Whatever the field catalogue needs to place a field in this instance. */
  ctx: InstanceContext;
}

export interface InstanceContext {
  version: number;
  clusterBits: number;
  extendedL2: boolean;
  refcountOrder: number;
  /** Refcount entries: the entry's index in its block. */
  index?: number;
  /** Variable-length parts: snapshot and bitmap directory entries, extensions. */
  extraSize?: number;
  idSize?: number;
  nameSize?: number;
  dataLength?: number;
  /** The header: where the backing file name is, and its length. */
  backingOffset?: number;
  backingSize?: number;
  /** L2 entries: whether the seed's entry is compressed. */
  compressed?: boolean;
}

export interface SeedMap {
  fileSize: number;
  clusterSize: number;
  instances: Map<StructName, Instance[]>;
  /** Starts of metadata structures (tables, blocks, header), for "points into other metadata". */
  metadataOffsets: number[];
  /** Host offsets of some data clusters, for "shared between two tables". */
  dataOffsets: number[];
}

/** Per table, at most this many entries are offered to the mutators (non-zero first). */
const ENTRIES_PER_TABLE = 96;
const ZERO_ENTRIES_PER_TABLE = 4;
const TABLES_PER_KIND = 64;

export async function locate(seed: Uint8Array): Promise<SeedMap> {
  const file = new MemoryFile(seed, true);
  const meta = await readMetadata(file);
  const { header } = meta;
  const clusterBits = header.clusterBits;
  const C = 2 ** clusterBits;
  const extendedL2 = meta.layout.features.extendedL2;
  const base: InstanceContext = { version: header.version, clusterBits, extendedL2, refcountOrder: header.refcountOrder };
  const instances = new Map<StructName, Instance[]>();
  const metadataOffsets = new Set<number>([0]);
  const dataOffsets = new Set<number>();
  const add = (struct: StructName, at: number, length: number, ctx: Partial<InstanceContext> = {}) => {
    const list = instances.get(struct) ?? [];
    list.push({ struct, base: at, length, ctx: { ...base, ...ctx } });
    instances.set(struct, list);
  };
  const u32 = (at: number) => new DataView(seed.buffer, seed.byteOffset).getUint32(at);

  add('qcow2_header/qcow2_header', 0, header.headerLength, { backingOffset: meta.layout.backingFileOffset, backingSize: meta.layout.backingFileSize });
  const extLimit = meta.layout.backingFileOffset > 0 && meta.layout.backingFileOffset < C ? meta.layout.backingFileOffset : C;
  const ext = decodeExtensions(seed.subarray(0, C), header.headerLength, extLimit);
  for (const at of [...ext.offsets, ext.end - 8]) {
    const type = u32(at);
    const length = u32(at + 4);
    add('qcow2_header/header_extension', at, 8 + length, { dataLength: length });
    const data = at + 8;
    if (type === EXT_BACKING_FORMAT) add('qcow2_header/backing_file_format_name', data, length);
    if (type === EXT_DATA_FILE) add('qcow2_header/external_data_file_name', data, length);
    if (type === EXT_BITMAPS) add('qcow2_header/bitmaps_extension', data, length);
    if (type === EXT_CRYPTO_HEADER) add('qcow2_header/full_disk_encryption_header_pointer', data, length);
    if (type === EXT_FEATURE_TABLE) {
      add('qcow2_header/feature_name_table', data, length);
      for (let e = 0; e + FEATURE_TABLE_ENTRY_SIZE <= length; e += FEATURE_TABLE_ENTRY_SIZE) {
        add('qcow2_header/feature_name_entry', data + e, FEATURE_TABLE_ENTRY_SIZE);
      }
    }
  }

  const l1Tables: Array<{ offset: number; size: number }> = [{ offset: Number(header.l1TableOffset), size: header.l1Size }];
  if (meta.layout.nbSnapshots > 0) {
    const at = meta.layout.snapshotsOffset;
    metadataOffsets.add(at);
    const { entries, size } = decodeSnapshotTable(seed.subarray(at), meta.layout.nbSnapshots, at);
    add('qcow2_snapshot_table/qcow2_snapshot_table', at, size);
    let p = at;
    for (const e of entries) {
      const sizes = { extraSize: e.extraData.byteLength, idSize: Buffer.byteLength(e.id), nameSize: Buffer.byteLength(e.name) };
      add('qcow2_snapshot_table/snapshot_entry', p, snapshotEntrySize(e), sizes);
      add('qcow2_snapshot_table/snapshot_extra_data', p + SNAPSHOT_ENTRY_FIXED, sizes.extraSize, sizes);
      l1Tables.push({ offset: Number(e.l1TableOffset), size: e.l1Size });
      p += snapshotEntrySize(e);
    }
  }

  const l2Seen = new Set<number>();
  for (const t of l1Tables) {
    if (t.size === 0) continue;
    metadataOffsets.add(t.offset);
    add('qcow2_l1_table/qcow2_l1_table', t.offset, t.size * 8);
    const l1 = decodeL1Table(seed.subarray(t.offset, t.offset + t.size * 8), t.size);
    entriesOf(l1.map((e) => e.l2Offset !== 0), (i) => add('qcow2_l1_table/l1_entry', t.offset + i * 8, 8));
    for (const e of l1) {
      if (e.l2Offset === 0 || l2Seen.has(e.l2Offset) || l2Seen.size >= TABLES_PER_KIND || e.l2Offset + C > seed.byteLength) continue;
      l2Seen.add(e.l2Offset);
      metadataOffsets.add(e.l2Offset);
      add('qcow2_l2_table/qcow2_l2_table', e.l2Offset, C);
      const size = l2EntrySize(extendedL2);
      const dv = new DataView(seed.buffer, seed.byteOffset + e.l2Offset, C);
      const entries = Array.from({ length: C / size }, (_, i) => decodeL2Entry(dv, i * size, extendedL2));
      entriesOf(
        entries.map((x) => x.descriptorHi !== 0 || x.descriptorLo !== 0 || x.copied || x.compressed || x.allocBitmap !== 0 || x.zeroBitmap !== 0),
        (i) => {
          const x = entries[i]!;
          const at = e.l2Offset + i * size;
          add('qcow2_l2_table/l2_entry', at, size, { compressed: x.compressed });
          if (x.compressed) add('qcow2_compressed_descriptor/qcow2_compressed_descriptor', at, 8);
          else if (decodeStandardDescriptor(x).hostOffset !== 0) dataOffsets.add(decodeStandardDescriptor(x).hostOffset);
        },
      );
    }
  }

  const rtOffset = Number(header.refcountTableOffset);
  const rtBytes = header.refcountTableClusters * C;
  if (rtOffset + rtBytes <= seed.byteLength) {
    metadataOffsets.add(rtOffset);
    add('qcow2_refcount_table/qcow2_refcount_table', rtOffset, rtBytes);
    const rt = decodeRefcountTable(seed.subarray(rtOffset, rtOffset + rtBytes), rtBytes / 8);
    entriesOf(rt.map((e) => e.blockOffset !== 0), (i) => add('qcow2_refcount_table/refcount_table_entry', rtOffset + i * 8, 8));
    const perBlock = refcountBlockEntries(clusterBits, header.refcountOrder);
    for (const e of rt.slice(0, TABLES_PER_KIND)) {
      if (e.blockOffset === 0 || e.blockOffset + C > seed.byteLength) continue;
      metadataOffsets.add(e.blockOffset);
      add('qcow2_refcount_block/qcow2_refcount_block', e.blockOffset, C);
      const used = Math.min(perBlock, Math.ceil(seed.byteLength / C) + 2);
      for (let i = 0; i < Math.min(used, ENTRIES_PER_TABLE); i++) add('qcow2_refcount_block/refcount_entry', e.blockOffset, C, { index: i });
    }
  }

  if (meta.bitmapsExtension) {
    const at = Number(meta.bitmapsExtension.directoryOffset);
    metadataOffsets.add(at);
    const { entries, size } = decodeBitmapDirectory(seed.subarray(at), meta.bitmapsExtension.nbBitmaps, at);
    add('qcow2_bitmap_directory/qcow2_bitmap_directory', at, size);
    let p = at;
    for (const e of entries) {
      const sizes = { extraSize: e.extraData.byteLength, nameSize: Buffer.byteLength(e.name) };
      add('qcow2_bitmap_directory/bitmap_directory_entry', p, bitmapEntrySize(e), sizes);
      p += bitmapEntrySize(e);
      const t = Number(e.bitmapTableOffset);
      if (t === 0 || t + e.bitmapTableSize * 8 > seed.byteLength) continue;
      metadataOffsets.add(t);
      add('qcow2_bitmap_table/qcow2_bitmap_table', t, e.bitmapTableSize * 8);
      for (let i = 0; i < Math.min(e.bitmapTableSize, ENTRIES_PER_TABLE); i++) add('qcow2_bitmap_table/bitmap_table_entry', t + i * 8, 8);
    }
  }

  if (meta.cryptoHeader && meta.luks) {
    const at = Number(meta.cryptoHeader.offset);
    metadataOffsets.add(at);
    add('luks1_header/luks1_header', at, LUKS_HEADER_SIZE);
    for (let i = 0; i < 8; i++) add('luks1_header/key_slot', at + 208 + i * 48, 48);
  }

  return { fileSize: seed.byteLength, clusterSize: C, instances, metadataOffsets: [...metadataOffsets], dataOffsets: [...dataOffsets].slice(0, 256) };
}

/** Calls `each` with the indexes of the interesting (non-zero) entries and a few zero ones, up to the cap. */
function entriesOf(nonZero: boolean[], each: (index: number) => void): void {
  let taken = 0;
  let zeros = 0;
  for (let i = 0; i < nonZero.length && taken < ENTRIES_PER_TABLE; i++) {
    if (nonZero[i]) {
      each(i);
      taken++;
    } else if (zeros < ZERO_ENTRIES_PER_TABLE) {
      each(i);
      zeros++;
      taken++;
    }
  }
}
