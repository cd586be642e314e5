// Generated from spec/qcow2_l2_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';
import { Qcow2CompressedDescriptor } from './Qcow2CompressedDescriptor.js';

const exports_ = {};
(function (Qcow2L2Table_, KaitaiStream, Qcow2CompressedDescriptor_) {
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
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2L2Table = (function() {
  function Qcow2L2Table(_io, _parent, _root, clusterBits, extendedL2, numEntries) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.clusterBits = clusterBits;
    this.extendedL2 = extendedL2;
    this.numEntries = numEntries;

    this._read();
  }
  Qcow2L2Table.prototype._read = function() {
    this._raw_entries = [];
    this.entries = [];
    for (var i = 0; i < this.numEntries; i++) {
      this._raw_entries.push(this._io.readBytes(this.entrySize));
      var _io__raw_entries = new KaitaiStream(this._raw_entries[i]);
      this.entries.push(new L2Entry(_io__raw_entries, this, this._root));
    }
  }

  /**
   * One standard (8-byte) or extended (16-byte) L2 entry, read most significant bit first.
   */

  var L2Entry = Qcow2L2Table.L2Entry = (function() {
    function L2Entry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    L2Entry.prototype._read = function() {
      this.copied = this._io.readBitsIntBe(1) != 0;
      this.compressed = this._io.readBitsIntBe(1) != 0;
      if (!(this.compressed)) {
        this.reservedHi = this._io.readBitsIntBe(6);
      }
      if (!(this.compressed)) {
        this.offsetHi = this._io.readBitsIntBe(24);
      }
      if (!(this.compressed)) {
        this.offsetLo = this._io.readBitsIntBe(23);
      }
      if (!(this.compressed)) {
        this.reservedLo = this._io.readBitsIntBe(8);
      }
      if (!(this.compressed)) {
        this.readsAsZero = this._io.readBitsIntBe(1) != 0;
      }
      if (this.compressed) {
        this.descHi = this._io.readBitsIntBe(30);
      }
      if (this.compressed) {
        this.descLo = this._io.readBitsIntBe(32);
      }
      this._io.alignToByte();
      if (this._root.extendedL2) {
        this.zeroBitmap = this._io.readU4be();
      }
      if (this._root.extendedL2) {
        this.allocBitmap = this._io.readU4be();
      }
    }

    /**
     * The compressed cluster descriptor split by cluster_bits (compressed clusters only).
     */
    Object.defineProperty(L2Entry.prototype, 'compressedDescriptor', {
      get: function() {
        if (this._m_compressedDescriptor !== undefined)
          return this._m_compressedDescriptor;
        if (this.compressed) {
          var _pos = this._io.pos;
          this._io.seek(0);
          this._m_compressedDescriptor = new Qcow2CompressedDescriptor_.Qcow2CompressedDescriptor(this._io, null, null, this._root.clusterBits);
          this._io.seek(_pos);
        }
        return this._m_compressedDescriptor;
      }
    });

    /**
     * True for a standard entry with offset 0 and COPIED clear (unallocated; with an
     * external data file an offset of 0 with COPIED set is allocated).
     */
    Object.defineProperty(L2Entry.prototype, 'isUnallocated', {
      get: function() {
        if (this._m_isUnallocated !== undefined)
          return this._m_isUnallocated;
        this._m_isUnallocated =  ((!(this.compressed)) && (!(this.copied)) && (this.offsetHi == 0) && (this.offsetLo == 0)) ;
        return this._m_isUnallocated;
      }
    });

    /**
     * Host cluster offset (bits 9-55, exact as a JS number); standard clusters only.
     */
    Object.defineProperty(L2Entry.prototype, 'offset', {
      get: function() {
        if (this._m_offset !== undefined)
          return this._m_offset;
        if (!(this.compressed)) {
          this._m_offset = this.offsetHi * 4294967296 + this.offsetLo * 512;
        }
        return this._m_offset;
      }
    });

    /**
     * Bit 63, COPIED. 1 for standard clusters whose refcount is exactly one.
     */

    /**
     * Bit 62. 0 for standard clusters, 1 for compressed clusters.
     */

    /**
     * Bits 56-61 (standard clusters only). Reserved (set to 0).
     */

    /**
     * Bits 32-55 of the host cluster offset (standard clusters only; not shifted).
     */

    /**
     * Bits 9-31 of the host cluster offset (standard clusters only), as the value of those
     * bits shifted right by 9.
     */

    /**
     * Bits 1-8 (standard clusters only). Reserved (set to 0).
     */

    /**
     * Bit 0 (standard clusters only). If set, the cluster reads as all zeros. Always 0 with
     * version 2 or with extended L2 entries.
     */

    /**
     * Bits 32-61 of the compressed cluster descriptor (compressed clusters only), raw.
     */

    /**
     * Bits 0-31 of the compressed cluster descriptor (compressed clusters only), raw.
     */

    /**
     * Extended L2 only: bits 32-63 of the second word, the subcluster reads-as-zero
     * bitmap (bit n of this value is subcluster n).
     */

    /**
     * Extended L2 only: bits 0-31 of the second word, the subcluster allocation bitmap
     * (bit n of this value is subcluster n).
     */

    return L2Entry;
  })();

  /**
   * Size of one L2 entry in bytes.
   */
  Object.defineProperty(Qcow2L2Table.prototype, 'entrySize', {
    get: function() {
      if (this._m_entrySize !== undefined)
        return this._m_entrySize;
      this._m_entrySize = (this.extendedL2 ? 16 : 8);
      return this._m_entrySize;
    }
  });

  /**
   * The L2 entries, in guest address order. Each entry is parsed from its own substream.
   */

  /**
   * cluster_bits from the image header (needed to split compressed descriptors).
   */

  /**
   * True if incompatible feature bit 4 (extended L2 entries, 16 bytes each) is set.
   */

  /**
   * Number of entries to read (cluster size / entry size for a whole table).
   */

  return Qcow2L2Table;
})();
Qcow2L2Table_.Qcow2L2Table = Qcow2L2Table;
})(exports_, KaitaiStream, { Qcow2CompressedDescriptor });

export const Qcow2L2Table = exports_.Qcow2L2Table;
