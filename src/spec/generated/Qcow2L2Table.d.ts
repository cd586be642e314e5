// Generated from spec/qcow2_l2_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.

import type KaitaiStreamModule from 'kaitai-struct/KaitaiStream.js';
import type { Qcow2CompressedDescriptor } from './Qcow2CompressedDescriptor.js';

// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the
// default import is typed as the module object; at run time it is the KaitaiStream class.
type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;

/**
 * An L2 table occupies one cluster and maps guest clusters to host clusters. Each entry is
 * 8 bytes (standard) or 16 bytes (extended L2, incompatible feature bit 4).
 *
 * Standard L2 entry (and the first 64 bits of an extended entry):
 *   Bit  0 -  61:   Cluster descriptor
 *             62:   0 for standard clusters, 1 for compressed clusters
 *             63:   0 for clusters that are unused, compressed or require COW;
 *                   1 for standard clusters whose refcount is exactly one. This information
 *                   is only accurate in L2 tables that are reachable from the active L1 table.
 *                   With external data files, all guest clusters have an implicit refcount
 *                   of 1 (because of the fixed host = guest mapping for guest cluster
 *                   offsets), so this bit should be 1 for all allocated clusters.
 *
 * Standard cluster descriptor:
 *   Bit       0:    If set to 1, the cluster reads as all zeros. The host cluster offset can
 *                   be used to describe a preallocation, but it won't be used for reading
 *                   data from this cluster, nor is data read from the backing file if the
 *                   cluster is unallocated. With version 2 or with extended L2 entries, this
 *                   is always 0.
 *        1 -  8:    Reserved (set to 0)
 *        9 - 55:    Bits 9-55 of host cluster offset. Must be aligned to a cluster boundary.
 *                   If the offset is 0 and bit 63 is clear, the cluster is unallocated. The
 *                   offset may only be 0 with bit 63 set (indicating a host cluster offset of
 *                   0) when an external data file is used.
 *       56 - 61:    Reserved (set to 0)
 *
 * Compressed cluster descriptor: see qcow2_compressed_descriptor.ksy.
 *
 * Extended L2 entries add a second 64-bit word (subcluster bitmaps, 32 subclusters):
 *   Bit  0 - 31:    Allocation status (one bit per subcluster): 1 allocated, 0 not
 *                   allocated (read from the backing file, or zeros if none)
 *       32 - 63:    Subcluster reads as zeros (one bit per subcluster): 1 reads as zeros,
 *                   0 not. Both bits set for one subcluster is invalid. Compressed clusters
 *                   have no subclusters: the whole second word is 0.
 * Read big-endian, the first u4 of the second word is therefore the zero bitmap and the second
 * u4 the allocation bitmap.
 *
 * @see https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst
 */
export declare class Qcow2L2Table {
  constructor(io: KaitaiStream, parent: unknown, root: unknown, clusterBits: number, extendedL2: boolean, numEntries: number);
  readonly _io: KaitaiStream;
  readonly _parent: unknown;
  readonly _root: unknown;
  /**
   * cluster_bits from the image header (needed to split compressed descriptors).
   *
   * (parameter)
   */
  readonly clusterBits: number;
  /**
   * True if incompatible feature bit 4 (extended L2 entries, 16 bytes each) is set.
   *
   * (parameter)
   */
  readonly extendedL2: boolean;
  /**
   * Number of entries to read (cluster size / entry size for a whole table).
   *
   * (parameter)
   */
  readonly numEntries: number;
  /**
   * The L2 entries, in guest address order. Each entry is parsed from its own substream.
   */
  readonly entries: Qcow2L2Table.L2Entry[];
  /**
   * Raw bytes of entries (the substream it was parsed from).
   */
  readonly _raw_entries: Uint8Array[];
  /**
   * Size of one L2 entry in bytes.
   *
   * (instance, computed lazily on first access)
   */
  readonly entrySize: number;
}
export declare namespace Qcow2L2Table {
  /**
   * One standard (8-byte) or extended (16-byte) L2 entry, read most significant bit first.
   */
  export class L2Entry {
    constructor(io: KaitaiStream, parent?: unknown, root?: unknown);
    readonly _io: KaitaiStream;
    readonly _parent: unknown;
    readonly _root: unknown;
    /**
     * Bit 63, COPIED. 1 for standard clusters whose refcount is exactly one.
     */
    readonly copied: boolean;
    /**
     * Bit 62. 0 for standard clusters, 1 for compressed clusters.
     */
    readonly compressed: boolean;
    /**
     * Bits 56-61 (standard clusters only). Reserved (set to 0).
     */
    readonly reservedHi: number | undefined;
    /**
     * Bits 32-55 of the host cluster offset (standard clusters only; not shifted).
     */
    readonly offsetHi: number | undefined;
    /**
     * Bits 9-31 of the host cluster offset (standard clusters only), as the value of those
     * bits shifted right by 9.
     */
    readonly offsetLo: number | undefined;
    /**
     * Bits 1-8 (standard clusters only). Reserved (set to 0).
     */
    readonly reservedLo: number | undefined;
    /**
     * Bit 0 (standard clusters only). If set, the cluster reads as all zeros. Always 0 with
     * version 2 or with extended L2 entries.
     */
    readonly readsAsZero: boolean | undefined;
    /**
     * Bits 32-61 of the compressed cluster descriptor (compressed clusters only), raw.
     */
    readonly descHi: number | undefined;
    /**
     * Bits 0-31 of the compressed cluster descriptor (compressed clusters only), raw.
     */
    readonly descLo: number | undefined;
    /**
     * Extended L2 only: bits 32-63 of the second word, the subcluster reads-as-zero
     * bitmap (bit n of this value is subcluster n).
     */
    readonly zeroBitmap: number | undefined;
    /**
     * Extended L2 only: bits 0-31 of the second word, the subcluster allocation bitmap
     * (bit n of this value is subcluster n).
     */
    readonly allocBitmap: number | undefined;
    /**
     * Host cluster offset (bits 9-55, exact as a JS number); standard clusters only.
     *
     * (instance, computed lazily on first access)
     */
    readonly offset: number | undefined;
    /**
     * True for a standard entry with offset 0 and COPIED clear (unallocated; with an
     * external data file an offset of 0 with COPIED set is allocated).
     *
     * (instance, computed lazily on first access)
     */
    readonly isUnallocated: boolean;
    /**
     * The compressed cluster descriptor split by cluster_bits (compressed clusters only).
     *
     * (instance, computed lazily on first access)
     */
    readonly compressedDescriptor: Qcow2CompressedDescriptor | undefined;
  }
}
