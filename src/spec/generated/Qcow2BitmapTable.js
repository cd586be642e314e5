// Generated from spec/qcow2_bitmap_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2BitmapTable_, KaitaiStream) {
/**
 * A bitmap table (bitmap_table_size entries at bitmap_table_offset) maps the bitmap's data
 * in units of one cluster. Each entry is a big-endian 64-bit word:
 *   Bit       0:    Reserved and must be zero if bits 9 - 55 are non-zero.
 *                   If bits 9 - 55 are zero:
 *                     0: Cluster should be read as all zeros.
 *                     1: Cluster should be read as all ones.
 *        1 -  8:    Reserved and must be zero.
 *        9 - 55:    Bits 9 - 55 of the host cluster offset. Must be aligned to a cluster
 *                   boundary. If the offset is 0, the cluster is unallocated; see bit 0.
 *       56 - 63:    Reserved and must be zero.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2BitmapTable = (function() {
  function Qcow2BitmapTable(_io, _parent, _root, numEntries) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.numEntries = numEntries;

    this._read();
  }
  Qcow2BitmapTable.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.numEntries; i++) {
      this.entries.push(new BitmapTableEntry(this._io, this, this._root));
    }
  }

  /**
   * One 64-bit bitmap table entry, read most significant bit first.
   */

  var BitmapTableEntry = Qcow2BitmapTable.BitmapTableEntry = (function() {
    function BitmapTableEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    BitmapTableEntry.prototype._read = function() {
      this.reservedHi = this._io.readBitsIntBe(8);
      this.offsetHi = this._io.readBitsIntBe(24);
      this.offsetLo = this._io.readBitsIntBe(23);
      this.reservedLo = this._io.readBitsIntBe(8);
      this.allOnes = this._io.readBitsIntBe(1) != 0;
    }

    /**
     * True when the offset is 0 (the cluster reads as all zeros or all ones, see all_ones).
     */
    Object.defineProperty(BitmapTableEntry.prototype, 'isUnallocated', {
      get: function() {
        if (this._m_isUnallocated !== undefined)
          return this._m_isUnallocated;
        this._m_isUnallocated =  ((this.offsetHi == 0) && (this.offsetLo == 0)) ;
        return this._m_isUnallocated;
      }
    });

    /**
     * Host cluster offset (bits 9-55, exact as a JS number); 0 if unallocated.
     */
    Object.defineProperty(BitmapTableEntry.prototype, 'offset', {
      get: function() {
        if (this._m_offset !== undefined)
          return this._m_offset;
        this._m_offset = this.offsetHi * 4294967296 + this.offsetLo * 512;
        return this._m_offset;
      }
    });

    /**
     * Bits 56-63. Reserved and must be zero.
     */

    /**
     * Bits 32-55 of the host cluster offset (not shifted).
     */

    /**
     * Bits 9-31 of the host cluster offset, as the value of those bits shifted right by 9.
     */

    /**
     * Bits 1-8. Reserved and must be zero.
     */

    /**
     * Bit 0. If the offset is 0: set means the cluster reads as all ones, clear as all
     * zeros. Reserved (must be zero) if the offset is non-zero.
     */

    return BitmapTableEntry;
  })();

  /**
   * The bitmap table entries.
   */

  /**
   * Number of 8-byte entries to read (bitmap_table_size from the directory entry).
   */

  return Qcow2BitmapTable;
})();
Qcow2BitmapTable_.Qcow2BitmapTable = Qcow2BitmapTable;
})(exports_, KaitaiStream);

export const Qcow2BitmapTable = exports_.Qcow2BitmapTable;
