// Generated from spec/qcow2_refcount_table.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2RefcountTable_, KaitaiStream) {
/**
 * The refcount table (refcount_table_clusters clusters at refcount_table_offset) is an array of
 * big-endian 64-bit entries, each pointing to one refcount block:
 *   Bit  0 -  8:    Reserved (set to 0)
 *        9 - 63:    Bits 9-63 of the offset into the image file at which the refcount block
 *                   starts. Must be aligned to a cluster boundary. If this is 0, the
 *                   corresponding refcount block has not yet been allocated. All refcounts
 *                   managed by this refcount block are 0.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2RefcountTable = (function() {
  function Qcow2RefcountTable(_io, _parent, _root, numEntries) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.numEntries = numEntries;

    this._read();
  }
  Qcow2RefcountTable.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.numEntries; i++) {
      this.entries.push(new RefcountTableEntry(this._io, this, this._root));
    }
  }

  /**
   * One 64-bit refcount table entry, read most significant bit first.
   */

  var RefcountTableEntry = Qcow2RefcountTable.RefcountTableEntry = (function() {
    function RefcountTableEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    RefcountTableEntry.prototype._read = function() {
      this.offsetHi = this._io.readBitsIntBe(32);
      this.offsetLo = this._io.readBitsIntBe(23);
      this.reserved = this._io.readBitsIntBe(9);
    }

    /**
     * True when the refcount block offset is 0.
     */
    Object.defineProperty(RefcountTableEntry.prototype, 'isUnallocated', {
      get: function() {
        if (this._m_isUnallocated !== undefined)
          return this._m_isUnallocated;
        this._m_isUnallocated =  ((this.offsetHi == 0) && (this.offsetLo == 0)) ;
        return this._m_isUnallocated;
      }
    });

    /**
     * Refcount block offset as a JS number (exact when offset_hi < 2^21, i.e. below 2^53;
     * use offset_hi/offset_lo for hostile input). 0: block not allocated, all its
     * refcounts are 0.
     */
    Object.defineProperty(RefcountTableEntry.prototype, 'offset', {
      get: function() {
        if (this._m_offset !== undefined)
          return this._m_offset;
        this._m_offset = this.offsetHi * 4294967296 + this.offsetLo * 512;
        return this._m_offset;
      }
    });

    /**
     * Bits 32-63 of the refcount block offset (not shifted).
     */

    /**
     * Bits 9-31 of the refcount block offset, as the value of those bits shifted right by 9.
     */

    /**
     * Bits 0-8. Reserved (set to 0).
     */

    return RefcountTableEntry;
  })();

  /**
   * The refcount table entries.
   */

  /**
   * Number of 8-byte entries to read (refcount_table_clusters * cluster_size / 8).
   */

  return Qcow2RefcountTable;
})();
Qcow2RefcountTable_.Qcow2RefcountTable = Qcow2RefcountTable;
})(exports_, KaitaiStream);

export const Qcow2RefcountTable = exports_.Qcow2RefcountTable;
