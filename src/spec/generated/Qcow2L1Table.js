// Generated from spec/qcow2_l1_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2L1Table_, KaitaiStream) {
/**
 * The L1 table (l1_size entries at l1_table_offset for the active image, or at a snapshot's
 * l1_table_offset) maps the guest address space in units of one L2 table's coverage. Each
 * entry is a big-endian 64-bit word:
 *   Bit  0 -  8:    Reserved (set to 0)
 *        9 - 55:    Bits 9-55 of the offset into the image file at which the L2 table
 *                   starts. Must be aligned to a cluster boundary. If the offset is 0, the
 *                   L2 table and all clusters described by this L2 table are unallocated.
 *       56 - 62:    Reserved (set to 0)
 *            63:    0 for an L2 table that is unused or requires COW, 1 if its refcount is
 *                   exactly one. This information is only accurate in the active L1 table.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2L1Table = (function() {
  function Qcow2L1Table(_io, _parent, _root, numEntries) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.numEntries = numEntries;

    this._read();
  }
  Qcow2L1Table.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.numEntries; i++) {
      this.entries.push(new L1Entry(this._io, this, this._root));
    }
  }

  /**
   * One 64-bit L1 table entry, read most significant bit first.
   */

  var L1Entry = Qcow2L1Table.L1Entry = (function() {
    function L1Entry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    L1Entry.prototype._read = function() {
      this.copied = this._io.readBitsIntBe(1) != 0;
      this.reservedHi = this._io.readBitsIntBe(7);
      this.offsetHi = this._io.readBitsIntBe(24);
      this.offsetLo = this._io.readBitsIntBe(23);
      this.reservedLo = this._io.readBitsIntBe(9);
    }

    /**
     * True when any reserved bit (0-8 or 56-62) is set.
     */
    Object.defineProperty(L1Entry.prototype, 'hasReservedBits', {
      get: function() {
        if (this._m_hasReservedBits !== undefined)
          return this._m_hasReservedBits;
        this._m_hasReservedBits =  ((this.reservedHi != 0) || (this.reservedLo != 0)) ;
        return this._m_hasReservedBits;
      }
    });

    /**
     * True when the L2 table offset is 0.
     */
    Object.defineProperty(L1Entry.prototype, 'isUnallocated', {
      get: function() {
        if (this._m_isUnallocated !== undefined)
          return this._m_isUnallocated;
        this._m_isUnallocated =  ((this.offsetHi == 0) && (this.offsetLo == 0)) ;
        return this._m_isUnallocated;
      }
    });

    /**
     * Offset of the L2 table in the image file (bits 9-55 of the entry, exact as a JS
     * number). 0 means the L2 table and all clusters it describes are unallocated.
     */
    Object.defineProperty(L1Entry.prototype, 'offset', {
      get: function() {
        if (this._m_offset !== undefined)
          return this._m_offset;
        this._m_offset = this.offsetHi * 4294967296 + this.offsetLo * 512;
        return this._m_offset;
      }
    });

    /**
     * Bit 63, COPIED. Set if the L2 table's refcount is exactly one (no COW needed).
     */

    /**
     * Bits 56-62. Reserved (set to 0).
     */

    /**
     * Bits 32-55 of the L2 table offset (value of bits 32-55, not shifted).
     */

    /**
     * Bits 9-31 of the L2 table offset, as the value of those bits shifted right by 9.
     */

    /**
     * Bits 0-8. Reserved (set to 0).
     */

    return L1Entry;
  })();

  /**
   * The L1 entries, in guest address order.
   */

  /**
   * Number of 8-byte entries to read (l1_size from the header or snapshot).
   */

  return Qcow2L1Table;
})();
Qcow2L1Table_.Qcow2L1Table = Qcow2L1Table;
})(exports_, KaitaiStream);

export const Qcow2L1Table = exports_.Qcow2L1Table;
