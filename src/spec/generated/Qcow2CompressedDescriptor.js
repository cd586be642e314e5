// Generated from spec/qcow2_compressed_descriptor.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler 0.11.0).
// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.
// This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild

import KaitaiStream from 'kaitai-struct/KaitaiStream.js';

const exports_ = {};
(function (Qcow2CompressedDescriptor_, KaitaiStream) {
/**
 * Parses one big-endian 64-bit word whose bits 0-61 are a compressed cluster descriptor: a
 * whole L2 entry of a compressed cluster (bits 62-63 are then the compressed flag and COPIED,
 * which is always 0 for compressed clusters), or the bare descriptor with bits 62-63 zero.
 * 
 * With x = 62 - (cluster_bits - 8):
 *   Bit  0 - x-1:   Host cluster offset. This is usually _not_ aligned to a cluster or
 *                   sector boundary! If cluster_bits is small enough that this field includes
 *                   bits beyond 55, those upper bits must be set to 0.
 *        x - 61:    Number of additional 512-byte sectors used for the compressed data,
 *                   beyond the sector containing the offset in the previous field. Some of
 *                   these sectors may reside in the next contiguous host cluster.
 * 
 * Note that the compressed data does not necessarily occupy all of the bytes in the final
 * sector; rather, decompression stops when it has produced a cluster of data.
 * @see {@link https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.rst|Source}
 */

var Qcow2CompressedDescriptor = (function() {
  function Qcow2CompressedDescriptor(_io, _parent, _root, clusterBits) {
    this._io = _io;
    this._parent = _parent;
    this._root = _root || this;
    this.clusterBits = clusterBits;

    this._read();
  }
  Qcow2CompressedDescriptor.prototype._read = function() {
    this.flagBits = this._io.readBitsIntBe(2);
    this.descHi = this._io.readBitsIntBe(30);
    this.descLo = this._io.readBitsIntBe(32);
  }

  /**
   * Number of bytes from offset to the end of the last sector used (nb_sectors + 1 sectors
   * in total). The compressed stream may be shorter than this.
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'compressedSize', {
    get: function() {
      if (this._m_compressedSize !== undefined)
        return this._m_compressedSize;
      this._m_compressedSize = (this.nbSectors + 1) * 512 - this.sectorOffset;
      return this._m_compressedSize;
    }
  });

  /**
   * Bits x-61: number of additional 512-byte sectors used for the compressed data, beyond
   * the sector containing the offset.
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'nbSectors', {
    get: function() {
      if (this._m_nbSectors !== undefined)
        return this._m_nbSectors;
      this._m_nbSectors = this.descHi >>> this.offsetBits - 32;
      return this._m_nbSectors;
    }
  });

  /**
   * Host byte offset of the compressed data as a JS number (exact when offset_hi < 2^21,
   * i.e. offset < 2^53; valid images keep it below 2^56, so use offset_hi/offset_lo when
   * exactness matters for hostile input).
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'offset', {
    get: function() {
      if (this._m_offset !== undefined)
        return this._m_offset;
      this._m_offset = this.offsetHi * 4294967296 + this.offsetLo;
      return this._m_offset;
    }
  });

  /**
   * x = 62 - (cluster_bits - 8), the number of bits of the host offset (49..61).
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'offsetBits', {
    get: function() {
      if (this._m_offsetBits !== undefined)
        return this._m_offsetBits;
      this._m_offsetBits = 62 - (this.clusterBits - 8);
      return this._m_offsetBits;
    }
  });

  /**
   * Bits 32..x-1 of the host offset (the value of those bits, not shifted).
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'offsetHi', {
    get: function() {
      if (this._m_offsetHi !== undefined)
        return this._m_offsetHi;
      this._m_offsetHi = KaitaiStream.mod(this.descHi, 1 << this.offsetBits - 32);
      return this._m_offsetHi;
    }
  });

  /**
   * Bits 0-31 of the host offset.
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'offsetLo', {
    get: function() {
      if (this._m_offsetLo !== undefined)
        return this._m_offsetLo;
      this._m_offsetLo = this.descLo;
      return this._m_offsetLo;
    }
  });

  /**
   * Position of the compressed data within its first 512-byte sector.
   */
  Object.defineProperty(Qcow2CompressedDescriptor.prototype, 'sectorOffset', {
    get: function() {
      if (this._m_sectorOffset !== undefined)
        return this._m_sectorOffset;
      this._m_sectorOffset = KaitaiStream.mod(this.offsetLo, 512);
      return this._m_sectorOffset;
    }
  });

  /**
   * Bits 62-63 of the word; not part of the descriptor. In an L2 entry, bit 63 is COPIED
   * (0 for compressed clusters) and bit 62 the compressed flag (1).
   */

  /**
   * Bits 32-61 of the descriptor, raw.
   */

  /**
   * Bits 0-31 of the descriptor, raw (always the low 32 bits of the host offset).
   */

  /**
   * cluster_bits from the image header (9..21; other values give meaningless instances).
   */

  return Qcow2CompressedDescriptor;
})();
Qcow2CompressedDescriptor_.Qcow2CompressedDescriptor = Qcow2CompressedDescriptor;
})(exports_, KaitaiStream);

export const Qcow2CompressedDescriptor = exports_.Qcow2CompressedDescriptor;
