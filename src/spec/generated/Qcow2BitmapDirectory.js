// Generated from spec/qcow2_bitmap_directory.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2BitmapDirectory_, KaitaiStream) {
/**
 * The bitmap directory (bitmap_directory_size bytes at bitmap_directory_offset, both from the
 * bitmaps header extension) is a list of nb_bitmaps variable-length entries, each aligned to 8
 * bytes:
 *   Byte 0 -  7:    bitmap_table_offset: offset into the image file at which the bitmap table
 *                   for the bitmap starts. Must be aligned to a cluster boundary.
 *        8 - 11:    bitmap_table_size: number of entries in the bitmap table.
 *       12 - 15:    flags
 *                   Bit 0: in_use. The bitmap was not saved correctly and may be inconsistent.
 *                   1: auto. The bitmap must reflect all changes of the virtual disk by any
 *                      application that would write to this qcow2 file (including writes,
 *                      snapshot switching, etc.).
 *                   2: extra_data_compatible. The extra data may be ignored if it is not
 *                      understood (otherwise the bitmap cannot be used).
 *                   Bits 3 - 31 are reserved and must be 0.
 *            16:    type: 1 is the only defined value (dirty tracking bitmap).
 *            17:    granularity_bits: granularity = 1 << granularity_bits (9..31).
 *       18 - 19:    name_size (at most 1023).
 *       20 - 23:    extra_data_size (must be 0 in the current version).
 *       variable:   extra_data
 *       variable:   name (UTF-8, not NUL-terminated)
 *       variable:   Padding to round up the entry size to the next multiple of 8.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2BitmapDirectory = (function() {
  Qcow2BitmapDirectory.BitmapType = Object.freeze({
    DIRTY_TRACKING: 1,

    1: "DIRTY_TRACKING",
  });

  function Qcow2BitmapDirectory(_io, _parent, _root, nbBitmaps) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.nbBitmaps = nbBitmaps;

    this._read();
  }
  Qcow2BitmapDirectory.prototype._read = function() {
    this.entries = [];
    for (var i = 0; i < this.nbBitmaps; i++) {
      this.entries.push(new BitmapDirectoryEntry(this._io, this, this._root));
    }
  }

  /**
   * One bitmap directory entry (24 fixed bytes, extra data, name, padding to 8).
   */

  var BitmapDirectoryEntry = Qcow2BitmapDirectory.BitmapDirectoryEntry = (function() {
    function BitmapDirectoryEntry(_io, _parent, _root) {
      this._io = _io;
      this._parent = _parent;
      this._root = _root;

      this._read();
    }
    BitmapDirectoryEntry.prototype._read = function() {
      this.bitmapTableOffsetHi = this._io.readU4be();
      this.bitmapTableOffsetLo = this._io.readU4be();
      this.bitmapTableSize = this._io.readU4be();
      this.flags = this._io.readU4be();
      this.type = this._io.readU1();
      this.granularityBits = this._io.readU1();
      this.nameSize = this._io.readU2be();
      this.extraDataSize = this._io.readU4be();
      this.extraData = this._io.readBytes(this.extraDataSize);
      this.name = KaitaiStream.bytesToStr(this._io.readBytes(this.nameSize), "UTF-8");
      this.padding = this._io.readBytes(KaitaiStream.mod(-((24 + this.extraDataSize) + this.nameSize), 8));
    }

    /**
     * Flags bit 1, auto.
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'auto', {
      get: function() {
        if (this._m_auto !== undefined)
          return this._m_auto;
        this._m_auto = (this.flags & 2) != 0;
        return this._m_auto;
      }
    });

    /**
     * bitmap_table_offset as a JS number (exact when the hi half is < 2^21).
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'bitmapTableOffset', {
      get: function() {
        if (this._m_bitmapTableOffset !== undefined)
          return this._m_bitmapTableOffset;
        this._m_bitmapTableOffset = this.bitmapTableOffsetHi * 4294967296 + this.bitmapTableOffsetLo;
        return this._m_bitmapTableOffset;
      }
    });

    /**
     * Total size of this entry in bytes, including padding (a multiple of 8).
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'entrySize', {
      get: function() {
        if (this._m_entrySize !== undefined)
          return this._m_entrySize;
        this._m_entrySize = ((24 + this.extraDataSize) + this.nameSize) + this.padding.length;
        return this._m_entrySize;
      }
    });

    /**
     * Flags bit 2, extra_data_compatible.
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'extraDataCompatible', {
      get: function() {
        if (this._m_extraDataCompatible !== undefined)
          return this._m_extraDataCompatible;
        this._m_extraDataCompatible = (this.flags & 4) != 0;
        return this._m_extraDataCompatible;
      }
    });

    /**
     * True when any reserved flag bit (3-31) is set.
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'hasReservedFlags', {
      get: function() {
        if (this._m_hasReservedFlags !== undefined)
          return this._m_hasReservedFlags;
        this._m_hasReservedFlags = this.flags >>> 3 != 0;
        return this._m_hasReservedFlags;
      }
    });

    /**
     * Flags bit 0, in_use.
     */
    Object.defineProperty(BitmapDirectoryEntry.prototype, 'inUse', {
      get: function() {
        if (this._m_inUse !== undefined)
          return this._m_inUse;
        this._m_inUse = (this.flags & 1) != 0;
        return this._m_inUse;
      }
    });

    /**
     * Bytes 0-3. Bits 32-63 of bitmap_table_offset.
     */

    /**
     * Bytes 4-7. Bits 0-31 of bitmap_table_offset.
     */

    /**
     * Bytes 8-11. Number of entries in the bitmap table of the bitmap.
     */

    /**
     * Bytes 12-15. Bit 0 in_use, bit 1 auto, bit 2 extra_data_compatible, bits 3-31
     * reserved (must be 0).
     */

    /**
     * Byte 16. Bitmap type; 1 (dirty tracking bitmap) is the only defined value.
     */

    /**
     * Byte 17. Granularity bits (granularity = 1 << granularity_bits, 9..31).
     */

    /**
     * Bytes 18-19. Size of the bitmap name (at most 1023).
     */

    /**
     * Bytes 20-23. Size of type-specific extra data (must be 0 in the current version).
     */

    /**
     * Type-specific extra data, kept verbatim.
     */

    /**
     * The name of the bitmap (UTF-8, not NUL-terminated).
     */

    /**
     * Padding to round the entry size up to a multiple of 8 (counted from the entry start).
     */

    return BitmapDirectoryEntry;
  })();

  /**
   * The bitmap directory entries.
   */

  /**
   * Number of directory entries to read (nb_bitmaps from the bitmaps extension).
   */

  return Qcow2BitmapDirectory;
})();
Qcow2BitmapDirectory_.Qcow2BitmapDirectory = Qcow2BitmapDirectory;
})(exports_, KaitaiStream);

export const Qcow2BitmapDirectory = exports_.Qcow2BitmapDirectory;
