// Generated from spec/qcow2_refcount_block.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2RefcountBlock_, KaitaiStream) {
/**
 * A refcount block occupies one cluster and holds cluster_size * 8 / refcount_bits entries,
 * refcount_bits = 1 << refcount_order (order 0..6, i.e. 1 to 64 bits; version 2 images always
 * use order 4). Entry n is the reference count of host cluster
 * (refcount table index * entries per block + n).
 * 
 * Entries narrower than a byte (orders 0-2: 1, 2 and 4 bits) are packed starting at the least
 * significant bit of each byte: entry n lives in byte n * refcount_bits / 8 at bit position
 * (n * refcount_bits) % 8. Entries of 8, 16, 32 and 64 bits are big-endian integers.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2RefcountBlock = (function() {
  function Qcow2RefcountBlock(_io, _parent, _root, refcountOrder, numEntries) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.refcountOrder = refcountOrder;
    this.numEntries = numEntries;

    this._read();
  }
  Qcow2RefcountBlock.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.numEntries; i++) {
      this.entries.push(new RefcountEntry(this._io, this, this._root));
    }
  }

  /**
   * One reference count. Exactly one group of the fields below is present, depending on
   * refcount_order; value combines them.
   * 
   * The byte-aligned fields come first on purpose: the compiler emits an unconditional
   * alignToByte() before the first byte-aligned field that follows a bit field (even when
   * both are conditional), which would drop the remaining bits of a byte shared by several
   * sub-byte entries. With this order nothing realigns the stream between entries.
   */

  var RefcountEntry = Qcow2RefcountBlock.RefcountEntry = (function() {
    function RefcountEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    RefcountEntry.prototype._read = function() {
      if (this._root.refcountOrder == 3) {
        this.valueU1 = this._io.readU1();
      }
      if (this._root.refcountOrder == 4) {
        this.valueU2 = this._io.readU2be();
      }
      if (this._root.refcountOrder == 5) {
        this.valueU4 = this._io.readU4be();
      }
      if (this._root.refcountOrder == 6) {
        this.valueHi = this._io.readU4be();
      }
      if (this._root.refcountOrder == 6) {
        this.valueLo = this._io.readU4be();
      }
      if (this._root.refcountOrder == 0) {
        this.valueB1 = this._io.readBitsIntLe(1) != 0;
      }
      if (this._root.refcountOrder == 1) {
        this.valueB2 = this._io.readBitsIntLe(2);
      }
      if (this._root.refcountOrder == 2) {
        this.valueB4 = this._io.readBitsIntLe(4);
      }
    }

    /**
     * The reference count as a JS number. Exact for orders 0-5; for order 6 exact only
     * when value_hi < 2^21 (use value_hi/value_lo otherwise).
     */
    Object.defineProperty(RefcountEntry.prototype, 'value', {
      get: function() {
        if (this._m_value !== undefined)
          return this._m_value;
        this._m_value = (this._root.refcountOrder == 0 ? (this.valueB1 ? 1 : 0) : (this._root.refcountOrder == 1 ? this.valueB2 : (this._root.refcountOrder == 2 ? this.valueB4 : (this._root.refcountOrder == 3 ? this.valueU1 : (this._root.refcountOrder == 4 ? this.valueU2 : (this._root.refcountOrder == 5 ? this.valueU4 : this.valueHi * 4294967296 + this.valueLo))))));
        return this._m_value;
      }
    });

    /**
     * Order 3 (8-bit refcounts).
     */

    /**
     * Order 4 (16-bit refcounts, big-endian; the only order in version 2).
     */

    /**
     * Order 5 (32-bit refcounts, big-endian).
     */

    /**
     * Order 6 (64-bit refcounts, big-endian), bits 32-63.
     */

    /**
     * Order 6 (64-bit refcounts, big-endian), bits 0-31.
     */

    /**
     * Order 0 (1-bit refcounts), packed LSB first.
     */

    /**
     * Order 1 (2-bit refcounts), packed LSB first.
     */

    /**
     * Order 2 (4-bit refcounts), packed LSB first.
     */

    return RefcountEntry;
  })();

  /**
   * Width of one entry in bits.
   */
  Object.defineProperty(Qcow2RefcountBlock.prototype, 'refcountBits', {
    get: function() {
      if (this._m_refcountBits !== undefined)
        return this._m_refcountBits;
      this._m_refcountBits = 1 << this.refcountOrder;
      return this._m_refcountBits;
    }
  });

  /**
   * The reference counts, in host cluster order.
   */

  /**
   * refcount_order from the header (0..6).
   */

  /**
   * Number of entries to read (cluster_size * 8 / refcount_bits for a whole block).
   */

  return Qcow2RefcountBlock;
})();
Qcow2RefcountBlock_.Qcow2RefcountBlock = Qcow2RefcountBlock;
})(exports_, KaitaiStream);

export const Qcow2RefcountBlock = exports_.Qcow2RefcountBlock;
