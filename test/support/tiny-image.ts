/**
 * A minimal valid qcow2 image written field by field from the spec, independent of our encoders:
 * 64 KiB clusters, 1 GiB virtual size, v3, header_length 112.
 *   cluster 0: header (+ end-of-extensions marker at 112)
 *   cluster 1: refcount table, entry 0 -> cluster 2
 *   cluster 2: refcount block, 16-bit refcounts of clusters 0-3 = 1
 *   cluster 3: L1 table, 2 entries (1 GiB / 64 KiB / 8192 entries per L2), both unallocated
 * qemu-img check finds it clean (test/unit/hostile-header.test.ts checks that).
 */
export const TINY = {
  clusterSize: 0x10000,
  refcountTableOffset: 0x10000,
  refcountBlockOffset: 0x20000,
  l1TableOffset: 0x30000,
  l1Size: 2,
  virtualSize: 1 << 30,
  fileSize: 0x40000,
} as const;

export function tinyImage(): Uint8Array {
  const bytes = new Uint8Array(TINY.fileSize);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, 0x514649fb); // magic
  dv.setUint32(4, 3); // version
  dv.setUint32(20, 16); // cluster_bits
  dv.setBigUint64(24, BigInt(TINY.virtualSize)); // size
  dv.setUint32(36, TINY.l1Size); // l1_size
  dv.setBigUint64(40, BigInt(TINY.l1TableOffset)); // l1_table_offset
  dv.setBigUint64(48, BigInt(TINY.refcountTableOffset)); // refcount_table_offset
  dv.setUint32(56, 1); // refcount_table_clusters
  dv.setUint32(96, 4); // refcount_order
  dv.setUint32(100, 112); // header_length
  dv.setBigUint64(TINY.refcountTableOffset, BigInt(TINY.refcountBlockOffset));
  for (let cluster = 0; cluster < 4; cluster++) dv.setUint16(TINY.refcountBlockOffset + cluster * 2, 1);
  return bytes;
}

/** Returns a copy of the tiny image with `edit` applied to its bytes. */
export function editedImage(edit: (dv: DataView, bytes: Uint8Array) => Uint8Array | void): Uint8Array {
  const bytes = tinyImage();
  return edit(new DataView(bytes.buffer), bytes) ?? bytes;
}
